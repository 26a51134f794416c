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


def ropc(upn: str = ALICE, *, days: float = 0, ip: str = HOME_DE) -> dict[str, Any]:
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
    first, same, moved = ropc(days=0), ropc(days=1), ropc(days=2, ip=VPN_NL)
    assert run([first, same, moved]) == [
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
    rec = signin(ALICE, app=BROKER, request_type="Cmsi:Cmsi")
    assert run([rec], admins=admins) == [
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
    rec = signin(ALICE, app=EXCHANGE, user_agent="", request_type="")
    rec["ExtendedProperties"].append({"Name": "ClientAppUsed", "Value": "IMAP4"})
    got = run([rec])
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
