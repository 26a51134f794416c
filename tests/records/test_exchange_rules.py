"""Inbox rules from Graph messageRule JSON are scored like audit-log rules."""

from __future__ import annotations

from typing import Any

import pytest

from shared.detection.inbox_rules import owner_names, score_rule
from shared.records.exchange import InboxRule, inbox_rule_from_graph
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id="t1", internal_domains=["contoso.com"])
RSS_ID = "AAMkAGI2TG93AAA="


def graph_rule(**over: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "AQAAAJ5dZqA=",
        "displayName": ".",
        "sequence": 1,
        "isEnabled": True,
        "hasError": False,
        "isReadOnly": False,
        "conditions": {
            "subjectContains": ["invoice", "payment"],
            "fromAddresses": [{"emailAddress": {"name": "CFO", "address": "cfo@contoso.com"}}],
        },
        "actions": {
            "forwardTo": [{"emailAddress": {"name": "Backup", "address": "alice.finance@gmail.com"}}],
            "moveToFolder": RSS_ID,
            "markAsRead": True,
            "stopProcessingRules": True,
        },
    }
    rule.update(over)
    return rule


def test_graph_rule_becomes_an_inbox_rule() -> None:
    got = inbox_rule_from_graph(graph_rule(), mailbox="Alice@Contoso.com", folder_names={RSS_ID: "RSS Feeds"})
    assert got == InboxRule(
        source="graph",
        change="existing",
        mailbox="alice@contoso.com",
        name=".",
        forward_to=("alice.finance@gmail.com",),
        move_to_folder="RSS Feeds",
        mark_as_read=True,
        stop_processing=True,
        words=("invoice", "payment"),
        from_addresses=("cfo@contoso.com",),
        enabled=True,
        graph_id="AQAAAJ5dZqA=",
    )


def test_graph_rule_scores_like_the_audit_log_one() -> None:
    rule = inbox_rule_from_graph(graph_rule(), mailbox="alice@contoso.com", folder_names={RSS_ID: "RSS Feeds"})
    verdict = score_rule(rule, TENANT, victim_names=owner_names(rule.mailbox))
    assert (verdict.score, verdict.severity.value, verdict.external_recipients, verdict.reasons) == (
        11,
        "critical",
        ("alice.finance@gmail.com",),
        (
            "forwards or redirects outside the tenant: alice.finance@gmail.com",
            "moves messages to RSS Feeds",
            "marks messages as read",
            "stops processing further rules",
            "conditions on watched words: invoice, payment",
            "obfuscated rule name '.'",
        ),
    )


@pytest.mark.parametrize(
    ("rule", "score"),
    [
        pytest.param(
            {
                "displayName": "Newsletters",
                "isEnabled": True,
                "conditions": {"senderContains": ["newsletter"], "fromAddresses": []},
                "actions": {"moveToFolder": "AAMkNews=", "stopProcessingRules": True},
            },
            1,
            id="newsletter-move-by-folder-id",
        ),
        pytest.param(
            {
                "displayName": "Redirect",
                "isEnabled": False,
                "conditions": {},
                "actions": {"redirectTo": [{"emailAddress": {"address": "x@proton.me"}}], "delete": True},
            },
            5,
            id="disabled-redirect-and-delete",
        ),
        pytest.param({"displayName": "Empty", "conditions": None, "actions": None}, 0, id="no-actions"),
    ],
)
def test_graph_rule_scores(rule: dict[str, Any], score: int) -> None:
    assert score_rule(inbox_rule_from_graph(rule, mailbox="alice@contoso.com"), TENANT).score == score


def test_owner_names_split_the_upn() -> None:
    assert owner_names("megan.bowen-li2@contoso.com", "mb@contoso.com") == ("megan", "bowen")
