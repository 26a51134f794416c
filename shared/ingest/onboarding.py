"""Onboarding a customer tenant: register it, start its subscriptions, seed identity, report status.

:func:`onboard_tenant` is idempotent: run it again and it changes only what is missing. The steps:

1. the tenant row is written first (status ``onboarding``), with the hash of a fresh random webhook
   AuthID, so the webhook's validation handshake during ``/start`` finds it;
2. every content type of :data:`~shared.ingest.checkpoints.FEED_CONTENT_TYPES` is started through
   :func:`ensure_feeds` (``AF20024`` "already enabled" is success), with the webhook when
   ``Settings.webhook_url`` is set;
3. home countries are seeded from Entra ``usageLocation`` through the tenant's Graph client (best effort:
   a Graph failure is reported, never fatal);
4. the protected identities are read from Graph (:func:`refresh_protected_identities`, best effort too):
   the holders of the protected directory roles (Global Administrator and Privileged Role Administrator by
   default, the tenant policy's ``protected_roles`` otherwise) and the app's own service principal. The
   remediation never isolates them automatically. Onboarding again refreshes the list.

:func:`ensure_feeds` is also how the poller and the feed-health check repair a feed. It starts a
subscription at most once per :data:`START_SPACING` per (tenant, content type) (REF asks for 15 min
between start calls; spacing them per content type keeps onboarding fast, and an ``AF429`` from the
service is reported as ``deferred``). The webhook AuthID is kept only as a SHA-256 hash; when a start
needs it, the plaintext is taken from a subscription that still carries the matching AuthID
(``/subscriptions/list`` returns it), and rotated when none does.

:func:`handle_admin_request` is the ``admin/tenants`` HTTP API, on top of the platform's function key: either
``x-itdr-admin-key`` whose SHA-256 equals ``Settings.admin_api_key_hash`` (constant-time; every tenant), or,
with ``ITDR_ADMIN_PRINCIPAL_AUTH=appservice``, an App Service Authentication principal with the ``Admin`` app
role (every tenant) or ``PartnerAdmin`` and ``partner`` claims (those partners' tenants) (:func:`admin_scope`).
Sizes are bounded, and a trusted IP range wider than /8 (IPv4) or /32 (IPv6) is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.ingest.checkpoints import FEED_CONTENT_TYPES, CheckpointStore, utcnow
from shared.ingest.client import ManagementActivityClient, Subscription, WebhookConfig
from shared.ingest.clouds import ApiEndpoint, cloud_profile, normalize_tenant_id
from shared.ingest.context import IngestServices
from shared.platform import names
from shared.platform.errors import ConfigurationError, ItdrError, ThrottledError, TransientError
from shared.platform.principal import principal_from_headers
from shared.platform.storage import encode_key
from shared.tenant_config import TenantConfig
from shared.tenants import PROTECTED_ROLE_TEMPLATES, TenantRecord, hash_secret, settings_digest

log = logging.getLogger("itdr.ingest")

START_SPACING = timedelta(minutes=15)
"""Minimum time between two ``/subscriptions/start`` calls for one (tenant, content type)."""
HOME_COUNTRIES_MAX_CHARS = 24_000
"""Largest seeded ``home_countries`` JSON kept in the tenant row (a Table string holds 32 Ki characters)."""
MAX_ADMIN_BODY = 64 * 1024
MAX_DETECTION_CHARS = 6_000
"""Largest ``detection`` object (JSON) accepted from the admin API: with seeded home countries
(:data:`HOME_COUNTRIES_MAX_CHARS`) the tenant row stays under Table Storage's 32 Ki-character string."""
MIN_TRUSTED_PREFIX = {4: 8, 6: 32}
"""The widest trusted range accepted per IP version (/8 IPv4, /32 IPv6): anything wider, the default route
included, would make the detectors trust most of the internet."""


# ----------------------------------------------------------------------------- plumbing


def tenant_endpoint(svc: IngestServices, record: TenantRecord) -> ApiEndpoint:
    """Where the tenant's API lives: its cloud's host, or the ``ITDR_MANAGEMENT_API_BASE_URL`` override."""
    base = svc.settings.management_api_base_url
    return ApiEndpoint.parse(base) if base else ApiEndpoint.for_cloud(record.cloud)


