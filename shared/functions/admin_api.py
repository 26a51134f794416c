"""The admin API beyond ``admin/tenants``: one tenant's status and policy, consent links, the consent callback.

Every route authenticates as ``admin/tenants`` does (:func:`shared.ingest.onboarding.admin_scope`: the admin
key, or an operator's Entra principal with the ``Admin`` or ``PartnerAdmin`` role), so the operator's
workstation needs no secret: ``itdr --api URL`` signs in with the operator's own Entra account.

    GET  admin/tenants/{tenant_id}          the tenant's status (live subscription states)
    POST admin/tenants/{tenant_id}/policy   {"remediation": {...}, "triage": {...}, "refresh_protected": bool}
    GET  admin/consent                      every consent link of the caller's partners, with its outcome
    POST admin/consent                      {"partner_id", "tenant"?, "name"?, "cloud"?, "detection"?, "ttl_hours"?}
    POST admin/remediations/{tenant_id}/{key}/{action}   approve | reject | undo a remediation ({"reason"?});
                                            recorded with the signed-in principal's name (the admin key: "admin-key")
    GET  onboarding/consent-callback        Entra's redirect after admin consent (anonymous: the state is checked)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.ingest.clouds import normalize_tenant_id
from shared.ingest.context import IngestServices
from shared.ingest.onboarding import (
    MAX_ADMIN_BODY,
    MAX_DETECTION_CHARS,
    AdminScope,
    admin_scope,
    refresh_protected_identities,
    tenant_status,
)
from shared.platform.errors import ConfigurationError, ItdrError, TransientError
from shared.tenants import TenantDirectory

if TYPE_CHECKING:
    from shared.app import Services

log = logging.getLogger("itdr.admin")
MIN_KEY_PREFIX = 8


def _json(status: int, value: Any) -> tuple[int, bytes]:
    return status, orjson.dumps(value)


def _invalid(exc: ValidationError) -> tuple[int, bytes]:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(x) for x in first["loc"])
    return _json(400, {"error": "invalid_request", "detail": f"{where}: {first['msg'][:200]}"})


def set_tenant_policy(
    tenants: TenantDirectory,
    tenant_id: str,
    *,
    remediation: dict[str, Any] | None = None,
    triage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate and store a tenant's own remediation and/or triage policy (each replaces the tenant's earlier one);
    returns the policies in effect. ConfigurationError for an unknown tenant or an invalid field."""
    from shared.alerts.triage import TriagePolicy
    from shared.remediation.policy import RemediationPolicies, RemediationPolicy

    record = tenants.get(tenant_id)
    if record is None:
        raise ConfigurationError("no such tenant: onboard it first (itdr tenants add)", tenant=tenant_id)
    update: dict[str, Any] = {}
    try:
        if remediation is not None:
            RemediationPolicy.model_validate({**remediation, "tenant_id": record.tenant_id})
            update["remediation"] = dict(remediation)
        if triage is not None:
            TriagePolicy.model_validate({**triage, "tenant_id": record.tenant_id})
            update["triage"] = dict(triage)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigurationError(f"invalid policy: {where}: {first['msg']}", tenant=tenant_id) from exc
    if update:
        tenants.upsert(record.model_copy(update=update))
    effective_triage = TriagePolicy.model_validate({**(triage or record.triage), "tenant_id": record.tenant_id})
    return {
        "tenant_id": record.tenant_id,
        "remediation": RemediationPolicies(tenants).for_tenant(record.tenant_id).model_dump(mode="json"),
        "triage": effective_triage.model_dump(mode="json"),
    }


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    remediation: dict[str, Any] | None = None
    triage: dict[str, Any] | None = None
    refresh_protected: bool = False


class ConsentLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    partner_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    tenant: str | None = Field(default=None, max_length=64)
    name: str = Field(default="", max_length=256)
    cloud: str = Field(default="commercial", max_length=16)
    detection: dict[str, Any] | None = None
    ttl_hours: float = Field(default=24 * 7, gt=0, le=24 * 30)


def _tenant_in_scope(svc: IngestServices, scope: AdminScope, tenant_id: str) -> tuple[int, bytes] | None:
    record = svc.tenants.get(normalize_tenant_id(tenant_id))
    if record is None:
        return _json(404, {"error": "unknown_tenant"})
    if not scope.allows(record.partner_id):
        return _json(404, {"error": "unknown_tenant"})  # another partner's tenant is not disclosed
    return None


