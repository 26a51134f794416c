"""Several mailboxes forwarding to one outside address (issue #20, item 8).

Forwards arrive in the shapes of the other Exchange tests: New-InboxRule (ExchangeAdmin, Parameters as pairs),
Set-Mailbox -ForwardingSmtpAddress (the "smtp:" form Microsoft's outbound-forwarding docs show), and Outlook's
UpdateInboxRules mailbox-audit record (OperationProperties RuleOperation/RuleName/RuleActions, as Microsoft's
"Detect and remediate Outlook rules and custom forms injection" and Splunk's o365 UpdateInboxRules searches read
them).
"""

from __future__ import annotations

from typing import Any

from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    epoch,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    mailbox_record,
    oid_of,
    signin,
)

from detectors.exchange_forwarding_harvest import ExchangeForwardingHarvest
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
DROP = "harvest.box@gmail.com"
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]], tenant: TenantConfig = TENANT) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExchangeForwardingHarvest], records, tenant=tenant, enricher=identity_enricher()
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def inbox_rule(upn: str, dest: str, *, when: str) -> dict[str, Any]:
    return exchange_cmdlet(
        "New-InboxRule",
        [
            {"Name": "Name", "Value": "."},
            {"Name": "ForwardTo", "Value": dest},
            {"Name": "MarkAsRead", "Value": "True"},
        ],
        upn,
        when=when,
    )


def mailbox_forward(upn: str, dest: str, *, when: str) -> dict[str, Any]:
    return exchange_cmdlet(
        "Set-Mailbox",
        {"Identity": upn, "ForwardingSmtpAddress": f"smtp:{dest}", "DeliverToMailboxAndForward": "False"},
        upn,
        when=when,
    )


def outlook_rule(upn: str, dest: str, *, when: str, ip: str = HOME) -> dict[str, Any]:
    return mailbox_record(
        "UpdateInboxRules",
        upn,
        when=when,
        ip=ip,
        operation_properties=[
            {"Name": "RuleOperation", "Value": "AddMailboxRule"},
            {"Name": "RuleName", "Value": "fw"},
            {"Name": "RuleState", "Value": "Enabled"},
            {"Name": "RuleActions", "Value": f"ForwardToRecipientsAction: {dest}"},
        ],
    )


def test_three_mailboxes_feeding_one_address_after_a_risky_sign_in_is_critical() -> None:
    a = inbox_rule(ALICE, DROP, when=at(hours=1))
    b = mailbox_forward(BOB, DROP, when=at(days=2))
    login = signin(CAROL, when=at(days=3), ip=RISKY_IP)
    c = outlook_rule(CAROL, DROP.upper(), when=at(days=3, minutes=5), ip=RISKY_IP)
    assert run([a, b, login, c]) == [
        expected_alert(
            ExchangeForwardingHarvest,
            records=[c, a, b],
            severity="critical",
            summary=f"3 mailboxes forward mail to {DROP}: {ALICE}, {BOB}, {CAROL} after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key=DROP,
            user=CAROL,
            user_key=oid_of(CAROL),
            ip=RISKY_IP,
            context={
                "destination": DROP,
                "mailboxes": [ALICE, BOB, CAROL],
                "latest_mailbox": CAROL,
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": epoch(login["CreationTime"]),
                    "record_id": login["Id"],
                },
            },
        )
    ]


def test_a_fourth_victim_opens_an_alert_in_their_own_name() -> None:
    a, b, c, d = (
        inbox_rule(ALICE, DROP, when=at(hours=1)),
        mailbox_forward(BOB, DROP, when=at(hours=2)),
        inbox_rule(CAROL, DROP, when=at(hours=3)),
        inbox_rule("dave@contoso.com", DROP, when=at(hours=4)),
    )
    got = sorted(run([a, b, c, d]), key=lambda x: x["last_seen"])
    assert [(x["user"], x["severity"], x["count"]) for x in got] == [
        (CAROL, "high", 1),
        ("dave@contoso.com", "high", 1),
    ]
    assert got[1]["context"]["mailboxes"] == [ALICE, BOB, CAROL, "dave@contoso.com"]
    assert got[1]["evidence_record_ids"] == [d["Id"], a["Id"], b["Id"], c["Id"]]
    assert got[1]["first_seen"] == a["CreationTime"] + "Z"


def test_two_mailboxes_or_different_addresses_or_a_stale_forward_do_not_alert() -> None:
    records = [
        inbox_rule(ALICE, DROP, when=at(hours=1)),
        mailbox_forward(BOB, DROP, when=at(hours=2)),
        inbox_rule(CAROL, "carol.private@gmail.com", when=at(hours=3)),
        # the same mailbox again is not a new victim
        inbox_rule(BOB, DROP, when=at(hours=4)),
    ]
    assert run(records) == []
    old = inbox_rule(ALICE, DROP, when=at(days=0))
    late = [mailbox_forward(BOB, DROP, when=at(days=15)), inbox_rule(CAROL, DROP, when=at(days=16))]
    assert run([old, *late]) == []


def test_forwards_to_a_partner_or_inside_the_tenant_do_not_count() -> None:
    partner = TenantConfig(
        tenant_id=TEST_TENANT, internal_domains=["contoso.com"], approved_forwarding_domains=["fabrikam.com"]
    )
    records = [inbox_rule(u, "tickets@fabrikam.com", when=at(hours=i)) for i, u in enumerate((ALICE, BOB, CAROL))]
    records += [inbox_rule(u, "shared@contoso.com", when=at(hours=5 + i)) for i, u in enumerate((ALICE, BOB, CAROL))]
    assert run(records, tenant=partner) == []
