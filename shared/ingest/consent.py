"""Consent as a flow: a signed admin-consent link per customer, and the callback that onboards the tenant.

:func:`issue_consent_link` makes the Entra admin-consent URL (Microsoft identity platform, "admin consent"
endpoint)::

    https://login.microsoftonline.com/{tenant id | organizations}/v2.0/adminconsent
        ?client_id={ITDR_APP_CLIENT_ID}&scope=https://graph.microsoft.com/.default
        &redirect_uri={ITDR_CONSENT_REDIRECT_URL}&state={state}

``scope=.default`` grants every application permission configured on the app registration (ActivityFeed.Read
on the Office 365 Management APIs, the Graph permissions of docs/onboarding.md). ``state`` is
``{partner}.{nonce}.{expiry}.{mac}``: the MAC is HMAC-SHA256 under ``ITDR_CONSENT_STATE_KEY`` (a Key Vault
secret) over the partner, nonce and expiry, so a state cannot be forged or moved to another partner. The link's
options (expected tenant, display name, cloud, detection settings) are kept server side in a row of the tenants
table (PartitionKey ``consent``, RowKey the nonce); the callback claims that row with an ETag-conditional
update, so a state is used once.

Entra returns the admin to ``/api/onboarding/consent-callback``: ``admin_consent=True&tenant={id}&state=...``
on success, ``error=access_denied&error_description=AADSTS...&state=...`` otherwise. On success the tenant is
onboarded by :func:`shared.ingest.onboarding.onboard_tenant` (the code the admin API and ``itdr tenants add``
use) and the outcome is stored on the link's row, where the partner sees it (``GET admin/consent``,
``itdr tenants consent-status``) the moment the page is answered. Each failure has a name and what the
customer's admin must do (:data:`OUTCOMES`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.ingest.checkpoints import utcnow
from shared.ingest.clouds import cloud_profile, normalize_tenant_id
from shared.ingest.context import IngestServices
from shared.ingest.onboarding import onboard_tenant
from shared.platform import names
from shared.platform.errors import ConfigurationError, ItdrError

log = logging.getLogger("itdr.ingest")

PARTITION = "consent"
LINK_TTL = timedelta(days=7)
MAX_LINK_TTL = timedelta(days=30)
MIN_KEY_CHARS = 32
MAX_STATE = 512
GRAPH_SCOPE = {"gcc_high": "https://graph.microsoft.us/.default", "dod": "https://dod-graph.microsoft.us/.default"}
"""The ``.default`` scope of each sovereign cloud's Graph (others: graph.microsoft.com)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A named result of a consent callback, with what the customer's admin (or the partner) must do."""

    title: str
    action: str
    http_status: int = 200


OUTCOMES: Mapping[str, Outcome] = {
    "onboarded": Outcome("Connected", "Nothing: the first audit content arrives within minutes to hours."),
    "consent_denied": Outcome(
        "Consent was declined",
        "Open the link again and choose Accept (sign in as a Global Administrator or Privileged Role Administrator).",
    ),
    "insufficient_role": Outcome(
        "The signed-in account cannot grant consent",
        "Sign in with a Global Administrator or Privileged Role Administrator of the tenant (application "
        "permissions need one of these roles; Cloud Application Administrator is not enough for Graph app roles).",
    ),
    "consent_failed": Outcome("Consent did not complete", "Open the link again; if it fails again, send us the error."),
    "audit_log_off": Outcome(
        "Unified audit logging is off",
        "Turn auditing on: Microsoft Purview portal > Audit > Start recording user and admin activity "
        "(or Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true); it can take up to an hour.",
    ),
    "no_exchange_licence": Outcome(
        "The tenant has no audit log (no Exchange Online licence?)",
        "The unified audit log lives in Exchange Online: the tenant needs at least one licence that includes "
        "Exchange Online (Microsoft 365 Business Basic/Standard/Premium, E3/E5, Exchange Online Plan 1/2), "
        "then auditing turned on.",
    ),
    "permission_missing": Outcome(
        "The app's permissions were not granted",
        "Open the link again and accept every permission listed (ActivityFeed.Read is required).",
    ),
    "consent_not_effective": Outcome(
        "Consent is not effective yet",
        "Wait a minute and reopen the link (Entra can take a moment to create the app's service principal).",
    ),
    "action_required": Outcome("Connected, with something to fix", "See the items listed."),
    "onboarding_failed": Outcome("Connection failed", "We have the details; try the link again later.", 502),
    "tenant_mismatch": Outcome(
        "Consent came from another tenant",
        "Sign in with an administrator of the tenant the link was made for (or ask for a new link).",
        400,
    ),
    "state_invalid": Outcome("This link is not valid", "Ask your provider for a new consent link.", 400),
    "state_expired": Outcome("This link has expired", "Ask your provider for a new consent link.", 400),
    "state_used": Outcome(
        "This link was already used", "Nothing if consent succeeded; otherwise ask for a new link.", 409
    ),
}

_PROBLEM_OUTCOME = {
    "audit_log_disabled": "audit_log_off",
    "tenant_not_found": "no_exchange_licence",
    "missing_permission": "permission_missing",
    "forbidden": "permission_missing",
    "token_request_failed": "consent_not_effective",
    "unauthorized": "consent_not_effective",
}
"""The onboarding problem (an error reason) that names a callback's outcome, first match wins."""

