"""Teams opened to outside organisations, consumers or guests: the door for external chat phishing and data sharing.

Read from Skype for Business / Teams admin cmdlets in the unified audit log (``SkypeForBusinessCmdlets``,
RecordType 23, with ``Parameters`` in any shape ``Event.parameters`` reads):

* ``Set-CsTenantFederationConfiguration -AllowFederatedUsers $true`` without a list of specific allowed
  domains (open to every organisation), ``-AllowTeamsConsumer $true`` / ``-AllowTeamsConsumerInbound $true``
  (personal Teams accounts) or ``-AllowPublicUsers $true`` (Skype): medium; federation opened only to named
  domains (``AllowedDomainsAsAList``) is low;
* ``Set-CsTeamsClientConfiguration -AllowGuestUser $true`` (guest access): medium.

Midnight Blizzard and Storm-1674 phished through Teams chats from outside tenants; an attacker inside opens the
tenant to reach users or move data. A risky sign-in of the actor shortly before (or a risky address) raises each
one step. Turning access off is not an alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event
from shared.records.exchange import is_empty_value

FEDERATION_OP = "set-cstenantfederationconfiguration"
CLIENT_OP = "set-csteamsclientconfiguration"
TRUE = frozenset({"true", "$true", "1"})
CONSUMER_PARAMS = ("allowteamsconsumer", "allowteamsconsumerinbound", "allowpublicusers")


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE


class TeamsExternalAccessOpened(Detector):
    meta = DetectorMeta(
        id="teams_external_access_opened",
        title="Teams external or guest access opened",
        description=(
            "Teams federation was opened to every outside organisation or to personal accounts, or Teams guest "
            "access was enabled: outsiders can then chat with (and phish) users, and users can share with them."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.MEDIUM,
        mitre=("T1562", "T1199"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({FEDERATION_OP, CLIENT_OP}),
        needs=(Need.GENERAL, Need.RISKY_SIGNIN),
        runbook=(
            "1. Check the settings: Get-CsTenantFederationConfiguration | Format-List AllowFederatedUsers,"
            "AllowedDomains,AllowTeamsConsumer,AllowPublicUsers; Get-CsTeamsClientConfiguration | Format-List "
            "AllowGuestUser. 2. Ask the Teams administrators whether the change was planned; check the actor's "
            "sign-ins just before. 3. If not: restore the allow-list (Set-CsTenantFederationConfiguration "
            "-AllowedDomainsAsAList <partners>) and switch consumer and guest access off, revoke the actor's sessions, "
            "and review external chats and guest activity since."
        ),
        reference="https://learn.microsoft.com/en-us/microsoftteams/trusted-organizations-external-meetings-chat",
        false_positives=("a planned move to open federation for a collaboration-heavy organisation",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        p = event.parameters
        opened: list[str] = []
        severity = Severity.MEDIUM
        if event.op == FEDERATION_OP:
            specific = p.get("alloweddomainsasalist")
            allowed = (p.get("alloweddomains") or "").strip().lower()
            if _on(p.get("allowfederatedusers")):
                if specific and not is_empty_value(specific) and "allowallknowndomains" not in allowed:
                    opened.append(f"federation with {specific.strip()}")
                    severity = Severity.LOW
                else:
                    opened.append("federation with every external organisation")
            elif "allowallknowndomains" in allowed:
                opened.append("federation with every external organisation")
            consumer = [k for k in CONSUMER_PARAMS if _on(p.get(k))]
            if consumer:
                opened.append("personal (consumer) accounts")
                severity = Severity.MEDIUM
        elif _on(p.get("allowguestuser")):
            opened.append("guest access")
        if not opened:
            return ()
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        settings = {k: p[k] for k in sorted(p) if k != "identity"}
        return (
            self.finding(
                event,
                summary=f"{event.user_display} opened Teams to " + " and ".join(opened) + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.op}|{'|'.join(opened)}",
                context={
                    "opened": opened,
                    "settings": settings,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
