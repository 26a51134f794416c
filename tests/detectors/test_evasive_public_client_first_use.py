"""First use of Azure CLI / PowerShell / Graph tools, learned per user (an admin's daily use alerts once)."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    GRAPH_POWERSHELL_APP,
    HOME_DE,
    OFFICE_APP,
    OUTLOOK_APP,
    TEST_TENANT,
    VPN_NL,
    at,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.evasive_public_client_first_use import EvasivePublicClientFirstUse
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

AZ_PS = "1950a258-227b-4e31-a9cf-717495945fc2"
AZ_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
GRAPH_EXPLORER = "de8bc8b5-d9f9-48b1-a8ad-b748da725064"
PS51 = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.4648"
PS7 = "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.5"
ADMIN = "it.admin@contoso.com"
ALICE = "alice@contoso.com"


def run(records: list[dict[str, Any]], *, admins: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    tenant = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"], admin_users=list(admins))
    got = run_detector(EvasivePublicClientFirstUse, records, tenant=tenant, enricher=identity_enricher(), batch_size=3)
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def tool_signin(upn: str, app: str, ua: str, *, days: float = 0, ip: str = HOME_DE) -> dict[str, Any]:
    return signin(upn, when=at(days=days, hours=1), ip=ip, app=app, user_agent=ua, request_type="OAuth2:Token")


def known(*upns: str, days: int = 15) -> list[dict[str, Any]]:
    """Daily Office sign-ins from home since day 0: users (and a tenant) past the learning period."""
    return [signin(u, when=at(days=d), ip=HOME_DE, app=OFFICE_APP) for u in upns for d in range(days)]


def ctx(app: str, name: str, kind: str, ua: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "client_app_id": app,
        "client_app_name": name,
        "client_kind": kind,
        "user_agent": ua,
        "protocol": "modern",
        "tenant_admin": False,
        "risk": None,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(("admins", "severity"), [((ADMIN,), "low"), ((), "medium")])
def test_an_admins_daily_azure_powershell_alerts_once(admins: tuple[str, ...], severity: str) -> None:
    days = [tool_signin(ADMIN, AZ_PS, PS51, days=d) for d in range(15, 25)]
    assert run([*known(ADMIN), *days], admins=admins) == [
        expected_alert(
            EvasivePublicClientFirstUse,
            records=days[:1],
            severity=severity,
            summary=f"{ADMIN} signed in with Microsoft Azure PowerShell for the first time",
            dedup_key=f"{oid_of(ADMIN)}|{AZ_PS}",
            context=ctx(AZ_PS, "Microsoft Azure PowerShell", "azure_powershell", PS51, tenant_admin=bool(admins)),
        )
    ]


def test_a_users_first_graph_powershell_from_a_vpn_is_high() -> None:
    rec = tool_signin(ALICE, GRAPH_POWERSHELL_APP, PS7, ip=VPN_NL)
    assert run([signin(ALICE, when=at(), app=OFFICE_APP), rec]) == [
        expected_alert(
            EvasivePublicClientFirstUse,
            records=[rec],
            severity="high",
            summary=f"{ALICE} signed in with Microsoft Graph Command Line Tools for the first time from a vpn address",
            dedup_key=f"{oid_of(ALICE)}|{GRAPH_POWERSHELL_APP}",
            context=ctx(
                GRAPH_POWERSHELL_APP,
                "Microsoft Graph Command Line Tools",
                "graph_powershell",
                PS7,
                risk={"source": "ip", "reason": "vpn", "ip": VPN_NL},
            ),
        )
    ]


def test_each_tool_alerts_once_and_is_forgotten_after_half_a_year() -> None:
    records = [
        tool_signin(ADMIN, AZ_CLI, "python-requests/2.31.0", days=15),
        tool_signin(ADMIN, AZ_CLI, "python-requests/2.31.0", days=16),
        tool_signin(ADMIN, GRAPH_EXPLORER, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/124.0", days=17),
        tool_signin(ADMIN, AZ_CLI, "python-requests/2.31.0", days=215),
    ]
    got = run([*known(ADMIN), *records])
    assert [(a["context"]["client_app_name"], a["first_seen"]) for a in got] == [
        ("Microsoft Azure CLI", records[0]["CreationTime"] + "Z"),
        ("Graph Explorer", records[2]["CreationTime"] + "Z"),
        ("Microsoft Azure CLI", records[3]["CreationTime"] + "Z"),
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(signin(ALICE, app=OFFICE_APP), id="office"),
        pytest.param(signin(ALICE, app=OUTLOOK_APP), id="outlook"),
        pytest.param(signin(ALICE, app="1fec8e78-bce4-4aaf-ab1b-5451cc387264"), id="teams"),
        pytest.param(signin(ALICE, app=AZ_CLI, error=50126), id="failed-sign-in"),
        pytest.param(signin(ALICE, app="7e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"), id="unknown-app-is-not-a-known-tool"),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []


def test_user_id_not_available_is_keyed_by_the_actor_object_id() -> None:
    rec = signin(
        ALICE, when=at(days=15), ip=HOME_DE, app=AZ_CLI, user_agent="python-requests/2.31.0", user_id="Not Available"
    )
    got = run([*known(ALICE), rec])
    assert [(a["user"], a["user_key"], a["summary"]) for a in got] == [
        (ALICE, oid_of(ALICE), f"{ALICE} signed in with Microsoft Azure CLI for the first time")
    ]


def test_during_learning_a_first_use_builds_the_baseline() -> None:
    """Learning: the cold start is not novelty. Daily use from day 0 never alerts; after the learning period the
    client is known; a client first used after it alerts."""
    daily = [tool_signin(ADMIN, AZ_PS, PS51, days=d) for d in range(20)]
    later = tool_signin(ADMIN, AZ_CLI, "python-requests/2.31.0", days=20)
    got = run([*daily, later])
    assert [(a["context"]["client_app_name"], a["severity"]) for a in got] == [("Microsoft Azure CLI", "medium")]


def test_a_client_the_tenants_admins_use_routinely_is_not_reported_from_a_known_network() -> None:
    """Tenant-aware: two administrators use Azure PowerShell every day; a new administrator starting to use it from
    their usual network is the tenant's administration. The same first use from a VPN still alerts."""
    routine = [tool_signin(a, AZ_PS, PS51, days=d) for a in ("a1@contoso.com", "a2@contoso.com") for d in range(20)]
    new_admin = tool_signin(ADMIN, AZ_PS, PS51, days=20)
    vpn_user = tool_signin(ALICE, AZ_PS, PS51, days=20, ip=VPN_NL)
    got = run([*routine, *known(ADMIN, ALICE, days=20), new_admin, vpn_user])
    assert [(a["user"], a["severity"]) for a in got] == [(ALICE, "high")]
