"""Whole libraries or mailboxes synced to a client new to the user.

Record shapes: ``FileSyncDownloadedFull`` with ``MachineId``, ``MachineDomainInfo`` and the OneDrive sync user agent
as in Sekoia's public sample SEKOIA-IO/intake-formats "Office 365/o365/tests/file_sync_download_full.json";
``MailItemsAccessed`` Sync records (``OperationProperties`` MailAccessType=Sync, ``Folders`` with a Path and no
items) as described in Microsoft Purview "MailItemsAccessed" and management-activity-api.md §10.
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    expected_alert,
    file_record,
    identity_enricher,
    mailbox_record,
    oid_of,
    signin,
)

from detectors.exfil_sync_new_client import ExfilSyncNewClient
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
SYNC_UA = "Microsoft SkyDriveSync 22.099.0508.0001 ship; Windows NT 10.0 (19043)"
LAPTOP = "884ecccb-1e44-4dd4-a2b5-b60517893ce0"
NEW_MACHINE = "5b0c9e2a-7d41-4c6e-9f3a-1e2d3c4b5a69"
THIRD_PARTY_MAIL_APP = "e9a7f6c4-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
FOLDERS = ["\\Inbox", "\\Sent Items", "\\Archive", "\\Finance", "\\Drafts", "\\Projects", "\\Legal", "\\HR", "\\Board"]


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExfilSyncNewClient],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
        batch_size=100,
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def synced(n: int, machine: str, *, days: float, ip: str = HOME_DE) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        rec = file_record(
            "FileSyncDownloadedFull",
            ALICE,
            when=at(days=days, seconds=5 * i),
            ip=ip,
            file_name=f"doc{i}.docx",
            user_agent=SYNC_UA,
            seq=i,
        )
        rec.update(
            {
                "MachineId": machine,
                "MachineDomainInfo": "f059d209-e819-402b-a391-4941ff3860c6",
                "FileSyncBytesCommitted": "1344200",
            }
        )
        out.append(rec)
    return out


def mail_sync(
    folders: list[str], *, days: float, app: str = THIRD_PARTY_MAIL_APP, ip: str = HOME_DE
) -> list[dict[str, Any]]:
    return [
        mailbox_record(
            "MailItemsAccessed",
            ALICE,
            when=at(days=days, seconds=3 * i),
            ip=ip,
            app=app,
            client_info="Client=REST;Client=RESTSystem;;",
            access_type="Sync",
            folder=f,
            seq=i,
        )
        for i, f in enumerate(folders)
    ]


def test_a_new_machine_syncing_a_library_after_a_risky_sign_in_is_high() -> None:
    known = synced(5, LAPTOP, days=0)
    login = signin(ALICE, when=at(days=5, minutes=-30), ip=RISKY_IP)
    burst = synced(210, NEW_MACHINE, days=5)
    got = run([*known, login, *burst])
    assert got == [
        expected_alert(
            ExfilSyncNewClient,
            records=burst[:3],
            severity="high",
            summary=f"{ALICE} synced 200 files to a new client, machine {NEW_MACHINE} ({SYNC_UA}), first seen "
            f"{burst[0]['CreationTime']}Z after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{oid_of(ALICE)}|m:{NEW_MACHINE}",
            ip=HOME_DE,
            last_seen=burst[199]["CreationTime"] + "Z",
            context={
                "store": "files",
                "client": f"machine {NEW_MACHINE} ({SYNC_UA})",
                "client_key": f"m:{NEW_MACHINE}",
                "synced": 200,
                "threshold": 200,
                "client_first_seen": burst[0]["CreationTime"] + "Z",
                "user_agent": SYNC_UA,
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0 + 5 * 86400 - 1800,
                    "record_id": login["Id"],
                },
            },
        )
    ]


def test_ordinary_new_laptop_syncing_the_library_is_low_and_the_known_laptop_is_silent() -> None:
    known = synced(5, LAPTOP, days=0)
    assert [a["severity"] for a in run([*known, *synced(250, NEW_MACHINE, days=5)])] == ["low"]
    assert run([*known, *synced(400, LAPTOP, days=5)]) == []
    assert run([*known, *synced(150, NEW_MACHINE, days=5)]) == []


def test_a_third_party_client_syncing_the_mailbox_after_a_risky_sign_in_is_high() -> None:
    known = synced(1, LAPTOP, days=0)  # the user's sync history starts here
    login = signin(ALICE, when=at(days=4), ip=RISKY_IP)
    folders = mail_sync(FOLDERS, days=4, app=THIRD_PARTY_MAIL_APP)
    got = run([*known, login, *folders])
    assert [
        (a["severity"], a["context"]["store"], a["context"]["synced"], a["context"]["client_key"]) for a in got
    ] == [("high", "mail", 8, f"app:{THIRD_PARTY_MAIL_APP}")]


def test_outlook_syncing_and_syncs_while_learning_without_risk_are_silent() -> None:
    outlook = mail_sync(FOLDERS, days=4, app="5d661950-3475-41cd-a2c3-d671a3162bc1")
    assert run([*synced(1, LAPTOP, days=0), *outlook]) == []
    # the user's first days teach their clients: a library synced then is not new
    assert run(synced(300, NEW_MACHINE, days=0)) == []
    # ...unless a risky sign-in came just before
    login = signin(ALICE, when=at(minutes=-10), ip=RISKY_IP)
    assert [a["severity"] for a in run([login, *synced(300, NEW_MACHINE, days=0)])] == ["high"]
