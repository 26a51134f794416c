"""An inbox rule that hides, deletes or forwards mail: the classic business-email-compromise move."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.detection.base import DetectionContext, Detector
from shared.detection.inbox_rules import score_rule
from shared.detection.model import Category, DetectorMeta, Finding, Severity
from shared.records.event import Event
from shared.records.exchange import INBOX_RULE_OPS, inbox_rule_from_event


class ExchangeSuspiciousInboxRule(Detector):
    meta = DetectorMeta(
        id="exchange_suspicious_inbox_rule",
        title="Suspicious inbox rule",
        description=(
            "An inbox rule was created or changed that forwards or redirects mail outside the tenant, deletes "
            "it, moves it to a folder people do not read (RSS Feeds, Conversation History, Deleted Items, "
            "Archive, Junk), marks it as read, or has an obfuscated name."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        mitre=("T1564.008", "T1114.003"),
        dedup_window=timedelta(hours=24),
        operations=INBOX_RULE_OPS,
        runbook=(
            "1. Open the mailbox's rules (Get-InboxRule -Mailbox <user> -IncludeHidden) and compare with the "
            "alert's rule. 2. Check the user's sign-ins in the hour before the rule was made: VPN, hosting or new "
            "country means takeover. 3. If the user did not make it: disable the account, revoke sessions, remove "
            "the rule, reset the password, and review mail sent and forwarded since. 4. If the user did make it "
            "(a genuine newsletter filter), dismiss with a suppression for this rule name."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2023/06/08/detecting-and-mitigating-a-multi-stage-aitm-phishing-and-bec-campaign/",
        false_positives=("users filing newsletters or notifications with delete or move rules",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        rule = inbox_rule_from_event(event)
        if rule is None or rule.change == "remove" or not event.succeeded:
            return ()
        verdict = score_rule(rule, ctx.tenant)
        if not verdict.suspicious:
            return ()
        name = rule.name if rule.name is not None else "(unnamed)"
        return (
            self.finding(
                event,
                summary=f"Inbox rule {name!r} on {rule.mailbox or event.user_display}: " + "; ".join(verdict.reasons),
                severity=verdict.severity,
                dedup_key=f"{event.user_key}|{(rule.name or '').lower()}",
                context={
                    "rule_name": rule.name,
                    "mailbox": rule.mailbox,
                    "change": rule.change,
                    "source": rule.source,
                    "score": verdict.score,
                    "reasons": list(verdict.reasons),
                    "external_recipients": list(verdict.external_recipients),
                    "forward_to": list(rule.recipients),
                    "move_to_folder": rule.move_to_folder,
                    "delete": rule.delete,
                    "mark_as_read": rule.mark_as_read,
                    "rule_identity": rule.rule_identity,
                },
            ),
        )
