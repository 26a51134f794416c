"""signin_mfa_failure: correct password, failed MFA; risky sources alert, the rest feeds the weekly report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_mfa_failure import SigninMfaFailure
from detectors.signin_password_spray import SigninPasswordSpray
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    HOME_FR,
    HOSTING_US,
    OFFICE_DE,
    SPRAY_IP,
    VPN_NL,
    at,
    expected_alert,
    history,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]
LOGON = {500121: "AuthenticationFailedDuringStrongAuthRequest", 53003: "BlockedByConditionalAccess"}


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector([SigninPasswordSpray, SigninMfaFailure], records, tenant=tenant, enricher=signin_enricher())


def _ctx(rec: dict[str, Any], *, reasons: list[str], familiar: bool, **extra: Any) -> dict[str, Any]:
    base = {
        "logon_error": LOGON[int(rec["ErrorNumber"])],
        "anonymizer": None,
        "vpn_operator": None,
        "hosting": False,
        "familiar_location": familiar,
        "reasons": reasons,
        "report_only": not reasons,
    }
    return signin_ctx(rec, **{**base, **extra})


def _report(recs: list[dict[str, Any]], *, familiar: bool = True, **extra: Any) -> Any:
    rec = recs[0]
    country = signin_ctx(rec)["country"]
    return expected_alert(
        SigninMfaFailure,
        records=recs,
        severity="low",
        summary=f"{ALICE}: correct password from {rec['ClientIP']} ({country}), then failed MFA "
        "(recorded for the compromised-credentials report)",
        dedup_key=f"{oid_of(ALICE)}|report|{rec['ClientIP']}",
        context=_ctx(rec, reasons=[], familiar=familiar, **extra),
        count=len(recs),
    )


def _risky(
    rec: dict[str, Any], reasons: list[str], *, familiar: bool = False, what: str = "failed MFA", **ctx: Any
) -> Any:
    country = signin_ctx(rec)["country"]
    return expected_alert(
        SigninMfaFailure,
        records=[rec],
        severity="high",
        summary=f"{ALICE}: correct password from {rec['ClientIP']} ({country}, {', '.join(reasons)}), then {what}",
        dedup_key=f"{oid_of(ALICE)}|risky|{rec['ClientIP']}",
        context=_ctx(rec, reasons=reasons, familiar=familiar, **ctx),
    )


def denied_on_a_network_new_to_the_user_is_report_only() -> Any:
    """A known country (DE) but a network the user never signed in from: recorded for the credentials report."""
    rec = signin(ALICE, when=at(days=16), ip=OFFICE_DE, error=500121)
    return [*history(ALICE), rec], None, [_report([rec])]


def denied_through_a_vpn() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=VPN_NL, error=500121)
    alert = _risky(rec, ["vpn", "new_country"], anonymizer="vpn", vpn_operator="NordVPN", hosting=True)
    return [*history(ALICE), rec], None, [alert]


def denied_from_a_new_country() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR, error=500121)
    return [*history(ALICE), rec], None, [_risky(rec, ["new_country"])]


def denied_from_a_hosting_provider() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOSTING_US, error=500121)
    return [*history(ALICE), rec], None, [_risky(rec, ["hosting", "new_country"], hosting=True)]


def denied_from_a_spray_source() -> Any:
    """The sprayer guessed alice's password: the MFA prompt it triggered failed."""
    spray = [signin(f"user{i}@contoso.com", when=at(minutes=i), ip=SPRAY_IP, error=50126) for i in range(10)]
    rec = signin(ALICE, when=at(minutes=20), ip=SPRAY_IP, error=500121)
    run_result = run_detector(SigninPasswordSpray, spray, enricher=signin_enricher())
    spray_alert = run_result.alerts[0].to_dict()
    return [*spray, rec], None, [spray_alert, _risky(rec, ["hosting", "spray_source"], hosting=True)]


def conditional_access_block_from_a_vpn() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=VPN_NL, error=53003)
    alert = _risky(
        rec,
        ["vpn", "new_country"],
        what="was blocked by Conditional Access",
        anonymizer="vpn",
        vpn_operator="NordVPN",
        hosting=True,
    )
    return [*history(ALICE), rec], None, [alert]


