"""The partner payload against its published JSON Schema, and the OCSF Detection Finding export."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from shared.alert_model import Category, Severity
from shared.alerts.crosstenant import InMemoryCrossTenantCorrelator
from shared.alerts.incidents import InMemoryIncidentBook
from shared.alerts.ocsf import incident_to_ocsf, partner_incident_to_ocsf, to_ocsf
from shared.alerts.payload import build_partner_payload, build_payload, load_schema, product_version
from shared.alerts.suppressions import Suppression
from shared.alerts.triage import TriagePolicy, decide

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OTHER = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
NOW = T0 + 3 * H


def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def undocumented(doc: Any, schema: dict[str, Any], node: dict[str, Any], path: str = "") -> list[str]:
    """Keys of ``doc`` that the schema does not describe (the schema allows them; our docs must not miss them)."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    out: list[str] = []
    if isinstance(doc, dict):
        props = node.get("properties", {})
        for k, v in doc.items():
            if k not in props:
                out.append(f"{path}/{k}")
            else:
                out += undocumented(v, schema, props[k], f"{path}/{k}")
    elif isinstance(doc, list) and "items" in node:
        for i, v in enumerate(doc):
            out += undocumented(v, schema, node["items"], f"{path}/{i}")
    return out


@pytest.fixture
def incident(make_alert: Any) -> Any:
    book = InMemoryIncidentBook(now=lambda: NOW)
    alerts = [
        make_alert(Category.UNWANTED_LOGIN, at=T0, context={"country": "PT", "asn": 64500}),
        make_alert(Category.SHADOW_WORKFLOW, at=T0 + H, context={"rule_name": "<script>x</script>"}),
        make_alert(
            Category.ROGUE_APP, at=T0 + 2 * H, ip=None, context={"app_id": "00000000-AAAA-4000-8000-000000000001"}
        ),
    ]
    (inc,) = book.add_alerts(alerts)
    return inc, alerts


def test_incident_payload_matches_the_published_schema(incident: Any) -> None:
    inc, (sign_in, rule, consent) = incident
    decision = decide(inc, TriagePolicy(), [], now=NOW)
    body = build_payload(inc, decision=decision, generated_at=NOW)
    validator().validate(body)
    schema = load_schema()
    assert undocumented(body, schema, schema["$defs"]["incident"]) == []
    assert {k: body[k] for k in body if k not in ("alerts", "story")} == {
        "schema_version": "1.1",
        "kind": "incident",
        "idempotency_key": f"{inc.incident_id}-r1",
        "incident_id": inc.incident_id,
        "revision": 1,
        "tenant_id": TENANT,
        "title": "Possible account takeover of megan@contoso.com: Sign-in → Mail rule / forwarding → Consent / privilege",
        "severity": "critical",
        "severity_reasons": [
            "risky sign-in followed within 24 h by mail rule / forwarding, consent / privilege",
            "3 attack stages: Sign-in → Mail rule / forwarding → Consent / privilege",
        ],
        "status": "new",
        "publish_reason": "severity critical is published at once (high, critical)",
        "user": {"name": "megan@contoso.com", "key": "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f"},
        "stages": ["sign_in", "persistence", "consent"],
        "first_seen": "2025-11-24T16:00:00Z",
        "last_seen": "2025-11-24T18:01:00Z",
        "generated_at": "2025-11-24T19:00:00Z",
        "mitre": ["T1078", "T1114.003", "T1528", "T1564.008"],
        "ips": ["198.51.100.7"],
        "suppressed_alert_count": 0,
        "remediation": [],
        "product": {"name": "m365-itdr", "version": product_version()},
    }
    assert [a["alert_id"] for a in body["alerts"]] == [sign_in.alert_id, rule.alert_id, consent.alert_id]
    assert body["alerts"][0] == {
        "alert_id": sign_in.alert_id,
        "detector": "test_unwanted_login",
        "title": "Sign-in from an anonymising proxy",
        "category": "unwanted_login",
        "stage": "sign_in",
        "severity": "medium",
        "first_seen": "2025-11-24T16:00:00Z",
        "last_seen": "2025-11-24T16:01:00Z",
        "summary": "Sign-in from an anonymising proxy for megan@contoso.com",
        "user": "megan@contoso.com",
        "ip": "198.51.100.7",
        "asn": 64500,
        "country": "PT",
        "app_id": None,
        "mitre": ["T1078"],
        "evidence_record_ids": [sign_in.evidence_record_ids[0]],
        "count": 1,
    }
    assert body["alerts"][2]["app_id"] == "00000000-aaaa-4000-8000-000000000001"


def test_suppressed_alerts_are_left_out_of_the_payload(incident: Any) -> None:
    inc, (sign_in, rule, _) = incident
    s = Suppression(tenant_id=TENANT, detector="test_rogue_app", reason="approved app", created_by="ana", created_at=T0)
    decision = decide(inc, TriagePolicy(), [s], now=NOW)
    body = build_payload(inc, decision=decision, generated_at=NOW)
    validator().validate(body)
    assert [a["alert_id"] for a in body["alerts"]] == [sign_in.alert_id, rule.alert_id]
    assert (body["severity"], body["stages"], body["suppressed_alert_count"]) == ("high", ["sign_in", "persistence"], 1)
    assert body["last_seen"] == "2025-11-24T17:01:00Z"


