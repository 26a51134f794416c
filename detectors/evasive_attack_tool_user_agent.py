"""Sign-ins, mailbox reads and downloads by attack tools or scripting libraries, told by their user agent.

* Attack tools (AzureHound's ``azurehound/``, ROADtools, GraphRunner/TokenTactics' forged EdgeHTML 18
  agent, TeamFiltration's Teams 1.3 Electron agent...): high on success; failed sign-ins by a tool
  (a spray) are folded into one tenant-wide alert per tool instead of one per sprayed user.
* Scripting libraries (python-requests, axios, aiohttp, Go-http-client, curl, node, okhttp,
  fasthttp...): medium on success, raised after a risky sign-in or from an anonymous/hosting address.
* PowerShell's own agent (``WindowsPowerShell/5.1``, ``PowerShell/7``): admins script with it
  legitimately, so it is low, once per user a month, and not reported for the tenant's listed
  admins unless the session is risky.

Not reported: the Microsoft command-line and PowerShell clients with their normal agents (Azure CLI
speaks python-requests, Graph PowerShell speaks PowerShell): `evasive_public_client_first_use`
covers their first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import is_admin_user, raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import AccessMethod, access_of
from shared.records.event import Event

MICROSOFT_TOOL_KINDS = frozenset(
    {"azure_cli", "azure_powershell", "graph_powershell", "graph_explorer", "aad_powershell", "sdk"}
)
SCRIPT_FAMILIES = frozenset(
    {
        "python-requests",
        "axios",
        "aiohttp",
        "Go-http-client",
        "curl",
        "python-httpx",
        "python-urllib",
        "node-fetch",
        "node",
        "okhttp",
        "fasthttp",
        "PostmanRuntime",
        "Wget",
        "Java",
        "libwww-perl",
        "Apache-HttpClient",
    }
)
POWERSHELL_RENOTIFY_S = 30 * 86400
SIGNIN_OPS = frozenset({"userloggedin", "userloginfailed"})


class EvasiveAttackToolUserAgent(Detector):
    meta = DetectorMeta(
        id="evasive_attack_tool_user_agent",
        title="Attack tool or script user agent",
        description=(
            "A sign-in, mailbox read or file download carried the user agent of an attack tool (AzureHound, "
            "ROADtools, GraphRunner, TeamFiltration...) or of a scripting library (python-requests, axios, aiohttp, "
            "Go-http-client, curl, PowerShell) instead of a browser or Microsoft client."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.HIGH,
        mitre=("T1087.004", "T1110.003", "T1078.004"),
        dedup_window=timedelta(hours=24),
        operations=SIGNIN_OPS | {"mailitemsaccessed", "filedownloaded"},
        needs=(Need.SIGNINS, Need.MAILBOX_AUDIT, Need.SHAREPOINT, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Read the user agent and IP in the alert; an attack tool's agent on a successful sign-in means the "
            "account is in an attacker's hands. 2. Check the user's other activity from the same IP in the hour "
            "around it (Graph reads, consents, inbox rules). 3. For a tool or a script the user does not run: revoke "
            "sessions, reset the password and MFA methods, and block the IP. 4. For a tenant-wide spray alert: confirm "
            "no sprayed account later signed in successfully, and enforce MFA and smart lockout."
        ),
        reference="https://www.proofpoint.com/us/blog/threat-insight/attackers-unleash-teamfiltration-account-takeover-campaign",
        false_positives=("automation accounts using scripting libraries", "admins running PowerShell scripts"),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        access = access_of(event)
        family = access.user_agent_family
        if access.tool is None and family not in SCRIPT_FAMILIES and family != "PowerShell":
            return ()
        failed = event.op == "userloginfailed" or not event.succeeded
        if access.tool is not None:
            return self._tool(event, ctx, access, failed)
        if access.client_kind in MICROSOFT_TOOL_KINDS or failed:
            return ()
        if family == "PowerShell":
            return self._powershell(event, ctx, access)
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.MEDIUM, risk)
        return (self._finding(event, access, severity, f"a {family} script", risk, dedup=f"{event.user_key}|{family}"),)

    def _tool(self, event: Event, ctx: DetectionContext, access: AccessMethod, failed: bool) -> Iterable[Finding]:
        tool = access.tool or "attack tool"
        if failed:
            base = self.finding(
                event,
                summary=f"Failed sign-ins by {tool} against the tenant (spraying), first against {event.user_display}",
                severity=Severity.MEDIUM,
                dedup_key=f"failed|{tool}",
                context=self._context(event, access, None),
            )
            # One tenant-wide alert per tool: a spray touches many users.
            return (replace(base, user_key=None, user="tenant"),)
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.HIGH, risk)
        return (self._finding(event, access, severity, tool, risk, dedup=f"{event.user_key}|{tool}"),)

    def _powershell(self, event: Event, ctx: DetectionContext, access: AccessMethod) -> Iterable[Finding]:
        risk = risk_of(ctx, event)
        if risk is None and is_admin_user(ctx, event):
            return ()
        if event.user_key is not None:
            state = ctx.state(event, self.meta.id)
            last = state.get("powershell")
            state["powershell"] = event.time
            if risk is None and isinstance(last, int | float) and event.time - float(last) <= POWERSHELL_RENOTIFY_S:
                return ()
        severity = raise_for_risk(Severity.LOW, risk, steps=2)
        return (self._finding(event, access, severity, "PowerShell", risk, dedup=f"{event.user_key}|PowerShell"),)

    def _finding(
        self,
        event: Event,
        access: AccessMethod,
        severity: Severity,
        what: str,
        risk: Mapping[str, Any] | None,
        *,
        dedup: str,
    ) -> Finding:
        action = {
            "userloggedin": "signed in",
            "mailitemsaccessed": "read mail",
            "filedownloaded": "downloaded a file",
        }.get(event.op, event.op)
        return self.finding(
            event,
            summary=f"{event.user_display} {action} with {what}" + risk_note(risk),
            severity=severity,
            dedup_key=dedup,
            context=self._context(event, access, risk),
        )

    @staticmethod
    def _context(event: Event, access: AccessMethod, risk: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "operation": event.record.Operation,
            "user_agent": event.user_agent or event.record.ClientInfoString,
            "tool": access.tool,
            "user_agent_family": access.user_agent_family,
            "client_app_id": access.client_app_id,
            "client_app_name": access.client_app_name,
            "client_kind": access.client_kind,
            "risk": risk_context(risk),
        }
