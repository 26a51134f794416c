"""A user's first sign-in with an admin or developer public client: Azure CLI, Azure/Graph/AAD PowerShell...

Attackers with a stolen password or refresh token reach Graph through Microsoft's own public
clients (no consent prompt, no app registration: TokenTactics, GraphRunner, device-code
phishing), and regular users never use them. The detector learns per user which of these
clients they have used, so an IT admin who runs Azure PowerShell every day raises one alert
(low, when the tenant lists them as an admin), not one a day. A client unused for
`FORGET_AFTER_S` is forgotten and alerts again.

Learning (`LEARNING`): quiet until the user and the tenant are known (the cold start is not novelty). Tenant-aware
(``shared.detection.tenant_baseline.RoutineTools``): a client other administrators of the tenant use routinely,
first used by this user from a network they know and without a risk signal, is the tenant's administration, not
a stolen token: no alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import observe_signin
from shared.detection.helpers import is_admin_user, raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.tenant_baseline import RoutineTools
from shared.enrich.access import access_of
from shared.records.event import Event

TOOL_KINDS = frozenset({"azure_cli", "azure_powershell", "graph_powershell", "graph_explorer", "aad_powershell", "sdk"})
FORGET_AFTER_S = 180 * 86400
MAX_CLIENTS = 12


LEARNING = Learning(user_days=7, tenant_days=14)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class EvasivePublicClientFirstUse(Detector):
    meta = DetectorMeta(
        id="evasive_public_client_first_use",
        title="First use of an admin or developer client",
        description=(
            "A user signed in for the first time with Azure CLI, Azure PowerShell, Microsoft Graph PowerShell, Graph "
            "Explorer, Azure AD PowerShell or another Microsoft public client (Exchange Online or SharePoint "
            "PowerShell, Visual Studio): the clients attackers use with stolen tokens because they need no consent."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1059.009"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin"}),
        needs=(Need.SIGNINS, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        learning=LEARNING,
        runbook=(
            "1. Ask the user (by phone, not email) whether they ran this tool; developers and admins do, most users "
            "never. 2. Look at the sign-in's IP and the user's other sign-ins that hour: a VPN, hosting provider or "
            "new country, or a device-code sign-in just before, means a stolen token. 3. If not the user: revoke "
            "their sessions (Revoke-MgUserSignInSession), reset the password, review what Graph read "
            "(MailItemsAccessed, FileDownloaded), and consider a Conditional Access policy limiting these client ids "
            "to admins." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/troubleshoot/azure/entra/entra-id/governance/verify-first-party-apps-sign-in",
        false_positives=(
            "a developer or admin starting to use a Microsoft CLI or PowerShell module that no other administrator of "
            "the tenant uses routinely, or from a network new to them",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or (event.error_number or 0) != 0:
            return ()
        view = observe_signin(ctx, event)  # every success feeds the user's baseline (recorded once per record)
        access = access_of(event)
        if access.client_kind not in TOOL_KINDS or access.client_app_id is None:
            return ()
        state = ctx.state(event, self.meta.id)
        seen: dict[str, Any] = state.setdefault("clients", {})
        app = access.client_app_id
        prior = seen.get(app)
        if isinstance(prior, list) and len(prior) == 2 and event.time - float(prior[1]) <= FORGET_AFTER_S:
            first = False
            seen[app] = [float(prior[0]), max(event.time, float(prior[1]))]
        else:
            first = True
            seen[app] = [event.time, event.time]
        self._trim(seen, event.time)
        tools = RoutineTools(ctx, self.meta.id)
        routine = tools.is_routine(app, event.user_key, event.time)  # before this user counts for it
        tools.observe(app, event.user_key, event.time)
        if not first:
            return ()
        risk = risk_of(ctx, event)
        if risk is None and routine and not view.is_new("asn"):
            return ()  # the tenant's administrators use this client routinely, and the user is on a network they know
        admin = is_admin_user(ctx, event)
        base = Severity.LOW if admin and risk is None else Severity.MEDIUM
        severity = raise_for_risk(base, risk)
        name = access.client_app_name or app
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in with {name} for the first time" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{app}",
                context={
                    "client_app_id": app,
                    "client_app_name": access.client_app_name,
                    "client_kind": access.client_kind,
                    "user_agent": event.user_agent,
                    "protocol": access.protocol,
                    "tenant_admin": admin,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _trim(seen: dict[str, Any], now: float) -> None:
        stale = [k for k, v in seen.items() if not isinstance(v, list) or now - float(v[1]) > FORGET_AFTER_S]
        for k in stale:
            seen.pop(k)
        if len(seen) > MAX_CLIENTS:
            for k, _ in sorted(seen.items(), key=lambda kv: float(kv[1][1]))[: len(seen) - MAX_CLIENTS]:
                seen.pop(k)