def test_partner_payload_matches_the_published_schema(make_alert: Any) -> None:
    corr = InMemoryCrossTenantCorrelator({TENANT: "msp-1", OTHER: "msp-1"}, now=lambda: NOW)
    (inc,) = corr.add_alerts(
        [
            make_alert(Category.UNWANTED_LOGIN, tenant=TENANT, ip="203.0.113.50", at=T0),
            make_alert(Category.UNWANTED_LOGIN, tenant=OTHER, ip="203.0.113.50", at=T0 + H, user="joe@fabrikam.com"),
        ]
    )
    body = build_partner_payload(inc, generated_at=NOW)
    validator().validate(body)
    schema = load_schema()
    assert undocumented(body, schema, schema["$defs"]["partner_incident"]) == []
    assert (body["kind"], body["indicator"], body["tenant_ids"]) == (
        "partner_incident",
        {"kind": "ip", "value": "203.0.113.50"},
        sorted([TENANT, OTHER]),
    )


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        pytest.param(lambda b: b.update(schema_version="2.0"), "schema_version", id="major-version"),
        pytest.param(lambda b: b.update(severity="urgent"), "severity", id="severity"),
        pytest.param(lambda b: b.pop("idempotency_key"), "idempotency_key", id="missing-key"),
        pytest.param(lambda b: b["alerts"][0].update(first_seen="24/11/2025"), "first_seen", id="time-format"),
        pytest.param(lambda b: b.update(alerts=[]), "alerts", id="no-alerts"),
    ],
)
def test_the_schema_rejects_broken_payloads(incident: Any, mutate: Any, where: str) -> None:
    body = build_payload(incident[0], generated_at=NOW)
    mutate(body)
    with pytest.raises(jsonschema.ValidationError) as err:
        validator().validate(body)
    assert where in str(err.value)


def test_a_newer_minor_version_with_extra_fields_still_validates(incident: Any) -> None:
    body = build_payload(incident[0], generated_at=NOW)
    body.update(schema_version="1.7", risk_score=80)
    validator().validate(body)


def test_alert_as_ocsf_detection_finding(make_alert: Any) -> None:
    alert = make_alert(Category.SHADOW_WORKFLOW, severity=Severity.HIGH, ip="198.51.100.7", context={"rule_name": "."})
    assert to_ocsf(alert) == {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": 4,
        "severity": "High",
        "status_id": 1,
        "status": "New",
        "time": 1_764_000_060_000,
        "message": "Suspicious inbox rule for megan@contoso.com",
        "metadata": {
            "version": "1.3.0",
            "uid": alert.alert_id,
            "product": {"name": "m365-itdr", "vendor_name": "m365-itdr project", "version": product_version()},
        },
        "finding_info": {
            "uid": alert.alert_id,
            "title": "Suspicious inbox rule",
            "desc": "Suspicious inbox rule for megan@contoso.com",
            "types": ["shadow_workflow"],
            "first_seen_time": 1_764_000_000_000,
            "last_seen_time": 1_764_000_060_000,
            "analytic": {"uid": "test_shadow_workflow", "name": "Suspicious inbox rule", "type_id": 1, "type": "Rule"},
            "attacks": [
                {"technique": {"uid": "T1564"}, "sub_technique": {"uid": "T1564.008"}},
                {"technique": {"uid": "T1114"}, "sub_technique": {"uid": "T1114.003"}},
            ],
        },
        "resources": [{"uid": TENANT, "type": "Microsoft 365 tenant"}],
        "evidences": [
            {
                "user": {"name": "megan@contoso.com", "uid": "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f"},
                "src_endpoint": {"ip": "198.51.100.7"},
            }
        ],
        "observables": [
            {"name": "evidences.user.name", "type_id": 4, "type": "User Name", "value": "megan@contoso.com"},
            {"name": "evidences.src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": "198.51.100.7"},
        ],
        "unmapped": {
            "tenant_id": TENANT,
            "detector": "test_shadow_workflow",
            "category": "shadow_workflow",
            "dedup_key": alert.dedup_key,
            "count": 1,
            "runbook": alert.runbook,
            "evidence_record_ids": list(alert.evidence_record_ids),
            "context": {"rule_name": "."},
        },
    }


