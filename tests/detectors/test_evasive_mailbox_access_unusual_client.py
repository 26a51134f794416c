"""Mailbox reads over Graph/REST or EWS by public client tools or by apps the tenant has not seen."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    GRAPH_POWERSHELL_APP,
    HOME_DE,
    OUTLOOK_APP,
    TEST_TENANT,
    VPN_NL,
    at,
    expected_alert,
    identity_enricher,
    mailbox_record,
)

from detectors.evasive_mailbox_access_unusual_client import EvasiveMailboxAccessUnusualClient
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ALICE = "alice@contoso.com"
REST = "Client=REST;Client=RESTSystem;;"
NEW_APP = "7e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
OUTLOOK_MOBILE = "27922004-5251-4030-b22d-91ecd9a37ea4"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(EvasiveMailboxAccessUnusualClient, records, tenant=TENANT, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def mia(upn: str = ALICE, *, days: float = 0, minutes: float = 0, **kw: Any) -> dict[str, Any]:
    kw.setdefault("items", 3)
    return mailbox_record("MailItemsAccessed", upn, when=at(days=days, minutes=minutes), **kw)


def ctx(rec: dict[str, Any], **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "reason": "public_client_tool",
        "client_app_id": rec["AppId"],
        "client_app_name": None,
        "client_kind": "unknown",
        "tool": None,
        "via": "rest",
        "client_info": rec["ClientInfoString"],
        "mailbox_owner": rec["MailboxOwnerUPN"],
        "items": len(rec["Folders"][0]["FolderItems"]),
        "session_id": rec["SessionId"],
        "risk": None,
    }
    base.update(over)
    return base


def test_graph_powershell_reading_the_mailbox_from_a_vpn_is_critical_and_alerts_once() -> None:
    first = mia(app=GRAPH_POWERSHELL_APP, client_info=REST, ip=VPN_NL, items=30)
    again = [mia(app=GRAPH_POWERSHELL_APP, client_info=REST, ip=VPN_NL, minutes=i, seq=i) for i in range(1, 6)]
    tomorrow = mia(app=GRAPH_POWERSHELL_APP, client_info=REST, days=1)
    assert run([first, *again, tomorrow]) == [
        expected_alert(
            EvasiveMailboxAccessUnusualClient,
            records=[first],
            severity="critical",
            summary=f"Mailbox {ALICE} read by Microsoft Graph Command Line Tools over Graph/REST from a vpn address",
            dedup_key=f"{ALICE}|{GRAPH_POWERSHELL_APP}",
            user_key=ALICE,
            ip=VPN_NL,
            context=ctx(
                first,
                client_app_name="Microsoft Graph Command Line Tools",
                client_kind="graph_powershell",
                risk={"source": "ip", "reason": "vpn", "ip": VPN_NL},
            ),
        )
    ]


def test_a_python_script_over_ews_is_high() -> None:
    rec = mia(app=None, client_info="Client=WebServices;python-requests/2.31.0;")
    assert run([rec]) == [
        expected_alert(
            EvasiveMailboxAccessUnusualClient,
            records=[rec],
            severity="high",
            summary=f"Mailbox {ALICE} read by python-requests over EWS",
            dedup_key=f"{ALICE}|-",
            user_key=ALICE,
            ip=HOME_DE,
            context=ctx(rec, client_app_id=None, client_kind="script", via="ews"),
        )
    ]


def test_an_unseen_app_after_the_learning_week_alerts_once_for_the_tenant() -> None:
    learned = mia(app="0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", client_info=REST, days=0)
    first = mia(app=NEW_APP, client_info=REST, days=8)
    second_mailbox = mia("bob@contoso.com", app=NEW_APP, client_info=REST, days=8, minutes=5)
    assert run([learned, first, second_mailbox]) == [
        expected_alert(
            EvasiveMailboxAccessUnusualClient,
            records=[first],
            severity="medium",
            summary=f"Mailbox {ALICE} read by {NEW_APP}, an app not seen reading mail here before over Graph/REST",
            dedup_key=f"{ALICE}|{NEW_APP}",
            user_key=ALICE,
            ip=HOME_DE,
            context=ctx(first, reason="new_app"),
        )
    ]


def test_during_learning_only_a_risky_read_by_an_unseen_app_alerts() -> None:
    quiet = mia(app=NEW_APP, client_info=REST, days=0)
    risky = mia("bob@contoso.com", app="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", client_info=REST, ip=VPN_NL, days=1)
    got = run([quiet, risky])
    assert [(a["user"], a["severity"], a["context"]["reason"]) for a in got] == [("bob@contoso.com", "high", "new_app")]


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([mia(app=OUTLOOK_APP, client_info="Client=MSExchangeRPC", days=9)], id="outlook-desktop"),
        pytest.param([mia(app=OUTLOOK_MOBILE, client_info=REST, days=9)], id="outlook-mobile-over-rest"),
        pytest.param([mia(app=GRAPH_POWERSHELL_APP, client_info="Client=OWA;Action=ViaProxy")], id="not-an-api-path"),
        pytest.param(
            [mia(app=NEW_APP, client_info=REST, days=0), mia(app=NEW_APP, client_info=REST, days=9)],
            id="app-learned-during-the-first-week",
        ),
    ],
)
def test_no_alert(records: list[dict[str, Any]]) -> None:
    assert run(records) == []
