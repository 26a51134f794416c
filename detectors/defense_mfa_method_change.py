"""MFA methods added, removed or disabled — most telling right after a risky sign-in.

Attackers who got in with a phished session register their own authenticator or phone to keep
access, and remove the victim's. Read from:

* "Update user." whose ``ModifiedProperties`` change ``StrongAuthenticationMethod`` (method types),
  ``StrongAuthenticationPhoneAppDetail`` (authenticator devices), ``StrongAuthenticationUserDetails``
  (MFA phone/email) or ``StrongAuthenticationRequirement`` (per-user MFA state; cleared = disabled);
* "User registered security info" / "User changed default security info" (added),
  "User deleted security info" (removed), "Disable Strong Authentication." (disabled).

A registration on its own is low (people get new phones); removal is medium; disabling MFA is
high. A risky sign-in of the same account within `RISK_WINDOW_S` raises each by two steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

UPDATE_USER = "update user"
ADDED_OPS = frozenset({"user registered security info", "user changed default security info"})
REMOVED_OPS = frozenset({"user deleted security info"})
DISABLE_OPS = frozenset({"disable strong authentication"})
MFA_PROPERTIES = (
    "strongauthenticationmethod",
    "strongauthenticationphoneappdetail",
    "strongauthenticationuserdetails",
    "strongauthenticationrequirement",
)
RISK_WINDOW_S = 6 * 3600
BASE = {"added": Severity.LOW, "changed": Severity.LOW, "removed": Severity.MEDIUM, "disabled": Severity.HIGH}


def _json_list(text: str) -> list[Any]:
    t = text.strip()
    if not t:
        return []
    try:
        got = orjson.loads(t)
    except orjson.JSONDecodeError:
        return []
    if isinstance(got, str):
        try:
            got = orjson.loads(got)
        except orjson.JSONDecodeError:
            return []
    if isinstance(got, dict):
        return [got]
    return got if isinstance(got, list) else []


def _identities(items: list[Any], *keys: str) -> set[str]:
    out: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            low = {str(k).lower(): v for k, v in item.items()}
            out.add("|".join(str(low.get(k, "")) for k in keys))
        else:
            out.add(str(item))
    return out


def _update_user_changes(ev: Event) -> tuple[str, list[str]] | None:
    """(kind, details) of an "Update user." that touched MFA, or None."""
    mp = ev.modified_properties
    details: list[str] = []
    kinds: set[str] = set()
    if "strongauthenticationmethod" in mp:
        old, new = (_identities(_json_list(v), "methodtype") for v in mp["strongauthenticationmethod"])
        if new - old:
            kinds.add("added")
            details.append("method types added: " + ", ".join(sorted(new - old)))
        if old - new:
            kinds.add("removed")
            details.append("method types removed: " + ", ".join(sorted(old - new)))
    if "strongauthenticationphoneappdetail" in mp:
        old_apps, new_apps = (_json_list(v) for v in mp["strongauthenticationphoneappdetail"])
        old, new = _identities(old_apps, "id", "devicename"), _identities(new_apps, "id", "devicename")
        if new - old:
            kinds.add("added")
            names = sorted(x.split("|", 1)[-1] or "unnamed device" for x in new - old)
            details.append("authenticator devices added: " + ", ".join(names))
        if old - new:
            kinds.add("removed")
            names = sorted(x.split("|", 1)[-1] or "unnamed device" for x in old - new)
            details.append("authenticator devices removed: " + ", ".join(names))
    if "strongauthenticationuserdetails" in mp:
        old_text, new_text = mp["strongauthenticationuserdetails"]
        if old_text.strip() != new_text.strip():
            kinds.add("changed")
            details.append("MFA phone or email changed")
    if "strongauthenticationrequirement" in mp:
        old_req, new_req = (_json_list(v) for v in mp["strongauthenticationrequirement"])
        if old_req and not new_req:
            kinds.add("disabled")
            details.append("per-user MFA requirement removed")
    if not kinds:
        return None
    for kind in ("disabled", "removed", "added", "changed"):
        if kind in kinds:
            return kind, details
    return None


def _target_user(ev: Event) -> str:
    for t in ev.targets:
        ident = (t.ID or "").strip()
        if "@" in ident:
            return ident.lower()
    obj = (ev.record.ObjectId or "").strip()
    return obj.lower() if obj else ev.user_display


class DefenseMfaMethodChange(Detector):
    meta = DetectorMeta(
        id="defense_mfa_method_change",
        title="MFA method added, removed or disabled",
        description=(
            "An account's MFA methods changed (authenticator or phone registered or deleted, MFA phone changed) or "
            "MFA was disabled; raised when the account had a risky sign-in shortly before, the classic persistence "
            "step after a phished session."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.MEDIUM,
        mitre=("T1556.006", "T1098.005"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({UPDATE_USER}) | ADDED_OPS | REMOVED_OPS | DISABLE_OPS,
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open the user's Authentication methods in Entra ID and compare with the change (device name, phone "
            "number). 2. Call the user on a known number: did they just set up a new phone? 3. If not: delete the "
            "new method, revoke sessions, reset the password, require re-registration, and review the risky sign-in "
            "named in the alert and what that session did."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/07/12/from-cookie-theft-to-bec-attackers-use-aitm-phishing-sites-as-entry-point-to-further-financial-fraud/",
        false_positives=("users replacing their phone or registering MFA for the first time",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        if event.op == UPDATE_USER:
            got = _update_user_changes(event)
            if got is None:
                return ()
            kind, details = got
        elif event.op in ADDED_OPS:
            kind, details = "added", [event.record.Operation or ""]
        elif event.op in REMOVED_OPS:
            kind, details = "removed", [event.record.Operation or ""]
        else:
            kind, details = "disabled", ["strong authentication disabled"]
        risk = risk_of(ctx, event, within_s=RISK_WINDOW_S)
        severity = raise_for_risk(BASE[kind], risk, steps=2)
        target = _target_user(event)
        actor = event.user_display
        on = "their own account" if target in (actor, event.upn) else target
        summary = f"{actor} {kind} MFA on {on}: " + "; ".join(details)
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{target}|{kind}",
                context={
                    "change": kind,
                    "target_user": target,
                    "details": details,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
