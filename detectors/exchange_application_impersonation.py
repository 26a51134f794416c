"""The ApplicationImpersonation role assigned: an app or account that can open every mailbox through EWS.

``New-ManagementRoleAssignment -Role ApplicationImpersonation`` (to a user, a group or an app).
Microsoft blocked new assignments in 2024 and retired the role in February 2025, so an attempt
(``ResultStatus`` "False") is reported too: it says someone tried.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event
from shared.records.exchange import is_system_account

ROLE = "applicationimpersonation"


class ExchangeApplicationImpersonation(Detector):
    meta = DetectorMeta(
        id="exchange_application_impersonation",
        title="ApplicationImpersonation role assigned",
        description=(
            "New-ManagementRoleAssignment gave the ApplicationImpersonation role to a user, group or app (or tried "
            "to): it lets the holder act as any mailbox through EWS."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.HIGH,
        mitre=("T1098.002",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"new-managementroleassignment"}),
        needs=(Need.EXCHANGE_ADMIN, Need.RISKY_SIGNIN),
        runbook=(
            "1. List impersonation holders: Get-ManagementRoleAssignment -Role ApplicationImpersonation "
            "-GetEffectiveUsers. 2. Ask the Exchange admins whether a migration or archiving tool needs it "
            "(modern tools use application access policies or RBAC for Applications instead). 3. If not: remove the "
            "assignment "
            "(Remove-ManagementRoleAssignment), investigate the actor's sign-ins, and review EWS access "
            "(MailItemsAccessed with Client=WebServices) by the assignee."
        ),
        reference="https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/impersonation-and-ews-in-exchange",
        false_positives=("legacy migration tools configured by Exchange admins",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        p = event.parameters
        role = (p.get("role") or "").strip().strip('"').lower()
        if not role.endswith(ROLE) or is_system_account(event):
            return ()
        assignee = p.get("user") or p.get("app") or p.get("securitygroup") or p.get("policy") or "unknown"
        scope = p.get("customrecipientwritescope") or p.get("recipientrelativewritescope") or None
        risk = risk_of(ctx, event)
        ok = event.succeeded
        severity = raise_for_risk(Severity.HIGH if ok else Severity.MEDIUM, risk)
        verb = "assigned" if ok else "tried to assign (failed)"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} {verb} ApplicationImpersonation to {assignee}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{assignee.lower()}|{'ok' if ok else 'failed'}",
                context={
                    "assignee": assignee,
                    "assignment_name": p.get("name"),
                    "scope": scope,
                    "succeeded": ok,
                    "result_status": event.record.ResultStatus,
                    "risk": risk_context(risk),
                },
            ),
        )