# ----------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True, slots=True)
class StartOutcome:
    """What :func:`ensure_feeds` found or did for one content type."""

    content_type: str
    action: str
    """``ok`` (nothing to do), ``started``, ``deferred`` (15 min spacing or AF429) or ``failed``."""
    subscription: str
    """``enabled``, ``disabled``, ``missing`` or ``unknown``."""
    webhook: str | None = None
    """Webhook status (``enabled``, ``disabled``, ``expired``) or None when the subscription has none."""
    error: str | None = None
    next_start_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["next_start_at"] = self.next_start_at.isoformat() if self.next_start_at else None
        return out


def _auth_matching(record: TenantRecord, subs: Iterable[Subscription]) -> str | None:
    for sub in subs:
        auth = sub.webhook.auth_id if sub.webhook is not None else None
        if auth and record.webhook_auth_matches(auth):
            return auth
    return None


def _needs_start(sub: Subscription | None, address: str | None, record: TenantRecord) -> bool:
    if sub is None or not sub.enabled:
        return True
    if address is None:
        return False
    hook = sub.webhook
    return (
        hook is None
        or (hook.status or "").lower() != "enabled"
        or hook.address != address
        or not record.webhook_auth_matches(hook.auth_id)
    )


def _state(sub: Subscription | None) -> tuple[str, str | None]:
    if sub is None:
        return "missing", None
    return (sub.status or "unknown").lower(), (sub.webhook.status if sub.webhook is not None else None)


def rotate_webhook_auth(svc: IngestServices, record: TenantRecord) -> tuple[TenantRecord, str]:
    """A fresh random AuthID: its hash is stored in the tenant row now; the plaintext is returned."""
    auth_id = secrets.token_urlsafe(32)
    record = record.model_copy(update={"webhook_auth_hash": hash_secret(auth_id)})
    svc.tenants.upsert(record)
    return record, auth_id


def ensure_feeds(
    svc: IngestServices,
    client: ManagementActivityClient,
    record: TenantRecord,
    *,
    content_types: Iterable[str] = FEED_CONTENT_TYPES,
    subscriptions: Iterable[Subscription] | None = None,
    auth_id: str | None = None,
) -> tuple[TenantRecord, list[StartOutcome]]:
    """Start every listed subscription that is missing, disabled or lacks the right webhook.

    ``subscriptions`` is a fresh ``/subscriptions/list`` answer (listed here when None); ``auth_id`` the
    plaintext AuthID when the caller knows it. Returns the (possibly updated) tenant row and one outcome
    per content type. Errors of one start are reported in its outcome, never raised.
    """
    subs = {s.content_type: s for s in (client.list_subscriptions() if subscriptions is None else subscriptions)}
    address = svc.settings.webhook_url or None
    tid = record.tenant_id
    types = list(content_types)
    if auth_id is None or not record.webhook_auth_matches(auth_id):
        auth_id = _auth_matching(record, subs.values())
    if address and auth_id is None and any(_needs_start(subs.get(ct), address, record) for ct in types):
        record, auth_id = rotate_webhook_auth(svc, record)
        log.info("webhook AuthID rotated: tenant=%s", tid, extra={"tenant_id": tid})
    store = CheckpointStore(svc.storage)
    outcomes: list[StartOutcome] = []
    for ct in types:
        sub = subs.get(ct)
        status, hook = _state(sub)
        if not _needs_start(sub, address, record):
            outcomes.append(StartOutcome(ct, "ok", status, hook))
            continue
        outcomes.append(_start(svc, client, store, ct, sub=sub, address=address, auth_id=auth_id))
    return record, outcomes


