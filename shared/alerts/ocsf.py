"""OCSF 1.3.0 Detection Finding (class_uid 2004, category_uid 2) for alerts and incidents.

Mapping of an alert (:func:`to_ocsf`):

==========================  ==============================================================
OCSF                        m365-itdr
==========================  ==============================================================
``activity_id``             1 Create (one finding), 2 Update (findings merged or status set),
                            3 Close (dismissed)
``severity_id``             low 2, medium 3, high 4, critical 5
``status_id``               new 1 New, acknowledged / confirmed 2 In Progress, dismissed 3
                            Suppressed
``time``                    the alert's last_seen (epoch ms)
``finding_info``            uid = alert ID, title, desc = summary, types = [category],
                            first/last_seen_time, analytic (the detector, type Rule),
                            attacks = [{technique {uid}}] (sub-techniques also as sub_technique)
``metadata``                version 1.3.0, product {name m365-itdr, vendor_name}, uid
``resources``               the Microsoft 365 tenant
``evidences``               one artifact: the user and the source endpoint (IP)
``observables``             user name (type 4), IP address (type 2)
``unmapped``                tenant, detector, category, dedup key, count, runbook, evidence
                            record IDs and the detector's context
==========================  ==============================================================

:func:`incident_to_ocsf` and :func:`partner_incident_to_ocsf` give the partner delivery's OCSF
format: one Detection Finding per incident whose ``finding_info.related_events`` lists the alerts.
An incident's remediation actions are in ``unmapped.remediation`` (as in the ``itdr`` payload), and
``remediation.desc`` (OCSF's remediation guidance) tells them in words, one line per action, with the
manual steps left to an administrator.
"""

from __future__ import annotations

from typing import Any

from shared.alert_model import Alert, Severity
from shared.alerts.crosstenant import IndicatorKind, PartnerIncident
from shared.alerts.incidents import Incident, RemediationEntry
from shared.alerts.payload import PRODUCT_NAME, idempotency_key, product_version, remediation_payload
from shared.alerts.store import AlertStatus
from shared.alerts.triage import Decision

OCSF_VERSION = "1.3.0"
VENDOR_NAME = "m365-itdr project"
CLASS_UID = 2004
CATEGORY_UID = 2

