"""signin_anonymizer: successful sign-ins through Tor, proxies and anonymous VPNs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.signin_anonymizer import SigninAnonymizer
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    ICLOUD_RELAY,
    PUBLIC_PROXY_BR,
    RESI_PROXY_US,
    TOR_DE,
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


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninAnonymizer, records, tenant=tenant, enricher=signin_enricher())


def _ctx(rec: dict[str, Any], kind: str, *, operator: str | None = None, **extra: Any) -> dict[str, Any]:
    base = {"anonymizer": kind, "vpn_operator": operator, "new_country": False, "habitual": False, "reasons": [kind]}
    return signin_ctx(rec, **{**base, **extra})


def tor_new_user() -> Any:
    rec = signin(ALICE, ip=TOR_DE)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through a Tor exit node from DE ({TOR_DE})",
        dedup_key=f"{oid_of(ALICE)}|tor",
        context=_ctx(rec, "tor"),
    )
    return [rec], None, [alert]


def residential_proxy() -> Any:
    rec = signin(ALICE, ip=RESI_PROXY_US)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through a residential proxy from US ({RESI_PROXY_US})",
        dedup_key=f"{oid_of(ALICE)}|residential_proxy",
        context=_ctx(rec, "residential_proxy"),
    )
    return [rec], None, [alert]


def residential_proxy_in_a_new_country_of_learned_user() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=RESI_PROXY_US)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through a residential proxy from US ({RESI_PROXY_US})",
        dedup_key=f"{oid_of(ALICE)}|residential_proxy",
        context=_ctx(rec, "residential_proxy", new_country=True, reasons=["residential_proxy", "new_country"]),
    )
    return [*history(ALICE), rec], None, [alert]


def public_proxy() -> Any:
    rec = signin(ALICE, ip=PUBLIC_PROXY_BR)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through a public proxy from BR ({PUBLIC_PROXY_BR})",
        dedup_key=f"{oid_of(ALICE)}|public_proxy",
        context=_ctx(rec, "public_proxy"),
    )
    return [rec], None, [alert]


def vpn_new_user_medium() -> Any:
    rec = signin(ALICE, ip=VPN_NL)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="medium",
        summary=f"{ALICE} signed in through an anonymous VPN (NordVPN) from NL ({VPN_NL})",
        dedup_key=f"{oid_of(ALICE)}|vpn",
        context=_ctx(rec, "vpn", operator="NordVPN"),
    )
    return [rec], None, [alert]


def vpn_new_country_of_learned_user() -> Any:
    """The demo chain's first step: a learned victim signs in through a VPN in a country never used."""
    rec = signin(ALICE, when=at(days=16), ip=VPN_NL)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through an anonymous VPN (NordVPN) from NL ({VPN_NL})",
        dedup_key=f"{oid_of(ALICE)}|vpn",
        context=_ctx(rec, "vpn", operator="NordVPN", new_country=True, reasons=["vpn", "new_country"]),
    )
    return [*history(ALICE), rec], None, [alert]


def vpn_new_country_outside_home_before_learning() -> Any:
    rec = signin(ALICE, ip=VPN_NL)
    alert = expected_alert(
        SigninAnonymizer,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in through an anonymous VPN (NordVPN) from NL ({VPN_NL})",
        dedup_key=f"{oid_of(ALICE)}|vpn",
        context=_ctx(rec, "vpn", operator="NordVPN", new_country=True, reasons=["vpn", "new_country"]),
    )
    return [rec], TenantConfig(tenant_id=TEST_TENANT, home_countries={ALICE: "DE"}), [alert]


def habitual_vpn_is_low() -> Any:
    """The user has used the same VPN for over a week (3 earlier sign-ins): LOW, still reported."""
    vpn = [signin(ALICE, when=at(days=d), ip=VPN_NL) for d in (0, 4, 8, 16)]
    alerts = [
        expected_alert(
            SigninAnonymizer,
            records=[rec],
            severity=sev,
            summary=f"{ALICE} signed in through an anonymous VPN (NordVPN) from NL ({VPN_NL})",
            dedup_key=f"{oid_of(ALICE)}|vpn",
            context=_ctx(
                rec,
                "vpn",
                operator="NordVPN",
                habitual=sev == "low",
                reasons=["vpn", "habitual_vpn"] if sev == "low" else ["vpn"],
            ),
        )
        for rec, sev in zip(vpn, ["medium", "medium", "medium", "low"], strict=True)
    ]
    return [*history(ALICE, days=16), *vpn], None, alerts


def messy_forms_and_dedup() -> Any:
    """ClientIP with a port, UserId "Not Available" (the Actor names the user), two Tor sign-ins merge."""
    first = signin(ALICE, ip=f"{TOR_DE}:51622", user_id="Not Available")
    second = signin(ALICE, when=at(hours=3), ip=TOR_DE)
    alert = expected_alert(
        SigninAnonymizer,
        records=[first, second],
        user=ALICE,
        severity="high",
        summary=f"{ALICE} signed in through a Tor exit node from DE ({TOR_DE})",
        dedup_key=f"{oid_of(ALICE)}|tor",
        ip=TOR_DE,
        count=2,
        context=_ctx({**first, "ClientIP": TOR_DE}, "tor"),
    )
    return [first, second], None, [alert]