def _start(
    svc: IngestServices,
    client: ManagementActivityClient,
    store: CheckpointStore,
    content_type: str,
    *,
    sub: Subscription | None,
    address: str | None,
    auth_id: str | None,
) -> StartOutcome:
    tid = client.tenant_id
    now = utcnow(svc.clock)
    status, hook = _state(sub)
    checkpoint = store.get_checkpoint(tid, content_type)
    last = checkpoint.last_start_at
    if last is not None and now - last < START_SPACING:
        return StartOutcome(content_type, "deferred", status, hook, "start_spacing", last + START_SPACING)
    webhook = WebhookConfig(address=address, authId=auth_id) if address else None
    if webhook is not None and checkpoint.last_start_error == "webhook_validation_failed" and status != "enabled":
        webhook = None  # the listener failed validation last time: subscribe without it, polling still works
        log.warning("starting without the webhook after a failed validation: tenant=%s", tid)
    store.record_start(tid, content_type, at=now)
    try:
        started = client.start_subscription(content_type, webhook=webhook)
    except ItdrError as exc:
        store.record_start(tid, content_type, at=now, error=exc.reason)
        log.warning(
            "subscription start failed: tenant=%s content_type=%s reason=%s",
            tid,
            content_type,
            exc.reason,
            extra={"tenant_id": tid, "content_type": content_type, "reason": exc.reason},
        )
        action = "deferred" if isinstance(exc, ThrottledError) else "failed"
        retry = now + START_SPACING
        return StartOutcome(content_type, action, status, hook, exc.reason, retry)
    log.info("subscription started: tenant=%s content_type=%s", tid, content_type, extra={"tenant_id": tid})
    new_status, new_hook = _state(started)
    return StartOutcome(content_type, "started", new_status, new_hook)


# ----------------------------------------------------------------------------- onboarding


@dataclass(slots=True)
class TenantStatus:
    """Where a tenant stands: its row, one outcome per content type, identity seeding, human actions."""

    tenant_id: str
    name: str
    partner_id: str
    cloud: str
    status: str
    """The stored tenant status: ``onboarding``, ``active`` or ``offboarded``."""
    feeds: list[StartOutcome] = field(default_factory=list)
    first_content_at: datetime | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    protected: dict[str, Any] = field(default_factory=dict)
    """The protected identities read from Graph (:func:`refresh_protected_identities`)."""
    historical_rules: dict[str, Any] = field(default_factory=dict)
    """The first scan of existing inbox rules through Graph (best effort)."""
    signin_logs: dict[str, Any] = field(default_factory=dict)
    """Whether the Entra sign-in logs are read (Entra ID P1+, :func:`detect_signin_licence`) and how far."""
    needs_human: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """The error reasons behind ``needs_human`` (``audit_log_disabled``, ``missing_permission``, ...)."""

    def need(self, reason: str, text: str | None = None) -> None:
        """Record a problem a person must act on (once per reason)."""
        if reason not in self.problems:
            self.problems.append(reason)
        message = text or HUMAN_ACTIONS.get(reason) or reason
        if message not in self.needs_human:
            self.needs_human.append(message)

    @property
    def state(self) -> str:
        """``action_required``, ``onboarding``, ``waiting_for_first_content`` or ``active``."""
        if self.needs_human:
            return "action_required"
        if self.status != "active":
            return self.status
        return "waiting_for_first_content" if self.first_content_at is None else "active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tenant_id": self.tenant_id,
            "name": self.name,
            "partner_id": self.partner_id,
            "cloud": self.cloud,
            "status": self.status,
            "state": self.state,
            "first_content_at": self.first_content_at.isoformat() if self.first_content_at else None,
            "feeds": [f.to_dict() for f in self.feeds],
            "identity": self.identity,
            "protected": self.protected,
            "signin_logs": self.signin_logs,
            "needs_human": list(self.needs_human),
            "problems": list(self.problems),
        }


HUMAN_ACTIONS = {
    "audit_log_disabled": "Unified audit logging is off in the tenant: turn it on in Microsoft Purview (Audit).",
    "missing_permission": "The app lacks ActivityFeed.Read: an admin of the tenant must grant consent.",
    "token_request_failed": "No token for the tenant: check the app's admin consent, certificate or secret.",
    "tenant_not_found": "The tenant is unknown to the Management API (deleted, or audit logging never enabled).",
    "tenant_mismatch": "The token's tenant does not match: check the app registration and the tenant ID.",
    "tenant_misconfigured": "The tenant is misconfigured for the Management API: see Microsoft support.",
    "invalid_content_id": "Wrong cloud for the tenant (AF20052): check its cloud setting.",
    "webhook_validation_failed": "The webhook listener did not answer the validation: check ITDR_WEBHOOK_URL.",
}
"""Error reasons that need a person, with what to do."""


