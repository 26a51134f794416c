"""One application reading many mailboxes.

Record shapes: ``MailItemsAccessed`` (RecordType 50) with ``AppId``, ``ClientInfoString`` "Client=REST" (Graph),
``MailboxOwnerUPN``, ``OperationProperties`` MailAccessType=Bind and ``Folders`` as in records.mailbox_record
(Microsoft Purview "MailItemsAccessed", management-activity-api.md §10). For application-permission reads the
record's ``UserId`` names the application's service principal rather than the mailbox owner (Purview: app-only
access is audited with the app's identity) [shape of the UserId inferred; the detector only requires that it is not
the owner's UPN].
"""

from __future__ import annotations

from typing import Any

from records import TEST_TENANT, at, mailbox_record

from detectors.exfil_app_mailbox_sweep import ExfilAppMailboxSweep
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

CRM_APP = "3c1e8d2a-6b7f-4e9d-a0c1-2b3d4e5f6a70"
BACKUP_APP = "7a2b3c4d-5e6f-4a1b-9c8d-7e6f5a4b3c2d"
ROGUE_APP = "c0ffee00-1234-4abc-9def-0123456789ab"
SP_OID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(ExfilAppMailboxSweep, records, tenant=TenantConfig(tenant_id=TEST_TENANT), batch_size=200)
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def app_reads(app: str, mailboxes: int, *, days: float, first: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(first, first + mailboxes):
        rec = mailbox_record(
            "MailItemsAccessed",
            f"user{i}@contoso.com",
            when=at(days=days, seconds=30 * (i - first)),
            ip="20.190.151.7",
            app=app,
            client_info="Client=REST;Client=RESTSystem;;",
            items=3,
            seq=i,
        )
        rec["UserId"] = SP_OID
        rec["LogonType"] = 0
        out.append(rec)
    return out


def crm_history(days: int = 8) -> list[dict[str, Any]]:
    return [r for d in range(days) for r in app_reads(CRM_APP, 2, days=d)]


def test_a_new_application_reading_twenty_mailboxes_after_learning_is_high() -> None:
    sweep = app_reads(ROGUE_APP, 25, days=8)
    got = run([*crm_history(), *sweep])
    assert got == [
        {
            "alert_id": got[0]["alert_id"],
            "detector": "exfil_app_mailbox_sweep",
            "title": "One application reading many mailboxes",
            "category": "data_exfiltration",
            "severity": "high",
            "tenant_id": TEST_TENANT,
            "user": ROGUE_APP,
            "user_key": None,
            "first_seen": sweep[0]["CreationTime"] + "Z",
            "last_seen": sweep[19]["CreationTime"] + "Z",
            "evidence_record_ids": [sweep[19]["Id"]],
            "mitre": ["T1114.002", "T1098.003"],
            "summary": f"Application {ROGUE_APP} read 20 mailboxes since {sweep[0]['CreationTime']}Z (application "
            f"first seen {sweep[0]['CreationTime']}Z)",
            "ip": "20.190.151.7",
            "count": 1,
            "context": {
                "app_id": ROGUE_APP,
                "app_name": None,
                "mailboxes": 20,
                "threshold": 20.0,
                "usual_per_day": None,
                "days_learned": 0,
                "via": "rest",
                "last_mailbox": "user19@contoso.com",
            },
            "dedup_key": f"app|{ROGUE_APP}",
            "runbook": ExfilAppMailboxSweep.meta.runbook,
        }
    ]


def test_a_known_application_reading_three_times_its_usual_day_is_high() -> None:
    usual = [r for d in range(5) for r in app_reads(CRM_APP, 10, days=d)]
    assert run([*usual, *app_reads(CRM_APP, 25, days=5)]) == []
    got = run([*usual, *app_reads(CRM_APP, 35, days=5)])
    assert [
        (a["severity"], a["context"]["mailboxes"], a["context"]["threshold"], a["context"]["usual_per_day"])
        for a in got
    ] == [("high", 30, 30.0, 10.0)]


def test_ordinary_backup_application_reading_every_mailbox_every_day_never_alerts() -> None:
    """The learning-time low reports (days 0-2) are held back by the learning rule (tenant 7 days, the app 3); from
    the fourth day on the backup's usual day is learned: nothing is raised."""
    daily = [r for d in range(10) for r in app_reads(BACKUP_APP, 30, days=d)]
    assert run(daily) == []


def test_an_application_first_seen_after_the_tenants_learning_week_is_high() -> None:
    crm = [r for d in range(8) for r in app_reads(CRM_APP, 10, days=d)]
    got = run([*crm, *app_reads(BACKUP_APP, 30, days=8)])
    assert [(a["severity"], a["context"]["app_id"]) for a in got] == [("high", BACKUP_APP)]


def test_users_reading_their_own_mailbox_through_a_third_party_app_are_not_counted() -> None:
    own = []
    for i in range(40):
        rec = mailbox_record(
            "MailItemsAccessed",
            f"user{i}@contoso.com",
            when=at(days=9, seconds=30 * i),
            app=ROGUE_APP,
            client_info="Client=REST;Client=RESTSystem;;",
            items=3,
            seq=i,
        )
        own.append(rec)
    assert run([*crm_history(), *own]) == []
