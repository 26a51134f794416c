"""A new secret or certificate on an application or service principal: a backdoor that survives password resets.

"Add service principal credentials." and "Update application – Certificates and secrets management"
carry the key list before and after in ``ModifiedProperties.KeyDescription``
(``[KeyIdentifier=…, KeyType=Password, KeyUsage=Verify, DisplayName=…]``). Only additions alert;
a removal or rotation that leaves no new key does not. A credential added by a service principal
(an app acting on another app, Midnight Blizzard style) or after a risky sign-in is raised. A credential on
the tenant's service principal of a Microsoft first-party application (Microsoft Graph, Exchange Online...,
see shared.detection.apps) is critical: nobody in the tenant needs a key to Microsoft's own apps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.apps import is_first_party
from shared.detection.base import DetectionContext, Detector
from shared.detection.consent import app_target
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event, as_int

CREDENTIAL_OPS = frozenset(
    {
        "add service principal credentials",
        "update application – certificates and secrets management",
        "update application - certificates and secrets management",
        "update application — certificates and secrets management",
    }
)
_KEY = re.compile(
    r"KeyIdentifier\s*=\s*([0-9a-fA-F-]{36})[^\]]*?KeyType\s*=\s*(\w+)(?:[^\]]*?DisplayName\s*=\s*([^\],]*))?"
)


def _keys(text: str) -> dict[str, tuple[str, str]]:
    return {m.group(1).lower(): (m.group(2), (m.group(3) or "").strip()) for m in _KEY.finditer(text)}


class AppCredentialAdded(Detector):
    meta = DetectorMeta(
        id="app_credential_added",
        title="Credential added to an application",
        description=(
            "A client secret or certificate was added to an application or service principal: whoever holds it can "
            "sign in as the app, with all its permissions, without any user."
        ),
        category=Category.ROGUE_APP,
        severity=Severity.MEDIUM,
        mitre=("T1098.001",),
        dedup_window=timedelta(hours=24),
        operations=CREDENTIAL_OPS,
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open the app in Entra ID > App registrations (or Enterprise applications) > Certificates & secrets "
            "and find the key id from the alert. 2. Ask the app's owners whether they rotated it; check the actor's "
            "sign-ins for VPN, hosting or a new country, and whether the actor is a service principal. 3. If "
            "unexplained: delete the credential, review the app's permissions and its sign-ins (service principal "
            "sign-in logs), and rotate any other secrets the actor could reach."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2024/01/25/midnight-blizzard-guidance-for-responders-on-nation-state-attack/",
        false_positives=("scheduled secret rotation by the app's owners",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        old_text, new_text = event.modified_properties.get("keydescription", ("", ""))
        old, new = _keys(old_text), _keys(new_text)
        added = {k: v for k, v in new.items() if k not in old}
        if new_text and not added:
            return ()
        target = app_target(event)
        user_type = as_int(event.record.UserType)
        by_app = user_type in (5, 6) or any((a.ID or "").lower().startswith("serviceprincipal") for a in event.actors)
        risk = risk_of(ctx, event)
        first_party = is_first_party(target.app_id)
        severity = Severity.HIGH if by_app else Severity.MEDIUM
        severity = Severity.CRITICAL if first_party else raise_for_risk(severity, risk)
        name = target.display_name or target.app_id or target.service_principal_id or "an application"
        kinds = sorted({t for t, _ in added.values()}) or ["unknown"]
        summary = f"{actor_display(event)} added a {'/'.join(kinds)} credential to {name!r}"
        if by_app:
            summary += " (the actor is an application)"
        if first_party:
            summary += ", a Microsoft first-party application"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{target.app_id or target.service_principal_id or name}",
                context={
                    "app_display_name": target.display_name,
                    "app_id": target.app_id,
                    "service_principal_id": target.service_principal_id,
                    "operation": event.record.Operation,
                    "added_keys": [{"key_id": k, "type": t, "display_name": d or None} for k, (t, d) in added.items()],
                    "actor_is_application": by_app,
                    "first_party_app": first_party,
                    "risk": risk_context(risk),
                },
            ),
        )
