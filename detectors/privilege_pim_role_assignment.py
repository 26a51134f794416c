"""A privileged Entra role made eligible (or active) through Privileged Identity Management.

An eligible assignment is a standing path to the role: the member activates it when they like (often with only
the MFA the attacker already controls). Read from the directory records of PIM and of the role service:
"Add eligible member to role in PIM completed (permanent|timebound)", "Add member to role in PIM completed
(permanent|timebound)" and the core directory's "Add eligible member to role." The role is read from
``ModifiedProperties`` (``Role.DisplayName``, ``Role.TemplateId``) or, when only the target names it, from the
``Target`` entries (a role name or a well-known role template id).

Tenant-takeover roles (Global, Privileged Role, Privileged Authentication Administrator) are high when eligible,
critical when active; the other admin roles medium when eligible, high when active; other roles are not
reported. A risky sign-in of the actor shortly before (or a risky address) raises each one step; a permanent
eligible assignment is called out in the summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from detectors.privilege_admin_role_grant import ADMIN_ROLES, ROLE_TEMPLATES, TAKEOVER_ROLES
from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

ELIGIBLE_OPS = frozenset(
    {
        "add eligible member to role in pim completed (permanent)",
        "add eligible member to role in pim completed (timebound)",
        "add eligible member to role",
    }
)
ACTIVE_OPS = frozenset(
    {
        "add member to role in pim completed (permanent)",
        "add member to role in pim completed (timebound)",
    }
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KNOWN_ROLES = {r: r for r in TAKEOVER_ROLES | ADMIN_ROLES}


def _clean(value: str) -> str:
    return value.strip().strip('"[]').strip().strip('"')


def _role(event: Event) -> tuple[str, str | None]:
    """(role display name, template id) from ModifiedProperties, else from Target."""
    mp = event.modified_properties
    name = _clean(mp.get("role.displayname", ("", ""))[1])
    m = _GUID.search(mp.get("role.templateid", ("", ""))[1])
    template = m.group(0).lower() if m else None
    if not name and template:
        name = ROLE_TEMPLATES.get(template, "")
    if name:
        return name, template
    for t in event.targets:
        ident = (t.ID or "").strip()
        if ident.lower() in _KNOWN_ROLES:
            return ident, template
        if ident.lower() in ROLE_TEMPLATES:
            return ROLE_TEMPLATES[ident.lower()], ident.lower()
    return "", template


def _member(event: Event) -> str:
    for t in event.targets:
        if t.ID and "@" in t.ID:
            return t.ID.lower()
    return (event.record.ObjectId or "").strip() or "unknown member"


class PrivilegePimRoleAssignment(Detector):
    meta = DetectorMeta(
        id="privilege_pim_role_assignment",
        title="Privileged role assigned through PIM",
        description=(
            "Privileged Identity Management made a user eligible for (or active in) a privileged Entra role such as "
            "Global Administrator: a standing path to the role that survives the removal of any active assignment."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.HIGH,
        mitre=("T1098.003",),
        dedup_window=timedelta(hours=24),
        operations=ELIGIBLE_OPS | ACTIVE_OPS,
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open Entra ID > Privileged Identity Management > Microsoft Entra roles > Assignments and find the "
            "member's eligible and active assignments. 2. Check for an approved request or change ticket and who "
            "approved it; check the actor's sign-ins just before (VPN, hosting, new country). 3. If not approved: "
            "remove the assignment, revoke the member's and actor's sessions, reset their passwords, and review the "
            "PIM activation history and what any activation did."
        ),
        reference="https://learn.microsoft.com/en-us/entra/id-governance/privileged-identity-management/pim-how-to-add-role-to-user",
        false_positives=("admins onboarded through an approved PIM request",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        role, template = _role(event)
        low = role.lower()
        active = event.op in ACTIVE_OPS
        if low in TAKEOVER_ROLES:
            severity = Severity.CRITICAL if active else Severity.HIGH
        elif low in ADMIN_ROLES:
            severity = Severity.HIGH if active else Severity.MEDIUM
        else:
            return ()
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        member = _member(event)
        kind = "active" if active else "eligible"
        permanent = "(permanent)" in event.op
        summary = f"{actor_display(event)} made {member} {kind} for {role}"
        if permanent:
            summary += " permanently"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{member}|{low}|{kind}",
                context={
                    "role": role,
                    "role_template_id": template,
                    "member": member,
                    "assignment": kind,
                    "permanent": permanent,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