_INSUFFICIENT_ROLE_CODES = ("AADSTS90094", "AADSTS90008", "AADSTS900941", "AADSTS90099", "AADSTS50105")
"""Admin consent refused because of who signed in (admin consent required / not permitted / not assigned)."""


# ----------------------------------------------------------------------------- state


def _key(svc: IngestServices) -> bytes:
    secret = svc.settings.consent_state_key
    value = secret.get_secret_value() if secret is not None else ""
    if len(value) < MIN_KEY_CHARS:
        raise ConfigurationError(
            f"ITDR_CONSENT_STATE_KEY must hold at least {MIN_KEY_CHARS} characters", reason="consent_not_configured"
        )
    return value.encode()


def _mac(key: bytes, partner_id: str, nonce: str, expires: int) -> str:
    digest = hmac.new(key, f"v1|{partner_id}|{nonce}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_state(key: bytes, partner_id: str, nonce: str, expires: int) -> str:
    """``{partner}.{nonce}.{expiry}.{mac}``."""
    return f"{partner_id}.{nonce}.{expires}.{_mac(key, partner_id, nonce, expires)}"


def verify_state(key: bytes, state: str) -> tuple[str, str, int] | None:
    """(partner, nonce, expiry) of an authentic state (constant-time MAC check), else None. Expiry is not checked."""
    if not state or len(state) > MAX_STATE:
        return None
    parts = state.rsplit(".", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    partner_id, nonce, expires_text, mac = parts
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(key, partner_id, nonce, expires), mac):
        return None
    return partner_id, nonce, expires


# ----------------------------------------------------------------------------- links


@dataclass(frozen=True, slots=True)
class ConsentLink:
    url: str
    state: str
    nonce: str
    partner_id: str
    tenant_hint: str | None
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "nonce": self.nonce,
            "partner_id": self.partner_id,
            "tenant_hint": self.tenant_hint,
            "expires_at": self.expires_at.isoformat(),
        }


def _table(svc: IngestServices) -> Any:
    return svc.storage.table(names.TABLE_TENANTS)