def _validated_detection(tenant_id: str, detection: Mapping[str, Any]) -> dict[str, Any]:
    try:
        config = TenantConfig.model_validate({**detection, "tenant_id": tenant_id})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigurationError(f"invalid detection settings: {where}: {first['msg']}", tenant=tenant_id) from exc
    for cidr in config.trusted_ip_ranges:
        network = ipaddress.ip_network(cidr, strict=False)
        if network.prefixlen < MIN_TRUSTED_PREFIX[network.version]:
            raise ConfigurationError(
                f"trusted range {network} is wider than /{MIN_TRUSTED_PREFIX[network.version]}",
                reason="trusted_range_too_wide",
                tenant=tenant_id,
            )
    return dict(detection)


def _register(
    svc: IngestServices,
    *,
    tenant_id: str,
    name: str,
    partner_id: str,
    cloud: str,
    detection: Mapping[str, Any] | None,
) -> tuple[TenantRecord, str | None]:
    """Write the tenant row before any start; a new tenant (or one without a hash) gets a fresh AuthID."""
    now = utcnow(svc.clock)
    directory = svc.tenants
    existing = directory.get(tenant_id)
    update: dict[str, Any] = {"name": name, "partner_id": partner_id, "cloud": cloud}
    if detection is not None:
        update["detection"] = _validated_detection(tenant_id, detection)
    if existing is None:
        record = TenantRecord(tenant_id=tenant_id, status="onboarding", onboarded_at=now, **update)
    else:
        if existing.status == "offboarded":
            update.update(status="onboarding", onboarded_at=now)
        record = existing.model_copy(update=update)
    if record.webhook_auth_hash is None:
        return rotate_webhook_auth(svc, record)
    directory.upsert(record)
    return record, None


def _seed_identity(svc: IngestServices, record: TenantRecord) -> tuple[TenantRecord, dict[str, Any]]:
    """Home countries (object ID -> usageLocation) from Graph; best effort, reported and recorded."""
    tid = record.tenant_id
    result: dict[str, Any]
    try:
        graph = svc.graph_client(tid)
    except ConfigurationError:
        return record, {"seeded": False, "error": "graph_not_configured"}
    try:
        users = graph.list_users()
        seeded = {u.id.lower(): u.usage_location.upper() for u in users if u.usage_location}
        if len(orjson.dumps(seeded)) > HOME_COUNTRIES_MAX_CHARS:
            result = {"seeded": False, "users": len(users), "error": "home_countries_too_large"}
        else:
            homes = {**dict(record.detection.get("home_countries") or {}), **seeded}
            record = record.model_copy(update={"detection": {**record.detection, "home_countries": homes}})
            svc.tenants.upsert(record)
            result = {"seeded": True, "users": len(users), "home_countries": len(seeded)}
    except ItdrError as exc:
        result = {"seeded": False, "error": exc.reason, "detail": str(exc)[:300]}
    except Exception as exc:  # best effort: Graph never fails onboarding
        result = {"seeded": False, "error": "graph_failed", "detail": type(exc).__name__}
    if result.get("error"):
        log.warning("identity seeding failed: tenant=%s reason=%s", tid, result["error"], extra={"tenant_id": tid})
    svc.storage.table(names.TABLE_FEED_HEALTH).upsert_entity(
        {
            "PartitionKey": encode_key(tid),
            "RowKey": "identity",
            "checked_at": utcnow(svc.clock).isoformat(),
            "body": orjson.dumps(result).decode(),
        }
    )
    return record, result


