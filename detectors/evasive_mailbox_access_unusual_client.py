"""Mail read through Graph/REST or EWS by a command-line client, a script or an app the tenant never saw.

``MailItemsAccessed`` records say how mail was read (``ClientInfoString``: ``Client=REST`` is
Graph/Outlook REST, ``Client=WebServices`` is EWS) and by which app (``AppId``). Two cases alert:

* a public client tool (Graph PowerShell, Azure CLI, a python or PowerShell script, an attack
  tool) reading a mailbox: once per user and app, again only after a month without it, so an
  admin's daily script does not alert daily;
* an app id this tenant has not been seen reading mail with before. The tenant's baseline is
  learned for `LEARNING_S` after the first mailbox record the detector sees (new apps are then
  only reported when the user just had a risky sign-in or reads from an anonymous address; a hosting address is
  not a risk for an app, whose reads come from a cloud); each new app alerts once for the tenant, then joins the
  baseline.

Microsoft's own mail clients (Outlook, OWA, Teams, Outlook mobile) are never reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import is_admin_user, raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import AccessMethod, access_of
from shared.records.apps import KNOWN_APPS
from shared.records.event import Event

API_VIAS = frozenset({"rest", "graph", "ews"})
LEARNING_S = 7 * 86400
REALERT_S = 30 * 86400
MAX_TENANT_APPS = 32
MAX_USER_APPS = 8
NO_APP = "-"
_NUMBER = (int, float)


def _items(event: Event) -> int:
    return sum(len(f.FolderItems or []) for f in event.record.Folders or [])


LEARNING = Learning(user_days=7, tenant_days=7)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class EvasiveMailboxAccessUnusualClient(Detector):
    meta = DetectorMeta(
        id="evasive_mailbox_access_unusual_client",
        title="Mailbox read by an unusual client",
        description=(
            "MailItemsAccessed shows a mailbox read through Graph/REST or EWS by Graph PowerShell, Azure CLI, a "
            "script or attack tool, or by an application id the tenant has not seen reading mail before."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.HIGH,
        mitre=("T1114.002",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"mailitemsaccessed"}),
        needs=(Need.MAILBOX_AUDIT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.RISKY_SIGNIN),
        learning=LEARNING,
        runbook=(
            "1. Identify the app: look up the AppId in Entra ID > Enterprise applications (or Microsoft's first-party "
            "list) and who consented to it. 2. Check the user's sign-ins just before for the same IP, VPN, hosting or "
            "a device-code sign-in. 3. Scope what was read: search MailItemsAccessed for the SessionId and list the "
            "InternetMessageIds. 4. If not legitimate: revoke the user's sessions, remove the app's grants "
            "(Remove-MgOauth2PermissionGrant) or disable its service principal, reset the password, and notify the "
            "owners of the mail that was read." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-investigate-accounts",
        false_positives=("admins reading their own mailbox with Graph PowerShell", "new mail integrations"),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        tenant = ctx.tenant_state(self.meta.id)
        if not isinstance(tenant.get("since"), _NUMBER):
            tenant["since"] = event.time
        access = access_of(event)
        if access.via not in API_VIAS or not event.succeeded:
            return ()
        app = access.client_app_id or NO_APP
        if access.is_public_client_tool:
            return self._public_client(event, ctx, access, app)
        if app in KNOWN_APPS:
            return ()
        return self._new_app(event, ctx, access, app)

    def _public_client(self, event: Event, ctx: DetectionContext, access: AccessMethod, app: str) -> Iterable[Finding]:
        if event.user_key is None:
            return ()
        state = ctx.state(event, self.meta.id)
        seen: dict[str, Any] = state.setdefault("tools", {})
        last = seen.get(app)
        seen[app] = event.time
        _trim(seen, MAX_USER_APPS)
        if isinstance(last, int | float) and event.time - float(last) <= REALERT_S:
            return ()
        risk = risk_of(ctx, event)
        admin = is_admin_user(ctx, event)
        if access.client_kind == "attack_tool":
            base = Severity.CRITICAL
        elif admin and risk is None:
            base = Severity.MEDIUM
        else:
            base = Severity.HIGH
        severity = raise_for_risk(base, risk)
        who = access.tool or access.client_app_name or access.user_agent_family or app
        return (self._finding(event, access, app, severity, f"read by {who}", risk, reason="public_client_tool"),)

    def _new_app(self, event: Event, ctx: DetectionContext, access: AccessMethod, app: str) -> Iterable[Finding]:
        tenant = ctx.tenant_state(self.meta.id)
        since = float(tenant.get("since") or event.time)
        apps: dict[str, Any] = tenant.setdefault("apps", {})
        known = app in apps
        apps[app] = event.time
        _trim(apps, MAX_TENANT_APPS)
        if known:
            return ()
        risk = risk_of(ctx, event)
        if risk is not None and risk.get("source") == "ip" and risk.get("reason") == "hosting":
            risk = None  # an application's reads come from a cloud: a hosting address says nothing about it
        learning = event.time - float(since) < LEARNING_S
        if learning and risk is None:
            return ()
        severity = raise_for_risk(Severity.MEDIUM, risk)
        who = access.client_app_name or app
        return (
            self._finding(
                event,
                access,
                app,
                severity,
                f"read by {who}, an app not seen reading mail here before",
                risk,
                reason="new_app",
            ),
        )

    def _finding(
        self,
        event: Event,
        access: AccessMethod,
        app: str,
        severity: Severity,
        what: str,
        risk: Any,
        *,
        reason: str,
    ) -> Finding:
        owner = event.record.MailboxOwnerUPN or event.user_display
        path = {"rest": "Graph/REST", "graph": "Graph", "ews": "EWS"}.get(access.via, access.via)
        return self.finding(
            event,
            summary=f"Mailbox {owner} {what} over {path}" + risk_note(risk),
            severity=severity,
            dedup_key=f"{event.user_key or 'tenant'}|{app}",
            context={
                "reason": reason,
                "client_app_id": None if app == NO_APP else app,
                "client_app_name": access.client_app_name,
                "client_kind": access.client_kind,
                "tool": access.tool,
                "via": access.via,
                "client_info": event.record.ClientInfoString,
                "mailbox_owner": event.record.MailboxOwnerUPN,
                "items": _items(event),
                "session_id": event.record.SessionId,
                "risk": risk_context(risk),
            },
        )


def _trim(seen: dict[str, Any], limit: int) -> None:
    if len(seen) > limit:
        for k, _ in sorted(seen.items(), key=lambda kv: float(kv[1]) if isinstance(kv[1], int | float) else 0.0)[
            : len(seen) - limit
        ]:
            seen.pop(k)
