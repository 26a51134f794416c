"""Attack-tool and scripting user agents on sign-ins, mailbox reads and downloads."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    EDGE_UA,
    GRAPH_POWERSHELL_APP,
    HOME_DE,
    HOSTING_US,
    OFFICE_APP,
    TEST_TENANT,
    at,
    expected_alert,
    file_record,
    identity_enricher,
    mailbox_record,
    oid_of,
    signin,
)

from detectors.evasive_attack_tool_user_agent import EvasiveAttackToolUserAgent
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
ADMIN = "it.admin@contoso.com"
AZ_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
UNKNOWN_APP = "7e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
AZUREHOUND = "azurehound/v2.1.7"
TEAMFILTRATION = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Teams/1.3.00.24755 "
    "Chrome/69.0.3497.128 Electron/4.2.12 Safari/537.36"
)
PS51 = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.4648"


def run(records: list[dict[str, Any]], *, admins: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    tenant = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"], admin_users=list(admins))
    got = run_detector(EvasiveAttackToolUserAgent, records, tenant=tenant, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def ctx(rec: dict[str, Any], ua: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "operation": rec["Operation"],
        "user_agent": ua,
        "tool": None,
        "user_agent_family": None,
        "client_app_id": None,
        "client_app_name": None,
        "client_kind": "unknown",
        "risk": None,
    }
    base.update(over)
    return base


def test_azurehound_sign_in_is_high() -> None:
    rec = signin(ALICE, app=AZ_CLI, user_agent=AZUREHOUND, request_type="OAuth2:Token")
    assert run([rec]) == [
        expected_alert(
            EvasiveAttackToolUserAgent,
            records=[rec],
            severity="high",
            summary=f"{ALICE} signed in with AzureHound",
            dedup_key=f"{oid_of(ALICE)}|AzureHound",
            context=ctx(
                rec,
                AZUREHOUND,
                tool="AzureHound",
                user_agent_family="AzureHound",
                client_app_id=AZ_CLI,
                client_app_name="Microsoft Azure CLI",
                client_kind="attack_tool",
            ),
        )
    ]


def test_a_teamfiltration_spray_is_one_tenant_alert() -> None:
    sprayed = [
        signin(u, when=at(minutes=i), ip=HOSTING_US, app=TEAMS, user_agent=TEAMFILTRATION, error=50126)
        for i, u in enumerate(["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"])
    ]
    assert run(sprayed) == [
        expected_alert(
            EvasiveAttackToolUserAgent,
            records=sprayed,
            severity="medium",
            summary="Failed sign-ins by TeamFiltration against the tenant (spraying), first against alice@contoso.com",
            dedup_key="failed|TeamFiltration",
            user="tenant",
            user_key=None,
            ip=HOSTING_US,
            count=3,
            context=ctx(
                sprayed[0],
                TEAMFILTRATION,
                tool="TeamFiltration",
                user_agent_family="TeamFiltration",
                client_app_id=TEAMS,
                client_app_name="Microsoft Teams",
                client_kind="attack_tool",
            ),
        )
    ]


@pytest.mark.parametrize(
    ("record", "severity", "summary", "ua", "over"),
    [
        pytest.param(
            signin(ALICE, app=OFFICE_APP, user_agent="python-requests/2.31.0", request_type="OAuth2:Token"),
            "medium",
            f"{ALICE} signed in with a python-requests script",
            "python-requests/2.31.0",
            {
                "user_agent_family": "python-requests",
                "client_app_id": OFFICE_APP,
                "client_app_name": "Microsoft Office",
                "client_kind": "office",
            },
            id="office-refresh-token-from-python",
        ),
        pytest.param(
            signin(ALICE, app=UNKNOWN_APP, user_agent="axios/1.6.8", ip=HOSTING_US),
            "high",
            f"{ALICE} signed in with a axios script from a hosting address",
            "axios/1.6.8",
            {
                "user_agent_family": "axios",
                "client_app_id": UNKNOWN_APP,
                "client_kind": "script",
                "risk": {"source": "ip", "reason": "hosting", "ip": HOSTING_US},
            },
            id="axios-from-hosting",
        ),
    ],
)
def test_scripted_sign_ins(record: dict[str, Any], severity: str, summary: str, ua: str, over: dict[str, Any]) -> None:
    family = over["user_agent_family"]
    assert run([record]) == [
        expected_alert(
            EvasiveAttackToolUserAgent,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=f"{oid_of(ALICE)}|{family}",
            context=ctx(record, ua, **over),
        )
    ]


def test_scripts_reading_mail_over_ews_and_downloading_files() -> None:
    mail = mailbox_record(
        "MailItemsAccessed", ALICE, app=None, client_info="Client=WebServices;python-requests/2.31.0;", items=2
    )
    download = file_record("FileDownloaded", ALICE, when=at(minutes=5), user_agent="curl/8.4.0")
    got = run([mail, download])
    assert got == [
        expected_alert(
            EvasiveAttackToolUserAgent,
            records=[mail],
            severity="medium",
            summary=f"{ALICE} read mail with a python-requests script",
            dedup_key=f"{ALICE}|python-requests",
            user_key=ALICE,
            ip=HOME_DE,
            context=ctx(
                mail,
                "Client=WebServices;python-requests/2.31.0;",
                user_agent_family="python-requests",
                client_kind="script",
            ),
        ),
        expected_alert(
            EvasiveAttackToolUserAgent,
            records=[download],
            severity="medium",
            summary=f"{ALICE} downloaded a file with a curl script",
            dedup_key=f"{ALICE}|curl",
            user_key=ALICE,
            context=ctx(download, "curl/8.4.0", user_agent_family="curl", client_kind="script"),
        ),
    ]


def test_powershell_agent_is_low_once_a_month_and_quiet_for_listed_admins() -> None:
    user_days = [signin(ALICE, when=at(days=d), app=UNKNOWN_APP, user_agent=PS51) for d in range(5)]
    admin_days = [signin(ADMIN, when=at(days=d), app=UNKNOWN_APP, user_agent=PS51) for d in range(5)]
    got = run([*user_days, *admin_days], admins=(ADMIN,))
    assert [(a["user"], a["severity"], a["evidence_record_ids"]) for a in got] == [(ALICE, "low", [user_days[0]["Id"]])]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(signin(ALICE, user_agent=EDGE_UA), id="browser"),
        pytest.param(signin(ALICE, app=AZ_CLI, user_agent="python-requests/2.31.0"), id="azure-cli-speaks-python"),
        pytest.param(signin(ALICE, app=GRAPH_POWERSHELL_APP, user_agent=PS51), id="graph-powershell-speaks-powershell"),
        pytest.param(
            signin(ALICE, app=UNKNOWN_APP, user_agent="python-requests/2.31.0", error=50126), id="failed-script"
        ),
        pytest.param(
            mailbox_record("MailItemsAccessed", ALICE, client_info="Client=MSExchangeRPC", items=1), id="outlook-mail"
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