def refresh_protected_identities(svc: IngestServices, record: TenantRecord) -> tuple[TenantRecord, dict[str, Any]]:
    """Read the protected identities from Graph into the tenant record; best effort, reported.

    ``GET /directoryRoles?$filter=roleTemplateId eq '{id}'`` and ``/directoryRoles/{id}/members`` per protected
    role, and ``GET /servicePrincipals?$filter=appId eq '{ITDR_APP_CLIENT_ID}'`` for the app itself: object ids,
    UPNs and app ids, lower-cased. On a Graph failure the earlier list is kept (never emptied by an error).
    """
    tid = record.tenant_id
    configured = record.remediation.get("protected_roles")
    roles = [str(r) for r in configured] if isinstance(configured, list | tuple) else list(PROTECTED_ROLE_TEMPLATES)
    try:
        graph = svc.graph_client(tid)
    except ConfigurationError:
        return record, {"refreshed": False, "error": "graph_not_configured"}
    found: set[str] = set()
    result: dict[str, Any]
    try:
        for role in roles:
            for m in graph.list_role_members(role):
                found.update(x.lower() for x in (m.id, m.user_principal_name, m.app_id) if x)
        app_id = svc.settings.app_client_id
        if app_id:
            found.add(app_id.lower())
            own = graph.find_service_principal(app_id)
            if own is not None:
                found.add(own.id.lower())
        record = record.model_copy(
            update={"protected_identities": sorted(found), "protected_refreshed_at": utcnow(svc.clock)}
        )
        svc.tenants.upsert(record)
        result = {"refreshed": True, "roles": len(roles), "identities": len(found)}
    except ItdrError as exc:
        result = {"refreshed": False, "error": exc.reason, "detail": str(exc)[:300]}
    except Exception as exc:  # best effort: Graph never fails onboarding
        result = {"refreshed": False, "error": "graph_failed", "detail": type(exc).__name__}
    if result.get("error"):
        log.warning("protected identities not refreshed: tenant=%s reason=%s", tid, result["error"])
    return record, result


def detect_signin_licence(svc: IngestServices, record: TenantRecord) -> tuple[TenantRecord, dict[str, Any]]:
    """Whether the tenant has Entra ID P1 or P2 (``GET /subscribedSkus``: a provisioned ``AAD_PREMIUM`` or
    ``AAD_PREMIUM_P2`` service plan), which the sign-in logs API needs; best effort, recorded on the tenant
    (``signin_logs``). Without the licence the product works on the audit log alone."""
    tid = record.tenant_id
    result: dict[str, Any]
    try:
        premium = svc.signin_client(tid).premium_licence()
        result = {"state": "available" if premium else "unavailable"}
    except ItdrError as exc:
        result = {"state": "unknown", "error": exc.reason}
    except Exception as exc:  # best effort: Graph never fails onboarding
        result = {"state": "unknown", "error": "graph_failed", "detail": type(exc).__name__}
    state = str(result["state"])
    if state != "unknown" or record.signin_logs == "unknown":
        if state != record.signin_logs:
            record = record.model_copy(update={"signin_logs": state})
            svc.tenants.upsert(record)
    else:
        result["kept"] = record.signin_logs  # a failed check keeps what an earlier one found
    return record, result


def _signin_status(svc: IngestServices, record: TenantRecord) -> dict[str, Any]:
    cp = CheckpointStore(svc.storage).get_checkpoint(record.tenant_id, "SignInLogs")
    return {
        "state": record.signin_logs,
        "watermark": cp.watermark.isoformat() if cp.watermark else None,
        "newest_signin_at": cp.newest_content_at.isoformat() if cp.newest_content_at else None,
        "last_error": cp.last_error,
    }


def _scan_rules(svc: IngestServices, tenant_id: str) -> dict[str, Any]:
    """Score the inbox rules that exist before onboarding; a Graph failure never fails onboarding."""
    try:
        scan = svc.inbox_rule_sweep.scan(tenant_id)
    except ItdrError as exc:
        return {"scanned": False, "error": exc.reason}
    return {"scanned": True, "mailboxes": scan.mailboxes, "rules": scan.rules, "alerts": len(scan.alerts)}