def handle_tenant_request(
    svc: IngestServices,
    *,
    method: str,
    tenant_id: str,
    action: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[int, bytes]:
    """``admin/tenants/{tenant_id}[/policy]``."""
    scope = admin_scope(svc, headers)
    if scope is None:
        return _json(401, {"error": "unauthorized"})
    try:
        refused = _tenant_in_scope(svc, scope, tenant_id)
        if refused is not None:
            return refused
        tid = normalize_tenant_id(tenant_id)
        verb = method.upper()
        if not action and verb == "GET":
            return _json(200, tenant_status(svc, tid, live=True).to_dict())
        if action != "policy" or verb != "POST":
            return _json(405, {"error": "method_not_allowed"})
        if len(body) > MAX_ADMIN_BODY:
            return _json(413, {"error": "body_too_large"})
        try:
            request = PolicyRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            return _invalid(exc)
        out: dict[str, Any] = {}
        if request.refresh_protected:
            record = svc.tenants.get(tid)
            assert record is not None
            _, out["protected"] = refresh_protected_identities(svc, record)
        out.update(set_tenant_policy(svc.tenants, tid, remediation=request.remediation, triage=request.triage))
        log.info("admin policy: tenant=%s by=%s", tid, scope.name, extra={"tenant_id": tid})
        return _json(200, out)
    except ConfigurationError as exc:
        return _json(400, {"error": exc.reason, "detail": str(exc)[:300]})
    except TransientError as exc:
        return _json(503, {"error": exc.reason})


def handle_consent_request(
    svc: IngestServices, *, method: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, bytes]:
    """``admin/consent``: GET lists the caller's consent links and outcomes, POST issues one."""
    from shared.ingest.consent import consent_records, issue_consent_link

    scope = admin_scope(svc, headers)
    if scope is None:
        return _json(401, {"error": "unauthorized"})
    verb = method.upper()
    if verb == "GET":
        return _json(200, {"links": consent_records(svc, scope.partners)})
    if verb != "POST":
        return _json(405, {"error": "method_not_allowed"})
    if len(body) > MAX_ADMIN_BODY:
        return _json(413, {"error": "body_too_large"})
    try:
        request = ConsentLinkRequest.model_validate_json(body)
    except ValidationError as exc:
        return _invalid(exc)
    if not scope.allows(request.partner_id):
        return _json(403, {"error": "forbidden"})
    if request.detection is not None and len(orjson.dumps(request.detection)) > MAX_DETECTION_CHARS:
        return _json(400, {"error": "invalid_request", "detail": "detection settings too large"})
    try:
        link = issue_consent_link(
            svc,
            partner_id=request.partner_id,
            tenant=request.tenant,
            name=request.name,
            cloud=request.cloud,
            detection=request.detection,
            ttl=timedelta(hours=request.ttl_hours),
        )
    except ConfigurationError as exc:
        return _json(400, {"error": exc.reason, "detail": str(exc)[:300]})
    return _json(200, link.to_dict())


def handle_consent_callback(svc: IngestServices, *, query: Mapping[str, str]) -> tuple[int, bytes]:
    """``onboarding/consent-callback``: (status, HTML page)."""
    from shared.ingest.consent import handle_consent_callback as callback
    from shared.ingest.consent import render_page

    result = callback(svc, query)
    return result.http_status, render_page(result)


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(default="", max_length=1000)


def _full_key(svc: Services, tenant_id: str, key: str) -> str | None:
    """The key of a remediation given the key or a unique prefix (at least 8 characters), else None."""
    ledger = svc.remediation_ledger
    if ledger.get_entry(tenant_id, key) is not None:
        return key
    if len(key) < MIN_KEY_PREFIX:
        return None
    hits = [e.key for e in ledger.list_entries(tenant_id) if e.key.startswith(key)]
    return hits[0] if len(hits) == 1 else None


def handle_remediation_request(
    svc: Services,
    *,
    method: str,
    tenant_id: str,
    key: str,
    action: str,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[int, bytes]:
    """``admin/remediations/{tenant_id}/{key}/{approve|reject|undo}``: the decision is recorded as made by the
    authenticated caller (never a name sent in the body)."""
    from shared.remediation.runner import approve_action, reject_action, request_undo

    scope = admin_scope(svc, headers)
    if scope is None:
        return _json(401, {"error": "unauthorized"})
    if method.upper() != "POST" or action not in ("approve", "reject", "undo"):
        return _json(405, {"error": "method_not_allowed"})
    if len(body) > MAX_ADMIN_BODY:
        return _json(413, {"error": "body_too_large"})
    try:
        request = DecisionRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        return _invalid(exc)
    try:
        refused = _tenant_in_scope(svc, scope, tenant_id)
        if refused is not None:
            return refused
        tid = normalize_tenant_id(tenant_id)
        full = _full_key(svc, tid, key.strip())
        if full is None:
            return _json(404, {"error": "unknown_remediation"})
        by = scope.name
        ledger, hook = svc.remediation_ledger, svc.remediation_recorder.record
        if action == "approve":
            entry = approve_action(ledger, svc.bus, tid, full, by=by, clock=svc.now, on_change=hook)
        elif action == "reject":
            entry = reject_action(ledger, tid, full, by=by, clock=svc.now, reason=request.reason, on_change=hook)
        else:
            entry = request_undo(ledger, svc.bus, tid, full, by=by, clock=svc.now)
    except ConfigurationError as exc:
        return _json(400, {"error": exc.reason, "detail": str(exc)[:300]})
    except TransientError as exc:
        return _json(503, {"error": exc.reason})
    except ItdrError as exc:
        return _json(409, {"error": exc.reason, "detail": str(exc)[:300]})
    log.info("admin remediation %s: tenant=%s key=%s by=%s", action, tid, full, by, extra={"tenant_id": tid})
    return _json(200, {"action": action, "by": by, **orjson.loads(entry.model_dump_json())})
