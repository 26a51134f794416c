"""Microsoft's own alert-policy alerts relayed to the user they name, with their category.

Record shapes: Security and Compliance Alerts (RecordType 40, Workload SecurityComplianceCenter, UserId/UserKey
"SecurityComplianceAlerts", UserType 4, AlertId, AlertLinks, AlertType, Category, Comments, Data as a JSON string
with short keys, EntityType, AlertEntityId, Name, PolicyId, Severity, Source, Status) from Sekoia's public samples
SEKOIA-IO/intake-formats "Office 365/o365/tests/security_compliance_alert.json", "security_compliance_alert_2.json"
and "security_compliance_alert_7.json" (the last one with the zero-width space Microsoft leaves in some names), and
the "Security and Compliance Alerts schema" of the Office 365 Management Activity API schema. The user of an
``AlertEntityGenerated`` record is its ``ObjectId`` / ``AlertEntityId`` as Splunk's public detection reads it
(security_content "O365 Email Suspicious Behavior Alert": ``rename ObjectId as user`` for "User restricted from
sending email" and "Suspicious email sending patterns detected"); the ``f3u`` data key used for ``AlertTriggered``
below is not confirmed by a public sample [inferred]. Policy names from Microsoft's "Alert policies in the
Microsoft Defender portal".
"""

from __future__ import annotations

from typing import Any

import orjson
from records import RISKY_IP, TEST_TENANT, RiskySigninMarker, _rid, at, identity_enricher, oid_of, signin

from detectors.defender_alert_policy import DefenderAlertPolicy
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
ALERT_ID = "cf0708c6-e2c5-4962-ae99-9af4799175f4"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenderAlertPolicy],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def alert_record(
    operation: str,
    name: str,
    *,
    when: str,
    user: str | None = ALICE,
    severity: str = "High",
    category: str = "ThreatManagement",
    status: str = "Active",
    alert_id: str = ALERT_ID,
    entity: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "etype": "User" if entity else "",
        "eid": user or "",
        "tid": TEST_TENANT,
        "ts": when + ".0000000Z",
        "te": when + ".0000000Z",
        "an": name,
        "sev": severity,
        "lon": "Protection",
        "tdc": "1",
    }
    if user:
        data["f3u"] = user
    rec: dict[str, Any] = {
        "CreationTime": when,
        "Id": _rid(TEST_TENANT, operation, name, when, user, status),
        "Operation": operation,
        "OrganizationId": TEST_TENANT,
        "RecordType": 40,
        "ResultStatus": "Succeeded",
        "UserKey": "SecurityComplianceAlerts",
        "UserType": 4,
        "Version": 1,
        "Workload": "SecurityComplianceCenter",
        "ObjectId": (user if entity and user else alert_id),
        "UserId": "SecurityComplianceAlerts",
        "AlertId": alert_id,
        "AlertLinks": [{"AlertLinkHref": ""}],
        "AlertType": "System",
        "Category": category,
        "Comments": "New alert",
        "Data": orjson.dumps(data).decode(),
        "Name": name,
        "PolicyId": "bef2401e-5c6c-476b-aedb-e2f521fafb1f",
        "Severity": severity,
        "Source": "Office 365 Security & Compliance",
        "Status": status,
    }
    if entity:
        rec["EntityType"] = "User"
        rec["AlertEntityId"] = user or ""
    return rec


def test_user_restricted_from_sending_after_a_risky_sign_in_is_critical_and_joins_the_user() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    triggered = alert_record("AlertTriggered", "User restricted from sending email", when=at(minutes=50))
    entity = alert_record(
        "AlertEntityGenerated", "User restricted from sending email", when=at(minutes=51), entity=True
    )
    got = run([login, triggered, entity])
    assert got == [
        {
            "alert_id": got[0]["alert_id"],
            "detector": "defender_alert_policy",
            "title": "Microsoft alert about a user",
            "category": "credential_compromise",
            "severity": "critical",
            "tenant_id": TEST_TENANT,
            "user": ALICE,
            "user_key": oid_of(ALICE),
            "first_seen": triggered["CreationTime"] + "Z",
            "last_seen": entity["CreationTime"] + "Z",
            "evidence_record_ids": [triggered["Id"], entity["Id"]],
            "mitre": ["T1078.004", "T1114.003", "T1534"],
            "summary": f"Microsoft alert 'User restricted from sending email' (High) for {ALICE} after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            "ip": None,
            "count": 2,
            "context": {
                "alert_id": ALERT_ID,
                "alert_name": "User restricted from sending email",
                "microsoft_severity": "High",
                "microsoft_category": "ThreatManagement",
                "source": "Office 365 Security & Compliance",
                "entity_type": None,
                "operation": "AlertTriggered",
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            },
            "dedup_key": f"{ALERT_ID}|{ALICE}",
            "runbook": DefenderAlertPolicy.meta.runbook,
        }
    ]


def test_a_forwarding_alert_carries_the_shadow_workflow_category() -> None:
    rec = alert_record(
        "AlertEntityGenerated",
        "Suspicious email forwarding activity",
        when=at(minutes=5),
        entity=True,
        severity="Medium",
    )
    got = run([rec])
    assert [(a["category"], a["severity"], a["user"], a["context"]["entity_type"]) for a in got] == [
        ("shadow_workflow", "high", ALICE, "User")
    ]


def test_ordinary_phish_removed_after_delivery_and_resolved_alerts_are_not_relayed() -> None:
    # the name as Microsoft writes it, with a trailing zero-width space (Sekoia security_compliance_alert_7.json)
    zap = alert_record(
        "AlertEntityGenerated",
        "Email messages containing malicious URL removed after delivery\u200b",
        when=at(minutes=1),
        severity="Informational",
    )
    resolved = alert_record(
        "AlertTriggered", "User restricted from sending email", when=at(minutes=2), status="Resolved"
    )
    updated = alert_record("AlertUpdated", "User restricted from sending email", when=at(minutes=3))
    assert run([zap, resolved, updated]) == []


def test_a_tenant_wide_alert_without_a_user_is_a_tenant_alert() -> None:
    rec = alert_record("AlertTriggered", "Tenant restricted from sending email", when=at(minutes=1), user=None)
    got = run([rec])
    assert [(a["severity"], a["user_key"], a["dedup_key"]) for a in got] == [("high", None, f"{ALERT_ID}|tenant")]


def test_an_entity_record_without_entity_type_names_its_user_by_object_id() -> None:
    rec = alert_record(
        "AlertEntityGenerated", "Suspicious email sending patterns detected", when=at(minutes=1), user=None
    )
    rec["ObjectId"] = "Bob@Contoso.com"
    got = run([rec])
    assert [(a["severity"], a["user"], a["category"]) for a in got] == [
        ("medium", "bob@contoso.com", "credential_compromise")
    ]
