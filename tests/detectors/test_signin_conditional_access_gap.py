"""Conditional Access failed or not applied from a risky place (Entra sign-in log)."""

from __future__ import annotations

from typing import Any

from records import HOME_DE, HOME_FR, OFFICE_DE, TOR_DE, VPN_NL, at, history, signin, signin_enricher
from signin_log_records import log_signin

from detectors.signin_brute_force import SigninBruteForce
from detectors.signin_conditional_access_gap import SigninConditionalAccessGap
from shared.detection.testing import TEST_TENANT, run_detector
from shared.tenant_config import TenantConfig

FAILED_POLICY = [
    {
        "id": "p1",
        "displayName": "Require compliant device",
        "enforcedGrantControls": ["RequireCompliantDevice"],
        "result": "failure",
    },
    {"id": "p2", "displayName": "Require MFA", "enforcedGrantControls": ["Mfa"], "result": "success"},
]


def run(records: list[dict[str, Any]], **tenant: Any) -> list[dict[str, Any]]:
    got = run_detector(
        [SigninBruteForce, SigninConditionalAccessGap],  # the brute-force detector records the learned baseline
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT, **tenant),
        enricher=signin_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts if a.detector == "signin_conditional_access_gap"]


def test_not_applied_on_a_successful_sign_in_from_tor_is_a_gap() -> None:
    rec = log_signin(ip=TOR_DE, ca_status="notApplied", when=at(hours=1))
    [alert] = run([rec])
    assert alert["severity"] == "high"
    assert alert["summary"] == (
        f"alice@contoso.com signed in from {TOR_DE} (tor) and no Conditional Access policy applied"
    )
    assert alert["evidence_record_ids"] == [rec["Id"]]
    ctx = alert["context"]
    assert ctx["reasons"] == ["tor"] and ctx["not_applied"] is True
    assert ctx["conditional_access_status"] == "notApplied"
    assert ctx["request_id"] == rec["Id"] and ctx["session_id"] == rec["SignIn"]["session_id"]


def test_a_policy_failure_after_the_password_from_a_vpn_is_medium_with_the_policies() -> None:
    rec = log_signin(
        ip=VPN_NL,
        error=53000,
        failure="Device is not in required device state: compliant.",
        ca_status="failure",
        policies=FAILED_POLICY,
    )
    [alert] = run([rec])
    assert alert["severity"] == "medium"
    assert alert["context"]["failed_policies"] == ["Require compliant device"]
    assert "then Conditional Access failed the sign-in (Require compliant device)" in alert["summary"]


def test_a_new_country_for_a_learned_user_is_risky() -> None:
    records = [*history(ip=HOME_DE), log_signin(ip=HOME_FR, ca_status="notApplied", when=at(days=16))]
    [alert] = run(records)
    assert alert["context"]["reasons"] == ["new_country"]


def test_ordinary_sign_ins_do_not_alert() -> None:
    records = [
        log_signin(ip=HOME_DE, ca_status="notApplied", when=at(minutes=1)),  # not applied, from home
        log_signin(ip=TOR_DE, ca_status="success", when=at(minutes=2)),  # a policy applied and was satisfied
        log_signin(ip=TOR_DE, error=53003, ca_status="failure", when=at(minutes=3)),  # 53003: signin_mfa_failure's
        log_signin(ip=TOR_DE, error=50126, ca_status="notApplied", when=at(minutes=4)),  # wrong password
        signin(ip=TOR_DE, when=at(minutes=5)),  # the audit log says nothing about Conditional Access
        log_signin(ip=VPN_NL, ca_status="notApplied", when=at(minutes=6)),  # the company's VPN: trusted below
        log_signin(ip=OFFICE_DE, ca_status="notApplied", when=at(minutes=7)),
    ]
    assert run(records, trusted_ip_ranges=(f"{VPN_NL}/32",)) == []
    records_home_fr_unlearned = [log_signin(ip=HOME_FR, ca_status="notApplied")]  # a user still learning
    assert run(records_home_fr_unlearned) == []