@pytest.mark.parametrize(
    ("severity", "count", "status", "expected"),
    [
        (Severity.LOW, 1, "new", (2, 1, 1, 200401)),
        (Severity.MEDIUM, 3, "new", (3, 2, 1, 200402)),
        (Severity.CRITICAL, 1, "acknowledged", (5, 2, 2, 200402)),
        (Severity.HIGH, 1, "confirmed", (4, 2, 2, 200402)),
        (Severity.HIGH, 1, "dismissed", (4, 3, 3, 200403)),
    ],
)
def test_ocsf_severity_activity_and_status(
    make_alert: Any, severity: Severity, count: int, status: str, expected: tuple[int, int, int, int]
) -> None:
    alert = make_alert(Category.UNWANTED_LOGIN, severity=severity, ip=None)
    alert.count = count
    out = to_ocsf(alert, status=status)
    assert (out["severity_id"], out["activity_id"], out["status_id"], out["type_uid"]) == expected
    assert out["observables"] == [
        {"name": "evidences.user.name", "type_id": 4, "type": "User Name", "value": "megan@contoso.com"}
    ]


def test_incident_and_partner_incident_as_ocsf(incident: Any, make_alert: Any) -> None:
    inc, alerts = incident
    out = incident_to_ocsf(inc)
    assert (out["class_uid"], out["category_uid"], out["severity_id"], out["activity_id"]) == (2004, 2, 5, 1)
    assert out["finding_info"]["related_events"] == [{"uid": a.alert_id, "type": a.detector} for a in alerts]
    assert out["finding_info"]["types"] == ["rogue_app", "shadow_workflow", "unwanted_login"]
    assert [o["value"] for o in out["observables"]] == ["megan@contoso.com", "198.51.100.7"]
    assert out["unmapped"]["idempotency_key"] == f"{inc.incident_id}-r1"

    corr = InMemoryCrossTenantCorrelator({TENANT: "msp-1", OTHER: "msp-1"})
    (pinc,) = corr.add_alerts(
        [make_alert(Category.ROGUE_APP, tenant=t, ip=None, context={"app_id": "bad-app"}) for t in (TENANT, OTHER)]
    )
    pout = partner_incident_to_ocsf(pinc)
    assert (pout["finding_info"]["types"], pout["observables"][0]["value"]) == (["cross_tenant", "app"], "bad-app")
    assert pout["resources"] == [{"uid": t, "type": "Microsoft 365 tenant"} for t in sorted([TENANT, OTHER])]


def test_the_documented_example_validates() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md").read_text(encoding="utf-8")
    example = doc.split("### Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    body = orjson.loads(example)
    validator().validate(body)
    schema = load_schema()
    assert undocumented(body, schema, schema["$defs"]["incident"]) == []


def test_proof_of_life_notice_matches_the_schema() -> None:
    from shared.alerts.payload import build_notice_payload, notice_id_for

    body = build_notice_payload(
        {"kind": "proof_of_life", "tenant_id": TENANT, "content_type": None, "first_record_time": None},
        generated_at=NOW,
    )
    validator().validate(body)
    schema = load_schema()
    assert undocumented(body, schema, schema["$defs"]["proof_of_life"]) == []
    assert (body["incident_id"], body["idempotency_key"]) == (
        notice_id_for("proof_of_life", TENANT),
        notice_id_for("proof_of_life", TENANT) + "-r1",
    )


def test_remediation_and_weekly_report_are_documented_in_the_schema(make_alert: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.alerts.incidents import RemediationEntry
    from shared.alerts.payload import build_weekly_report_payload, weekly_report_id_for
    from shared.reports.credentials import build_credentials_report

    book = InMemoryIncidentBook(now=lambda: NOW)
    (inc,) = book.add_alerts([make_alert(Category.UNWANTED_LOGIN, at=T0, severity=Severity.HIGH)])
    entry = RemediationEntry(
        idempotency_key="rm-" + "0" * 40,
        action="remove_inbox_rule",
        target="mailbox megan@contoso.com rule '.'",
        state="needs_manual",
        updated_at=NOW,
        reason="rule_not_removable",
        summary="remove the rule by hand",
        manual_steps=('Remove-InboxRule -Mailbox "megan@contoso.com" -Identity "."',),
        warnings=("w",),
    )
    inc, _ = book.record_remediation(TENANT, inc.incident_id, entry)
    body = build_payload(inc, generated_at=NOW)
    validator().validate(body)
    schema = load_schema()
    assert undocumented(body, schema, schema["$defs"]["incident"]) == []
    assert (body["revision"], body["remediation"][0]["updated_at"]) == (2, "2025-11-24T19:00:00Z")

    monday = datetime(2025, 11, 24, tzinfo=UTC)
    alert = make_alert(
        Category.CREDENTIAL_COMPROMISE,
        at=monday.timestamp() + 3600,
        detector="signin_mfa_failure",
        context={"ip": "198.51.100.7", "reasons": ["hosting"], "hosting": True, "asn": 16509},
    )
    report = build_credentials_report([alert], tenant_id=TENANT, start=monday, end=monday + timedelta(days=7))
    weekly = build_weekly_report_payload(report, [inc], generated_at=NOW)
    validator().validate(weekly)
    assert undocumented(weekly, schema, schema["$defs"]["weekly_report"]) == []
    assert (weekly["incident_id"], weekly["week"], weekly["credentials"]["user_count"]) == (
        weekly_report_id_for(TENANT, monday),
        "2025-W48",
        1,
    )
    weekly["revision"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(weekly)
