"""A mail-flow (transport) rule that copies, redirects or adds recipients outside the tenant.

A transport rule acts on every mailbox it matches, so one rule can copy the whole organisation's
mail out: ``BlindCopyTo``, ``RedirectMessageTo``, ``AddToRecipients``, ``CopyTo`` (and
``AddManagerAsRecipientType`` is ignored: the manager is internal). A ``New-TransportRule`` with
no condition at all applies to every message and is critical; a rule in audit-only mode or
created disabled is medium.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.records.event import Event
from shared.records.exchange import addresses, is_empty_value, is_system_account

ACTION_PARAMS = ("blindcopyto", "redirectmessageto", "addtorecipients", "copyto")
CONDITION_PREFIXES = (
    "from",
    "sentto",
    "recipient",
    "subject",
    "header",
    "attachment",
    "has",
    "messagetype",
    "messagesize",
    "withimportance",
    "anyof",
    "sender",
    "between",
    "managerfor",
    "senderdomainis",
    "recipientdomainis",
    "content",
    "scl",
)


class ExchangeTransportRuleForwarding(Detector):
    meta = DetectorMeta(
        id="exchange_transport_rule_forwarding",
        title="Transport rule sending mail outside the tenant",
        description=(
            "New-TransportRule or Set-TransportRule added an external address as a blind copy, redirect, copy or "
            "extra recipient: organisation-wide mail interception that survives password resets."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        mitre=("T1114.003",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"new-transportrule", "set-transportrule"}),
        needs=(Need.EXCHANGE_ADMIN, Need.TENANT_CONFIG, Need.RISKY_SIGNIN),
        runbook=(
            "1. Inspect the rule: Get-TransportRule '<name>' | Format-List Name,State,Mode,Priority,Conditions,"
            "BlindCopyTo,RedirectMessageTo,AddToRecipients,CopyTo. 2. Ask the Exchange admins whether it is a "
            "known journaling or archiving integration; check the actor's sign-ins for VPN, hosting or a new country. "
            "3. If unknown: disable it (Disable-TransportRule '<name>'), revoke the actor's sessions and reset their "
            "password, then run a message trace to the external address to see what left."
        ),
        reference="https://learn.microsoft.com/en-us/exchange/security-and-compliance/mail-flow-rules/mail-flow-rules",
        false_positives=("third-party archiving or journaling services addressed by a transport rule",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        p = event.parameters
        home = home_domains_of(event.upn)
        external: dict[str, list[str]] = {}
        for param in ACTION_PARAMS:
            value = p.get(param)
            if not value or is_empty_value(value):
                continue
            outside = [a for a in addresses(value) if not is_internal_recipient(a, ctx.tenant, home_domains=home)]
            if outside:
                external[param] = outside
        if not external:
            return ()
        name = p.get("name") or p.get("identity") or event.record.ObjectId or "(unnamed)"
        mode = (p.get("mode") or "").strip().lower()
        enabled = (p.get("enabled") or "").strip().lower()
        inactive = mode in ("audit", "auditandnotify") or enabled in ("false", "$false")
        every_message = event.op == "new-transportrule" and not any(k.startswith(CONDITION_PREFIXES) for k in p)
        risk = risk_of(ctx, event)
        if inactive:
            severity = Severity.MEDIUM
        elif every_message:
            severity = Severity.CRITICAL
        else:
            severity = Severity.HIGH
        severity = raise_for_risk(severity, risk)
        dests = sorted({a for v in external.values() for a in v})
        verb = "created" if event.op == "new-transportrule" else "changed"
        summary = f"Transport rule {name!r} {verb} by {event.user_display} sends mail to {', '.join(dests)}"
        if every_message:
            summary += " for every message"
        if inactive:
            summary += " (audit mode or disabled)"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{name.lower()}|{dests[0]}",
                context={
                    "rule_name": name,
                    "external": {k: v for k, v in sorted(external.items())},
                    "every_message": every_message,
                    "mode": p.get("mode"),
                    "enabled": p.get("enabled"),
                    "risk": risk_context(risk),
                },
            ),
        )
