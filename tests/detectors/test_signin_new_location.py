"""signin_new_location: a country (or network) new for a learned user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.signin_new_location import SigninNewLocation
from shared.detection.baseline import Baseline, TenantPrevalence, ValueSeen, is_learned
from shared.detection.geo import network_key
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig, TravelException
from tests.detectors.records import (
    HOME_DE,
    HOME_FR,
    ICLOUD_RELAY,
    LONDON_GB,
    MS_SERVICE,
    OFFICE_DE,
    VPN_NL,
    at,
    expected_alert,
    history,
    ip_info,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
FIREFOX_MAC_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:126.0) Gecko/20100101 Firefox/126.0"
VPN_FR = "151.115.1.1"
MOBILE_O2 = "109.40.1.1"
HOTEL_FR = "92.184.1.1"
EXTRA = {
    HOTEL_FR: ip_info(HOTEL_FR, country="FR", city="Lyon", latitude=45.76, longitude=4.84, asn=3215, asn_org="Orange"),
    VPN_FR: ip_info(VPN_FR, country="FR", city="Paris", latitude=48.86, longitude=2.35, asn=12876, asn_org="Scaleway",
                    is_vpn=True, vpn_operator="Surfshark"),
    MOBILE_O2: ip_info(MOBILE_O2, country="DE", city="Frankfurt", latitude=50.11, longitude=8.68, asn=6805,
                       asn_org="Telefonica Germany", is_mobile=True),
}  # fmt: skip
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninNewLocation, records, tenant=tenant, enricher=signin_enricher(EXTRA))


def _ctx(rec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    info = EXTRA.get(rec["ClientIP"])
    ctx = signin_ctx(rec, **extra)
    if info is not None:
        ctx.update(country=info.country, city=info.city, asn=info.asn, asn_org=info.asn_org, geo_provider="dbip")
    return ctx


def _country_alert(rec: dict[str, Any], severity: str, *, via: str = "", known: list[str], **ctx: Any) -> Any:
    context = {
        "novelty": "country",
        "known_countries": known,
        "home_country": None,
        "signins_before": 15,
        "anonymizer": None,
        "hosting": False,
        "reasons": ["new_country"],
        "familiar_device": True,
        **ctx,
    }
    c = _ctx(rec)["country"]
    return expected_alert(
        SigninNewLocation,
        records=[rec],
        severity=severity,
        summary=f"{rec['UserId']} signed in from {c}{via} ({rec['ClientIP']}): a country this user has not used before",
        dedup_key=f"{oid_of(rec['UserId'])}|country|{c}",
        context=_ctx(rec, **context),
    )


def learned_user_in_a_new_country() -> Any:
    """With another device (OS and browser new for the user): medium."""
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR, os="MacOs", browser="Firefox", user_agent=FIREFOX_MAC_UA)
    return [*history(ALICE), rec], None, [_country_alert(rec, "medium", known=["DE"], familiar_device=False)]


def learned_user_in_a_new_country_with_their_own_device_is_low() -> Any:
    """The user's own device abroad (a trip): low."""
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR)
    return [*history(ALICE), rec], None, [_country_alert(rec, "low", known=["DE"])]


def demo_chain_vpn_in_a_new_country() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=VPN_NL)
    alert = _country_alert(
        rec,
        "high",
        via=" through an anonymous VPN",
        known=["DE"],
        anonymizer="vpn",
        hosting=True,
        reasons=["new_country", "vpn", "hosting"],
    )
    return [*history(ALICE), rec], None, [alert]


def shared_country_through_an_anonymiser_still_alerts() -> Any:
    colleagues = [signin(f"user{i}@contoso.com", when=at(days=d), ip=HOME_FR) for i in range(5) for d in (0, 1)]
    rec = signin(ALICE, when=at(days=16), ip=VPN_FR)
    alert = _country_alert(
        rec,
        "high",
        via=" through an anonymous VPN",
        known=["DE"],
        anonymizer="vpn",
        reasons=["new_country", "vpn"],
    )
    return [*colleagues, *history(ALICE), rec], None, [alert]


def learned_early_by_sign_in_count() -> Any:
    """A user new to a tenant known for two weeks, ten sign-ins in two days: learned after a week, not before."""
    tenant = [signin("bob@contoso.com", when=at(days=d), ip=HOME_DE) for d in range(0, 16)]
    hist = [signin(ALICE, when=at(days=7, hours=5 * i), ip=HOME_DE) for i in range(10)]
    quiet = signin(ALICE, when=at(days=10), ip=HOME_FR)
    loud = signin(ALICE, when=at(days=15), ip=LONDON_GB)
    return [*tenant, *hist, quiet, loud], None, [_country_alert(loud, "low", known=["DE", "FR"], signins_before=11)]


def expired_travel_exception() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR)
    tenant = TenantConfig(
        tenant_id=TEST_TENANT,
        travel_exceptions=(TravelException(user=ALICE, country="FR", until=datetime(2024, 5, 10, tzinfo=UTC)),),
    )
    return [*history(ALICE), rec], tenant, [_country_alert(rec, "low", known=["DE"])]


