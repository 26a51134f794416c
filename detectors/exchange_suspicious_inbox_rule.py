"""An inbox rule that hides, deletes or forwards mail: the classic business-email-compromise move.

Every source of rules is read (``New-/Set-/Enable-InboxRule`` with ``Parameters`` as a list or a
JSON string, and Outlook/API ``UpdateInboxRules`` with no ``Parameters`` at all). ``Set-InboxRule``
carries only the parameters it changes, so the user's recently seen rules are remembered (a few,
compactly) and a change is judged on the whole rule it produces; an ``Enable-InboxRule`` of a
remembered hiding rule is judged the same way. A risky sign-in of the same user shortly before
(see shared.detection.signals) and the mailbox owner's own name in the conditions add to the score.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import risk_context, risk_of
from shared.detection.inbox_rules import home_domains_of, owner_names, score_rule
from shared.records.event import Event
from shared.records.exchange import INBOX_RULE_OPS, InboxRule, inbox_rule_from_event

MAX_REMEMBERED = 8
REMEMBER_S = 90 * 86400


def _keys(rule: InboxRule, event: Event) -> list[str]:
    keys: list[str] = []
    identity = event.parameters.get("identity") if event.op != "updateinboxrules" else None
    if identity:
        tail = identity.rsplit("\\", 1)[-1].strip().lower()
        if tail:
            keys.append(tail)
    if rule.rule_identity is not None:
        keys.append(str(rule.rule_identity))
    if rule.name:
        keys.append(rule.name.strip().lower())
    return list(dict.fromkeys(keys))


class ExchangeSuspiciousInboxRule(Detector):
    meta = DetectorMeta(
        id="exchange_suspicious_inbox_rule",
        title="Suspicious inbox rule",
        description=(
            "An inbox rule was created, changed or re-enabled that forwards or redirects mail outside the tenant, "
            "deletes it, moves it to a folder people do not read (RSS Feeds, Conversation History, Deleted Items, "
            "Archive, Junk), marks it as read, conditions on finance or security words or the owner's own name, or "
            "has an obfuscated name; a risky sign-in shortly before raises the score."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        mitre=("T1564.008", "T1114.003"),
        dedup_window=timedelta(hours=24),
        operations=INBOX_RULE_OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.MAILBOX_AUDIT, Need.TENANT_CONFIG, Need.RISKY_SIGNIN, Need.USER_HISTORY),
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
        if rule is None or not event.succeeded:
            return ()
        # Rules are remembered per user; a record with no user (a system account) is judged on its own.
        remembered: dict[str, Any] = (
            ctx.state(event, self.meta.id).setdefault("rules", {}) if event.user_key is not None else {}
        )
        keys = _keys(rule, event)
        if rule.change == "remove":
            for k in keys:
                remembered.pop(k, None)
            return ()
        completed_from_memory = False
        if rule.partial:
            prior = next((remembered[k] for k in keys if isinstance(remembered.get(k), list)), None)
            if prior is not None and len(prior) == 2 and isinstance(prior[1], dict):
                rule = InboxRule.from_state(prior[1], mailbox=rule.mailbox).overlay(rule)
                completed_from_memory = True
        risk = risk_of(ctx, event)
        verdict = score_rule(
            rule,
            ctx.tenant,
            victim_names=owner_names(rule.mailbox, event.upn),
            risky_session=risk is not None,
            home_domains=home_domains_of(rule.mailbox, event.upn),
        )
        if verdict.score > 0:
            self._remember(remembered, keys, rule, event.time)
        if not verdict.suspicious:
            return ()
        name = rule.name if rule.name is not None else "(unnamed)"
        verb = {"enable": "re-enabled", "modify": "changed", "create": "created"}.get(rule.change, rule.change)
        return (
            self.finding(
                event,
                summary=(
                    f"Inbox rule {name!r} {verb} on {rule.mailbox or event.user_display}: " + "; ".join(verdict.reasons)
                ),
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
                    "completed_from_earlier_change": completed_from_memory,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _remember(remembered: dict[str, Any], keys: list[str], rule: InboxRule, now: float) -> None:
        if not keys:
            return
        compact = rule.to_state()
        for k in keys:
            remembered[k] = [now, compact]
        stale = [k for k, v in remembered.items() if not isinstance(v, list) or now - float(v[0]) > REMEMBER_S]
        for k in stale:
            remembered.pop(k)
        if len(remembered) > MAX_REMEMBERED:
            for k, _ in sorted(remembered.items(), key=lambda kv: float(kv[1][0]))[: len(remembered) - MAX_REMEMBERED]:
                remembered.pop(k)