ACTIVITY_CREATE, ACTIVITY_UPDATE, ACTIVITY_CLOSE = 1, 2, 3
_ACTIVITY_NAME = {ACTIVITY_CREATE: "Create", ACTIVITY_UPDATE: "Update", ACTIVITY_CLOSE: "Close"}
SEVERITY_ID = {Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
_SEVERITY_NAME = {2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS_ID = {
    AlertStatus.NEW: 1,
    AlertStatus.ACKNOWLEDGED: 2,
    AlertStatus.CONFIRMED: 2,
    AlertStatus.DISMISSED: 3,
}
_STATUS_NAME = {1: "New", 2: "In Progress", 3: "Suppressed"}
OBSERVABLE_IP = 2
OBSERVABLE_USER_NAME = 4
OBSERVABLE_OTHER = 99


def _ms(ts: float) -> int:
    return round(ts * 1000)


def _attacks(mitre: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in mitre:
        base, _, sub = t.partition(".")
        attack: dict[str, Any] = {"technique": {"uid": base}}
        if sub:
            attack["sub_technique"] = {"uid": t}
        out.append(attack)
    return out


def _envelope(activity_id: int, severity: Severity, status: AlertStatus, time_s: float, uid: str) -> dict[str, Any]:
    sev = SEVERITY_ID[severity]
    st = STATUS_ID[status]
    return {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": _ACTIVITY_NAME[activity_id],
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"Detection Finding: {_ACTIVITY_NAME[activity_id]}",
        "severity_id": sev,
        "severity": _SEVERITY_NAME[sev],
        "status_id": st,
        "status": _STATUS_NAME[st],
        "time": _ms(time_s),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "product": {"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME, "version": product_version()},
        },
    }


def _activity(status: AlertStatus, updated: bool) -> int:
    if status is AlertStatus.DISMISSED:
        return ACTIVITY_CLOSE
    return ACTIVITY_UPDATE if updated or status is not AlertStatus.NEW else ACTIVITY_CREATE


def _tenant_resource(tenant_id: str) -> dict[str, Any]:
    return {"uid": tenant_id, "type": "Microsoft 365 tenant"}


def _evidence(user: str, user_key: str | None, ip: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ev: dict[str, Any] = {"user": {"name": user, **({"uid": user_key} if user_key else {})}}
    observables = [{"name": "evidences.user.name", "type_id": OBSERVABLE_USER_NAME, "type": "User Name", "value": user}]
    if ip:
        ev["src_endpoint"] = {"ip": ip}
        observables.append(
            {"name": "evidences.src_endpoint.ip", "type_id": OBSERVABLE_IP, "type": "IP Address", "value": ip}
        )
    return ev, observables


def to_ocsf(alert: Alert, *, status: AlertStatus | str = AlertStatus.NEW) -> dict[str, Any]:
    """One alert as an OCSF Detection Finding (see the module docstring for the mapping)."""
    st = AlertStatus(status)
    out = _envelope(_activity(st, alert.count > 1), alert.severity, st, alert.last_seen, alert.alert_id)
    evidence, observables = _evidence(alert.user, alert.user_key, alert.ip)
    out.update(
        {
            "message": alert.summary,
            "finding_info": {
                "uid": alert.alert_id,
                "title": alert.title,
                "desc": alert.summary,
                "types": [alert.category.value],
                "first_seen_time": _ms(alert.first_seen),
                "last_seen_time": _ms(alert.last_seen),
                "analytic": {"uid": alert.detector, "name": alert.title, "type_id": 1, "type": "Rule"},
                "attacks": _attacks(alert.mitre),
            },
            "resources": [_tenant_resource(alert.tenant_id)],
            "evidences": [evidence],
            "observables": observables,
            "unmapped": {
                "tenant_id": alert.tenant_id,
                "detector": alert.detector,
                "category": alert.category.value,
                "dedup_key": alert.dedup_key,
                "count": alert.count,
                "runbook": alert.runbook,
                "evidence_record_ids": list(alert.evidence_record_ids),
                "context": dict(alert.context),
            },
        }
    )
    return out


def incident_to_ocsf(incident: Incident, *, decision: Decision | None = None) -> dict[str, Any]:
    """One incident as an OCSF Detection Finding (the partner delivery's ``ocsf`` format)."""
    keep = set(decision.alert_ids) if decision is not None else set(incident.alert_ids)
    entries = [e for e in incident.entries if e.alert_id in keep] or list(incident.entries)
    severity = decision.severity if decision is not None else incident.severity
    out = _envelope(
        _activity(incident.status, incident.revision > 1),
        severity,
        incident.status,
        incident.last_seen,
        incident.incident_id,
    )
    evidences: list[dict[str, Any]] = []
    observables: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for e in entries:
        if (e.user, e.ip) in seen:
            continue
        seen.add((e.user, e.ip))
        ev, obs = _evidence(e.user, incident.user_key if incident.user_key != "_tenant" else None, e.ip)
        evidences.append(ev)
        observables.extend(o for o in obs if o not in observables)
    mitre = sorted({t for e in entries for t in e.mitre})
    out.update(
        {
            "message": " | ".join(f"{e.stage.label}: {e.title}" for e in entries),
            "finding_info": {
                "uid": incident.incident_id,
                "title": incident.title,
                "desc": "\n".join(f"{e.stage.label}: {e.title} - {e.summary}" for e in entries),
                "types": sorted({e.category.value for e in entries}),
                "first_seen_time": _ms(min(e.first_seen for e in entries)),
                "last_seen_time": _ms(max(e.last_seen for e in entries)),
                "attacks": _attacks(mitre),
                "related_events": [{"uid": e.alert_id, "type": e.detector} for e in entries],
            },
            "resources": [_tenant_resource(incident.tenant_id)],
            "evidences": evidences,
            "observables": observables,
            "unmapped": {
                "tenant_id": incident.tenant_id,
                "incident_id": incident.incident_id,
                "revision": incident.revision,
                "idempotency_key": idempotency_key(incident.incident_id, incident.revision),
                "severity_reasons": list(incident.severity_reasons),
                "stages": [s.value for s in incident.stages],
                "publish_reason": decision.reason if decision is not None else "",
                "suppressed_alert_count": len(decision.suppressed) if decision is not None else 0,
                "evidence_record_ids": {e.alert_id: list(e.evidence_record_ids) for e in entries},
                "remediation": [remediation_payload(r) for r in incident.remediation],
            },
        }
    )
    if incident.remediation:
        out["remediation"] = {"desc": remediation_desc(incident.remediation)}
    return out


def remediation_desc(actions: list[RemediationEntry]) -> str:
    """The remediation actions in words: one line per action, then its manual steps indented."""
    lines: list[str] = []
    for r in actions:
        reason = f" ({r.reason})" if r.reason else ""
        lines.append(f"{r.action} {r.target}: {r.state}{reason} - {r.summary}")
        lines.extend(f"  manual step: {step}" for step in r.manual_steps)
    return "\n".join(lines)


def partner_incident_to_ocsf(incident: PartnerIncident) -> dict[str, Any]:
    """A cross-tenant incident as an OCSF Detection Finding."""
    out = _envelope(
        ACTIVITY_UPDATE if incident.revision > 1 else ACTIVITY_CREATE,
        incident.severity,
        AlertStatus.NEW,
        incident.last_seen,
        incident.incident_id,
    )
    observables: list[dict[str, Any]] = []
    evidence: dict[str, Any]
    if incident.kind is IndicatorKind.IP:
        evidence = {"src_endpoint": {"ip": incident.indicator}}
        observables.append(
            {
                "name": "evidences.src_endpoint.ip",
                "type_id": OBSERVABLE_IP,
                "type": "IP Address",
                "value": incident.indicator,
            }
        )
    elif incident.kind is IndicatorKind.ASN:
        evidence = {"src_endpoint": {"autonomous_system": {"number": int(incident.indicator)}}}
        observables.append(
            {
                "name": "evidences.src_endpoint.autonomous_system.number",
                "type_id": OBSERVABLE_OTHER,
                "type": "Autonomous System Number",
                "value": incident.indicator,
            }
        )
    else:
        evidence = {"data": {"app_id": incident.indicator}}
        observables.append(
            {
                "name": "unmapped.indicator",
                "type_id": OBSERVABLE_OTHER,
                "type": "OAuth Application ID",
                "value": incident.indicator,
            }
        )
    out.update(
        {
            "message": incident.title,
            "finding_info": {
                "uid": incident.incident_id,
                "title": incident.title,
                "desc": incident.title,
                "types": ["cross_tenant", incident.kind.value],
                "first_seen_time": _ms(incident.first_seen),
                "last_seen_time": _ms(incident.last_seen),
                "related_events": [{"uid": s.alert_id, "type": s.detector} for s in incident.sightings],
            },
            "resources": [_tenant_resource(t) for t in incident.tenant_ids],
            "evidences": [evidence],
            "observables": observables,
            "unmapped": {
                "partner_id": incident.partner_id,
                "indicator_kind": incident.kind.value,
                "indicator": incident.indicator,
                "revision": incident.revision,
                "idempotency_key": idempotency_key(incident.incident_id, incident.revision),
                "alerts": [
                    {"tenant_id": s.tenant_id, "alert_id": s.alert_id, "user": s.user} for s in incident.sightings
                ],
            },
        }
    )
    return out