def _trusted() -> TenantConfig:
    return TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("146.70.12.0/24",))


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "home broadband": lambda: ([signin(ALICE, ip=HOME_DE)], None),
    "corporate VPN egress in a trusted range": lambda: (
        [*history(ALICE), signin(ALICE, when=at(days=16), ip=VPN_NL)],
        _trusted(),
    ),
    "apple icloud private relay": lambda: ([signin(ALICE, ip=ICLOUD_RELAY)], None),
    "failed password from tor": lambda: ([signin(ALICE, ip=TOR_DE, error=50126)], None),
    "mfa interrupt 50074 from a vpn": lambda: ([signin(ALICE, ip=VPN_NL, error=50074)], None),
    "mfa interrupt 50076 from a vpn": lambda: ([signin(ALICE, ip=VPN_NL, error=50076)], None),
    "no user at all": lambda: ([signin(ALICE, ip=TOR_DE, user_id="Not Available", actor=False)], None),
    "address without intelligence": lambda: ([signin(ALICE, ip="192.0.2.200")], None),
}


@pytest.mark.parametrize(
    "case",
    [
        tor_new_user,
        residential_proxy,
        residential_proxy_in_a_new_country_of_learned_user,
        public_proxy,
        vpn_new_user_medium,
        vpn_new_country_of_learned_user,
        vpn_new_country_outside_home_before_learning,
        habitual_vpn_is_low,
        messy_forms_and_dedup,
    ],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    result = run(records, tenant)
    assert [a.to_dict() for a in result.alerts] == expected


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    result = run(records, tenant)
    assert [a.to_dict() for a in result.alerts] == []
    assert result.quarantined == []


def test_marks_the_session_risky_for_later_detectors() -> None:
    rec = signin(ALICE, ip=VPN_NL)
    result = run([signin(ALICE, when=at(hours=-1), ip=HOME_DE), rec])
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)]
    marks = state.data[RISK_SECTION]["marks"]
    assert marks == [[orjson.loads(orjson.dumps(result.alerts[0].first_seen)), VPN_NL, "vpn", rec["Id"]]]


# --- the demo chain across every sign-in detector ------------------------------------------------------

OUTLOOK_IOS_APP = "27922004-5251-4030-b22d-91ecd9a37ea4"
OUTLOOK_IOS_UA = "Outlook-iOS/2.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
USERS = ("alice", "bob", "carol", "dave", "eve", "frank")


def benign_month() -> list[dict[str, Any]]:
    """Twenty days of six ordinary users: home, the trusted office and company VPN, a phone hopping between
    carrier addresses, iCloud Private Relay, typos and MFA prompts, and a real trip London - New York."""
    out: list[dict[str, Any]] = []
    for d in range(20):
        for u, name in enumerate(USERS):
            upn = f"{name}@contoso.com"
            travelling = name == "eve" and 10 <= d <= 13
            if not travelling:
                home = HOME_DE if u % 2 == 0 else "198.51.100.11"
                out.append(
                    signin(upn, when=at(days=d, hours=0 if name == "eve" and d == 10 else 7, minutes=u), ip=home)
                )
                out.append(signin(upn, when=at(days=d, hours=2, minutes=u), ip="203.0.113.7"))
        bob = "bob@contoso.com"
        phone: dict[str, Any] = {"os": "iOS", "browser": None, "app": OUTLOOK_IOS_APP, "user_agent": OUTLOOK_IOS_UA}
        out.append(signin(bob, when=at(days=d, hours=4), ip="80.187.2.2", **phone))
        out.append(signin(bob, when=at(days=d, hours=4, minutes=5), ip="80.187.99.3", **phone))
        iphone: dict[str, Any] = {"os": "iOS", "browser": "Safari", "user_agent": SAFARI_IPHONE}
        out.append(signin("carol@contoso.com", when=at(days=d, hours=12), ip=ICLOUD_RELAY, **iphone))
        dave = "dave@contoso.com"
        out += [signin(dave, when=at(days=d, hours=1, minutes=i), error=50126, seq=i) for i in range(2)]
        out.append(signin(dave, when=at(days=d, hours=1, minutes=3), error=50074))
        out.append(signin(dave, when=at(days=d, hours=1, minutes=4)))
        out.append(signin("frank@contoso.com", when=at(days=d, hours=10), ip="20.50.1.1"))
    eve = "eve@contoso.com"
    out.append(signin(eve, when=at(days=10, hours=4), ip="81.2.69.142"))  # London, four hours after home
    out += [signin(eve, when=at(days=d, hours=15 if d == 10 else 4), ip="192.0.2.50") for d in range(10, 14)]
    return out


def test_demo_chain_is_caught_and_benign_users_raise_nothing() -> None:
    from detectors import ALL_DETECTORS
    from shared.tenant_config import TravelException

    signin_detectors = [c for c in ALL_DETECTORS if c.meta.id.startswith("signin_")]
    until = datetime(2024, 5, 15, tzinfo=UTC)
    tenant = TenantConfig(
        tenant_id=TEST_TENANT,
        trusted_ip_ranges=("203.0.113.0/24", "20.50.0.0/16"),
        home_countries={f"{n}@contoso.com": "DE" for n in USERS},
        travel_exceptions=tuple(TravelException(user="eve@contoso.com", country=c, until=until) for c in ("GB", "US")),
    )
    quiet = run_detector(signin_detectors, benign_month(), tenant=tenant, enricher=signin_enricher(), batch_size=50)
    assert [(a.detector, a.user, a.summary) for a in quiet.alerts] == []

    attack = signin(ALICE, when=at(days=20, hours=-5), ip=VPN_NL)
    loud = run_detector(
        signin_detectors, [*benign_month(), attack], tenant=tenant, enricher=signin_enricher(), batch_size=50
    )
    assert sorted((a.detector, a.severity.value, a.user, a.evidence_record_ids[0]) for a in loud.alerts) == [
        ("signin_anonymizer", "high", ALICE, attack["Id"]),
        ("signin_new_location", "high", ALICE, attack["Id"]),
    ]
