"""Small judgements several detectors share: admin users, anonymous or hosting addresses, risk context.

Kept apart from the detectors so the same rule (for instance "an IT admin is expected to use
PowerShell") reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.alert_model import Severity
from shared.detection.base import DetectionContext
from shared.detection.signals import recent_risky_signin
from shared.records.event import Event


def is_admin_user(ctx: DetectionContext, event: Event) -> bool:
    """True when the tenant lists the event's user (UPN or object id) among its admins."""
    admins = ctx.tenant.admin_users
    if not admins:
        return False
    return bool((event.upn and event.upn.lower() in admins) or (event.object_id and event.object_id in admins))


def ip_risk(event: Event) -> str | None:
    """``tor`` / ``vpn`` / ``residential_proxy`` / ``public_proxy`` / ``hosting`` for the event's address, else None."""
    info = event.ip_info
    if info is None:
        return None
    kind = getattr(info, "anonymizer_kind", None)
    if isinstance(kind, str) and kind:
        return kind
    if getattr(info, "is_hosting", None) is True and getattr(info, "is_microsoft_service", None) is not True:
        return "hosting"
    return None


def risk_of(ctx: DetectionContext, event: Event, *, within_s: float = 24 * 3600) -> Mapping[str, Any] | None:
    """A risky sign-in of the same user shortly before, or the event's own anonymous/hosting address."""
    mark = recent_risky_signin(ctx, event, within_s=within_s)
    if mark is not None:
        return {"source": "risky_signin", **mark}
    kind = ip_risk(event)
    if kind is not None:
        return {"source": "ip", "ip": event.ip or "", "reason": kind}
    return None


def raise_for_risk(severity: Severity, risk: Mapping[str, Any] | None, *, steps: int = 1) -> Severity:
    """``severity`` raised by ``steps`` when there is risk context."""
    return severity.upgrade(steps) if risk is not None else severity


def risk_note(risk: Mapping[str, Any] | None) -> str:
    """A short clause for summaries: " after a risky sign-in (vpn from 203.0.113.7)"."""
    if risk is None:
        return ""
    if risk.get("source") == "risky_signin":
        return f" after a risky sign-in ({risk.get('reason')} from {risk.get('ip') or 'unknown address'})"
    return f" from a {risk.get('reason')} address"


def risk_context(risk: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The risk as JSON-ready context (None when there is none)."""
    if risk is None:
        return None
    return {k: risk[k] for k in ("source", "reason", "ip", "time", "record_id") if k in risk}


def actor_display(event: Event) -> str:
    """Who acted, for summaries: the UPN, else the record's ``UserId`` when it names an app, else the object id."""
    if event.upn:
        return event.upn
    uid = (event.record.UserId or "").strip()
    if uid and uid.lower() not in ("not available", "unknown", "null", "none") and not uid.startswith("S-1-"):
        return uid
    return event.user_display
