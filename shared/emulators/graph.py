"""A local Microsoft Graph v1.0 emulator for tests, the demo and the chaos run.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` in a daemon thread, a random free port) that speaks
the documented wire protocol for the endpoints m365-itdr remediates with (docs/graph-remediation.md §1, §7)::

    GET    /v1.0/users[?$select=&$top=]                 paging through @odata.nextLink ($skiptoken)
    GET    /v1.0/users/{id|upn}[?$select=]
    PATCH  /v1.0/users/{id}                             {"accountEnabled": bool} → 204
    POST   /v1.0/users/{id}/revokeSignInSessions        → 200 {"value": true}
    GET    /v1.0/users/{id}/mailFolders/inbox/messageRules
    POST   /v1.0/users/{id}/mailFolders/inbox/messageRules            → 201 (restore a rule)
    GET    /v1.0/users/{id}/mailFolders/inbox/messageRules/{ruleId}
    PATCH  /v1.0/users/{id}/mailFolders/inbox/messageRules/{ruleId}   → 200 with the rule
    DELETE /v1.0/users/{id}/mailFolders/inbox/messageRules/{ruleId}   → 204
    GET    /v1.0/oauth2PermissionGrants[?$filter=clientId eq '...']
    DELETE /v1.0/oauth2PermissionGrants/{id}            → 204
    GET    /v1.0/servicePrincipals?$filter=appId eq '...'
    GET    /v1.0/servicePrincipals/{id}
    GET    /v1.0/directoryRoles?$filter=roleTemplateId eq '...'   (activated roles: those given a member)
    GET    /v1.0/directoryRoles/{id}/members                   users and service principals, with @odata.type
    PATCH  /v1.0/servicePrincipals/{id}                 {"accountEnabled": bool} → 204
    GET    /v1.0|beta/auditLogs/signIns[?$filter=createdDateTime ge|gt|le|lt <time> [and ...]
               [and signInEventTypes/any(t: t eq 'servicePrincipal')]&$top=]   interactive sign-ins by default
                                                         newest first, pages of at most page_size (server-driven
                                                         paging) through @odata.nextLink; a tenant
                                                         without Entra ID P1/P2 gets 403
                                                         Authentication_RequestFromNonPremiumTenantOrB2CTenant
    GET    /v1.0/subscribedSkus                          the tenant's SKUs with their servicePlans

Tenants and tokens: a request must carry ``Authorization: Bearer fake-token:<tenant_id>`` for a tenant added
with :meth:`GraphEmulator.add_tenant` (or implicitly by ``add_user`` etc.). :meth:`GraphEmulator.credential`
returns an ``azure.core`` async token credential that produces exactly that token. Each tenant has its own
users, mailboxes, grants and service principals; a token for tenant A can never read tenant B's objects
(they answer 404 as if absent). A missing token, a malformed one or one for an unknown tenant gets 401
``InvalidAuthenticationToken``. The call log records whether a token was present, never the token.

Errors use Graph's shape ``{"error": {"code", "message", "innerError": {"request-id", "client-request-id",
"date"}}}``: rules 404 ``ErrorItemNotFound``; users, grants and service principals 404
``Request_ResourceNotFound``; an unknown mailbox user 404 ``ErrorInvalidUser``; a missing application
permission 403 ``Authorization_RequestDenied`` (directory) or ``ErrorAccessDenied`` (mailbox). Permissions are
all granted unless :meth:`GraphEmulator.set_permissions` narrows a tenant's set. Privileged users
(``add_user(..., privileged=True)``) cannot be enabled/disabled unless the tenant was added with
``can_manage_privileged=True`` (403, as for an app without a high enough Entra role).

Emulator choices where Graph's behaviour is not documented [not measured]: changing or deleting a read-only
rule answers 400 ``ErrorInvalidRequest``; with ``disabled_rule_delete_404=True`` deleting a disabled rule
answers 404 ``ErrorItemNotFound`` (the EWS behaviour of exchangelib#1305); hidden rules are absent from
listings and answer 404 on direct access.

Faults on demand (:meth:`GraphEmulator.inject`): one-shot counts and seeded rates, filtered by method, path
prefix (relative to ``/v1.0``) and tenant; statuses 400/401/403/404/409/429/500/502/503/504 with an optional
``Retry-After``, an HTML body instead of JSON, a dropped connection (``status=0``), and ``after=True`` to
apply the effect first and lose the response (what makes a retried DELETE see 404). ``mailbox_concurrency_limit``
(Graph's 4 concurrent requests per mailbox) answers excess requests with 429. :meth:`GraphEmulator.hold`
parks matching requests until released, to build concurrency deterministically.

Observation: :attr:`GraphEmulator.calls` (method, path, query, tenant, status, token present, fault) and
:attr:`GraphEmulator.state` (objects, sign-in revocations, and an effect log such as how often a user was
disabled or a rule deleted).
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from azure.core.credentials import AccessToken

__all__ = [
    "TOKEN_PREFIX",
    "Call",
    "Effect",
    "FakeTokenCredential",
    "Fault",
    "GraphEmulator",
    "GraphState",
    "Hold",
]

TOKEN_PREFIX = "fake-token:"  # noqa: S105 - a fixed, public emulator token prefix, not a secret
"""Bearer tokens the emulator accepts are ``TOKEN_PREFIX + tenant_id``."""

_DEFAULT_USER_PROPS: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_USER_PROPS = frozenset(
    {
        *_DEFAULT_USER_PROPS,
        "accountEnabled",
        "usageLocation",
        "onPremisesSyncEnabled",
        "signInSessionsValidFromDateTime",
    }
)

_READ_USERS = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
_ENABLE_DISABLE = frozenset({"User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
_WRITE_USERS = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
_REVOKE = frozenset({"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
_READ_RULES = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
_WRITE_RULES = frozenset({"MailboxSettings.ReadWrite"})
_READ_GRANTS = frozenset(
    {
        "DelegatedPermissionGrant.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_WRITE_GRANTS = frozenset({"DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"})
_READ_SPS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"})
_WRITE_SPS = frozenset({"Application.ReadWrite.All"})
_READ_ROLES = frozenset({"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory", "Directory.Read.All"})
_READ_AUDIT = frozenset({"AuditLog.Read.All"})
_READ_SKUS = frozenset({"LicenseAssignment.Read.All", "Organization.Read.All", "Directory.Read.All"})
PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
"""Service plans that give a tenant Entra ID P1 or P2 (and with them the sign-in logs through Graph)."""
_ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
}

_DEFAULT_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "UnknownError",
    502: "BadGateway",
    503: "ServiceNotAvailable",
    504: "GatewayTimeout",
}
_HOLD_TIMEOUT_S = 10.0


class FakeTokenCredential:
    """An ``azure.core`` async token credential for one emulator tenant: the token is ``fake-token:<tenant>``.

    ``scopes_requested`` records the scopes of every ``get_token`` call (for asserting the audience).
    """

    def __init__(self, tenant_id: str, *, lifetime_s: int = 3600) -> None:
        self.tenant_id = tenant_id
        self._lifetime_s = lifetime_s
        self.scopes_requested: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        """Return the emulator token for this tenant."""
        self.scopes_requested.append(tuple(scopes))
        expires = int(datetime.now(UTC).timestamp()) + self._lifetime_s
        return AccessToken(f"{TOKEN_PREFIX}{self.tenant_id}", expires)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> FakeTokenCredential:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


@dataclass(frozen=True, slots=True)
class Call:
    """One request the emulator answered. ``path`` is percent-decoded and starts ``/v1.0``; ``query`` is raw."""

    method: str
    path: str
    query: str
    tenant_id: str | None
    status: int
    token_present: bool
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """A state change, e.g. ``Effect(tenant, "user.disabled", user_id)``.

    Kinds: user.disabled, user.enabled, user.updated, user.sessions_revoked, rule.created, rule.updated,
    rule.disabled, rule.enabled, rule.deleted, grant.deleted, sp.disabled, sp.enabled.
    """

    tenant_id: str
    kind: str
    target: str


@dataclass(slots=True)
class Fault:
    """A fault to inject. Matches by ``method``, ``path_prefix`` (relative to /v1.0, case-insensitive) and
    ``tenant_id`` (None matches all); a matching request is hit with probability ``rate`` (drawn from the
    emulator's seeded RNG) and consumes one of ``count`` (None: unlimited).

    ``status=0`` drops the connection without a response. ``after=True`` performs the request first and then
    replaces its response with the fault (the effect happened, the caller cannot know). ``html=True`` sends a
    gateway-style HTML body instead of Graph's JSON error. ``redirect_to`` answers ``status`` (e.g. 307) with
    that ``Location`` (to check that clients drop the token on a cross-host redirect).
    """

    status: int
    count: int | None = 1
    rate: float = 1.0
    retry_after: int | str | None = None
    code: str | None = None
    message: str | None = None
    method: str | None = None
    path_prefix: str | None = None
    tenant_id: str | None = None
    after: bool = False
    html: bool = False
    redirect_to: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str, tenant_id: str | None) -> bool:
        """True when this fault applies to the request (ignoring count and rate)."""
        if self.count is not None and self.count <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.tenant_id is not None and self.tenant_id != tenant_id:
            return False
        return self.path_prefix is None or path.casefold().startswith(self.path_prefix.casefold())


class Hold:
    """Parks matching requests (after authentication and the concurrency check) until :meth:`release`."""

    def __init__(self, *, method: str | None, path_prefix: str | None, tenant_id: str | None) -> None:
        self.method = method
        self.path_prefix = path_prefix
        self.tenant_id = tenant_id
        self._released = threading.Event()
        self._cond = threading.Condition()
        self._waiting = 0

    def matches(self, method: str, path: str, tenant_id: str | None) -> bool:
        """True when this hold applies to the request."""
        if self._released.is_set():
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.tenant_id is not None and self.tenant_id != tenant_id:
            return False
        return self.path_prefix is None or path.casefold().startswith(self.path_prefix.casefold())

    @property
    def waiting(self) -> int:
        """How many requests are parked right now."""
        with self._cond:
            return self._waiting

    def wait_until_waiting(self, n: int, *, timeout: float = 5.0) -> bool:
        """Block until ``n`` requests are parked (True) or the timeout passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting >= n, timeout=timeout)

    def release(self) -> None:
        """Let every parked request (and every later one) through."""
        self._released.set()

    def _park(self) -> None:
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
        try:
            self._released.wait(_HOLD_TIMEOUT_S)
        finally:
            with self._cond:
                self._waiting -= 1
                self._cond.notify_all()


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class _User:
    id: str
    upn: str
    display_name: str
    account_enabled: bool
    usage_location: str | None
    on_premises_sync_enabled: bool | None
    privileged: bool
    mail: str | None
    sessions_valid_from: datetime
    revocations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "accountEnabled": self.account_enabled,
            "usageLocation": self.usage_location,
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "mail": self.mail,
            "businessPhones": [],
            "givenName": None,
            "surname": None,
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "signInSessionsValidFromDateTime": _iso(self.sessions_valid_from),
        }


