"""A member added to a privileged Exchange Online role group ("Organization Management" above all).

Exchange role groups grant their own, Exchange-side admin rights, outside Entra directory roles: a member of
Organization Management can create transport rules, assign ApplicationImpersonation, read audit settings and
change every mailbox. Read from ``Add-RoleGroupMember`` (``Identity`` = the group, ``Member`` = who),
``Update-RoleGroupMember`` (``Members``: the new list) and ``New-RoleGroup`` (``Members``), in any
``Parameters`` shape. ``Identity`` may be the group name or its distinguished path (``.../Organization Management``).

Organization Management and Discovery Management (search every mailbox) are high; Recipient, Hygiene (anti-spam
and anti-malware settings), Compliance, Records Management and Security Administrator medium; other groups low;
read-only groups (View-Only Organization Management, Security Reader...) are not reported. A risky sign-in of
the actor shortly before (or a risky address) raises each one step.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event
from shared.records.exchange import is_empty_value, is_system_account

OPS = frozenset({"add-rolegroupmember", "update-rolegroupmember", "new-rolegroup"})
GROUP_SEVERITY = {
    "organization management": Severity.HIGH,
    "discovery management": Severity.HIGH,
    "recipient management": Severity.MEDIUM,
    "hygiene management": Severity.MEDIUM,
    "compliance management": Severity.MEDIUM,
    "records management": Severity.MEDIUM,
    "security administrator": Severity.MEDIUM,
}
READ_ONLY_GROUPS = frozenset({"view-only organization management", "security reader", "view-only recipients"})


def _group(event: Event) -> str:
    p = event.parameters
    raw = p.get("identity") or p.get("name") or event.record.ObjectId or ""
    return raw.replace("\\", "/").rsplit("/", 1)[-1].strip().strip("\"'")


def _members(event: Event) -> list[str]:
    p = event.parameters
    raw = p.get("member") or p.get("members") or ""
    if is_empty_value(raw):
        return []
    parts = raw.replace(";", ",").split(",")
    return [m for m in (x.strip().strip("\"'[]").strip() for x in parts) if m]


class PrivilegeRoleGroupMember(Detector):
    meta = DetectorMeta(
        id="privilege_role_group_member",
        title="Member added to a privileged Exchange role group",
        description=(
            "A member was added to an Exchange Online role group such as Organization Management or Discovery "
            "Management: Exchange-wide admin rights (transport rules, impersonation, every mailbox) that Entra role "
            "reviews do not show."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.HIGH,
        mitre=("T1098.003",),
        dedup_window=timedelta(hours=24),
        operations=OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the group's members: Get-RoleGroupMember 'Organization Management'. 2. Check for a change "
            "ticket; check the actor's sign-ins just before (VPN, hosting, new country). 3. If not approved: remove "
            "the member (Remove-RoleGroupMember '<group>' -Member <member>), revoke both accounts' sessions, reset "
            "their passwords, and review Exchange admin changes (transport rules, connectors, role assignments) made "
            "since."
        ),
        reference="https://learn.microsoft.com/en-us/exchange/permissions-exo/role-groups",
        false_positives=("an Exchange administrator onboarded by the mail team",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        group = _group(event)
        low = group.lower()
        members = _members(event)
        if not group or not members or low in READ_ONLY_GROUPS:
            return ()
        risk = risk_of(ctx, event)
        severity = raise_for_risk(GROUP_SEVERITY.get(low, Severity.LOW), risk)
        summary = f"{event.user_display} added {', '.join(members)} to Exchange role group {group!r}" + risk_note(risk)
        return (
            self.finding(
                event,
                summary=summary,
                severity=severity,
                dedup_key=f"{low}|{members[0].lower()}",
                context={
                    "role_group": group,
                    "members": members,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
