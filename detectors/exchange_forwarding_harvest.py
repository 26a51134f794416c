"""Several mailboxes of a tenant forwarding to the same outside address: one attacker harvesting many victims.

Each inbox rule (every source ``shared.records.exchange`` reads) and each ``Set-Mailbox`` forwarding that sends
mail outside the tenant is remembered in tenant-wide state, per destination address: which mailbox, when, and
the record. When `MIN_MAILBOXES` distinct mailboxes forward to one address within `WINDOW_S`, the pattern is
raised (one forward can be a user's own mistake; three mailboxes feeding one Gmail address is a campaign). The
per-mailbox detectors still report each forward; this one names the campaign and its victims. The alert
belongs to the user whose forward completed the pattern (its record is the first evidence), so it joins that
user's incident; each later victim of the same address opens its own alert, in its own incident.

High; a risky sign-in of the actor of the latest forward (or a risky address) raises it to critical. State is
bounded: at most `MAX_DESTINATIONS` addresses and `MAX_PER_DESTINATION` mailboxes each, forgotten after
`WINDOW_S`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.records.event import Event
from shared.records.exchange import INBOX_RULE_OPS, addresses, inbox_rule_from_event, is_empty_value, is_system_account

SET_MAILBOX = "set-mailbox"
MIN_MAILBOXES = 3
WINDOW_S = 14 * 86400
MAX_DESTINATIONS = 40
MAX_PER_DESTINATION = 10


def _forwards(event: Event) -> tuple[str | None, tuple[str, ...]]:
    """(mailbox, destination addresses) of a forwarding change, or (None, ())."""
    if event.op == SET_MAILBOX:
        p = event.parameters
        dests: list[str] = []
        for param in ("forwardingsmtpaddress", "forwardingaddress"):
            value = p.get(param)
            if value and not is_empty_value(value):
                dests.extend(addresses(value))
        mailbox = p.get("identity") or event.record.ObjectId or event.upn
        return (mailbox.strip().lower() if mailbox else None), tuple(dict.fromkeys(dests))
    rule = inbox_rule_from_event(event)
    if rule is None or rule.change == "remove" or rule.enabled is False:
        return None, ()
    return (rule.mailbox or event.upn), rule.recipients


class ExchangeForwardingHarvest(Detector):
    meta = DetectorMeta(
        id="exchange_forwarding_harvest",
        title="Several mailboxes forwarding to one outside address",
        description=(
            f"At least {MIN_MAILBOXES} mailboxes of the tenant forward mail (inbox rules or mailbox forwarding) to the "
            "same address outside the tenant within two weeks: one attacker collecting the mail of many compromised "
            "accounts."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        mitre=("T1114.003",),
        dedup_window=timedelta(days=14),
        operations=INBOX_RULE_OPS | {SET_MAILBOX},
        needs=(Need.EXCHANGE_ADMIN, Need.MAILBOX_AUDIT, Need.TENANT_CONFIG, Need.TENANT_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the mailboxes in the alert and check each one's rules and forwarding (Get-InboxRule -Mailbox <m> "
            "-IncludeHidden; Get-Mailbox <m> | Format-List ForwardingSmtpAddress,ForwardingAddress). 2. Treat every "
            "listed account as compromised: revoke sessions, reset passwords, review MFA methods, remove the rules "
            "and forwarding. 3. Block the destination address or domain in a transport rule and the outbound spam "
            "policy, and run a message trace to it to size what left. 4. Look for the phishing mail that reached "
            "these users."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2023/06/08/detecting-and-mitigating-a-multi-stage-aitm-phishing-and-bec-campaign/",
        false_positives=(
            "a shared outside service (ticketing, CRM, archiving) that several users forward to on purpose: add its "
            "domain to the tenant's approved forwarding domains",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        mailbox, dests = _forwards(event)
        if not mailbox or not dests:
            return ()
        home = home_domains_of(mailbox, event.upn)
        external = [d for d in dests if not is_internal_recipient(d, ctx.tenant, home_domains=home)]
        if not external:
            return ()
        state = ctx.tenant_state(self.meta.id)
        table: dict[str, Any] = state.setdefault("dest", {})
        findings: list[Finding] = []
        for dest in external:
            entries = [e for e in table.get(dest) or [] if isinstance(e, list) and len(e) == 3]
            entries = [e for e in entries if event.time - float(e[1]) <= WINDOW_S and e[0] != mailbox]
            entries.append([mailbox, event.time, event.record_id])
            table[dest] = entries[-MAX_PER_DESTINATION:]
            victims = list(dict.fromkeys(str(e[0]) for e in table[dest]))
            if len(victims) >= MIN_MAILBOXES:
                findings.append(self._finding(event, ctx, dest, table[dest], victims))
        self._prune(table, event.time)
        return findings

    def _finding(
        self, event: Event, ctx: DetectionContext, dest: str, entries: list[list[Any]], victims: list[str]
    ) -> Finding:
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.HIGH, risk)
        summary = f"{len(victims)} mailboxes forward mail to {dest}: {', '.join(victims)}" + risk_note(risk)
        return self.finding(
            event,
            summary=summary,
            severity=severity,
            dedup_key=dest,
            evidence=[event.record_id, *(str(e[2]) for e in entries if e[2] != event.record_id)],
            first_seen=min(float(e[1]) for e in entries),
            context={
                "destination": dest,
                "mailboxes": victims,
                "latest_mailbox": victims[-1],
                "risk": risk_context(risk),
            },
        )

    @staticmethod
    def _prune(table: dict[str, Any], now: float) -> None:
        for dest in [d for d, v in table.items() if not v or now - float(v[-1][1]) > WINDOW_S]:
            table.pop(dest)
        if len(table) > MAX_DESTINATIONS:
            oldest = sorted(table, key=lambda d: float(table[d][-1][1]))[: len(table) - MAX_DESTINATIONS]
            for dest in oldest:
                table.pop(dest)