def mfa_fatigue_then_success() -> Any:
    denials = [signin(ALICE, when=at(days=16, minutes=5 * i), ip=HOME_DE, error=500121, seq=i) for i in range(3)]
    win = signin(ALICE, when=at(days=16, minutes=20), ip=HOME_DE)
    fatigue = expected_alert(
        SigninMfaFailure,
        records=[*denials, win],
        severity="high",
        summary=f"MFA fatigue: 3 failed or denied MFA prompts for {ALICE} since 2024-05-17T08:00:00Z, then a "
        f"successful sign-in from {HOME_DE}",
        dedup_key=f"{oid_of(ALICE)}|fatigue",
        context=signin_ctx(win, mfa_failures=3, failure_ips=[HOME_DE], reasons=["mfa_fatigue"], report_only=False),
    )
    return [*history(ALICE), *denials, win], None, [fatigue]


def two_denials_then_success_is_not_fatigue() -> Any:
    denials = [signin(ALICE, when=at(days=16, minutes=5 * i), ip=OFFICE_DE, error=500121, seq=i) for i in range(2)]
    return [*history(ALICE), *denials, signin(ALICE, when=at(days=16, minutes=20))], None, [_report(denials)]


def trusted_range_is_never_risky() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=VPN_NL, error=500121)
    tenant = TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("146.70.12.0/24",))
    return (
        [*history(ALICE), rec],
        tenant,
        [_report([rec], familiar=False, anonymizer="vpn", vpn_operator="NordVPN", hosting=True)],
    )


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "mfa interrupt 50074 is not a failure": lambda: ([signin(ALICE, ip=VPN_NL, error=50074)], None),
    "mfa interrupt 50076 is not a failure": lambda: ([signin(ALICE, ip=VPN_NL, error=50076)], None),
    "keep-me-signed-in interrupt 50140": lambda: ([signin(ALICE, ip=VPN_NL, error=50140)], None),
    "external challenge 50158 is ambiguous": lambda: ([signin(ALICE, ip=VPN_NL, error=50158)], None),
    "conditional access block at home": lambda: ([*history(ALICE), signin(ALICE, when=at(days=16), error=53003)], None),
    "wrong password": lambda: ([signin(ALICE, ip=VPN_NL, error=50126)], None),
    "interrupt then success (the normal MFA flow)": lambda: (
        [signin(ALICE, ip=VPN_NL, error=50074), signin(ALICE, when=at(seconds=30), ip=VPN_NL)],
        None,
    ),
    "one denial at home then a normal sign-in (tenant-aware: the user's own network)": lambda: (
        [
            *history(ALICE),
            signin(ALICE, when=at(days=16), ip=HOME_DE, error=500121),
            signin(ALICE, when=at(days=16, minutes=2), ip=HOME_DE),
        ],
        None,
    ),
    "no user": lambda: ([signin(ALICE, ip=VPN_NL, error=500121, user_id="Not Available", actor=False)], None),
}


@pytest.mark.parametrize(
    "case",
    [
        denied_on_a_network_new_to_the_user_is_report_only,
        denied_through_a_vpn,
        denied_from_a_new_country,
        denied_from_a_hosting_provider,
        denied_from_a_spray_source,
        conditional_access_block_from_a_vpn,
        mfa_fatigue_then_success,
        two_denials_then_success_is_not_fatigue,
        trusted_range_is_never_risky,
    ],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    in_engine_order = sorted(expected, key=lambda a: (a["first_seen"], a["alert_id"]))
    assert [a.to_dict() for a in run(records, tenant).alerts] == in_engine_order


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    assert [a.to_dict() for a in run(records, tenant).alerts] == []


def test_facts_are_kept_bounded_and_fatigue_marks_the_session() -> None:
    denials = [signin(ALICE, when=at(minutes=i), ip=HOME_DE, error=500121, seq=i) for i in range(14)]
    win = signin(ALICE, when=at(minutes=30), ip=HOME_DE)
    result = run([*denials, win])
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)].data
    assert [f[5] for f in state["signin_mfa_failure"]["facts"]] == [d["Id"] for d in denials[-10:]]
    assert state[RISK_SECTION]["marks"] == [[result.alerts[-1].last_seen, HOME_DE, "mfa_fatigue", win["Id"]]]
