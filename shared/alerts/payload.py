"""The partner payload: our documented, versioned JSON for one published incident.

Two incident kinds share the envelope (``schema_version``, ``kind``, ``idempotency_key``,
``incident_id``, ``revision``, ``title``, ``severity``, ``first_seen``, ``last_seen``,
``generated_at``, ``product``):

- ``incident``: the alerts of one user in one tenant, in story order, and the remediation
  actions taken for them (:func:`build_payload`);
- ``partner_incident``: one indicator seen in alerts of several tenants of the partner
  (:func:`build_partner_payload`).

Two more kinds are not incidents: the notice ``proof_of_life``, sent once when the first audit
content of a newly onboarded tenant arrives (:func:`build_notice_payload`), and the
``weekly_report`` of a tenant, sent once per tenant and week: the users whose password is known to
someone, and the week's incidents (:func:`build_weekly_report_payload`).

The JSON Schema (draft 2020-12) is ``shared/alerts/schema/incident-v1.json``
(:func:`load_schema`); docs/partner-integration.md explains every field and the versioning rules:
``1.x`` versions only add optional fields, consumers ignore fields they do not know, and a
breaking change becomes ``2.0`` with a new schema file.

Times are ISO 8601 UTC text with seconds (``2024-05-01T09:30:00Z``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shared.alert_model import iso
from shared.alerts.crosstenant import PartnerIncident
from shared.alerts.incidents import Incident, RemediationEntry
from shared.alerts.triage import Decision
from shared.reports.credentials import CredentialsReport, ExposedUser

SCHEMA_VERSION = "1.1"
"""1.1 added ``remediation`` to incidents and the ``weekly_report`` kind."""
PRODUCT_NAME = "m365-itdr"
SCHEMA_FILE = "incident-v1.json"


def product_version() -> str:
    """The installed m365-itdr version ("0.0.0" when run from a tree that is not installed)."""
    try:
        return version(PRODUCT_NAME)
    except PackageNotFoundError:
        return "0.0.0"


def idempotency_key(incident_id: str, revision: int) -> str:
    """The key of one revision of one incident: ``<incident_id>-r<revision>``."""
    return f"{incident_id}-r{revision}"


@cache
def _schema_text() -> str:
    return resources.files("shared.alerts").joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The published JSON Schema of the payload (draft 2020-12); a fresh copy on every call."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def _envelope(kind: str, incident_id: str, revision: int) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "idempotency_key": idempotency_key(incident_id, revision),
        "incident_id": incident_id,
        "revision": revision,
    }


def build_payload(
    incident: Incident, *, decision: Decision | None = None, generated_at: float | None = None
) -> dict[str, Any]:
    """The ``incident`` payload; with a decision, its suppressed alerts are left out and its reason included."""
    keep = set(decision.alert_ids) if decision is not None else set(incident.alert_ids)
    entries = [e for e in incident.entries if e.alert_id in keep]
    ips = sorted({e.ip for e in entries if e.ip})
    mitre = sorted({t for e in entries for t in e.mitre})
    body = _envelope("incident", incident.incident_id, incident.revision)
    body.update(
        {
            "tenant_id": incident.tenant_id,
            "title": incident.title,
            "severity": (decision.severity if decision is not None else incident.severity).value,
            "severity_reasons": list(incident.severity_reasons),
            "status": incident.status.value,
            "publish_reason": decision.reason if decision is not None else "",
            "user": {"name": incident.user, "key": incident.user_key},
            "stages": [s.value for s in sorted({e.stage for e in entries}, key=lambda s: s.order)],
            "first_seen": iso(min(e.first_seen for e in entries)) if entries else iso(incident.first_seen),
            "last_seen": iso(max(e.last_seen for e in entries)) if entries else iso(incident.last_seen),
            "generated_at": iso(time.time() if generated_at is None else generated_at),
            "story": [f"{iso(e.first_seen)} {e.stage.label}: {e.title} - {e.summary}" for e in entries],
            "mitre": mitre,
            "ips": ips,
            "alerts": [
                {
                    "alert_id": e.alert_id,
                    "detector": e.detector,
                    "title": e.title,
                    "category": e.category.value,
                    "stage": e.stage.value,
                    "severity": e.severity.value,
                    "first_seen": iso(e.first_seen),
                    "last_seen": iso(e.last_seen),
                    "summary": e.summary,
                    "user": e.user,
                    "ip": e.ip,
                    "asn": e.asn,
                    "country": e.country,
                    "app_id": e.app_id,
                    "mitre": list(e.mitre),
                    "evidence_record_ids": list(e.evidence_record_ids),
                    "count": e.count,
                }
                for e in entries
            ],
            "suppressed_alert_count": len(decision.suppressed) if decision is not None else 0,
            "remediation": [remediation_payload(r) for r in incident.remediation],
            "product": {"name": PRODUCT_NAME, "version": product_version()},
        }
    )
    return body


def remediation_payload(entry: RemediationEntry) -> dict[str, Any]:
    """One remediation action of an incident as the payload carries it."""
    return {
        "idempotency_key": entry.idempotency_key,
        "action": entry.action,
        "target": entry.target,
        "state": entry.state,
        "reason": entry.reason,
        "summary": entry.summary,
        "manual_steps": list(entry.manual_steps),
        "warnings": list(entry.warnings),
        "undo_of": entry.undo_of,
        "updated_at": iso(entry.updated_at),
    }


def build_partner_payload(incident: PartnerIncident, *, generated_at: float | None = None) -> dict[str, Any]:
    """The ``partner_incident`` payload: the indicator and the linked alerts of each tenant."""
    body = _envelope("partner_incident", incident.incident_id, incident.revision)
    body.update(
        {
            "partner_id": incident.partner_id,
            "title": incident.title,
            "severity": incident.severity.value,
            "indicator": {"kind": incident.kind.value, "value": incident.indicator},
            "tenant_ids": incident.tenant_ids,
            "first_seen": iso(incident.first_seen),
            "last_seen": iso(incident.last_seen),
            "generated_at": iso(time.time() if generated_at is None else generated_at),
            "alerts": [
                {
                    "tenant_id": s.tenant_id,
                    "alert_id": s.alert_id,
                    "detector": s.detector,
                    "title": s.title,
                    "user": s.user,
                    "severity": s.severity.value,
                    "first_seen": iso(s.first_seen),
                    "last_seen": iso(s.last_seen),
                }
                for s in incident.sightings
            ],
            "product": {"name": PRODUCT_NAME, "version": product_version()},
        }
    )
    return body


def notice_id_for(kind: str, tenant_id: str) -> str:
    """Deterministic ID of a notice (``pol-`` + 24 hex digits for ``proof_of_life``)."""
    prefix = {"proof_of_life": "pol"}[kind]
    return f"{prefix}-{hashlib.sha256(f'{kind}|{tenant_id}'.encode()).hexdigest()[:24]}"


def build_notice_payload(notice: dict[str, Any], *, generated_at: float | None = None) -> dict[str, Any]:
    """The ``proof_of_life`` payload: audit data is flowing for a tenant (revision 1, sent once)."""
    tenant_id = str(notice["tenant_id"])
    content_type = notice.get("content_type")
    body = _envelope("proof_of_life", notice_id_for("proof_of_life", tenant_id), 1)
    body.update(
        {
            "tenant_id": tenant_id,
            "title": f"m365-itdr receives audit data for tenant {tenant_id}",
            "content_type": str(content_type) if content_type else None,
            "first_record_time": notice.get("first_record_time"),
            "generated_at": iso(time.time() if generated_at is None else generated_at),
            "product": {"name": PRODUCT_NAME, "version": product_version()},
        }
    )
    return body


MAX_REPORT_USERS = 500
"""Users listed in a weekly report (worst first); ``credentials.user_count`` counts them all."""
MAX_REPORT_SOURCES = 20
"""Source addresses listed per user (latest first)."""
MAX_REPORT_INCIDENTS = 500
"""Incidents listed in a weekly report (most severe, then latest, first); ``incident_count`` counts them all."""


def _utc(dt: datetime) -> datetime:
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).astimezone(UTC)


def iso_week(start: datetime) -> str:
    """The ISO week of a report period's start, e.g. ``2025-W47``."""
    year, week, _ = _utc(start).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_report_id_for(tenant_id: str, period_start: datetime) -> str:
    """Deterministic ID of a tenant's weekly report: ``wr-`` + 24 hex digits of (tenant, ISO week)."""
    material = f"weekly_report|{tenant_id}|{iso_week(period_start)}"
    return f"wr-{hashlib.sha256(material.encode()).hexdigest()[:24]}"


