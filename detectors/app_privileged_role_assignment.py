"""Privileged application permissions granted: Graph app roles and tenant-wide delegated grants.

* "Add app role assignment to service principal." gives an app an application permission (no user
  involved): ``Mail.ReadWrite``/``Mail.Read`` reads every mailbox, ``full_access_as_app`` is EWS on
  every mailbox, ``RoleManagement.ReadWrite.Directory``, ``Application.ReadWrite.All`` and
  ``AppRoleAssignment.ReadWrite.All`` let the app make itself Global Administrator. The role is read
  from ``AppRole.Value`` or, when only ``AppRole.Id`` is there, from the well-known Graph role ids.
* "Add delegated permission grant." with ``ConsentType`` AllPrincipals: delegated scopes for every
  user of the tenant. Per-user grants are left to `app_risky_consent`, which sees their consent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.consent import app_target, scope_risk
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

APP_ROLE_OP = "add app role assignment to service principal"
DELEGATED_OP = "add delegated permission grant"
GRAPH_APP_ROLE_IDS = {
    "dc890d15-9560-4a4c-9b7f-a736ec74ec40": "full_access_as_app",
    "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8": "RoleManagement.ReadWrite.Directory",
    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9": "Application.ReadWrite.All",
    "06b708a9-e830-4db3-a914-8e69da51d44f": "AppRoleAssignment.ReadWrite.All",
    "e2a3a72e-5f79-4c64-b1b1-878b674786c9": "Mail.ReadWrite",
    "810c84a8-4a9e-49e6-bf7d-12d183f40d01": "Mail.Read",
    "b633e1c5-b582-4048-a93e-9f11b44c7e96": "Mail.Send",
    "19dbc75e-c2e2-444c-a770-ec69d8559fc7": "Directory.ReadWrite.All",
    "75359482-378d-4052-8f01-80520e7db3cd": "Files.ReadWrite.All",
    "a82116e5-55eb-4c41-a434-62fe8a61c773": "Sites.FullControl.All",
}
"""Well-known application-permission (app role) ids of Microsoft Graph and Exchange Online."""
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _clean(value: str) -> str:
    return value.strip().strip('"[]').strip().strip('"')


class AppPrivilegedRoleAssignment(Detector):
    meta = DetectorMeta(
        id="app_privileged_role_assignment",
        title="Privileged permission granted to an application",
        description=(
            "An application was granted a privileged Graph or Exchange application permission (mail, files, "
            "directory write, role or app management, full_access_as_app), or delegated risky scopes for all users."
        ),
        category=Category.ROGUE_APP,
        severity=Severity.HIGH,
        mitre=("T1098.003",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({APP_ROLE_OP, DELEGATED_OP}),
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open Entra ID > Enterprise applications > the app > Permissions and confirm the granted permission and "
            "who granted it. 2. Check whether the app is a known, verified integration and whether the actor signed "
            "in from an unusual place just before. 3. If not sanctioned: remove the assignment "
            "(Remove-MgServicePrincipalAppRoleAssignment) or grant (Remove-MgOauth2PermissionGrant), disable the "
            "service principal, remove its credentials, and review its sign-ins and the mail or files it reached."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2024/01/25/midnight-blizzard-guidance-for-responders-on-nation-state-attack/",
        false_positives=("a sanctioned backup, archiving or security integration being set up",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        if event.op == APP_ROLE_OP:
            return self._app_role(event, ctx)
        return self._delegated(event, ctx)

    def _app_role(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        mp = event.modified_properties
        role = _clean(mp.get("approle.value", ("", ""))[1])
        role_id = _GUID.search(mp.get("approle.id", ("", ""))[1])
        if not role and role_id:
            role = GRAPH_APP_ROLE_IDS.get(role_id.group(0).lower(), "")
        risk_scopes = scope_risk([role]) if role else scope_risk([])
        if not risk_scopes.risky:
            return ()
        app_name = _clean(mp.get("serviceprincipal.displayname", ("", ""))[1]) or None
        app_id = _clean(mp.get("serviceprincipal.appid", ("", ""))[1]) or None
        resource = app_target(event).display_name
        severity = Severity.CRITICAL if risk_scopes.level >= 3 else Severity.HIGH
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        shown = app_name or app_id or "an application"
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} granted {shown!r} the application permission {role}"
                + (f" on {resource}" if resource else "")
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{app_id or shown}|{role.lower()}",
                context={
                    "kind": "app_role",
                    "permission": role,
                    "app_role_id": role_id.group(0).lower() if role_id else None,
                    "app_display_name": app_name,
                    "app_id": app_id,
                    "resource": resource,
                    "scope_categories": sorted(risk_scopes.categories),
                    "risk": risk_context(risk),
                },
            ),
        )

    def _delegated(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        mp = event.modified_properties
        consent_type = _clean(mp.get("delegatedpermissiongrant.consenttype", ("", ""))[1])
        if consent_type.lower() != "allprincipals":
            return ()
        old_scopes = set(_clean(mp.get("delegatedpermissiongrant.scope", ("", ""))[0]).split())
        scopes = [
            s for s in _clean(mp.get("delegatedpermissiongrant.scope", ("", ""))[1]).split() if s not in old_scopes
        ]
        risk_scopes = scope_risk(scopes)
        if not risk_scopes.risky:
            return ()
        target = app_target(event)
        severity = Severity.CRITICAL if risk_scopes.level >= 3 else Severity.HIGH
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        shown = target.display_name or target.app_id or target.service_principal_id or "an application"
        scope_text = " ".join(risk_scopes.risky_scopes) + (" offline_access" if risk_scopes.offline_access else "")
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} granted {shown!r} delegated {scope_text} for all users"
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{target.app_id or target.service_principal_id or shown}|delegated",
                context={
                    "kind": "delegated_all_principals",
                    "permission": " ".join(scopes),
                    "risky_scopes": list(risk_scopes.risky_scopes),
                    "app_display_name": target.display_name,
                    "app_id": target.app_id,
                    "service_principal_id": target.service_principal_id,
                    "scope_categories": sorted(risk_scopes.categories),
                    "risk": risk_context(risk),
                },
            ),
        )