def new_network_in_a_known_country_is_low() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=OFFICE_DE)
    alert = expected_alert(
        SigninNewLocation,
        records=[rec],
        severity="low",
        summary=f"{ALICE} signed in from a new network AS3209 (Vodafone GmbH) in DE",
        dedup_key=f"{oid_of(ALICE)}|asn|3209",
        context=_ctx(rec, novelty="asn", signins_before=15, reasons=["new_asn"]),
    )
    return [*history(ALICE), rec], None, [alert]


def home_country_counts_as_known() -> Any:
    """Learned while abroad, back home: the country is not new (home from Entra); only the network is."""
    rec = signin(ALICE, when=at(days=16), ip=HOME_DE)
    alert = expected_alert(
        SigninNewLocation,
        records=[rec],
        severity="low",
        summary=f"{ALICE} signed in from a new network AS3320 (Deutsche Telekom AG) in DE",
        dedup_key=f"{oid_of(ALICE)}|asn|3320",
        context=_ctx(rec, novelty="asn", signins_before=15, reasons=["new_asn"]),
    )
    return (
        [*history(ALICE, ip=HOME_FR), rec],
        TenantConfig(tenant_id=TEST_TENANT, home_countries={ALICE: "DE"}),
        [alert],
    )


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "user in their first week": lambda: ([*history(ALICE, days=3), signin(ALICE, when=at(days=4), ip=VPN_NL)], None),
    "ten sign-ins but still in the first week": lambda: (
        [*(signin(ALICE, when=at(hours=5 * i)) for i in range(10)), signin(ALICE, when=at(days=3), ip=HOME_FR)],
        None,
    ),
    "known country and network": lambda: ([*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_DE)], None),
    "trusted range": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_FR)],
        TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("90.84.0.0/16",)),
    ),
    "country shared by five colleagues for days": lambda: (
        [
            *(signin(f"user{i}@contoso.com", when=at(days=d), ip=HOME_FR) for i in range(5) for d in (0, 1)),
            *history(ALICE),
            signin(ALICE, when=at(days=16), ip=HOME_FR),
        ],
        None,
    ),
    "travel exception for the country": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_FR)],
        TenantConfig(
            tenant_id=TEST_TENANT,
            travel_exceptions=(TravelException(user=ALICE, country="FR", until=datetime(2024, 5, 20, tzinfo=UTC)),),
        ),
    ),
    "colleagues at the same venue abroad (tenant-aware)": lambda: (
        [
            *history(ALICE),
            *(signin(f"user{i}@contoso.com", when=at(days=16, minutes=i), ip=HOME_FR) for i in range(2)),
            signin(
                ALICE,
                when=at(days=16, minutes=30),
                ip=HOME_FR,
                os="MacOs",
                browser="Firefox",
                user_agent=FIREFOX_MAC_UA,
            ),
        ],
        None,
    ),
    "phone on a new carrier network": lambda: ([*history(ALICE), signin(ALICE, when=at(days=16), ip=MOBILE_O2)], None),
    "apple icloud private relay": lambda: ([*history(ALICE), signin(ALICE, when=at(days=16), ip=ICLOUD_RELAY)], None),
    "microsoft service endpoint": lambda: ([*history(ALICE), signin(ALICE, when=at(days=16), ip=MS_SERVICE)], None),
    "failed sign-in from a new country": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_FR, error=50126)],
        None,
    ),
    "mfa interrupt from a new country": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=HOME_FR, error=50076)],
        None,
    ),
}


@pytest.mark.parametrize(
    "case",
    [
        learned_user_in_a_new_country,
        learned_user_in_a_new_country_with_their_own_device_is_low,
        demo_chain_vpn_in_a_new_country,
        shared_country_through_an_anonymiser_still_alerts,
        learned_early_by_sign_in_count,
        expired_travel_exception,
        new_network_in_a_known_country_is_low,
        home_country_counts_as_known,
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


def test_new_country_marks_the_session_risky() -> None:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR)
    result = run([*history(ALICE), rec])
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)]
    assert state.data[RISK_SECTION]["marks"] == [[result.alerts[0].first_seen, HOME_FR, "new_country", rec["Id"]]]


# --- shared.detection.baseline ---------------------------------------------------------------------

DAY = 86400.0


@pytest.mark.parametrize(
    ("age_days", "signins", "learned"),
    [
        (0, 0, False),
        (3, 30, False),  # many sign-ins, still the first week
        (6.9, 10, False),
        (7, 10, True),  # the 10th sign-in after a week
        (7, 9, False),
        (13.9, 9, False),
        (14, 1, True),  # two weeks, whatever the count
    ],
)
def test_learning_period(age_days: float, signins: int, learned: bool) -> None:
    assert is_learned(1000.0, signins, 1000.0 + age_days * DAY) is learned


def test_is_learned_needs_a_first_sign_in() -> None:
    assert is_learned(None, 50, 1e9) is False