@dataclass(slots=True)
class _Rule:
    id: str
    display_name: str
    sequence: int
    is_enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]
    exceptions: dict[str, Any]
    read_only: bool
    hidden: bool
    has_error: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "displayName": self.display_name,
            "sequence": self.sequence,
            "isEnabled": self.is_enabled,
            "hasError": self.has_error,
            "isReadOnly": self.read_only,
        }
        if not self.read_only:  # Graph shows no conditions/actions for rules it cannot express
            out["conditions"] = json.loads(json.dumps(self.conditions))
            out["actions"] = json.loads(json.dumps(self.actions))
            if self.exceptions:
                out["exceptions"] = json.loads(json.dumps(self.exceptions))
        return out


@dataclass(slots=True)
class _ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    account_enabled: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "accountEnabled": self.account_enabled,
        }


@dataclass(slots=True)
class _Tenant:
    id: str
    permissions: frozenset[str] | None
    can_manage_privileged: bool
    users: dict[str, _User] = field(default_factory=dict)
    rules: dict[str, dict[str, _Rule]] = field(default_factory=dict)
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    sps: dict[str, _ServicePrincipal] = field(default_factory=dict)
    roles: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    """Role template id → (the activated role's object id, member object ids)."""
    signins: list[dict[str, Any]] = field(default_factory=list)
    """Sign-in log entries (Graph ``signIn`` JSON), as added."""
    skus: list[dict[str, Any]] = field(default_factory=list)
    """Subscribed SKUs (Graph ``subscribedSku`` JSON)."""

    def find_user(self, key: str) -> _User | None:
        user = self.users.get(key.casefold())
        if user is not None:
            return user
        for u in self.users.values():
            if u.upn.casefold() == key.casefold():
                return u
        return None


_TIME_FILTER = re.compile(r"^\s*createdDateTime\s+(ge|gt|le|lt)\s+(\S+)\s*$", re.IGNORECASE)
_TYPE_FILTER = re.compile(r"^\s*signInEventTypes/any\(t:\s*t\s+eq\s+'([A-Za-z]+)'\)\s*$", re.IGNORECASE)