def _report_user(user: ExposedUser) -> dict[str, Any]:
    return {
        "user": user.user,
        "user_key": user.user_key,
        "severity": user.severity.value,
        "attempts": user.attempts,
        "first_seen": iso(user.first_seen.timestamp()),
        "last_seen": iso(user.last_seen.timestamp()),
        "mfa_fatigue": user.mfa_fatigue,
        "risky": user.risky,
        "reasons": list(user.reasons),
        "sources": [
            {
                "ip": s.ip,
                "country": s.country,
                "city": s.city,
                "asn": s.asn,
                "asn_org": s.asn_org,
                "anonymizer": s.anonymizer,
                "vpn_operator": s.vpn_operator,
                "hosting": s.hosting,
                "familiar_location": s.familiar_location,
                "attempts": s.attempts,
                "first_seen": iso(s.first_seen.timestamp()),
                "last_seen": iso(s.last_seen.timestamp()),
            }
            for s in user.sources[:MAX_REPORT_SOURCES]
        ],
        "alert_ids": list(user.alert_ids),
    }


def _report_incident(inc: Incident) -> dict[str, Any]:
    return {
        "incident_id": inc.incident_id,
        "title": inc.title,
        "severity": inc.severity.value,
        "status": inc.status.value,
        "user": inc.user,
        "first_seen": iso(inc.first_seen),
        "last_seen": iso(inc.last_seen),
        "revision": inc.revision,
    }


