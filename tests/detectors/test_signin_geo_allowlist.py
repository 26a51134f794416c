"""signin_geo_allowlist: allowed countries (tenant, group, user, travel) and the home-country seed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.signin_geo_allowlist import SigninGeoAllowlist
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig, TravelException
from tests.detectors.records import (
    HOME_DE,
    HOME_FR,
    LONDON_GB,
    MS_SERVICE,
    NY_US,
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
BOB = "bob@contoso.com"
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]


def cfg(**kw: Any) -> TenantConfig:
    return TenantConfig(tenant_id=TEST_TENANT, **kw)


DE_ONLY = cfg(allowed_countries=["DE"])
WITH_GROUPS = cfg(
    allowed_countries=["DE"],
    group_allowed_countries={"sales-france": frozenset({"FR"})},
    user_groups={ALICE: ("sales-france",)},
    user_allowed_countries={oid_of(BOB): frozenset({"GB"})},
)
TRAVEL = cfg(
    allowed_countries=["DE"],
    travel_exceptions=(TravelException(user=ALICE, country="US", until=datetime(2024, 5, 5, tzinfo=UTC)),),
)
HOME_ONLY = cfg(home_countries={ALICE: "DE"})


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninGeoAllowlist, records, tenant=tenant, enricher=signin_enricher())


def _allowlist_alert(rec: dict[str, Any], severity: str, allowed: list[str], **ctx: Any) -> Any:
    country = signin_ctx(rec)["country"]
    context = {
        "mode": "allowlist",
        "allowed_countries": allowed,
        "home_country": None,
        "new_country": False,
        "reasons": ["disallowed_country"],
        **ctx,
    }
    return expected_alert(
        SigninGeoAllowlist,
        records=[rec],
        severity=severity,
        summary=f"{rec['UserId']} signed in from {country} ({rec['ClientIP']}), "
        f"outside the allowed countries {', '.join(allowed)}",
        dedup_key=f"{oid_of(rec['UserId'])}|{country}",
        context=signin_ctx(rec, **context),
    )


def _home_alert(rec: dict[str, Any], severity: str, *, before: int, reasons: list[str]) -> Any:
    country = signin_ctx(rec)["country"]
    return expected_alert(
        SigninGeoAllowlist,
        records=[rec],
        severity=severity,
        summary=f"{rec['UserId']} signed in from {country} ({rec['ClientIP']}) outside their home country DE, "
        "before a sign-in baseline exists",
        dedup_key=f"{oid_of(rec['UserId'])}|{country}",
        context=signin_ctx(rec, mode="home_country", home_country="DE", signins_before=before, reasons=reasons),
    )


def tenant_allowlist_violated() -> Any:
    rec = signin(ALICE, ip=HOME_FR)
    return [rec], DE_ONLY, [_allowlist_alert(rec, "medium", ["DE"])]


def allowlist_violated_through_a_vpn_is_high() -> Any:
    rec = signin(ALICE, ip=VPN_NL)
    alert = _allowlist_alert(rec, "high", ["DE"], reasons=["disallowed_country", "vpn", "hosting"])
    return [rec], DE_ONLY, [alert]


def allowlist_and_new_country_for_a_learned_user_is_high() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR)
    return [*history(ALICE), rec], DE_ONLY, [_allowlist_alert(rec, "high", ["DE"], new_country=True)]


def group_allowlist_adds_a_country() -> Any:
    rec = signin(ALICE, ip=NY_US)
    return (
        [signin(ALICE, when=at(hours=-2), ip=HOME_FR), rec],
        WITH_GROUPS,
        [_allowlist_alert(rec, "medium", ["DE", "FR"])],
    )


def user_allowlist_by_object_id() -> Any:
    rec = signin(BOB, when=at(hours=1), ip=HOME_FR)
    return [signin(BOB, ip=LONDON_GB), rec], WITH_GROUPS, [_allowlist_alert(rec, "medium", ["DE", "GB"])]


def expired_travel_exception() -> Any:
    during = signin(ALICE, when=at(days=3), ip=NY_US)
    after = signin(ALICE, when=at(days=5, hours=1), ip=NY_US)
    return [during, after], TRAVEL, [_allowlist_alert(after, "medium", ["DE"])]


def home_country_seed_before_learning() -> Any:
    """No allowlist: the Entra usageLocation gives a baseline from day one (LOW; MEDIUM via a VPN)."""
    first = signin(ALICE, when=at(hours=1), ip=HOME_FR)
    again = signin(ALICE, when=at(hours=5), ip=HOME_FR)
    vpn = signin(ALICE, when=at(days=2), ip=VPN_NL)
    return (
        [signin(ALICE), first, again, vpn],
        HOME_ONLY,
        [
            _home_alert(first, "low", before=1, reasons=["outside_home_country"]),
            _home_alert(vpn, "medium", before=3, reasons=["outside_home_country", "vpn", "hosting"]),
        ],
    )


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "no allowlist and no home country": lambda: ([signin(ALICE, ip=VPN_NL)], None),
    "allowed country": lambda: ([signin(ALICE, ip=HOME_DE)], DE_ONLY),
    "group member in the group's country": lambda: ([signin(ALICE, ip=HOME_FR)], WITH_GROUPS),
    "user allowed by object id": lambda: ([signin(BOB, ip=LONDON_GB)], WITH_GROUPS),
    "travel exception still valid": lambda: ([signin(ALICE, when=at(days=3), ip=NY_US)], TRAVEL),
    "travel exception is for another user": lambda: ([signin(ALICE, ip=HOME_DE)], TRAVEL),
    "trusted range abroad (the Paris office)": lambda: (
        [signin(ALICE, ip=HOME_FR)],
        cfg(allowed_countries=["DE"], trusted_ip_ranges=("90.84.1.0/24",)),
    ),
    "unknown country": lambda: ([signin(ALICE, ip="192.0.2.222")], DE_ONLY),
    "microsoft service endpoint": lambda: ([signin(ALICE, ip=MS_SERVICE)], DE_ONLY),
    "failed sign-in from outside": lambda: ([signin(ALICE, ip=HOME_FR, error=50126)], DE_ONLY),
    "mfa interrupt from outside": lambda: ([signin(ALICE, ip=HOME_FR, error=50074)], DE_ONLY),
    "home mode: at home": lambda: ([signin(ALICE, ip=HOME_DE)], HOME_ONLY),
    "home mode: learned users are signin_new_location's": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_FR)],
        HOME_ONLY,
    ),
    "home mode: another user without a home country": lambda: ([signin(BOB, ip=HOME_FR)], HOME_ONLY),
}


@pytest.mark.parametrize(
    "case",
    [
        tenant_allowlist_violated,
        allowlist_violated_through_a_vpn_is_high,
        allowlist_and_new_country_for_a_learned_user_is_high,
        group_allowlist_adds_a_country,
        user_allowlist_by_object_id,
        expired_travel_exception,
        home_country_seed_before_learning,
    ],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    assert [a.to_dict() for a in run(records, tenant).alerts] == expected


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    assert [a.to_dict() for a in run(records, tenant).alerts] == []


def test_disallowed_country_marks_the_session_risky() -> None:
    rec = signin(ALICE, ip=HOME_FR)
    result = run([rec], DE_ONLY)
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)]
    assert state.data[RISK_SECTION]["marks"] == [
        [result.alerts[0].first_seen, HOME_FR, "disallowed_country", rec["Id"]]
    ]
