"""Auditing switched off: the unified audit log, a mailbox's audit log, or an audit bypass.

* ``Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $false``: the tenant's audit log stops
  (this very feed goes quiet) — critical;
* ``Set-OrganizationConfig -AuditDisabled $true``: mailbox auditing off for the organisation — critical;
* ``Set-Mailbox -AuditEnabled $false``: one mailbox's audit log off (Exchange system changes ignored);
* ``Set-MailboxAuditBypassAssociation -AuditBypassEnabled $true``: an account whose mailbox access
  is never audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event
from shared.records.exchange import is_system_account

FALSE = frozenset({"false", "$false", "0"})
TRUE = frozenset({"true", "$true", "1"})


class DefenseAuditDisabled(Detector):
    meta = DetectorMeta(
        id="defense_audit_disabled",
        title="Audit logging disabled",
        description=(
            "Unified audit log ingestion, organisation-wide or per-mailbox auditing was turned off, or an account was "
            "set to bypass mailbox auditing: an attacker removing the evidence trail."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.HIGH,
        mitre=("T1562.008",),
        dedup_window=timedelta(hours=24),
        operations=frozenset(
            {"set-adminauditlogconfig", "set-organizationconfig", "set-mailbox", "set-mailboxauditbypassassociation"}
        ),
        needs=(Need.EXCHANGE_ADMIN, Need.RISKY_SIGNIN),
        runbook=(
            "1. Re-enable at once: Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true, "
            "Set-OrganizationConfig -AuditDisabled $false, Set-Mailbox <m> -AuditEnabled $true, or "
            "Set-MailboxAuditBypassAssociation <id> -AuditBypassEnabled $false. 2. Treat the actor as compromised "
            "until proven otherwise: review their sign-ins and admin actions around the change. 3. Expect a gap in "
            "this service's data for the affected period; search other logs (Entra sign-ins, message trace) for it."
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-enable-disable",
        false_positives=("an admin deliberately excluding a service account from mailbox auditing",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        p = event.parameters
        what: str | None = None
        target = p.get("identity") or event.record.ObjectId or "the organisation"
        severity = Severity.HIGH
        if event.op == "set-adminauditlogconfig" and _is(p.get("unifiedauditlogingestionenabled"), FALSE):
            what, severity, target = "turned off unified audit log ingestion", Severity.CRITICAL, "the tenant"
        elif event.op == "set-organizationconfig" and _is(p.get("auditdisabled"), TRUE):
            what, severity, target = "disabled mailbox auditing for the organisation", Severity.CRITICAL, "the tenant"
        elif event.op == "set-mailbox" and _is(p.get("auditenabled"), FALSE) and not is_system_account(event):
            what = f"disabled mailbox auditing on {target}"
        elif event.op == "set-mailboxauditbypassassociation" and _is(p.get("auditbypassenabled"), TRUE):
            what = f"set {target} to bypass mailbox auditing"
        if what is None:
            return ()
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        return (
            self.finding(
                event,
                summary=f"{event.user_display} {what}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.op}|{target.lower()}",
                context={"cmdlet": event.record.Operation, "target": target, "risk": risk_context(risk)},
            ),
        )


def _is(value: str | None, allowed: frozenset[str]) -> bool:
    return value is not None and value.strip().lower() in allowed
