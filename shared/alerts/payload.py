"""The partner payload: our documented, versioned JSON for one published incident.

Two incident kinds share the envelope (``schema_version``, ``kind``, ``idempotency_key``,
``incident_id``, ``revision``, ``title``, ``severity``, ``first_seen``, ``last_seen``,
``generated_at``, ``product``):

- ``incident``: the alerts of one user in one tenant, in story order (:func:`build_payload`);
- ``partner_incident``: one indicator seen in alerts of several tenants of the partner
  (:func:`build_partner_payload`).

A third kind is a notice, not an incident: ``proof_of_life``, sent once when the first audit
content of a newly onboarded tenant arrives (:func:`build_notice_payload`).

The JSON Schema (draft 2020-12) is ``shared/alerts/schema/incident-v1.json``
(:func:`load_schema`); docs/partner-integration.md explains every field and the versioning rules:
``1.x`` versions only add optional fields, consumers ignore fields they do not know, and a
breaking change becomes ``2.0`` with a new schema file.

Times are ISO 8601 UTC text with seconds (``2024-05-01T09:30:00Z``).
"""

from __future__ import annotations

import json
import time
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shared.alerts.crosstenant import PartnerIncident
from shared.alerts.incidents import Incident
from shared.alerts.triage import Decision
from shared.records.event import iso

SCHEMA_VERSION = "1.0"
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
            "product": {"name": PRODUCT_NAME, "version": product_version()},
        }
    )
    return body


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
    import hashlib

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
