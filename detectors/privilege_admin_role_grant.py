"""A member added to a privileged Entra directory role (Global Administrator, Exchange Administrator...).

"Add member to role." names the role in ``ModifiedProperties`` (``Role.DisplayName``,
``Role.TemplateId``, ``Role.WellKnownObjectName``) and the new member in ``Target``. Tenant-takeover
roles (Global, Privileged Role, Privileged Authentication Administrator, and the legacy "Company
Administrator" name) are critical; the other admin roles listed here high. Roles that only read
(Global Reader, Reports Reader...) are not reported. Raised when the actor had a risky sign-in or
is an application.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import actor_display, risk_context, risk_note, risk_of
from shared.records.event import Event, as_int

TAKEOVER_ROLES = frozenset(
    {
        "global administrator",
        "company administrator",
        "privileged role administrator",
        "privileged authentication administrator",
    }
)
ADMIN_ROLES = frozenset(
    {
        "exchange administrator",
        "application administrator",
        "cloud application administrator",
        "security administrator",
        "sharepoint administrator",
        "user administrator",
        "authentication administrator",
        "authentication policy administrator",
        "conditional access administrator",
        "hybrid identity administrator",
        "intune administrator",
        "helpdesk administrator",
        "password administrator",
        "compliance administrator",
        "teams administrator",
        "directory synchronization accounts",
        "domain name administrator",
        "external identity provider administrator",
        "partner tier2 support",
        "exchange recipient administrator",
        "groups administrator",
    }
)
ROLE_TEMPLATES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
}
"""Well-known role template ids, for records that carry the id but not the name."""
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _clean(value: str) -> str:
    return value.strip().strip('"[]').strip().strip('"')


class PrivilegeAdminRoleGrant(Detector):
    meta = DetectorMeta(
        id="privilege_admin_role_grant",
        title="Privileged directory role granted",
        description=(
            "A user, group or service principal was added to a privileged Entra ID role such as Global Administrator, "
            "Privileged Role Administrator, Exchange Administrator or Application Administrator."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.HIGH,
        mitre=("T1098.003",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"add member to role"}),
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Confirm the assignment in Entra ID > Roles and administrators > the role > Assignments. 2. Check for a "
            "change ticket or PIM request; a direct permanent assignment outside PIM is itself unusual. 3. Check the "
            "actor's sign-ins just before (VPN, hosting, new country) and whether the actor is an app. 4. If not "
            "approved: remove the member, revoke their sessions, and review what they did with the role."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/permissions-reference",
        false_positives=("approved admin onboarding outside PIM",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        mp = event.modified_properties
        role = _clean(mp.get("role.displayname", ("", ""))[1])
        template = _GUID.search(mp.get("role.templateid", ("", ""))[1])
        if not role and template:
            role = ROLE_TEMPLATES.get(template.group(0).lower(), "")
        if not role and _clean(mp.get("role.wellknownobjectname", ("", ""))[1]).lower() in ("tenantadmins",):
            role = "Global Administrator"
        low = role.lower()
        if low in TAKEOVER_ROLES:
            severity = Severity.CRITICAL
        elif low in ADMIN_ROLES:
            severity = Severity.HIGH
        else:
            return ()
        member = next((t.ID for t in event.targets if t.ID and "@" in t.ID), None)
        if member is None:
            member = event.record.ObjectId or next(
                (t.ID for t in event.targets if t.ID and not t.ID.lower().startswith(("user", "serviceprincipal"))),
                "unknown member",
            )
        by_app = as_int(event.record.UserType) in (5, 6) or any(
            (a.ID or "").lower().startswith("serviceprincipal") for a in event.actors
        )
        risk = risk_of(ctx, event)
        if risk is not None or by_app:
            severity = severity.upgrade()
        summary = f"{actor_display(event)} added {member} to {role}"
        if by_app:
            summary += " (the actor is an application)"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{str(member).lower()}|{low}",
                context={
                    "role": role,
                    "role_template_id": template.group(0).lower() if template else None,
                    "member": member,
                    "actor_is_application": by_app,
                    "risk": risk_context(risk),
                },
            ),
        )