def build_weekly_report_payload(
    report: CredentialsReport, incidents: Sequence[Incident], *, generated_at: float | None = None
) -> dict[str, Any]:
    """The ``weekly_report`` payload of one tenant and week (revision 1: sent once per tenant and week).

    ``report`` is the week's compromised-credentials report; ``incidents`` are the tenant's incidents
    seen in the week (other tenants' incidents are refused with ValueError).
    """
    tenant_id = report.tenant_id
    strangers = sorted({i.tenant_id for i in incidents if i.tenant_id != tenant_id})
    if strangers:
        raise ValueError(f"incidents of other tenants in the weekly report of {tenant_id}: {strangers}")
    week = iso_week(report.period_start)
    ordered = sorted(incidents, key=lambda i: (-i.severity.rank, -i.last_seen, i.incident_id))
    body = _envelope("weekly_report", weekly_report_id_for(tenant_id, report.period_start), 1)
    body.update(
        {
            "tenant_id": tenant_id,
            "title": f"m365-itdr weekly report {week} for tenant {tenant_id}",
            "week": week,
            "period_start": iso(_utc(report.period_start).timestamp()),
            "period_end": iso(_utc(report.period_end).timestamp()),
            "generated_at": iso(time.time() if generated_at is None else generated_at),
            "credentials": {
                "user_count": len(report.users),
                "attempts": report.attempts,
                "users": [_report_user(u) for u in report.users[:MAX_REPORT_USERS]],
            },
            "incident_count": len(ordered),
            "incidents": [_report_incident(i) for i in ordered[:MAX_REPORT_INCIDENTS]],
            "product": {"name": PRODUCT_NAME, "version": product_version()},
        }
    )
    return body