def _parse_time(value: str) -> datetime:
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _signin_filters(text: str) -> tuple[list[tuple[str, datetime]], set[str]]:
    """``createdDateTime ge <time> and ... and signInEventTypes/any(t: t eq 'servicePrincipal')``: the time
    comparisons and the event types asked for (400 for any other clause)."""
    out: list[tuple[str, datetime]] = []
    kinds: set[str] = set()
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        kind = _TYPE_FILTER.match(part)
        if kind is not None:
            kinds.add(kind.group(1).lower())
            continue
        m = _TIME_FILTER.match(part)
        if m is None:
            raise _Reply(400, "BadRequest", f"Invalid filter clause: {part[:100]}")
        try:
            out.append((m.group(1).lower(), _parse_time(m.group(2))))
        except ValueError as exc:
            raise _Reply(400, "BadRequest", f"Invalid DateTimeOffset: {m.group(2)[:40]}") from exc
    return out, kinds


def _compare(left: datetime, op: str, right: datetime) -> bool:
    return {"ge": left >= right, "gt": left > right, "le": left <= right, "lt": left < right}[op]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphState:
    """Thread-safe per-tenant state of a :class:`GraphEmulator`; the read accessors return copies."""

    def __init__(self, rng: random.Random, clock: Callable[[], datetime]) -> None:
        self._lock = threading.RLock()
        self._rng = rng
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._effects: list[Effect] = []

    # -- helpers used by the emulator -------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The lock guarding every tenant (held while a request reads or changes state)."""
        return self._lock

    def new_guid(self) -> str:
        """A deterministic (seeded) GUID."""
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new_rule_id(self) -> str:
        """A Graph-shaped rule id: base64 of a little-endian uint64 whose low double word is 1."""
        with self._lock:
            value = (self._rng.getrandbits(32) << 32) | 1
        return base64.b64encode(struct.pack("<Q", value)).decode("ascii")

    def now(self) -> datetime:
        """The emulator clock."""
        return self._clock()

    def record(self, tenant_id: str, kind: str, target: str) -> None:
        """Append an effect."""
        with self._lock:
            self._effects.append(Effect(tenant_id, kind, target))

    def tenant(self, tenant_id: str) -> _Tenant | None:
        """The internal tenant record (emulator use)."""
        with self._lock:
            return self._tenants.get(tenant_id)

    def ensure_tenant(
        self, tenant_id: str, *, permissions: Iterable[str] | None = None, can_manage_privileged: bool = False
    ) -> _Tenant:
        """Create the tenant if absent (emulator use)."""
        if not tenant_id or ":" in tenant_id or any(c.isspace() for c in tenant_id):
            raise ValueError(f"invalid tenant id {tenant_id!r}")
        with self._lock:
            t = self._tenants.get(tenant_id)
            if t is None:
                perms = frozenset(permissions) if permissions is not None else None
                t = _Tenant(tenant_id, perms, can_manage_privileged)
                self._tenants[tenant_id] = t
            return t

    # -- public read accessors ---------------------------------------------------------------------
    def tenant_ids(self) -> list[str]:
        """Every tenant known to the emulator."""
        with self._lock:
            return sorted(self._tenants)

    def user(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        """The user (all properties, Graph JSON names) by id or UPN, or None."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            u = t.find_user(user_id) if t else None
            return u.to_json() if u else None

    def users(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every user of the tenant, in creation order."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            return [u.to_json() for u in t.users.values()] if t else []

    def sign_in_revocations(self, tenant_id: str, user_id: str) -> int:
        """How many times revokeSignInSessions succeeded for the user."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            u = t.find_user(user_id) if t else None
            return u.revocations if u else 0

    def inbox_rules(self, tenant_id: str, user_id: str, *, include_hidden: bool = True) -> list[dict[str, Any]]:
        """The mailbox's rules in sequence order, full detail (also of read-only rules), with ``hidden``."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            u = t.find_user(user_id) if t else None
            if t is None or u is None:
                return []
            out = []
            for r in sorted(t.rules.get(u.id, {}).values(), key=lambda r: r.sequence):
                if r.hidden and not include_hidden:
                    continue
                row = r.to_json()
                row.update({"conditions": r.conditions, "actions": r.actions, "hidden": r.hidden})
                out.append(json.loads(json.dumps(row)))
            return out

    def permission_grants(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every oauth2PermissionGrant of the tenant."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            return [dict(g) for g in t.grants.values()] if t else []

    def service_principal(self, tenant_id: str, sp_id: str) -> dict[str, Any] | None:
        """The service principal, or None."""
        with self._lock:
            t = self._tenants.get(tenant_id)
            sp = t.sps.get(sp_id.casefold()) if t else None
            return sp.to_json() if sp else None

    def effects(
        self, *, tenant_id: str | None = None, kind: str | None = None, target: str | None = None
    ) -> list[Effect]:
        """The effect log, filtered."""
        with self._lock:
            return [
                e
                for e in self._effects
                if (tenant_id is None or e.tenant_id == tenant_id)
                and (kind is None or e.kind == kind)
                and (target is None or e.target.casefold() == target.casefold())
            ]

    def effect_count(self, kind: str, *, tenant_id: str, target: str | None = None) -> int:
        """How many times ``kind`` happened in the tenant (to ``target`` when given)."""
        return len(self.effects(tenant_id=tenant_id, kind=kind, target=target))


# --------------------------------------------------------------------------- HTTP plumbing


class _Reply(Exception):
    """Raised inside routing to answer with a Graph error."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: GraphEmulator, port: int = 0) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the 40 ms delayed-ACK stall

    def do_GET(self) -> None:
        self.server.emulator._serve(self)

    do_POST = do_GET  # noqa: N815 - BaseHTTPRequestHandler's naming
    do_PATCH = do_GET  # noqa: N815 - BaseHTTPRequestHandler's naming
    do_DELETE = do_GET  # noqa: N815 - BaseHTTPRequestHandler's naming
    do_PUT = do_GET  # noqa: N815 - BaseHTTPRequestHandler's naming

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


# --------------------------------------------------------------------------- the emulator


class GraphEmulator:
    """A multi-tenant Microsoft Graph v1.0 emulator on 127.0.0.1. Use as a context manager or start()/stop().

    ``seed`` drives ids and fault rates; ``page_size`` is the default page of list endpoints (``$top``
    overrides it up to 999); ``mailbox_concurrency_limit`` (Graph: 4) answers more concurrent requests to one
    mailbox with 429; ``next_link_base`` overrides the root used in ``@odata.nextLink`` (to test that clients
    refuse foreign hosts); ``clock`` supplies ``now``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        page_size: int = 100,
        mailbox_concurrency_limit: int | None = None,
        mailbox_retry_after: int = 1,
        next_link_base: str | None = None,
        disabled_rule_delete_404: bool = False,
        clock: Callable[[], datetime] | None = None,
        token_tenant: Callable[[str], str | None] | None = None,
        port: int = 0,
    ) -> None:
        """``token_tenant`` checks a bearer token and returns its tenant (None: refused); by default the
        emulator's own ``fake-token:<tenant>`` tokens (an Entra stand-in's verifier makes it check real JWTs)."""
        self._token_tenant = token_tenant
        self._port = port
        self._rng = random.Random(seed)
        self._fault_rng = random.Random(seed ^ 0x5EED)
        self.state = GraphState(self._rng, clock or (lambda: datetime.now(UTC)))
        self.page_size = page_size
        self.mailbox_concurrency_limit = mailbox_concurrency_limit
        self.mailbox_retry_after = mailbox_retry_after
        self.next_link_base = next_link_base
        self.disabled_rule_delete_404 = disabled_rule_delete_404
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []
        self._calls: list[Call] = []
        self._meta_lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> GraphEmulator:
        """Bind a random free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(self, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="graph-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release holds, and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        for h in list(self._holds):
            h.release()
        server.shutdown()
        server.close_open_sockets()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the emulator must be started)."""
        if self._server is None:
            raise RuntimeError("GraphEmulator is not started")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """Always 127.0.0.1."""
        return "127.0.0.1"

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1.0``: what a Graph client's adapter base_url is set to."""
        return f"{self.root_url}/v1.0"

    # -- tenants, tokens, objects ---------------------------------------------------------------------
    @staticmethod
    def token_for(tenant_id: str) -> str:
        """The bearer token the emulator accepts for ``tenant_id`` (not a secret)."""
        return f"{TOKEN_PREFIX}{tenant_id}"

    def credential(self, tenant_id: str) -> FakeTokenCredential:
        """An async token credential for ``tenant_id`` (the tenant is created if absent)."""
        self.add_tenant(tenant_id)
        return FakeTokenCredential(tenant_id)

    def add_tenant(
        self, tenant_id: str, *, permissions: Iterable[str] | None = None, can_manage_privileged: bool = False
    ) -> None:
        """Create a tenant. ``permissions`` None means every application permission is granted."""
        self.state.ensure_tenant(tenant_id, permissions=permissions, can_manage_privileged=can_manage_privileged)

    def set_permissions(self, tenant_id: str, permissions: Iterable[str] | None) -> None:
        """Replace the tenant's granted application permissions (None: all)."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            t.permissions = frozenset(permissions) if permissions is not None else None

    def add_user(
        self,
        tenant_id: str,
        *,
        user_principal_name: str,
        id: str | None = None,
        display_name: str | None = None,
        account_enabled: bool = True,
        usage_location: str | None = None,
        on_premises_sync_enabled: bool | None = None,
        privileged: bool = False,
    ) -> str:
        """Add a user (with an empty mailbox); returns its id."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            uid = id or self.state.new_guid()
            if t.find_user(uid) or t.find_user(user_principal_name):
                raise ValueError(f"user {user_principal_name!r} already exists in tenant {tenant_id}")
            t.users[uid.casefold()] = _User(
                id=uid,
                upn=user_principal_name,
                display_name=display_name or user_principal_name.split("@", 1)[0],
                account_enabled=account_enabled,
                usage_location=usage_location,
                on_premises_sync_enabled=on_premises_sync_enabled,
                privileged=privileged,
                mail=user_principal_name,
                sessions_valid_from=self.state.now() - timedelta(days=30),
            )
            t.rules[uid] = {}
            return uid

    def add_inbox_rule(
        self,
        tenant_id: str,
        user_id: str,
        *,
        display_name: str,
        sequence: int | None = None,
        is_enabled: bool = True,
        conditions: Mapping[str, Any] | None = None,
        actions: Mapping[str, Any] | None = None,
        exceptions: Mapping[str, Any] | None = None,
        read_only: bool = False,
        hidden: bool = False,
        rule_id: str | None = None,
        rule_identity: int | None = None,
    ) -> str:
        """Add a rule in Graph JSON form (``actions={"forwardTo": [{"emailAddress": {"address": ...}}]}``).

        The id is ``rule_id``, else the base64 of ``rule_identity``, else a fresh Graph-shaped id.
        Returns the Graph id.
        """
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            u = t.find_user(user_id)
            if u is None:
                raise ValueError(f"no user {user_id!r} in tenant {tenant_id}")
            if rule_id is None and rule_identity is not None:
                rule_id = base64.b64encode(struct.pack("<Q", rule_identity)).decode("ascii")
            rid = rule_id or self.state.new_rule_id()
            rules = t.rules[u.id]
            if rid in rules:
                raise ValueError(f"rule id {rid} already exists")
            seq = sequence if sequence is not None else max((r.sequence for r in rules.values()), default=0) + 1
            rules[rid] = _Rule(
                id=rid,
                display_name=display_name,
                sequence=seq,
                is_enabled=is_enabled,
                conditions=json.loads(json.dumps(dict(conditions or {}))),
                actions=json.loads(json.dumps(dict(actions or {}))),
                exceptions=json.loads(json.dumps(dict(exceptions or {}))),
                read_only=read_only,
                hidden=hidden,
            )
            return rid

    def add_permission_grant(
        self,
        tenant_id: str,
        *,
        client_id: str,
        resource_id: str,
        scope: str,
        consent_type: str = "AllPrincipals",
        principal_id: str | None = None,
        id: str | None = None,
    ) -> str:
        """Add an oauth2PermissionGrant; returns its id."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            gid = id or base64.urlsafe_b64encode(self._rng.randbytes(33)).decode("ascii")
            t.grants[gid] = {
                "id": gid,
                "clientId": client_id,
                "consentType": consent_type,
                "principalId": principal_id,
                "resourceId": resource_id,
                "scope": scope,
            }
            return gid

    def add_service_principal(
        self,
        tenant_id: str,
        *,
        app_id: str,
        display_name: str,
        account_enabled: bool = True,
        id: str | None = None,
    ) -> str:
        """Add a service principal; returns its id."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            sid = id or self.state.new_guid()
            t.sps[sid.casefold()] = _ServicePrincipal(sid, app_id, display_name, account_enabled)
            return sid

    def add_role_member(self, tenant_id: str, role_template_id: str, member_id: str) -> str:
        """Give a user or service principal (by object id) a directory role (activating it); returns the role's id."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            if t.find_user(member_id) is None and member_id.casefold() not in t.sps:
                raise ValueError(f"no user or service principal {member_id!r} in tenant {tenant_id}")
            role_id, members = t.roles.setdefault(role_template_id.casefold(), (self.state.new_guid(), []))
            if member_id not in members:
                members.append(member_id)
            return role_id

    def add_subscribed_sku(
        self, tenant_id: str, sku_part_number: str, service_plans: Iterable[str], *, status: str = "Success"
    ) -> None:
        """Give the tenant a subscribed SKU whose service plans have ``status`` (``AAD_PREMIUM``: Entra ID P1)."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            t.skus.append(
                {
                    "id": f"{tenant_id}_{self.state.new_guid()}",
                    "skuPartNumber": sku_part_number,
                    "skuId": self.state.new_guid(),
                    "capabilityStatus": "Enabled",
                    "appliesTo": "User",
                    "servicePlans": [
                        {
                            "servicePlanId": self.state.new_guid(),
                            "servicePlanName": plan,
                            "provisioningStatus": status,
                            "appliesTo": "User",
                        }
                        for plan in service_plans
                    ],
                }
            )

    def add_signin(self, tenant_id: str, signin: Mapping[str, Any]) -> None:
        """Add a sign-in log entry (Graph ``signIn`` JSON with ``id`` and ``createdDateTime``)."""
        t = self.state.ensure_tenant(tenant_id)
        with self.state.lock:
            t.signins.append(json.loads(json.dumps(signin)))

    # -- faults, holds, call log ----------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        """Add a fault (checked in insertion order, first match wins). Returns it, to read ``hits`` later."""
        with self._meta_lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._meta_lock:
            self._faults.clear()

    def hold(self, *, path_prefix: str | None = None, method: str | None = None, tenant_id: str | None = None) -> Hold:
        """Park matching requests until the returned :class:`Hold` is released (at most 10 s)."""
        h = Hold(method=method, path_prefix=path_prefix, tenant_id=tenant_id)
        with self._meta_lock:
            self._holds.append(h)
        return h

    @property
    def calls(self) -> list[Call]:
        """A copy of the call log, in arrival order of completion."""
        with self._meta_lock:
            return list(self._calls)

    def calls_to(self, path_prefix: str = "", *, method: str | None = None, tenant_id: str | None = None) -> list[Call]:
        """The calls whose path (relative to /v1.0) starts with ``path_prefix``."""
        return [
            c
            for c in self.calls
            if c.path.removeprefix("/v1.0").casefold().startswith(path_prefix.casefold())
            and (method is None or c.method == method.upper())
            and (tenant_id is None or c.tenant_id == tenant_id)
        ]

    def clear_calls(self) -> None:
        """Empty the call log."""
        with self._meta_lock:
            self._calls.clear()

    # -- request handling -----------------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        method = handler.command.upper()
        parts = urlsplit(handler.path)
        raw_path = parts.path
        query = parts.query
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        client_request_id = handler.headers.get("client-request-id") or str(uuid.uuid4())
        auth = handler.headers.get("Authorization") or ""
        token_present = auth.lower().startswith("bearer ") and len(auth) > len("bearer ")
        tenant_id: str | None = None
        fault_label: str | None = None
        try:
            tenant_id = self._authenticate(auth)
            rel = raw_path.removeprefix("/v1.0") if raw_path.startswith("/v1.0/") else None
            if rel is None and raw_path.startswith("/beta/auditLogs/"):  # sign-in event types are a beta filter
                rel = raw_path.removeprefix("/beta")
            if rel is None:
                raise _Reply(400, "BadRequest", f"Invalid version in request path {raw_path!r}.")
            segments = [unquote(s) for s in rel.strip("/").split("/")] if rel.strip("/") else []
            decoded_rel = "/" + "/".join(segments)
            response, fault_label = self._dispatch_with_controls(method, decoded_rel, segments, query, body, tenant_id)
        except _Reply as r:
            response = self._error(r.status, r.code, r.message, client_request_id, r.headers)
        except Exception as exc:  # a bug in the emulator: answer like Graph would, do not kill the thread
            response = self._error(500, "UnknownError", f"emulator failure: {type(exc).__name__}", client_request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        with self._meta_lock:
            self._calls.append(
                Call(method, unquote(raw_path), query, tenant_id, response.status, token_present, fault_label)
            )
        self._write(handler, response)

    def _dispatch_with_controls(
        self, method: str, path: str, segments: list[str], query: str, body: bytes, tenant_id: str
    ) -> tuple[_Response, str | None]:
        mailbox = self._mailbox_key(tenant_id, segments)
        acquired = False
        try:
            if mailbox is not None and self.mailbox_concurrency_limit is not None:
                with self._meta_lock:
                    if self._in_flight.get(mailbox, 0) >= self.mailbox_concurrency_limit:
                        raise _Reply(
                            429,
                            "ApplicationThrottled",
                            "Application is over its MailboxConcurrency limit.",
                            headers={"Retry-After": str(self.mailbox_retry_after)},
                        )
                    self._in_flight[mailbox] = self._in_flight.get(mailbox, 0) + 1
                    acquired = True
            with self._meta_lock:
                holds = [h for h in self._holds if h.matches(method, path, tenant_id)]
            for h in holds:
                h._park()
            fault = self._pick_fault(method, path, tenant_id)
            if fault is not None and not fault.after:
                return self._fault_response(fault), f"{fault.status}"
            response = self._route(method, segments, query, body, tenant_id)
            if fault is not None:
                return self._fault_response(fault), f"{fault.status} after"
            return response, None
        finally:
            if acquired and mailbox is not None:
                with self._meta_lock:
                    self._in_flight[mailbox] -= 1

    def _pick_fault(self, method: str, path: str, tenant_id: str) -> Fault | None:
        with self._meta_lock:
            for f in self._faults:
                if not f.matches(method, path, tenant_id):
                    continue
                if f.rate < 1.0 and self._fault_rng.random() >= f.rate:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.hits += 1
                return f
        return None

    def _fault_response(self, fault: Fault) -> _Response:
        if fault.status == 0:
            return _Response(0, drop=True)
        headers: dict[str, str] = {}
        if fault.redirect_to is not None:
            return _Response(fault.status, b"", {"Location": fault.redirect_to})
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.html:
            page = f"<html><body><h1>{fault.status} Gateway error</h1></body></html>".encode()
            headers["Content-Type"] = "text/html"
            return _Response(fault.status, page, headers)
        code = fault.code or _DEFAULT_CODES.get(fault.status, "UnknownError")
        message = fault.message or f"Injected fault {fault.status}."
        return self._error(fault.status, code, message, str(uuid.uuid4()), headers)

    def _authenticate(self, auth: str) -> str:
        if not auth:
            raise _Reply(401, "InvalidAuthenticationToken", "Access token is empty.")
        scheme, _, token = auth.partition(" ")
        if self._token_tenant is not None:
            checked = self._token_tenant(token) if scheme.lower() == "bearer" else None
            if checked is None:
                raise _Reply(401, "InvalidAuthenticationToken", "Access token validation failure.")
            tenant_id = checked
        elif scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
            raise _Reply(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        else:
            tenant_id = token.removeprefix(TOKEN_PREFIX)
        if self.state.tenant(tenant_id) is None:
            raise _Reply(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        return tenant_id

    def _mailbox_key(self, tenant_id: str, segments: list[str]) -> tuple[str, str] | None:
        if len(segments) >= 3 and segments[0] == "users" and segments[2] in ("mailFolders", "messages"):
            t = self.state.tenant(tenant_id)
            with self.state.lock:
                u = t.find_user(segments[1]) if t else None
            return (tenant_id, u.id if u else segments[1].casefold())
        return None

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        client_request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> _Response:
        request_id = str(uuid.uuid4())
        payload = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": _iso(datetime.now(UTC)),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        }
        hdrs = {"request-id": request_id, "client-request-id": client_request_id, **(headers or {})}
        return _Response(status, json.dumps(payload).encode(), hdrs)

    @staticmethod
    def _write(handler: _Handler, response: _Response) -> None:
        if response.drop:
            handler.close_connection = True
            return
        try:
            handler.send_response(response.status)
            body = response.body
            headers = dict(response.headers)
            if body is not None:
                headers.setdefault("Content-Type", "application/json; odata.metadata=minimal")
                headers["Content-Length"] = str(len(body))
            elif response.status != 204:
                headers["Content-Length"] = "0"
            headers.setdefault("request-id", str(uuid.uuid4()))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            if body:
                handler.wfile.write(body)
        except OSError:
            handler.close_connection = True

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str], query: str, body: bytes, tenant_id: str) -> _Response:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        t = self.state.tenant(tenant_id)
        assert t is not None  # authenticated
        n = len(seg)
        if n >= 1 and seg[0] == "users":
            if n == 1 and method == "GET":
                return self._list_users(t, params)
            if n == 2:
                if method == "GET":
                    return self._get_user(t, seg[1], params)
                if method == "PATCH":
                    return self._patch_user(t, seg[1], body)
            if n == 3 and seg[2] == "revokeSignInSessions" and method == "POST":
                return self._revoke(t, seg[1])
            if n >= 5 and seg[2] == "mailFolders" and seg[4] == "messageRules":
                return self._rules(t, method, seg[1], seg[3], seg[5:], body)
        if n >= 1 and seg[0] == "oauth2PermissionGrants":
            if n == 1 and method == "GET":
                return self._list_grants(t, params)
            if n == 2 and method == "DELETE":
                return self._delete_grant(t, seg[1])
            if n == 2 and method == "GET":
                return self._get_grant(t, seg[1])
        if n == 1 and seg[0] == "servicePrincipals" and method == "GET":
            return self._list_sps(t, params)
        if n >= 1 and seg[0] == "directoryRoles" and method == "GET":
            if n == 1:
                return self._list_roles(t, params)
            if n == 3 and seg[2] == "members":
                return self._role_members(t, seg[1], params)
        if n == 2 and seg[0] == "servicePrincipals":
            if method == "GET":
                return self._get_sp(t, seg[1], params)
            if method == "PATCH":
                return self._patch_sp(t, seg[1], body)
        if seg == ["auditLogs", "signIns"] and method == "GET":
            return self._list_signins(t, params)
        if seg == ["subscribedSkus"] and method == "GET":
            self._require(t, _READ_SKUS)
            with self.state.lock:
                skus = json.loads(json.dumps(t.skus))
            return self._ok({"@odata.context": self._context("subscribedSkus"), "value": skus})
        if n >= 1 and seg[0] in ("users", "oauth2PermissionGrants", "servicePrincipals", "directoryRoles"):
            raise _Reply(405, "Request_BadRequest", f"The method {method} is not allowed on this resource.")
        raise _Reply(400, "BadRequest", f"Resource not found for the segment '{seg[0] if seg else ''}'.")

    @staticmethod
    def _require(t: _Tenant, accepted: frozenset[str], *, mailbox: bool = False) -> None:
        if t.permissions is None or t.permissions & accepted:
            return
        if mailbox:
            raise _Reply(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        raise _Reply(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise _Reply(400, "BadRequest", "Unable to read JSON request payload.") from exc
        if not isinstance(value, dict):
            raise _Reply(400, "BadRequest", "The request payload must be a JSON object.")
        return value

    def _ok(self, payload: Mapping[str, Any], status: int = 200) -> _Response:
        return _Response(status, json.dumps(payload).encode())

    def _context(self, suffix: str) -> str:
        return f"{self.base_url}/$metadata#{suffix}"

    @staticmethod
    def _select(params: Mapping[str, str]) -> tuple[str, ...]:
        raw = params.get("$select")
        if raw is None:
            return _DEFAULT_USER_PROPS
        props = tuple(p.strip() for p in raw.split(",") if p.strip())
        for p in props:
            if p not in _USER_PROPS:
                raise _Reply(
                    400,
                    "Request_BadRequest",
                    f"Parsing OData Select and Expand failed: Could not find a property named '{p}' on type "
                    "'microsoft.graph.user'.",
                )
        return props

    def _user_or_404(self, t: _Tenant, key: str) -> _User:
        u = t.find_user(key)
        if u is None:
            raise _Reply(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return u

    def _page(self, items: list[dict[str, Any]], params: Mapping[str, str], path: str, context: str) -> _Response:
        try:
            top = int(params.get("$top") or self.page_size)
            skip = int(params.get("$skiptoken") or 0)
        except ValueError as exc:
            raise _Reply(400, "Request_BadRequest", "Invalid $top or $skiptoken.") from exc
        top = max(1, min(top, 999))
        page = items[skip : skip + top]
        payload: dict[str, Any] = {"@odata.context": context, "value": page}
        if skip + top < len(items):
            keep = {k: v for k, v in params.items() if k not in ("$skiptoken",)}
            keep["$top"] = str(top)
            keep["$skiptoken"] = str(skip + top)
            qs = "&".join(f"{quote(k, safe='$')}={quote(v, safe=',')}" for k, v in keep.items())
            base = self.next_link_base or self.base_url
            payload["@odata.nextLink"] = f"{base}{path}?{qs}"
        return self._ok(payload)

    def _list_signins(self, t: _Tenant, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_AUDIT)
        with self.state.lock:
            premium = any(
                p.get("servicePlanName") in PREMIUM_PLANS and p.get("provisioningStatus") == "Success"
                for sku in t.skus
                for p in sku.get("servicePlans", [])
            )
            rows = json.loads(json.dumps(t.signins))
        if not premium:
            raise _Reply(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        times, kinds = _signin_filters(params.get("$filter") or "")
        for op, value in times:
            rows = [r for r in rows if _compare(_parse_time(str(r.get("createdDateTime"))), op, value)]
        wanted = kinds or {"interactiveuser"}  # Graph lists interactive sign-ins unless asked for others
        rows = [r for r in rows if wanted & {str(k).lower() for k in r.get("signInEventTypes") or ["interactiveUser"]}]
        rows.sort(key=lambda r: (_parse_time(str(r.get("createdDateTime"))), str(r.get("id"))), reverse=True)
        try:
            top = min(int(params.get("$top") or self.page_size), self.page_size)  # server-driven paging
        except ValueError as exc:
            raise _Reply(400, "Request_BadRequest", "Invalid $top.") from exc
        return self._page(rows, {**params, "$top": str(top)}, "/auditLogs/signIns", self._context("auditLogs/signIns"))

    def _list_users(self, t: _Tenant, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_USERS)
        props = self._select(params)
        with self.state.lock:
            rows = [u.to_json() for u in t.users.values()]
        items = [{p: row[p] for p in props} for row in rows]
        return self._page(items, params, "/users", self._context("users"))

    def _get_user(self, t: _Tenant, key: str, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_USERS)
        props = self._select(params)
        with self.state.lock:
            u = self._user_or_404(t, key)
            data = u.to_json()
        out: dict[str, Any] = {"@odata.context": self._context("users/$entity")}
        out.update({p: data[p] for p in props})
        return self._ok(out)

    def _patch_user(self, t: _Tenant, key: str, body: bytes) -> _Response:
        data = self._json_body(body)
        data.pop("@odata.type", None)
        allowed = {"accountEnabled", "displayName", "usageLocation"}
        unknown = set(data) - allowed
        if unknown:
            raise _Reply(400, "Request_BadRequest", f"Invalid property '{sorted(unknown)[0]}'.")
        only_enable = set(data) <= {"accountEnabled"}
        self._require(t, _ENABLE_DISABLE if only_enable else _WRITE_USERS)
        if "accountEnabled" in data and not isinstance(data["accountEnabled"], bool):
            raise _Reply(400, "Request_BadRequest", "Invalid value for property 'accountEnabled'.")
        with self.state.lock:
            u = self._user_or_404(t, key)
            if "accountEnabled" in data and u.privileged and not t.can_manage_privileged:
                raise _Reply(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            if "accountEnabled" in data:
                u.account_enabled = data["accountEnabled"]
                self.state.record(t.id, "user.enabled" if u.account_enabled else "user.disabled", u.id)
            if "displayName" in data or "usageLocation" in data:
                u.display_name = data.get("displayName", u.display_name)
                u.usage_location = data.get("usageLocation", u.usage_location)
                self.state.record(t.id, "user.updated", u.id)
        return _Response(204)

    def _revoke(self, t: _Tenant, key: str) -> _Response:
        self._require(t, _REVOKE)
        with self.state.lock:
            u = self._user_or_404(t, key)
            u.revocations += 1
            u.sessions_valid_from = self.state.now()
            self.state.record(t.id, "user.sessions_revoked", u.id)
        return self._ok({"@odata.context": self._context("Edm.Boolean"), "value": True})

    # -- message rules --------------------------------------------------------------------------------
    def _rules(self, t: _Tenant, method: str, user_key: str, folder: str, rest: list[str], body: bytes) -> _Response:
        self._require(t, _READ_RULES if method == "GET" else _WRITE_RULES, mailbox=True)
        with self.state.lock:
            u = t.find_user(user_key)
            if u is None:
                raise _Reply(404, "ErrorInvalidUser", f"The requested user '{user_key}' is invalid.")
            if folder.casefold() != "inbox":
                raise _Reply(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            rules = t.rules.setdefault(u.id, {})
            ctx = self._context(f"users('{u.id}')/mailFolders('inbox')/messageRules")
            if not rest:
                if method == "GET":
                    visible = sorted((r for r in rules.values() if not r.hidden), key=lambda r: r.sequence)
                    return self._ok({"@odata.context": ctx, "value": [r.to_json() for r in visible]})
                if method == "POST":
                    return self._create_rule(t, u, rules, body, ctx)
                raise _Reply(405, "ErrorInvalidRequest", f"The method {method} is not allowed.")
            if len(rest) != 1:
                raise _Reply(400, "BadRequest", "Resource not found for the segment.")
            rid = rest[0]
            rule = rules.get(rid)
            if rule is None or rule.hidden:
                raise _Reply(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            if method == "GET":
                return self._ok({"@odata.context": f"{ctx}/$entity", **rule.to_json()})
            if rule.read_only and method in ("PATCH", "DELETE"):
                raise _Reply(400, "ErrorInvalidRequest", "The rule is read-only and cannot be changed with this API.")
            if method == "DELETE":
                if self.disabled_rule_delete_404 and not rule.is_enabled:
                    raise _Reply(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                del rules[rid]
                self.state.record(t.id, "rule.deleted", rid)
                return _Response(204)
            if method == "PATCH":
                return self._patch_rule(t, rule, body, ctx)
            raise _Reply(405, "ErrorInvalidRequest", f"The method {method} is not allowed.")

    def _create_rule(self, t: _Tenant, u: _User, rules: dict[str, _Rule], body: bytes, ctx: str) -> _Response:
        data = self._json_body(body)
        name = data.get("displayName")
        if not isinstance(name, str) or not name:
            raise _Reply(400, "ErrorInvalidRequest", "The displayName property is required.")
        seq = data.get("sequence")
        if seq is None:
            seq = max((r.sequence for r in rules.values()), default=0) + 1
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise _Reply(400, "ErrorInvalidRequest", "Invalid sequence.")
        rid = self.state.new_rule_id()
        while rid in rules:
            rid = self.state.new_rule_id()
        rule = _Rule(
            id=rid,
            display_name=name,
            sequence=seq,
            is_enabled=bool(data.get("isEnabled", False)),
            conditions=_strip_odata(data.get("conditions") or {}),
            actions=_strip_odata(data.get("actions") or {}),
            exceptions=_strip_odata(data.get("exceptions") or {}),
            read_only=False,
            hidden=False,
        )
        rules[rid] = rule
        self.state.record(t.id, "rule.created", rid)
        return self._ok({"@odata.context": f"{ctx}/$entity", **rule.to_json()}, status=201)

    def _patch_rule(self, t: _Tenant, rule: _Rule, body: bytes, ctx: str) -> _Response:
        data = self._json_body(body)
        data.pop("@odata.type", None)
        if "isEnabled" in data:
            if not isinstance(data["isEnabled"], bool):
                raise _Reply(400, "ErrorInvalidRequest", "Invalid isEnabled.")
            rule.is_enabled = data["isEnabled"]
            self.state.record(t.id, "rule.enabled" if rule.is_enabled else "rule.disabled", rule.id)
        changed = False
        for key, attr in (("displayName", "display_name"), ("sequence", "sequence")):
            if key in data:
                setattr(rule, attr, data[key])
                changed = True
        for key in ("conditions", "actions", "exceptions"):
            if key in data:
                setattr(rule, key, _strip_odata(data[key] or {}))
                changed = True
        if changed:
            self.state.record(t.id, "rule.updated", rule.id)
        return self._ok({"@odata.context": f"{ctx}/$entity", **rule.to_json()})

    # -- grants and service principals ------------------------------------------------------------------
    def _list_grants(self, t: _Tenant, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_GRANTS)
        flt = params.get("$filter")
        client_id = _parse_eq_filter(flt, "clientId") if flt is not None else None
        with self.state.lock:
            items = [
                dict(g)
                for g in t.grants.values()
                if client_id is None or str(g["clientId"]).casefold() == client_id.casefold()
            ]
        return self._page(items, params, "/oauth2PermissionGrants", self._context("oauth2PermissionGrants"))

    def _get_grant(self, t: _Tenant, gid: str) -> _Response:
        self._require(t, _READ_GRANTS)
        with self.state.lock:
            g = t.grants.get(gid)
            if g is None:
                raise _Reply(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist.")
            return self._ok({"@odata.context": self._context("oauth2PermissionGrants/$entity"), **g})

    def _delete_grant(self, t: _Tenant, gid: str) -> _Response:
        self._require(t, _WRITE_GRANTS)
        with self.state.lock:
            if gid not in t.grants:
                raise _Reply(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{gid}' does not exist or one of its "
                    "queried reference-property objects are not present.",
                )
            del t.grants[gid]
            self.state.record(t.id, "grant.deleted", gid)
        return _Response(204)

    def _sp_or_404(self, t: _Tenant, sp_id: str) -> _ServicePrincipal:
        sp = t.sps.get(sp_id.casefold())
        if sp is None:
            raise _Reply(
                404,
                "Request_ResourceNotFound",
                f"Resource '{sp_id}' does not exist or one of its queried reference-property objects are not present.",
            )
        return sp

    def _get_sp(self, t: _Tenant, sp_id: str, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_SPS)
        with self.state.lock:
            data = self._sp_or_404(t, sp_id).to_json()
        raw = params.get("$select")
        if raw:
            data = {k: v for k, v in data.items() if k in {p.strip() for p in raw.split(",")}}
        return self._ok({"@odata.context": self._context("servicePrincipals/$entity"), **data})

    def _list_sps(self, t: _Tenant, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_SPS)
        flt = params.get("$filter")
        app_id = _parse_eq_filter(flt, "appId") if flt is not None else None
        with self.state.lock:
            items = [
                sp.to_json() for sp in t.sps.values() if app_id is None or sp.app_id.casefold() == app_id.casefold()
            ]
        return self._page(items, params, "/servicePrincipals", self._context("servicePrincipals"))

    def _list_roles(self, t: _Tenant, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_ROLES)
        flt = params.get("$filter")
        template = _parse_eq_filter(flt, "roleTemplateId").casefold() if flt is not None else None
        with self.state.lock:
            items = [
                {
                    "id": role_id,
                    "roleTemplateId": tid,
                    "displayName": _ROLE_NAMES.get(tid, "Directory role"),
                    "description": None,
                    "deletedDateTime": None,
                }
                for tid, (role_id, _) in t.roles.items()
                if template is None or tid == template
            ]
        return self._page(items, params, "/directoryRoles", self._context("directoryRoles"))

    def _role_members(self, t: _Tenant, role_id: str, params: Mapping[str, str]) -> _Response:
        self._require(t, _READ_ROLES)
        with self.state.lock:
            found = next((m for rid, m in t.roles.values() if rid.casefold() == role_id.casefold()), None)
            if found is None:
                raise _Reply(404, "Request_ResourceNotFound", f"Resource '{role_id}' does not exist.")
            items: list[dict[str, Any]] = []
            for member in found:
                user = t.find_user(member)
                if user is not None:
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.user",
                            "id": user.id,
                            "userPrincipalName": user.upn,
                            "displayName": user.display_name,
                        }
                    )
                    continue
                sp = t.sps.get(member.casefold())
                if sp is not None:
                    items.append({"@odata.type": "#microsoft.graph.servicePrincipal", **sp.to_json()})
        return self._page(items, params, f"/directoryRoles/{role_id}/members", self._context("directoryObjects"))

    def _patch_sp(self, t: _Tenant, sp_id: str, body: bytes) -> _Response:
        data = self._json_body(body)
        data.pop("@odata.type", None)
        if set(data) - {"accountEnabled"} or not isinstance(data.get("accountEnabled"), bool):
            raise _Reply(400, "Request_BadRequest", "Only accountEnabled (a boolean) can be changed here.")
        self._require(t, _WRITE_SPS)
        with self.state.lock:
            sp = self._sp_or_404(t, sp_id)
            sp.account_enabled = data["accountEnabled"]
            self.state.record(t.id, "sp.enabled" if sp.account_enabled else "sp.disabled", sp.id)
        return _Response(204)


def _strip_odata(value: Any) -> Any:
    """Drop ``@odata.type`` annotations the SDK writes, recursively."""
    if isinstance(value, dict):
        return {k: _strip_odata(v) for k, v in value.items() if not k.startswith("@odata.")}
    if isinstance(value, list):
        return [_strip_odata(v) for v in value]
    return value


def _parse_eq_filter(flt: str, prop: str) -> str:
    """Parse ``<prop> eq '<value>'`` (with ``''`` escaping); anything else is a 400 like Graph's."""
    text = flt.strip()
    head = f"{prop} eq '"
    if not text.startswith(head) or not text.endswith("'") or len(text) < len(head) + 1:
        raise _Reply(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {flt}")
    inner = text[len(head) : -1]
    if "'" in inner.replace("''", ""):
        raise _Reply(400, "BadRequest", f"Invalid filter clause: {flt}")
    return inner.replace("''", "'")