def issue_consent_link(
    svc: IngestServices,
    *,
    partner_id: str,
    tenant: str | None = None,
    name: str = "",
    cloud: str = "commercial",
    detection: Mapping[str, Any] | None = None,
    ttl: timedelta = LINK_TTL,
) -> ConsentLink:
    """A single-use admin-consent link for one customer of ``partner_id`` (``tenant``: its id when known, else
    any organisation may consent). ConfigurationError when the app, key or redirect URL is not configured."""
    settings = svc.settings
    key = _key(svc)
    if not settings.app_client_id or not settings.consent_redirect_url:
        raise ConfigurationError(
            "ITDR_APP_CLIENT_ID and ITDR_CONSENT_REDIRECT_URL are required", reason="consent_not_configured"
        )
    if not timedelta(minutes=5) <= ttl <= MAX_LINK_TTL:
        raise ConfigurationError(f"link lifetime must be 5 minutes to {MAX_LINK_TTL.days} days", reason="bad_ttl")
    profile = cloud_profile(cloud)
    hint = normalize_tenant_id(tenant) if tenant else None
    now = utcnow(svc.clock)
    expires = int((now + ttl).timestamp())
    nonce = secrets.token_urlsafe(18)
    state = sign_state(key, partner_id, nonce, expires)
    body = {
        "partner_id": partner_id,
        "tenant_hint": hint,
        "name": name,
        "cloud": cloud,
        "detection": dict(detection) if detection is not None else None,
        "issued_at": now.isoformat(),
        "expires_at": datetime.fromtimestamp(expires, now.tzinfo).isoformat(),
        "status": "issued",
    }
    _table(svc).create_entity({"PartitionKey": PARTITION, "RowKey": nonce, "body": orjson.dumps(body).decode()})
    authority = (settings.login_authority_override or f"https://{profile.authority_host}").rstrip("/")
    query = urlencode(
        {
            "client_id": settings.app_client_id,
            "scope": GRAPH_SCOPE.get(cloud, "https://graph.microsoft.com/.default"),
            "redirect_uri": settings.consent_redirect_url,
            "state": state,
        }
    )
    url = f"{authority}/{hint or 'organizations'}/v2.0/adminconsent?{query}"
    log.info("consent link issued: partner=%s nonce=%s", partner_id, nonce)
    return ConsentLink(url, state, nonce, partner_id, hint, datetime.fromtimestamp(expires, now.tzinfo))


