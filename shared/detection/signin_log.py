"""Judgements shared by the detectors of the Entra sign-in log's own fields (``Need.SIGNIN_LOG``).

* `risky_place`: why the place of a sign-in is risky (anonymiser, hosting provider not shared by the tenant's
  users, a country new for a learned user, Entra's own medium or high risk), the same reasons the audit-log
  sign-in detectors give;
* `context`: the sign-in log facts a finding shows (session, correlation, Conditional Access, MFA, device, risk,
  token issuer, cross-tenant access).

These detectors never record a sign-in in the user's baseline (the audit-log detectors do, once per sign-in): a
sign-in log entry that reaches them after its audit record (``shared.detection.signin_merge``) must not count
twice. Country novelty is read from the view the baseline detectors left for the same event when there is one;
else from the baseline as it stands, where a country first recorded by this sign-in's own audit record (one
sign-in, within a day) still counts as new.
"""

from __future__ import annotations

from typing import Any

from shared.detection.base import DetectionContext
from shared.detection.baseline import TenantPrevalence, home_country, peek_baseline
from shared.detection.geo import anonymizer_kind, is_hosting
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event
from shared.records.model import SignInDetail

RISKY_LEVELS = frozenset({"medium", "high"})
"""Entra's risk levels that count (``low`` is noise; ``hidden`` means the tenant has no Entra ID P2)."""
_VIEW_MEMO = "signin_view"
_TWIN_WINDOW_S = 86400.0


def entra_risk(detail: SignInDetail) -> str | None:
    """The higher of Entra's real-time and aggregated risk levels when medium or high, else None."""
    levels = [(detail.risk_level_during or "").lower(), (detail.risk_level_aggregated or "").lower()]
    if "high" in levels:
        return "high"
    if "medium" in levels:
        return "medium"
    return None


def country_was_new(ctx: DetectionContext, event: Event) -> bool:
    """The sign-in's country is new for the user (see the module docstring)."""
    info: IpInfo | None = event.ip_info
    country = info.country.upper() if info is not None and info.country else None
    if country is None or event.user_key is None:
        return False
    home = home_country(ctx.tenant, event)
    if country == home:
        return False
    cached = ctx.memo.get(_VIEW_MEMO)
    if cached is not None and cached[0] == event.record_id:
        return bool(cached[1].new_country(home))
    base = peek_baseline(ctx, event)
    seen = base.get("country", country)
    if not (base.learned(event.time) or home is not None):
        return False
    if seen is None:
        return True
    return seen.count == 1 and abs(event.time - seen.first_seen) <= _TWIN_WINDOW_S


def risky_place(ctx: DetectionContext, event: Event) -> list[str]:
    """Why the place of this sign-in is risky: anonymiser kind, ``hosting``, ``new_country``, ``entra_risk_<level>``."""
    reasons: list[str] = []
    info: IpInfo | None = event.ip_info
    if info is not None and not ctx.tenant.is_trusted_ip(event.ip) and not info.is_microsoft_service:
        kind = anonymizer_kind(info)
        if kind is not None:
            reasons.append(kind)
        asn = str(info.asn) if info.asn else None
        if (
            kind is None
            and is_hosting(info)
            and not TenantPrevalence.of(ctx).is_shared("a", asn, now=event.time, excluding=event.user_key)
        ):
            reasons.append("hosting")
        if country_was_new(ctx, event):
            reasons.append("new_country")
    detail = event.signin
    level = entra_risk(detail) if detail is not None else None
    if level is not None:
        reasons.append(f"entra_risk_{level}")
    return reasons


def context(event: Event) -> dict[str, Any]:
    """The sign-in log facts of a finding (empty for an audit-log record)."""
    d = event.signin
    if d is None:
        return {}
    info: IpInfo | None = event.ip_info
    return {
        "ip": event.ip,
        "country": (info.country if info is not None else None) or d.country,
        "asn": info.asn if info is not None else None,
        "asn_org": info.asn_org if info is not None else None,
        "signin_category": d.category,
        "request_id": d.request_id,
        "correlation_id": d.correlation_id,
        "session_id": d.session_id,
        "application": d.app_display_name or event.client_app_id,
        "resource": d.resource_display_name or d.resource_id,
        "client_app_used": d.client_app_used,
        "user_agent": event.user_agent or None,
        "error_code": d.error_code,
        "failure_reason": d.failure_reason,
        "conditional_access_status": d.ca_status,
        "conditional_access_policies": [
            {"name": p.name or p.id, "result": p.result} for p in d.ca_policies or () if p.result != "notEnabled"
        ],
        "authentication_requirement": d.auth_requirement,
        "device_compliant": d.device_compliant,
        "device_managed": d.device_managed,
        "risk_level_during_signin": d.risk_level_during,
        "risk_level_aggregated": d.risk_level_aggregated,
        "risk_state": d.risk_state,
        "risk_event_types": list(d.risk_event_types or ()),
        "token_issuer_type": d.token_issuer_type,
        "cross_tenant_access_type": d.cross_tenant_access_type,
        "audit_record_id": d.audit_record_id,
    }
