"""Legacy authentication Conditional Access let through (Entra sign-in log)."""

from __future__ import annotations

from typing import Any

from records import HOME_DE, OFFICE_DE, TOR_DE, at, signin, signin_enricher
from signin_log_records import log_signin

from detectors.signin_legacy_auth_unblocked import SigninLegacyAuthUnblocked
from shared.detection.testing import TEST_TENANT, run_detector
from shared.tenant_config import TenantConfig


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        SigninLegacyAuthUnblocked,
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=(f"{OFFICE_DE}/32",)),
        enricher=signin_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_imap_sign_in_no_policy_applied_to_alerts() -> None:
    rec = log_signin(ip=HOME_DE, client_app="IMAP4", ca_status="notApplied")
    [alert] = run([rec])
    assert alert["severity"] == "medium"
    assert alert["summary"] == (
        f"alice@contoso.com signed in with legacy authentication (IMAP4) from {HOME_DE} and no Conditional Access "
        "policy applied"
    )
    assert alert["context"]["client_app_used"] == "IMAP4"


def test_from_tor_it_is_high_and_one_alert_a_day_per_client() -> None:
    records = [
        log_signin(ip=TOR_DE, client_app="Authenticated SMTP", ca_status="notApplied", when=at(minutes=m), seq=m)
        for m in (0, 5)
    ]
    [alert] = run(records)
    assert alert["severity"] == "high" and alert["count"] == 2
    assert alert["context"]["reasons"] == ["tor"]


def test_ordinary_sign_ins_do_not_alert() -> None:
    records = [
        log_signin(client_app="IMAP4", ca_status="failure", error=53003, when=at(minutes=1)),  # blocked: CA works
        log_signin(client_app="Exchange ActiveSync", ca_status="success", when=at(minutes=2)),  # a policy applied
        log_signin(client_app="Browser", ca_status="notApplied", when=at(minutes=3)),  # modern client
        log_signin(client_app="Mobile Apps and Desktop clients", ca_status="notApplied", when=at(minutes=4)),
        log_signin(ip=OFFICE_DE, client_app="Authenticated SMTP", ca_status="notApplied", when=at(minutes=5)),
        signin(ip=TOR_DE, user_agent="BAV2ROPC", when=at(minutes=6)),  # the audit log: evasive_legacy_or_ropc_signin's
    ]
    assert run(records) == []
