"""Applications created, given new owners or new redirect URIs: the ways an attacker keeps an app for themselves.

Read from Entra directory records (credentials are ``app_credential_added``'s):

* "Add application." — a new app registration: low on its own (developers do this every day);
* "Add owner to application." / "Add owner to service principal." — an owner can add secrets and change the
  app whenever they like: medium; high when the app is a Microsoft first-party one;
* "Update application." (or "Update service principal.") whose ``ModifiedProperties.AppAddress`` gains a reply (redirect) URI: medium (tokens
  and codes for the app's users are sent there); high for a plain-http address that is not localhost, or an
  address by IP; low when every new address is localhost (a developer's own machine).

A risky sign-in of the actor shortly before (or a risky address) raises each by two steps: an app made or taken
over from a phished session is how the attacker outlives the password reset. The app is read from
``ModifiedProperties`` (``Application.DisplayName`` / ``ServicePrincipal.DisplayName``, ``...AppId``) for owner
changes and from ``Target`` for the others (``shared.detection.consent.app_target``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.apps import is_first_party
from shared.detection.base import DetectionContext, Detector
from shared.detection.consent import app_target
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

ADD_APP = "add application"
OWNER_OPS = frozenset({"add owner to application", "add owner to service principal"})
UPDATE_APP = "update application"
UPDATE_SP = "update service principal"
_ADDRESS = re.compile(r'"Address"\s*:\s*"([^"]{1,2048})"', re.I)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _clean(value: str) -> str:
    return value.strip().strip('"[]').strip().strip('"')


def _owner_app(event: Event) -> tuple[str | None, str | None]:
    """(display name, app id) of the app an owner was added to."""
    mp = event.modified_properties
    name = app_id = None
    for prefix in ("application", "serviceprincipal"):
        name = name or _clean(mp.get(f"{prefix}.displayname", ("", ""))[1]) or None
        m = _GUID.search(mp.get(f"{prefix}.appid", ("", ""))[1])
        app_id = app_id or (m.group(0).lower() if m else None)
    return name, app_id


def _is_localhost(uri: str) -> bool:
    try:
        host = (urlsplit(uri).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "127.0.0.1", "::1")


def _risky_uri(uri: str) -> bool:
    """Plain http to anything but localhost, or a host given as an IP address."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if host in ("localhost", "127.0.0.1", "::1"):
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return parts.scheme.lower() == "http"


class AppPersistenceChange(Detector):
    meta = DetectorMeta(
        id="app_persistence_change",
        title="Application created, owner added or redirect URI added",
        description=(
            "An application was registered, an owner was added to an application or service principal, or a new "
            "redirect URI was added to an app: ways to keep a foothold that survives password resets; raised after "
            "a risky sign-in of the actor and for Microsoft first-party apps."
        ),
        category=Category.ROGUE_APP,
        severity=Severity.MEDIUM,
        mitre=("T1098", "T1098.001", "T1136.003"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({ADD_APP, UPDATE_APP, UPDATE_SP}) | OWNER_OPS,
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open the app in Entra ID > App registrations / Enterprise applications: owners, redirect URIs, "
            "certificates and secrets, API permissions. 2. Ask the app's team whether the change is theirs; check "
            "the actor's sign-ins just before (VPN, hosting, new country). 3. If not: remove the owner or the "
            "redirect URI (or delete the new app), remove any secret added since, revoke the actor's sessions, and "
            "review the app's sign-ins and consents."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2024/01/25/midnight-blizzard-guidance-for-responders-on-nation-state-attack/",
        false_positives=(
            "developers registering their own apps and adding colleagues as owners",
            "new environments of an app getting their redirect URIs",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        got = self._judge(event)
        if got is None:
            return ()
        kind, base, what, name, app_id, details = got
        risk = risk_of(ctx, event)
        severity = raise_for_risk(base, risk, steps=2)
        label = name or app_id or "an application"
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} {what} {label!r}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{kind}|{app_id or (name or '').lower()}",
                context={
                    "change": kind,
                    "app_display_name": name,
                    "app_id": app_id,
                    "first_party_app": is_first_party(app_id),
                    "operation": event.record.Operation,
                    **details,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _judge(event: Event) -> tuple[str, Severity, str, str | None, str | None, dict[str, object]] | None:
        if event.op in OWNER_OPS:
            name, app_id = _owner_app(event)
            owner = next((t.ID for t in event.targets if t.ID and "@" in t.ID), None) or event.record.ObjectId
            base = Severity.HIGH if is_first_party(app_id) else Severity.MEDIUM
            return "owner_added", base, f"added {owner} as an owner of", name, app_id, {"owner": owner}
        target = app_target(event)
        if event.op == ADD_APP:
            return "app_added", Severity.LOW, "registered the application", target.display_name, target.app_id, {}
        old, new = event.modified_properties.get("appaddress", ("", ""))
        before = set(_ADDRESS.findall(old))
        added = [u for u in dict.fromkeys(_ADDRESS.findall(new)) if u not in before]
        if not added:
            return None
        risky = [u for u in added if _risky_uri(u)]
        if risky or is_first_party(target.app_id):
            base = Severity.HIGH
        elif all(_is_localhost(u) for u in added):
            base = Severity.LOW
        else:
            base = Severity.MEDIUM
        what = "added redirect URI " + ", ".join(added) + " to"
        return "redirect_uri_added", base, what, target.display_name, target.app_id, {"added_uris": added}
