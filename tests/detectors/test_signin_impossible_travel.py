"""signin_impossible_travel: two sign-ins too far apart for the time between them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_impossible_travel import SigninImpossibleTravel
from shared.detection.geo import (
    DEFAULT_ACCURACY_KM,
    GeoPoint,
    effective_distance_km,
    haversine_km,
    same_provider,
    speed_kmh,
    unreliable_location,
)
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    HOME_FR,
    HOSTING_US,
    ICLOUD_RELAY,
    LONDON_GB,
    MOBILE_HH,
    MOBILE_M,
    NY_US,
    SIGNIN_IPS,
    VPN_NL,
    at,
    expected_alert,
    ip_info,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
NY_MAXMIND = "192.0.2.77"
BOS_MAXMIND = "192.0.2.78"
EXTRA = {
    NY_MAXMIND: ip_info(NY_MAXMIND, country="US", city="New York", latitude=40.71, longitude=-74.01, accuracy_km=20.0,
                        geo_provider="maxmind", asn=7922, asn_org="Comcast Cable Communications, LLC"),
    BOS_MAXMIND: ip_info(BOS_MAXMIND, country="DE", city="Berlin", latitude=52.52, longitude=13.40, accuracy_km=20.0,
                         geo_provider="maxmind", asn=3320, asn_org="Deutsche Telekom AG"),
}  # fmt: skip
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninImpossibleTravel, records, tenant=tenant, enricher=signin_enricher(EXTRA))


def _ctx(rec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    ctx = signin_ctx(rec, **extra)
    info = EXTRA.get(rec["ClientIP"])
    if info is not None:
        ctx.update(country=info.country, city=info.city, asn=info.asn, asn_org=info.asn_org, geo_provider="maxmind")
    return ctx


def berlin_then_new_york_an_hour_later() -> Any:
    home = signin(ALICE, ip=HOME_DE)
    away = signin(ALICE, when=at(hours=1), ip=NY_US)
    alert = expected_alert(
        SigninImpossibleTravel,
        records=[home, away],
        severity="medium",
        summary=f"{ALICE} signed in from DE ({HOME_DE}) and US ({NY_US}) 5,885 km apart within 1.0 h (5,885 km/h)",
        dedup_key=f"{oid_of(ALICE)}|travel",
        context=_ctx(
            away,
            mode="coordinates",
            from_ip=HOME_DE,
            from_country="DE",
            from_time="2024-05-01T08:00:00Z",
            from_provider="dbip",
            to_provider="dbip",
            distance_km=6385,
            effective_distance_km=5885,
            hours=1.0,
            speed_kmh=5885,
        ),
    )
    return [home, away], None, [alert]


def simultaneous_sign_ins_on_two_continents() -> Any:
    """Same second: the engine orders by record ID, so either side may come first."""
    first, second = sorted([signin(ALICE, ip=HOME_DE), signin(ALICE, ip=NY_US, seq=1)], key=lambda r: r["Id"])
    c1, c2 = (SIGNIN_IPS[r["ClientIP"]].country for r in (first, second))
    alert = expected_alert(
        SigninImpossibleTravel,
        records=[first, second],
        severity="medium",
        summary=f"{ALICE} signed in from {c1} ({first['ClientIP']}) and {c2} ({second['ClientIP']}) "
        "5,885 km apart within 0.0 h (at the same time)",
        dedup_key=f"{oid_of(ALICE)}|travel",
        context=_ctx(
            second,
            mode="coordinates",
            from_ip=first["ClientIP"],
            from_country=c1,
            from_time="2024-05-01T08:00:00Z",
            from_provider="dbip",
            to_provider="dbip",
            distance_km=6385,
            effective_distance_km=5885,
            hours=0.0,
            speed_kmh=None,
        ),
    )
    return [first, second], None, [alert]


def different_providers_compare_by_country() -> Any:
    home = signin(ALICE, ip=HOME_DE)
    away = signin(ALICE, when=at(minutes=30), ip=NY_MAXMIND)
    alert = expected_alert(
        SigninImpossibleTravel,
        records=[home, away],
        severity="low",
        summary=f"{ALICE} signed in from DE ({HOME_DE}) and US ({NY_MAXMIND}) within 0.5 h "
        "(locations from different providers: compared by country)",
        dedup_key=f"{oid_of(ALICE)}|travel",
        context=_ctx(
            away,
            mode="country",
            from_ip=HOME_DE,
            from_country="DE",
            from_time="2024-05-01T08:00:00Z",
            from_provider="dbip",
            to_provider="maxmind",
            distance_km=None,
            effective_distance_km=None,
            hours=0.5,
            speed_kmh=None,
        ),
    )
    return [home, away], None, [alert]


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "a real flight london to new york in 8.5 hours": lambda: (
        [signin(ALICE, ip=LONDON_GB), signin(ALICE, when=at(hours=8.5), ip=NY_US)],
        None,
    ),
    "paris to berlin in an hour is within the accuracy radii": lambda: (
        [signin(ALICE, ip=HOME_FR), signin(ALICE, when=at(hours=1), ip=HOME_DE)],
        None,
    ),
    "a phone hopping between carrier addresses": lambda: (
        [
            signin(ALICE, ip=MOBILE_HH),
            signin(ALICE, when=at(minutes=5), ip=MOBILE_M),
            signin(ALICE, when=at(minutes=9)),
        ],
        None,
    ),
    "vpn on one side": lambda: ([signin(ALICE, ip=VPN_NL), signin(ALICE, when=at(minutes=5), ip=NY_US)], None),
    "hosting on one side": lambda: (
        [signin(ALICE, ip=HOME_DE), signin(ALICE, when=at(minutes=5), ip=HOSTING_US)],
        None,
    ),
    "apple icloud private relay": lambda: (
        [signin(ALICE, ip=ICLOUD_RELAY), signin(ALICE, when=at(minutes=5), ip=NY_US)],
        None,
    ),
    "a shared egress many colleagues use": lambda: (
        [
            *(signin(f"user{i}@contoso.com", when=at(days=d, hours=i), ip=NY_US) for i in range(5) for d in (0, 1)),
            signin(ALICE, when=at(days=2)),
            signin(ALICE, when=at(days=2, minutes=30), ip=NY_US),
        ],
        None,
    ),
    "trusted range": lambda: (
        [signin(ALICE, ip=HOME_DE), signin(ALICE, when=at(minutes=30), ip=NY_US)],
        TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("192.0.2.0/24",)),
    ),
    "different providers more than an hour apart": lambda: (
        [signin(ALICE, ip=HOME_DE), signin(ALICE, when=at(hours=2), ip=NY_MAXMIND)],
        None,
    ),
    "different providers, same country": lambda: (
        [signin(ALICE, ip=HOME_DE), signin(ALICE, when=at(minutes=1), ip=BOS_MAXMIND)],
        None,
    ),
    "previous sign-in over a day old": lambda: ([signin(ALICE), signin(ALICE, when=at(hours=25), ip=NY_US)], None),
    "failed sign-in far away": lambda: (
        [signin(ALICE), signin(ALICE, when=at(minutes=5), ip=NY_US, error=50126)],
        None,
    ),
    "mfa interrupt far away": lambda: ([signin(ALICE), signin(ALICE, when=at(minutes=5), ip=NY_US, error=50074)], None),
    "different users": lambda: ([signin(ALICE), signin("bob@contoso.com", when=at(minutes=5), ip=NY_US)], None),
    "no user (Not Available)": lambda: (
        [
            signin(ALICE, user_id="Not Available", actor=False),
            signin(ALICE, when=at(minutes=5), ip=NY_US, user_id="Not Available", actor=False),
        ],
        None,
    ),
}


@pytest.mark.parametrize(
    "case",
    [
        berlin_then_new_york_an_hour_later,
        simultaneous_sign_ins_on_two_continents,
        different_providers_compare_by_country,
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


def test_marks_the_session_risky() -> None:
    away = signin(ALICE, when=at(hours=1), ip=NY_US)
    result = run([signin(ALICE), away])
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)]
    assert state.data[RISK_SECTION]["marks"] == [[result.alerts[0].last_seen, NY_US, "impossible_travel", away["Id"]]]


# --- shared.detection.geo ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((52.52, 13.40), (40.71, -74.01), 6385.2),  # Berlin - New York
        ((51.51, -0.13), (40.71, -74.01), 5570.5),  # London - New York
        ((48.86, 2.35), (52.52, 13.40), 877.1),  # Paris - Berlin
        ((0.0, 179.9), (0.0, -179.9), 22.2),  # across the antimeridian
        ((10.0, 10.0), (10.0, 10.0), 0.0),
    ],
)
def test_haversine(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert round(haversine_km(*a, *b), 1) == km


@pytest.mark.parametrize(
    ("distance", "seconds", "speed"),
    [(900.0, 3600.0, 900.0), (0.0, 0.0, 0.0), (10.0, 0.0, math.inf), (100.0, 1800.0, 200.0)],
)
def test_speed(distance: float, seconds: float, speed: float) -> None:
    assert speed_kmh(distance, seconds) == speed


def test_effective_distance_subtracts_both_radii_and_defaults_unknown_to_250_km() -> None:
    berlin = GeoPoint.from_ip_info(SIGNIN_IPS[HOME_DE])
    ny = GeoPoint.from_ip_info(EXTRA[NY_MAXMIND])
    assert berlin is not None and ny is not None
    assert berlin.radius_km == DEFAULT_ACCURACY_KM
    assert round(effective_distance_km(berlin, ny)) == round(6385.17 - 250 - 20)
    near = GeoPoint(52.0, 13.0, 10.0, "dbip", "DE")
    assert effective_distance_km(near, GeoPoint(52.1, 13.1, 10.0, "dbip", "DE")) == 0.0


def test_same_provider_rule() -> None:
    a = GeoPoint(52.5, 13.4, None, "dbip", "DE")
    assert same_provider(a, GeoPoint(40.7, -74.0, None, "dbip", "US"))
    assert not same_provider(a, GeoPoint(40.7, -74.0, None, "maxmind", "US"))
    assert not same_provider(a, GeoPoint(None, None, None, "dbip", "US"))
    assert not same_provider(GeoPoint(1.0, 1.0, None, None, "US"), GeoPoint(2.0, 2.0, None, None, "US"))


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        (HOME_DE, None),
        (VPN_NL, "vpn"),
        (HOSTING_US, "hosting"),
        (MOBILE_HH, "mobile"),
        (ICLOUD_RELAY, "icloud_relay"),
        ("185.220.101.1", "tor"),
        ("20.190.128.1", "microsoft_service"),
    ],
)
def test_unreliable_location(ip: str, reason: str | None) -> None:
    assert unreliable_location(SIGNIN_IPS[ip]) == reason


# --- exact boundaries: more than 500 km (effective) and more than 900 km/h ---------------------------
# Two points on the prime meridian, the first with accuracy 0 and the second with the accuracy that
# leaves exactly the wanted effective distance (d - 0 - (d - wanted) is exact in floating point).
EQUATOR = "203.0.113.60"


def _boundary(effective_km: float, seconds: float, far_lat: float) -> list[Any]:
    far = "203.0.113.61"
    d = haversine_km(0.0, 0.0, far_lat, 0.0)
    extra = {
        EQUATOR: ip_info(EQUATOR, country="GH", latitude=0.0, longitude=0.0, accuracy_km=0.0),
        far: ip_info(far, country="GH", latitude=far_lat, longitude=0.0, accuracy_km=d - effective_km),
    }
    records = [signin(ALICE, ip=EQUATOR), signin(ALICE, when=at(seconds=seconds), ip=far)]
    alerts = run_detector(SigninImpossibleTravel, records, enricher=signin_enricher(extra)).alerts
    return [(a.context["effective_distance_km"], a.context["speed_kmh"]) for a in alerts]


def test_exactly_900_kmh_is_not_impossible_and_just_over_is() -> None:
    assert _boundary(900.0, 3600, 9.0) == []  # 900 km in one hour: 900 km/h exactly
    assert _boundary(900.0, 3599, 9.0) == [(900, 900)]  # 900.25 km/h


def test_500_km_is_the_floor_whatever_the_speed() -> None:
    assert _boundary(500.0, 1, 5.0) == []  # 1.8 million km/h, but only 500 km apart
    assert _boundary(501.0, 1, 5.0) == [(501, 1803600)]
    assert _boundary(499.0, 1, 5.0) == []
