"""Mailbox-level forwarding to an address outside the tenant (``Set-Mailbox -ForwardingSmtpAddress``).

``ForwardingSmtpAddress`` names an SMTP address; ``ForwardingAddress`` names a recipient, which an
attacker first creates as a mail contact for the outside address (``New-MailContact``). The
detector remembers the tenant's recently created external contacts so a forward to one is read as
external. Removals (empty values) and internal destinations are not alerts; changes made by the
Exchange system account (``NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)``, any case) are
ignored.
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
from shared.records.exchange import addresses, is_empty_value, is_system_account

CONTACT_OPS = frozenset({"new-mailcontact", "set-mailcontact"})
MAX_CONTACTS = 40
CONTACT_MEMORY_S = 30 * 86400


class ExchangeMailboxForwarding(Detector):
    meta = DetectorMeta(
        id="exchange_mailbox_forwarding",
        title="Mailbox forwarding to an external address",
        description=(
            "Set-Mailbox set ForwardingSmtpAddress or ForwardingAddress to a destination outside the tenant's "
            "domains (directly, or through a mail contact created for an outside address): every message the "
            "mailbox receives is copied out, often while the user keeps seeing it."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        mitre=("T1114.003",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"set-mailbox"}) | CONTACT_OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.TENANT_CONFIG, Need.TENANT_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Confirm the forwarding on the mailbox: Get-Mailbox <mailbox> | Format-List "
            "ForwardingSmtpAddress,ForwardingAddress,DeliverToMailboxAndForward. 2. Ask the mailbox owner and the "
            "admin who made the change whether the destination is expected; check the actor's sign-ins in the hour "
            "before for VPN, hosting or a new country. 3. If not expected: clear it (Set-Mailbox <mailbox> "
            "-ForwardingSmtpAddress $null -ForwardingAddress $null), revoke the actor's sessions, reset the password, "
            "and review what was forwarded since in message trace. 4. Block automatic external forwarding in the "
            "outbound spam policy if the tenant does not need it."
        ),
        reference="https://learn.microsoft.com/en-us/defender-office-365/outbound-spam-policies-external-email-forwarding",
        false_positives=(
            "an approved forward to a partner or personal address (add its domain to approved destinations)",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        if event.op in CONTACT_OPS:
            self._remember_contact(event, ctx)
            return ()
        p = event.parameters
        targets: list[tuple[str, str]] = []
        for param in ("forwardingsmtpaddress", "forwardingaddress"):
            value = p.get(param)
            if value is None or is_empty_value(value):
                continue
            found = addresses(value)
            if not found and param == "forwardingaddress":
                contact = ctx.tenant_state(self.meta.id).get("contacts", {}).get(value.strip().lower())
                if isinstance(contact, list) and contact:
                    found = (str(contact[0]),)
            targets.extend((param, a) for a in found)
        if not targets:
            return ()
        mailbox = p.get("identity") or event.record.ObjectId or event.upn or "unknown mailbox"
        home = home_domains_of(mailbox, event.upn)
        external = [(param, a) for param, a in targets if not is_internal_recipient(a, ctx.tenant, home_domains=home)]
        if not external:
            return ()
        keep_copy = p.get("delivertomailboxandforward")
        hidden = keep_copy is not None and keep_copy.strip().lower() in ("false", "$false", "0")
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.HIGH, risk)
        dest = ", ".join(a for _, a in external)
        summary = f"{event.user_display} set mailbox forwarding on {mailbox} to {dest}" + risk_note(risk)
        if hidden:
            summary += " without keeping a copy in the mailbox"
        return (
            self.finding(
                event,
                summary=summary,
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{external[0][1]}",
                context={
                    "mailbox": mailbox,
                    "destinations": [a for _, a in external],
                    "parameters": sorted({param for param, _ in external}),
                    "deliver_to_mailbox_and_forward": None if keep_copy is None else not hidden,
                    "actor": event.user_display,
                    "risk": risk_context(risk),
                },
            ),
        )

    def _remember_contact(self, event: Event, ctx: DetectionContext) -> None:
        p = event.parameters
        found = addresses(p.get("externalemailaddress", ""))
        if not found:
            return
        state = ctx.tenant_state(self.meta.id)
        contacts: dict[str, Any] = state.setdefault("contacts", {})
        for key in ("name", "alias", "displayname", "identity"):
            v = p.get(key)
            if v and not is_empty_value(v):
                contacts[v.strip().lower()] = [found[0], event.time]
        stale = [
            k for k, v in contacts.items() if not isinstance(v, list) or event.time - float(v[1]) > CONTACT_MEMORY_S
        ]
        for k in stale:
            contacts.pop(k)
        if len(contacts) > MAX_CONTACTS:
            for k, _ in sorted(contacts.items(), key=lambda kv: float(kv[1][1]))[: len(contacts) - MAX_CONTACTS]:
                contacts.pop(k)
