"""Mail protocols switched on for a mailbox: the door a mail-sync tool needs.

``Set-CASMailbox`` turning on ``PopEnabled`` or ``ImapEnabled`` (legacy protocols that sync a whole mailbox to
any client: medium), ``EwsEnabled``, ``ActiveSyncEnabled`` or ``MAPIEnabled`` (low: a new phone or a
line-of-business app needs them). Raised two steps when the admin who ran it had a risky sign-in shortly
before; turning protocols off is not reported. Changes by the Exchange system account are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event, as_bool
from shared.records.exchange import is_system_account

SET_CAS = "set-casmailbox"
PROTOCOLS = {
    "popenabled": ("POP", Severity.MEDIUM),
    "imapenabled": ("IMAP", Severity.MEDIUM),
    "ewsenabled": ("EWS", Severity.LOW),
    "activesyncenabled": ("ActiveSync", Severity.LOW),
    "mapienabled": ("MAPI", Severity.LOW),
}


class ExchangeMailProtocolEnabled(Detector):
    meta = DetectorMeta(
        id="exchange_mail_protocol_enabled",
        title="Mail protocol enabled for a mailbox",
        description=(
            "Set-CASMailbox enabled POP, IMAP, EWS, ActiveSync or MAPI for a mailbox: the access a third-party mail "
            "client or sync tool needs to copy the mailbox; raised when the admin had a risky sign-in."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.LOW,
        mitre=("T1114.002", "T1098"),
        dedup_window=timedelta(hours=24),
        needs=(Need.EXCHANGE_ADMIN, Need.RISKY_SIGNIN),
        operations=frozenset({SET_CAS}),
        runbook=(
            "1. Check the mailbox's protocols: Get-CASMailbox <mailbox> | fl PopEnabled,ImapEnabled,EwsEnabled,"
            "ActiveSyncEnabled. 2. Ask the admin who ran it for the ticket (a scanner, a CRM connector, a new phone). "
            "3. If there is none: turn the protocol off again (Set-CASMailbox -PopEnabled $false ...), look for "
            "MailItemsAccessed Sync or POP/IMAP sign-ins for the mailbox since, and investigate the admin account."
        ),
        reference="https://learn.microsoft.com/en-us/powershell/module/exchange/set-casmailbox",
        false_positives=("helpdesk enabling a protocol for a device or an application that needs it",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        p = event.parameters
        enabled = [(name, sev) for key, (name, sev) in PROTOCOLS.items() if as_bool(p.get(key)) is True]
        if not enabled:
            return ()
        mailbox = (p.get("identity") or event.record.ObjectId or "").strip()
        severity = max((sev for _, sev in enabled), key=lambda s: s.rank)
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk, steps=2)
        names = [name for name, _ in enabled]
        return (
            self.finding(
                event,
                summary=f"{event.user_display} enabled {', '.join(names)} for {mailbox or 'a mailbox'}"
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{','.join(sorted(n.lower() for n in names))}",
                context={
                    "mailbox": mailbox or None,
                    "protocols": names,
                    "risk": risk_context(risk),
                },
            ),
        )
