"""Mail deleted after a takeover: Sent Items, security notices, bursts.

Record shape: ExchangeItemGroup (RecordType 3) ``HardDelete`` / ``SoftDelete`` / ``MoveToDeletedItems`` with
``AffectedItems`` (Id, InternetMessageId, ParentFolder {Id, Path}, Subject), ``Folder`` {Id, Path},
``CrossMailboxOperation``, ``ClientInfoString`` "Client=OWA;Action=ViaProxy" as in Sekoia's public sample
SEKOIA-IO/intake-formats "Office 365/o365/tests/exchange_item_group.json"; operations from Microsoft Purview "Audit
log activities" (Exchange mailbox activities).
"""

from __future__ import annotations

from typing import Any

from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    _rid,
    at,
    expected_alert,
    identity_enricher,
    mailbox_record,
    oid_of,
    signin,
)

from detectors.defense_mail_deletion import DefenseMailDeletion
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenseMailDeletion],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
        batch_size=100,
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def deleted(
    op: str, items: list[tuple[str, str]], *, when: str, folder: str | None = None, seq: int = 0, client: str = ""
) -> dict[str, Any]:
    rec = mailbox_record(
        op, ALICE, when=when, ip=HOME, client_info=client or "Client=OWA;Action=ViaProxy", record_type=3, seq=seq
    )
    rec["AffectedItems"] = [
        {
            "Id": "RgAAAABxSjbeIoBUT6MlFIM9cqcFBwCxmw0Q8U" + _rid("item", when, seq, n)[:12],
            "InternetMessageId": f"<{_rid('msg', when, seq, n)}@contoso.com>",
            "ParentFolder": {"Id": "LgAAAABxSjbeIoBUT6MlFIM9cqcFAQ" + _rid("f", path)[:8], "Path": path},
            "Subject": subject,
        }
        for n, (subject, path) in enumerate(items)
    ]
    rec["CrossMailboxOperation"] = False
    path = folder if folder is not None else (items[0][1] if items else "\\Inbox")
    rec["Folder"] = {"Id": "LgAAAABxSjbeIoBUT6MlFIM9cqcFAQ" + _rid("f", path)[:8], "Path": path}
    if op == "MoveToDeletedItems":
        rec["DestFolder"] = {"Id": "LgAAAABxSjbeIoBUT6MlFIM9cqcFAQCxmw0Q", "Path": "\\Deleted Items"}
    return rec


def test_sent_phish_and_mfa_notice_deleted_after_a_risky_sign_in_is_high() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    sent = deleted(
        "HardDelete",
        [("Updated remittance details", "\\Sent Items"), ("RE: invoice 4471", "\\Sent Items")],
        when=at(minutes=40),
    )
    notice = deleted("MoveToDeletedItems", [("New sign-in to your account", "\\Inbox")], when=at(minutes=41), seq=1)
    got = run([login, sent, notice])
    assert got == [
        expected_alert(
            DefenseMailDeletion,
            records=[sent, notice],
            severity="high",
            summary=f"{ALICE} deleted mail (HardDelete): 2 messages from Sent Items after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key=f"{oid_of(ALICE)}|mail_deletion",
            ip=HOME,
            count=2,
            context={
                "operation": "HardDelete",
                "folder": "\\Sent Items",
                "messages": 2,
                "burst": None,
                "sent_items": 2,
                "notice_subjects": [],
                "client": "Client=OWA;Action=ViaProxy",
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            },
        )
    ]


def test_ordinary_user_emptying_newsletters_is_low_and_cleaning_sent_items_is_silent() -> None:
    newsletters = [
        deleted("SoftDelete", [(f"Weekly digest #{i}", "\\Inbox") for i in range(10)], when=at(minutes=i), seq=i)
        for i in range(6)
    ]
    got = run(newsletters)
    assert [(a["severity"], a["context"]["burst"]) for a in got] == [("low", 50)]
    sent = deleted("HardDelete", [("Lunch?", "\\Sent Items")], when=at(days=2))
    assert run([sent]) == []


def test_a_security_notice_deleted_without_risk_is_low() -> None:
    notice = deleted("HardDelete", [("Your verification code is 481516", "\\Inbox")], when=at(minutes=5))
    got = run([notice])
    assert [(a["severity"], a["context"]["notice_subjects"]) for a in got] == [
        ("low", ["Your verification code is 481516"])
    ]


def test_retention_policy_deletions_are_ignored() -> None:
    purge = deleted(
        "HardDelete",
        [(f"Security alert {i}", "\\Recoverable Items\\Deletions") for i in range(80)],
        when=at(minutes=1),
        client="Client=TBA;Service=MSExchangeMailboxAssistants;Action=ViaProxy",
    )
    assert run([signin(ALICE, when=at(minutes=0), ip=RISKY_IP), purge]) == []