def onboard_tenant(
    svc: IngestServices,
    *,
    tenant_id: str,
    name: str,
    partner_id: str = "default",
    cloud: str = "commercial",
    detection: Mapping[str, Any] | None = None,
) -> TenantStatus:
    """Register a tenant and start its feeds (idempotent). ConfigurationError for a bad ID, cloud or setting.

    Errors that need a person (audit logging off, missing consent) are in ``needs_human``, not raised.
    """
    tid = normalize_tenant_id(tenant_id)
    cloud_profile(cloud)
    record, auth_id = _register(svc, tenant_id=tid, name=name, partner_id=partner_id, cloud=cloud, detection=detection)
    client = svc.management_client(tid)
    status = TenantStatus(tid, record.name, record.partner_id, record.cloud, record.status)
    subs: list[Subscription] | None
    try:
        subs = client.list_subscriptions()
    except TransientError:
        subs = []  # start everything: "already enabled" is success
    except ItdrError as exc:
        status.need(exc.reason, HUMAN_ACTIONS.get(exc.reason, f"{exc.reason}: {exc}"))
        status.feeds = [StartOutcome(ct, "failed", "unknown", None, exc.reason) for ct in FEED_CONTENT_TYPES]
        return status
    record, status.feeds = ensure_feeds(svc, client, record, subscriptions=subs, auth_id=auth_id)
    for outcome in status.feeds:
        if outcome.error in HUMAN_ACTIONS:
            status.need(outcome.error)
    if all(f.subscription == "enabled" for f in status.feeds) and record.status != "active":
        record = record.model_copy(update={"status": "active"})
        svc.tenants.upsert(record)
    record, status.identity = _seed_identity(svc, record)
    record, status.protected = refresh_protected_identities(svc, record)
    record, licence = detect_signin_licence(svc, record)
    status.signin_logs = {**_signin_status(svc, record), **licence}
    status.historical_rules = _scan_rules(svc, tid)
    status.status, status.first_content_at = record.status, record.first_content_at
    log.info("tenant onboarded: tenant=%s state=%s", tid, status.state, extra={"tenant_id": tid})
    return status


def tenant_status(svc: IngestServices, tenant_id: str, *, live: bool = True) -> TenantStatus:
    """A tenant's status; with ``live``, subscription states come from ``/subscriptions/list``.

    NotFoundError-free: an unknown tenant raises ConfigurationError (reason ``unknown_tenant``).
    """
    tid = normalize_tenant_id(tenant_id)
    record = svc.tenants.get(tid)
    if record is None:
        raise ConfigurationError("tenant is not onboarded", reason="unknown_tenant", tenant=tid)
    status = TenantStatus(tid, record.name, record.partner_id, record.cloud, record.status)
    status.first_content_at = record.first_content_at
    subs: dict[str, Subscription] = {}
    if live:
        try:
            subs = {s.content_type: s for s in svc.management_client(tid).list_subscriptions()}
        except ItdrError as exc:
            status.need(exc.reason, HUMAN_ACTIONS.get(exc.reason, f"{exc.reason}: {exc}"))
    status.signin_logs = _signin_status(svc, record)
    checkpoints = {c.content_type: c for c in CheckpointStore(svc.storage).list_checkpoints(tid)}
    for ct in FEED_CONTENT_TYPES:
        state, hook = _state(subs.get(ct)) if live and not status.needs_human else ("unknown", None)
        cp = checkpoints.get(ct)
        error = (cp.last_error or cp.last_start_error) if cp is not None else None
        status.feeds.append(StartOutcome(ct, "ok", state, hook, error))
    return status


# ----------------------------------------------------------------------------- admin HTTP API


class OnboardRequest(BaseModel):
    """Body of ``POST admin/tenants``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=256)
    partner_id: str = Field(default="default", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    cloud: str = Field(default="commercial", max_length=16)
    detection: dict[str, Any] | None = None

    @field_validator("detection")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(orjson.dumps(value)) > MAX_DETECTION_CHARS:
            raise ValueError(f"detection settings larger than {MAX_DETECTION_CHARS} characters")
        return value


def _json(status: int, value: Any) -> tuple[int, bytes]:
    return status, orjson.dumps(value)


def admin_key_matches(svc: IngestServices, headers: Mapping[str, str]) -> bool:
    """True when ``x-itdr-admin-key`` hashes to ``Settings.admin_api_key_hash`` (constant-time)."""
    expected = (svc.settings.admin_api_key_hash or "").strip().lower()
    key = next((v for k, v in headers.items() if k.lower() == "x-itdr-admin-key"), "")
    if not expected or not key:
        return False
    return hmac.compare_digest(hash_secret(key), expected)


@dataclass(frozen=True, slots=True)
class AdminScope:
    """Who called the admin API and which tenants they may see and onboard."""

    caller: str
    """``admin-key`` or ``principal``."""
    partners: frozenset[str] | None
    """The partners whose tenants the caller covers; None for every tenant."""
    name: str = "admin-key"
    """The principal's name (UPN) when a principal called: recorded with what it changed."""

    def allows(self, partner_id: str) -> bool:
        """True when a tenant of ``partner_id`` is within the caller's scope."""
        return self.partners is None or partner_id in self.partners