def consent_records(svc: IngestServices, partners: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Every consent link with its status (``issued``, ``claimed``, then an outcome of :data:`OUTCOMES`)."""
    rows = _table(svc).query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
    out = []
    for row in rows:
        body = orjson.loads(row["body"])
        if partners is None or body.get("partner_id") in partners:
            body.pop("detection", None)
            out.append({"nonce": row["RowKey"], **body})
    return sorted(out, key=lambda r: str(r.get("issued_at")))


# ----------------------------------------------------------------------------- callback


@dataclass(slots=True)
class CallbackResult:
    outcome: str
    tenant_id: str | None = None
    partner_id: str | None = None
    status: dict[str, Any] | None = None
    detail: str | None = None

    @property
    def http_status(self) -> int:
        return OUTCOMES[self.outcome].http_status


def _claim(svc: IngestServices, nonce: str) -> dict[str, Any] | None:
    """Claim the link's row (issued -> claimed) with its ETag: only one callback wins. None when already used."""
    table = _table(svc)
    try:
        row = table.get_entity(PARTITION, nonce)
    except ResourceNotFoundError:
        return {}
    body: dict[str, Any] = orjson.loads(row["body"])
    if body.get("status") != "issued":
        return None
    body["status"] = "claimed"
    try:
        table.update_entity(
            {"PartitionKey": PARTITION, "RowKey": nonce, "body": orjson.dumps(body).decode()},
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return None
    return body


def _finish(svc: IngestServices, nonce: str, body: dict[str, Any], result: CallbackResult) -> None:
    body.update(
        status=result.outcome,
        tenant_id=result.tenant_id,
        completed_at=utcnow(svc.clock).isoformat(),
        action=OUTCOMES[result.outcome].action,
        problems=(result.status or {}).get("problems", []),
        detail=result.detail,
    )
    _table(svc).upsert_entity({"PartitionKey": PARTITION, "RowKey": nonce, "body": orjson.dumps(body).decode()})


def _refusal(error: str, description: str) -> str:
    if any(code in description for code in _INSUFFICIENT_ROLE_CODES):
        return "insufficient_role"
    if error in ("access_denied", "consent_required") and "AADSTS65004" in description:
        return "consent_denied"  # "User declined to consent to access the app"
    if error == "access_denied":
        return "consent_denied"
    return "consent_failed"


def handle_consent_callback(svc: IngestServices, query: Mapping[str, str]) -> CallbackResult:
    """Check the state, then onboard the consenting tenant or name why not; the result is stored on the link."""
    try:
        key = _key(svc)
    except ConfigurationError:
        return CallbackResult("state_invalid", detail="consent links are not configured")
    verified = verify_state(key, query.get("state", ""))
    if verified is None:
        log.warning("consent callback with a forged or malformed state")
        return CallbackResult("state_invalid")
    partner_id, nonce, expires = verified
    if expires < svc.clock():
        return CallbackResult("state_expired", partner_id=partner_id)
    body = _claim(svc, nonce)
    if body is None:
        return CallbackResult("state_used", partner_id=partner_id)
    if not body or body.get("partner_id") != partner_id:
        return CallbackResult("state_invalid", partner_id=partner_id)
    result = _outcome(svc, query, body, partner_id)
    _finish(svc, nonce, body, result)
    log.info(
        "consent callback: partner=%s tenant=%s outcome=%s",
        partner_id,
        result.tenant_id,
        result.outcome,
        extra={"tenant_id": result.tenant_id or ""},
    )
    return result


def _outcome(svc: IngestServices, query: Mapping[str, str], body: Mapping[str, Any], partner_id: str) -> CallbackResult:
    error = query.get("error", "")
    if error:
        return CallbackResult(
            _refusal(error, query.get("error_description", "")),
            partner_id=partner_id,
            detail=query.get("error_description", "")[:300] or error[:100],
        )
    tenant_text = query.get("tenant", "")
    try:
        tenant_id = normalize_tenant_id(tenant_text)
        uuid.UUID(tenant_id)
    except (ConfigurationError, ValueError):
        return CallbackResult("consent_failed", partner_id=partner_id, detail="no tenant id in the answer")
    if query.get("admin_consent", "").lower() != "true":
        return CallbackResult("consent_failed", tenant_id, partner_id, detail="admin_consent is not True")
    hint = body.get("tenant_hint")
    if hint and hint != tenant_id:
        return CallbackResult("tenant_mismatch", tenant_id, partner_id)
    try:
        status = onboard_tenant(
            svc,
            tenant_id=tenant_id,
            name=str(body.get("name") or ""),
            partner_id=partner_id,
            cloud=str(body.get("cloud") or "commercial"),
            detection=body.get("detection"),
        )
    except ItdrError as exc:
        return CallbackResult("onboarding_failed", tenant_id, partner_id, detail=f"{exc.reason}: {str(exc)[:200]}")
    as_dict = status.to_dict()
    for problem in status.problems:
        if problem in _PROBLEM_OUTCOME:
            return CallbackResult(_PROBLEM_OUTCOME[problem], tenant_id, partner_id, as_dict)
    outcome = "action_required" if status.needs_human else "onboarded"
    return CallbackResult(outcome, tenant_id, partner_id, as_dict)


# ----------------------------------------------------------------------------- the page


def render_page(result: CallbackResult) -> bytes:
    """The page the customer's admin sees (escaped: every value may come from the query string)."""
    outcome = OUTCOMES[result.outcome]
    items = ""
    if result.status and result.status.get("needs_human"):
        items = "<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in result.status["needs_human"]) + "</ul>"
    tenant = f"<p>Tenant: <code>{html.escape(result.tenant_id)}</code></p>" if result.tenant_id else ""
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>m365-itdr: "
        f"{html.escape(outcome.title)}</title></head><body><h1>{html.escape(outcome.title)}</h1>"
        f"<p>Status: <code>{html.escape(result.outcome)}</code></p>{tenant}"
        f"<p>{html.escape(outcome.action)}</p>{items}</body></html>"
    )
    return page.encode()