def test_baseline_values_are_bounded_and_age_out() -> None:
    sec: dict[str, Any] = {}
    base = Baseline(sec)
    for i in range(15):
        base.observe(i * DAY, {"country": f"C{i}", "asn": "1", "os": None, "browser": None, "client": None})
    assert base.signins == 15
    assert base.first_seen == 0
    assert sorted(base.values("country")) == sorted(f"C{i}" for i in range(5, 15))  # cap 10, oldest out
    assert base.get("asn", "1") == ValueSeen(0.0, 14 * DAY, 15)
    base.observe(200 * DAY, {"country": "DE", "asn": None, "os": None, "browser": None, "client": None})
    assert list(base.values("country")) == ["DE"]  # 90 days unseen: gone
    assert base.values("asn") == {}
    assert base.get("os", None) is None


def test_every_detector_of_a_sign_in_sees_the_same_pre_event_view() -> None:
    """Registry order must not matter: the second detector of the same event gets the first one's view."""
    from detectors.signin_anonymizer import SigninAnonymizer
    from detectors.signin_unfamiliar_fingerprint import SigninUnfamiliarFingerprint

    rec = signin(ALICE, when=at(days=16), ip=VPN_NL)
    records = [*history(ALICE), rec]
    orders = [
        [SigninNewLocation, SigninAnonymizer, SigninUnfamiliarFingerprint],
        [SigninUnfamiliarFingerprint, SigninAnonymizer, SigninNewLocation],
    ]
    results = [run_detector(o, records, enricher=signin_enricher(EXTRA)) for o in orders]
    first, second = ([(a.detector, a.to_dict()) for a in r.alerts] for r in results)
    assert sorted(first) == sorted(second)
    assert sorted(d for d, _ in first) == ["signin_anonymizer", "signin_new_location"]
    state = results[0].store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)].data["_signins"]
    assert state["n"] == 16  # the VPN sign-in was counted once, not once per detector


def test_tenant_prevalence_needs_five_other_users_and_a_day() -> None:
    from shared.detection.base import DetectionContext

    ctx = DetectionContext(TenantConfig(tenant_id=TEST_TENANT), {})
    prev = TenantPrevalence(ctx)
    for i in range(5):
        prev.observe("c", "FR", f"user{i}", 1000.0 + i)
        prev.observe("c", "FR", f"user{i}", 2000.0 + i)  # idempotent per user
    assert prev.users("c", "FR") == 5
    assert prev.users("c", "FR", excluding="user0") == 4
    assert not prev.is_shared("c", "FR", now=1000.0 + DAY - 1, excluding="alice")  # not a day old yet
    assert prev.is_shared("c", "FR", now=1000.0 + DAY, excluding="alice")
    assert not prev.is_shared("c", "FR", now=1000.0 + DAY, excluding="user0")  # only four others
    for i in range(30):
        prev.observe("c", f"X{i}", "someone", 5000.0 + i)
    assert prev.users("c", "FR") == 5  # the shared entry survives the churn of one-user entries
    assert len(ctx.tenant_state("_prevalence")["c"]) == 12


@pytest.mark.parametrize(
    ("ip", "net"),
    [("198.51.100.10", "198.51.100.0/24"), ("2001:db8:1:2::10", "2001:db8:1::/48"), (None, None), ("", None)],
)
def test_network_key(ip: str | None, net: str | None) -> None:
    assert network_key(ip) == net


def test_a_duplicated_record_is_counted_once() -> None:
    """The Management Activity API may deliver a record twice: the baseline counts the sign-in once."""
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR)
    result = run([*history(ALICE), rec, rec])
    assert [(a.detector, a.count, a.evidence_record_ids) for a in result.alerts] == [
        ("signin_new_location", 1, [rec["Id"]])
    ]
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)].data["_signins"]
    assert state["n"] == 16


def test_a_new_network_in_the_country_of_this_weeks_trip_is_not_reported() -> None:
    """Tenant-aware: the hotel's network, the day after the user reached the country, is part of the same trip."""
    arrival = signin(ALICE, when=at(days=16), ip=HOME_FR)
    hotel = signin(ALICE, when=at(days=17), ip=HOTEL_FR)
    alerts = run([*history(ALICE), arrival, hotel]).alerts
    assert [(a.detector, a.severity.value, a.evidence_record_ids) for a in alerts] == [
        ("signin_new_location", "low", [arrival["Id"]])
    ]


def test_the_first_colleague_at_a_venue_abroad_alerts_the_next_ones_do_not() -> None:
    """Tenant-aware: one colleague already there is enough when the user's own device signs in."""
    people = ["bob@contoso.com", "carol@contoso.com", ALICE]
    hist = [r for p in people for r in history(p)]
    venue = [signin(p, when=at(days=16, minutes=5 * i), ip=HOME_FR) for i, p in enumerate(people)]
    alerts = run([*hist, *venue]).alerts
    assert [(a.user, a.severity.value) for a in alerts] == [("bob@contoso.com", "low")]