ADMIN_ROLE = "Admin"
"""App role of a principal that administers every tenant."""
PARTNER_ADMIN_ROLE = "PartnerAdmin"
"""App role of a principal that administers the tenants of the partners named by its ``partner`` claims."""


def admin_scope(svc: IngestServices, headers: Mapping[str, str]) -> AdminScope | None:
    """The caller's scope, or None (unauthorized).

    The admin key covers every tenant. With ``ITDR_ADMIN_PRINCIPAL_AUTH=appservice`` an App Service
    Authentication principal is accepted too, with ``entra`` an Entra bearer token the app validates
    (:mod:`shared.platform.principal`): app role ``Admin`` covers every tenant, ``PartnerAdmin`` the tenants of
    the partners its ``partner`` claims name (none named: unauthorized).
    """
    if admin_key_matches(svc, headers):
        return AdminScope("admin-key", None)
    mode = svc.settings.admin_principal_auth
    if mode not in ("appservice", "entra"):
        return None
    principal = principal_from_headers(headers, mode=mode, verifier=svc.admin_verifier if mode == "entra" else None)
    if principal is None:
        return None
    if principal.has_role(ADMIN_ROLE):
        return AdminScope("principal", None, principal.name)
    if principal.has_role(PARTNER_ADMIN_ROLE) and principal.partners:
        return AdminScope("principal", principal.partners, principal.name)
    return None


def list_tenant_statuses(svc: IngestServices, scope: AdminScope | None = None) -> list[dict[str, Any]]:
    """Every tenant (within ``scope``) with its stored status and feed checkpoints (no API calls)."""
    out: list[dict[str, Any]] = []
    for record in svc.tenants.list():
        if scope is None or scope.allows(record.partner_id):
            item = tenant_status(svc, record.tenant_id, live=False).to_dict()
            item["digests"] = {
                "detection": settings_digest(record.detection),
                "remediation": settings_digest(record.remediation),
                "triage": settings_digest(record.triage),
            }
            out.append(item)
    return out


def handle_admin_request(
    svc: IngestServices, *, method: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, bytes]:
    """``admin/tenants``: POST onboards (body :class:`OnboardRequest`), GET lists; (status, JSON body).

    A partner-scoped caller lists only its partners' tenants and onboards only for them (an existing
    tenant of another partner included): anything else is 403 ``forbidden``.
    """
    scope = admin_scope(svc, headers)
    if scope is None:
        return _json(401, {"error": "unauthorized"})
    verb = method.upper()
    if verb == "GET":
        return _json(200, {"tenants": list_tenant_statuses(svc, scope)})
    if verb != "POST":
        return _json(405, {"error": "method_not_allowed"})
    if len(body) > MAX_ADMIN_BODY:
        return _json(413, {"error": "body_too_large"})
    try:
        request = OnboardRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        return _json(400, {"error": "invalid_request", "detail": f"{where}: {first['msg'][:200]}"})
    if not scope.allows(request.partner_id):
        return _json(403, {"error": "forbidden"})
    try:
        existing = svc.tenants.get(normalize_tenant_id(request.tenant_id))
        if existing is not None and not scope.allows(existing.partner_id):
            return _json(403, {"error": "forbidden"})
        status = onboard_tenant(svc, **request.model_dump())
    except ConfigurationError as exc:
        return _json(400, {"error": exc.reason, "detail": str(exc)[:300]})
    except TransientError as exc:
        return _json(503, {"error": exc.reason})
    log.info(
        "admin onboarding: tenant=%s partner=%s caller=%s by=%s",
        status.tenant_id,
        status.partner_id,
        scope.caller,
        scope.name,
        extra={"tenant_id": status.tenant_id},
    )
    return _json(200, status.to_dict())
