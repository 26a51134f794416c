"""Successful ROPC, legacy-protocol and device-code sign-ins, learned per user and address."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    HOME_DE,
    OFFICE_APP,
    OFFICE_DE,
    TEST_TENANT,
    VPN_NL,
    at,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.evasive_legacy_or_ropc_signin import EvasiveLegacyOrRopcSignin
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
ADMIN = "it.admin@contoso.com"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
BROKER = "29d9ed98-a469-4536-ade2-f981bc1d605e"


def run(records: list[dict[str, Any]], *, admins: tuple[str, ...] = (), trusted: tuple[str, ...] = ()) -> list[Any]:
    tenant = TenantConfig(
        tenant_id=TEST_TENANT, internal_domains=["contoso.com"], admin_users=list(admins), trusted_ip_ranges=trusted
    )
    got = run_detector(EvasiveLegacyOrRopcSignin, records, tenant=tenant, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def known(upn: str = ALICE, days: int = 15) -> list[dict[str, Any]]:
    """Daily modern sign-ins since day 0: the user and the tenant are past the learning period."""
    return [signin(upn, when=at(days=d, hours=-1), ip=HOME_DE, app=OFFICE_APP) for d in range(days)]


def ropc(upn: str = ALICE, *, days: float = 15, ip: str = HOME_DE) -> dict[str, Any]:
    return signin(upn, when=at(days=days), ip=ip, app=EXCHANGE, user_agent="BAV2ROPC", request_type="OAuth2:Token")


def ctx(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "protocol": "ropc",
        "client_app_id": EXCHANGE,
        "client_app_name": "Office 365 Exchange Online",
        "user_agent": "BAV2ROPC",
        "request_type": "OAuth2:Token",
        "first_use": True,
        "known_addresses": [],
        "tenant_admin": False,
        "risk": None,
    }
    base.update(over)
    return base


def test_ropc_alerts_on_first_use_and_from_new_addresses_only() -> None:
    first, same, moved = ropc(days=15), ropc(days=16), ropc(days=17, ip=VPN_NL)
    assert run([*known(), first, same, moved]) == [
        expected_alert(
            EvasiveLegacyOrRopcSignin,
            records=[first],
            severity="medium",
            summary=f"{ALICE} signed in with ROPC (password grant) to Office 365 Exchange Online (first use)",
            dedup_key=f"{oid_of(ALICE)}|ropc|{EXCHANGE}",
            context=ctx(),
        ),
        expected_alert(
            EvasiveLegacyOrRopcSignin,
            records=[moved],
            severity="high",
            summary=f"{ALICE} signed in with ROPC (password grant) to Office 365 Exchange Online (from a new address) "
            "from a vpn address",
            dedup_key=f"{oid_of(ALICE)}|ropc|{EXCHANGE}",
            context=ctx(
                first_use=False, known_addresses=[HOME_DE], risk={"source": "ip", "reason": "vpn", "ip": VPN_NL}
            ),
        ),
    ]


@pytest.mark.parametrize(("admins", "severity"), [((), "high"), ((ALICE,), "medium")])
def test_device_code_sign_in(admins: tuple[str, ...], severity: str) -> None:
    rec = signin(ALICE, when=at(days=15), app=BROKER, request_type="Cmsi:Cmsi")
    assert run([*known(), rec], admins=admins) == [
        expected_alert(
            EvasiveLegacyOrRopcSignin,
            records=[rec],
            severity=severity,
            summary=f"{ALICE} signed in with device code to Microsoft Authentication Broker (first use)",
            dedup_key=f"{oid_of(ALICE)}|device_code|{BROKER}",
            context=ctx(
                protocol="device_code",
                client_app_id=BROKER,
                client_app_name="Microsoft Authentication Broker",
                user_agent=rec["ExtendedProperties"][1]["Value"],
                request_type="Cmsi:Cmsi",
                tenant_admin=bool(admins),
            ),
        )
    ]


def test_legacy_imap_client() -> None:
    rec = signin(ALICE, when=at(days=15), app=EXCHANGE, user_agent="", request_type="")
    rec["ExtendedProperties"].append({"Name": "ClientAppUsed", "Value": "IMAP4"})
    got = run([*known(), rec])
    assert [(a["severity"], a["summary"], a["context"]["protocol"]) for a in got] == [
        ("medium", f"{ALICE} signed in with legacy authentication to Office 365 Exchange Online (first use)", "legacy")
    ]


@pytest.mark.parametrize(
    ("records", "trusted"),
    [
        pytest.param([ropc(ip=OFFICE_DE)], ("203.0.113.0/24",), id="ropc-from-trusted-office-range"),
        pytest.param([signin(ALICE, app=OFFICE_APP)], (), id="modern-sign-in"),
        pytest.param(
            [signin(ALICE, app=EXCHANGE, user_agent="BAV2ROPC", request_type="OAuth2:Token", error=50126)],
            (),
            id="failed-ropc-is-the-spray-detectors-job",
        ),
    ],
)
def test_no_alert(records: list[dict[str, Any]], trusted: tuple[str, ...]) -> None:
    assert run(records, trusted=trusted) == []


def test_during_learning_only_a_risk_raised_first_use_alerts() -> None:
    """Learning: a first use in the user's and tenant's first days builds the baseline; one from a VPN (high) alerts."""
    quiet = ropc(days=1)
    risky = signin(ALICE, when=at(days=2), ip=VPN_NL, app=BROKER, request_type="Cmsi:Cmsi")
    got = run([quiet, risky])
    assert [(a["severity"], a["context"]["protocol"]) for a in got] == [("critical", "device_code")]
