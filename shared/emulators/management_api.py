"""A local emulator of the Office 365 Management Activity API, for tests and local runs.

A real HTTP server on 127.0.0.1 (a random free port) that speaks the documented protocol for any
number of tenants (docs/management-activity-api.md §2-§6, Microsoft's REF page):

- ``POST {root}/subscriptions/start|stop?contentType=X``, ``GET {root}/subscriptions/list``;
  ``{root}`` = ``/api/v1.0/{tenant}/activity/feed`` (``/api/v1/`` is accepted too: REF's next-page
  sample uses it, and so do the ``NextPageUri`` values this emulator hands out);
- ``GET {root}/subscriptions/content?contentType=X&startTime=S&endTime=E`` filtering on
  ``S <= contentCreated < E`` (24 h at most, start within 7 days, start < end: AF20030 / AF20055),
  ``page_size`` entries per page and a ``NextPageUri`` header to the next one;
- ``GET {root}/audit/{contentId}``: the blob, a JSON array of records (AF20050 unknown, AF20051 expired);
- every call needs ``PublisherIdentifier`` (AF20001 here; the real service lets it through into a shared,
  throttled pool) and a bearer token (401). Token values are not checked, only recorded; a token passed
  to :meth:`revoke_token` gets 401, as an expired one would;
- webhooks: ``/start`` with a webhook performs the validation handshake (non-200 → AF20021, subscription
  unchanged); :meth:`add_content` then POSTs notifications through the injectable ``webhook_sender``.

Content comes from the test: :meth:`add_content`. Time comes from the injectable ``now``. Faults are
served on demand (:meth:`inject`, one-shot) or at random from a seeded ``random.Random``
(:meth:`set_fault_rates`); see :data:`FAULTS`. Everything is counted: :attr:`stats`, :attr:`requests`,
:attr:`served_record_ids` (every record ``Id`` in every blob served whole), :attr:`webhook_calls`.

Throttling by rate is modelled per tenant when asked (``tenant_rate_limit``); tenant-wide conditions (audit
logging off, no Exchange Online) with :meth:`set_tenant_condition`. Not modelled: notification retries with back-off, ``/subscriptions/notifications``,
``/resources/dlpSensitiveTypes``, and the loss of content created while a subscription was stopped.
A stopped subscription lists as ``disabled`` and answers AF20022; one disabled "by an admin"
(:meth:`disable_subscription` or the ``subscription_disabled`` fault) answers AF20023 until started again.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from random import Random
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx
import orjson

CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
RETENTION = timedelta(days=7)
MAX_WINDOW = timedelta(hours=24)
START_SPACING = timedelta(minutes=15)

FAULTS: Mapping[str, frozenset[str] | None] = {
    # fault name        -> operations it applies to (None: every operation)
    "throttle_429": None,  # 429, AF429, Retry-After (param retry_after)
    "throttle_403": None,  # 403 with an AF429 body, as in TRBL's example
    "server_error": None,  # 500 AF50000; status=503 gives a plain-text 503
    "slow": None,  # answers after `delay` seconds (a real sleep: keep it short)
    "truncated_blob": frozenset({"get_content"}),  # Content-Length says N, half is sent, connection closed
    "invalid_json_blob": frozenset({"get_content"}),  # 200 with a body that is not JSON
    "expired_content": frozenset({"get_content"}),  # AF20051
    "duplicate_content": frozenset({"list_content"}),  # the page also lists an already-listed contentId
    "subscription_disabled": frozenset({"list_content", "get_content"}),  # admin disables it: AF20023 until /start
    "long_page_chain": frozenset({"list_content"}),  # this listing pages 1 entry at a time
    "invalid_next_page": frozenset({"list_content"}),  # a next-page request is refused with AF20031
    "foreign_next_page": frozenset({"list_content"}),  # NextPageUri points at another host (param host)
}
"""Every fault the emulator can serve, with the operations it applies to."""

WebhookSender = Callable[[str, Mapping[str, str], bytes], int]
"""``(url, headers, body) -> HTTP status`` (0 when the POST failed). Webhook validation and notifications use it."""

_PATH = re.compile(r"^/api/v1(?:\.0)?/(?P<tenant>[^/]+)/activity/feed/(?P<rest>.+)$")
_NEXT_PAGE = re.compile(r"^(?P<offset>\d{10})R(?P<size>\d{4})$")
_OPERATIONS = {
    ("POST", "subscriptions/start"): "start_subscription",
    ("POST", "subscriptions/stop"): "stop_subscription",
    ("GET", "subscriptions/list"): "list_subscriptions",
    ("GET", "subscriptions/content"): "list_content",
}


def _iso(value: datetime) -> str:
    """API datetime form: ``2015-05-23T17:35:00.000Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    """``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM`` or ``YYYY-MM-DDTHH:MM:SS`` (UTC); ValueError otherwise."""
    value = datetime.fromisoformat(text.strip().removesuffix("Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def default_webhook_sender(url: str, headers: Mapping[str, str], body: bytes) -> int:
    """POST with httpx (2 s timeout); the status, or 0 when the request failed."""
    try:
        return httpx.post(url, content=body, headers=dict(headers), timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered."""

    method: str
    path: str
    query: Mapping[str, str]
    authorization: str | None
    operation: str
    tenant_id: str | None
    status: int


@dataclass(frozen=True)
class WebhookCall:
    """One POST the emulator made to a webhook (``kind`` is ``validation`` or ``notification``)."""

    kind: str
    url: str
    headers: Mapping[str, str]
    payload: Any
    status: int


@dataclass(frozen=True)
class EmulatorStats:
    """Counters: requests in total and per operation, faults served per fault name."""

    requests: int
    by_operation: Mapping[str, int]
    faults: Mapping[str, int]


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    delay: float = 0.0


@dataclass
class _Fault:
    name: str
    remaining: int
    tenant: str | None
    content_type: str | None
    operation: str | None
    params: dict[str, Any]


@dataclass
class _Subscription:
    status: str = "enabled"
    disabled_by: str | None = None  # "a tenant admin" / "a service admin": AF20023; None while stopped: AF20022
    webhook: dict[str, Any] | None = None
    webhook_failures: int = 0

    def as_json(self, content_type: str) -> dict[str, Any]:
        return {"contentType": content_type, "status": self.status, "webhook": self.webhook}


@dataclass
class _Blob:
    content_type: str
    body: bytes
    record_ids: list[str]
    created: datetime
    expiration: datetime


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    tenant: str | None = None
    rest: str = ""
    operation: str = "unknown"

    @property
    def content_type(self) -> str | None:
        return self.query.get("contentType")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return _Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _json(value: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(200, orjson.dumps(value), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class ManagementApiEmulator:
    """The Management Activity API on 127.0.0.1. Use as a context manager, or start() / stop().

    ``now`` is the emulator's clock (windows, expiry, webhook expiration, the ``Date`` header);
    ``page_size`` the entries per listing page; ``client_id`` the app id put in notifications;
    ``enforce_start_spacing`` answers a second ``/start`` of a tenant within 15 minutes with AF429;
    ``slow_delay`` is the default delay of the ``slow`` fault; ``webhook_failure_limit`` consecutive
    failed notifications disable a webhook.
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = 100,
        client_id: str = "00000000-0000-0000-0000-00000000c11e",
        webhook_sender: WebhookSender = default_webhook_sender,
        enforce_start_spacing: bool = False,
        slow_delay: float = 0.2,
        webhook_failure_limit: int = 3,
        token_tenant: Callable[[str], str | None] | None = None,
        port: int = 0,
        tenant_rate_limit: int | None = None,
    ) -> None:
        """``token_tenant`` checks a bearer token and returns its tenant (None: refused); by default any
        token is accepted (an Entra stand-in's verifier makes the emulator check who calls, for which tenant).
        ``tenant_rate_limit``: requests per minute per tenant (REF "API throttling": 2,000 baseline); a request
        over it gets AF429 with Retry-After (counted in :attr:`throttled`). None: no rate throttling."""
        self._rate_limit = tenant_rate_limit
        self._recent: dict[str, list[datetime]] = {}
        self.throttled = 0
        self.peak_per_minute: dict[str, int] = {}
        self._conditions: dict[str, str] = {}
        self._token_tenant = token_tenant
        self._port = port
        self.now = now
        self.page_size = page_size
        self.client_id = client_id
        self._sender = webhook_sender
        self._enforce_start_spacing = enforce_start_spacing
        self._slow_delay = slow_delay
        self._webhook_failure_limit = webhook_failure_limit
        self._lock = threading.RLock()
        self._subs: dict[tuple[str, str], _Subscription] = {}
        self._last_start: dict[str, datetime] = {}
        self._blobs: dict[tuple[str, str], _Blob] = {}
        self._listings: dict[tuple[str, str], list[tuple[datetime, int, str]]] = {}  # (created, seq, content id)
        self._seq = 0
        self._revoked: set[str] = set()
        self._faults: list[_Fault] = []
        self._rates: dict[str, float] = {}
        self._rng = Random(0)
        self._requests: list[RecordedRequest] = []
        self._by_operation: Counter[str] = Counter()
        self._faults_served: Counter[str] = Counter()
        self._served_ids: list[str] = []
        self._webhook_calls: list[WebhookCall] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ManagementApiEmulator:
        """Listen on 127.0.0.1 on a free port, serving from a background thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ManagementApiEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the value for ITDR_MANAGEMENT_API_BASE_URL)."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def api_root(self, tenant_id: str) -> str:
        """``{base_url}/api/v1.0/{tenant}/activity/feed``."""
        return f"{self.base_url}/api/v1.0/{_tenant(tenant_id)}/activity/feed"

    # ------------------------------------------------------------------ test controls

    def add_content(
        self,
        tenant_id: str,
        content_type: str,
        records: list[dict[str, Any]] | bytes,
        *,
        created: datetime | None = None,
        content_id: str | None = None,
        notify: bool = True,
    ) -> dict[str, Any]:
        """Make a blob available; returns its listing entry (contentType, contentId, contentUri, ...).

        ``records`` is a list of audit records, or raw bytes for a malformed blob. ``created`` defaults to
        ``now()``; expiry is 7 days after the first listing. Passing an existing ``content_id`` lists the
        same blob again (a duplicate, as the real service does, possibly days later). With ``notify``, a
        notification goes to the subscription's webhook when it has an enabled one.
        """
        tenant = _tenant(tenant_id)
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"unknown content type {content_type!r}")
        when = (created or self.now()).astimezone(UTC)
        body = records if isinstance(records, bytes) else orjson.dumps(records)
        with self._lock:
            self._seq += 1
            cid = content_id or _new_content_id(when, content_type, self._seq)
            old = self._blobs.get((tenant, cid))
            first = old.created if old is not None else when
            self._blobs[(tenant, cid)] = _Blob(content_type, body, _record_ids(body), first, first + RETENTION)
            self._listings.setdefault((tenant, content_type), []).append((when, self._seq, cid))
            entry = self._entry(tenant, cid, listed=when)
            sub = self._subs.get((tenant, content_type))
            webhook = dict(sub.webhook) if notify and sub and sub.status == "enabled" and sub.webhook else None
        if webhook is not None:
            self._notify(tenant, content_type, webhook, [entry])
        return entry

    def disable_subscription(self, tenant_id: str, content_type: str, *, by: str = "a tenant admin") -> None:
        """An admin disables the subscription: AF20023 on listing and fetching until ``/start``."""
        with self._lock:
            sub = self._subs.setdefault((_tenant(tenant_id), content_type), _Subscription())
            sub.status, sub.disabled_by = "disabled", by

    def subscription(self, tenant_id: str, content_type: str) -> dict[str, Any] | None:
        """The subscription as ``/subscriptions/list`` shows it, or None."""
        with self._lock:
            sub = self._subs.get((_tenant(tenant_id), content_type))
            return None if sub is None else orjson.loads(orjson.dumps(sub.as_json(content_type)))

    def revoke_token(self, token: str) -> None:
        """Requests bearing ``token`` get 401 from now on (an expired or revoked token)."""
        with self._lock:
            self._revoked.add(token)

    def inject(
        self,
        fault: str,
        *,
        times: int = 1,
        tenant: str | None = None,
        content_type: str | None = None,
        operation: str | None = None,
        retry_after: int | str | None = 1,
        status: int = 500,
        delay: float | None = None,
        host: str = "localhost",
    ) -> None:
        """Serve ``fault`` to the next ``times`` matching requests (filters: tenant, content type, operation).

        ``retry_after`` is the Retry-After header of the throttle faults (seconds or an HTTP-date, None for
        no header); ``status`` 500 or 503 for ``server_error``; ``delay`` for ``slow``; ``host`` for
        ``foreign_next_page``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        params = {"retry_after": retry_after, "status": status, "delay": delay, "host": host}
        with self._lock:
            self._faults.append(
                _Fault(fault, times, _tenant(tenant) if tenant else None, content_type, operation, params)
            )

    def set_fault_rates(self, rates: Mapping[str, float], *, seed: int) -> None:
        """Serve faults at random: each request draws, in fault-name order, ``rng.random() < rate``.

        The draws come from ``random.Random(seed)``, so a run with the same requests is repeatable. Random
        throttles carry ``Retry-After: 1``; an empty mapping turns random faults off.
        """
        unknown = set(rates) - set(FAULTS)
        if unknown or any(not 0.0 <= r <= 1.0 for r in rates.values()):
            raise ValueError(f"bad fault rates {dict(rates)!r}")
        with self._lock:
            self._rates = dict(sorted(rates.items()))
            self._rng = Random(seed)

    def clear_faults(self) -> None:
        """Forget pending one-shot faults and random rates."""
        with self._lock:
            self._faults.clear()
            self._rates = {}

    # ------------------------------------------------------------------ observations

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            total = sum(self._by_operation.values())
            return EmulatorStats(total, dict(self._by_operation), dict(self._faults_served))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def served_record_ids(self) -> list[str]:
        """The ``Id`` of every record of every blob served whole (repeats included), in serving order."""
        with self._lock:
            return list(self._served_ids)

    @property
    def webhook_calls(self) -> list[WebhookCall]:
        """Every validation and notification POST made so far."""
        with self._lock:
            return list(self._webhook_calls)

    # ------------------------------------------------------------------ request handling

    def _dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = _Request(method, unquote(parts.path), query, headers, body)
        match = _PATH.match(req.path)
        if match:
            req.tenant, req.rest = match["tenant"].lower(), match["rest"]
            if method == "GET" and req.rest.startswith("audit/"):
                req.operation = "get_content"
            else:
                req.operation = _OPERATIONS.get((method, req.rest), "unknown")
        with self._lock:
            self._by_operation[req.operation] += 1
            response = self._gate(req)
            fault = self._pick_fault(req) if response is None else None
        if response is None:
            response = self._route(req, fault)
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method, req.path, query, headers.get("authorization"), req.operation, req.tenant, response.status
                )
            )
        return response

    def _gate(self, req: _Request) -> _Response | None:
        """Checks every call passes: a known path, a bearer token, PublisherIdentifier, a GUID tenant."""
        if req.operation == "unknown":
            return _error(404, "NotFound", f"No operation at {req.method} {req.path}.")
        auth = req.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or token in self._revoked:
            return _Response(401, b'{"error":{"code":"Unauthorized","message":"Invalid or missing bearer token."}}')
        if self._token_tenant is not None and (self._token_tenant(token) or "").lower() != (req.tenant or "").lower():
            return _Response(401, b'{"error":{"code":"Unauthorized","message":"The token is not for this tenant."}}')
        if not req.query.get("PublisherIdentifier"):
            return _error(400, "AF20001", "Missing parameter: PublisherIdentifier.")
        try:
            uuid.UUID(req.tenant or "")
        except ValueError:
            return _error(400, "AF20013", f"The tenant ID passed in the URL ({req.tenant}) is not a valid GUID.")
        condition = self._conditions.get(req.tenant or "")
        if condition == "audit_off":
            message = f"Microsoft.Office.Compliance.Audit.DataServiceException: Tenant {req.tenant} does not exist."
            return _error(500, "AF50000", message)
        if condition == "no_exchange":
            return _error(400, "AF20011", f"Tenant {req.tenant} does not exist.")
        return self._throttle(req.tenant or "")

    def set_tenant_condition(self, tenant_id: str, condition: str | None) -> None:
        """A tenant-wide condition: ``audit_off`` (unified audit logging off: every call answers 500 with the
        DataServiceException "Tenant ... does not exist", as TRBL describes) or ``no_exchange`` (no Exchange
        Online, so no audit log: AF20011 "tenant does not exist"); None clears it."""
        if condition not in (None, "audit_off", "no_exchange"):
            raise ValueError(condition)
        with self._lock:
            if condition is None:
                self._conditions.pop(_tenant(tenant_id), None)
            else:
                self._conditions[_tenant(tenant_id)] = condition

    def _throttle(self, tenant: str) -> _Response | None:
        """The per-tenant rate limit (a sliding minute of the emulator's clock); called under the lock."""
        if self._rate_limit is None:
            return None
        now = self.now()
        recent = [t for t in self._recent.get(tenant, []) if now - t < timedelta(minutes=1)]
        if len(recent) >= self._rate_limit:
            self._recent[tenant] = recent
            self.throttled += 1
            wait = max(1, int((recent[0] + timedelta(minutes=1) - now).total_seconds()) + 1)
            return _error(429, "AF429", "Too many requests. Method=GET", {"Retry-After": str(wait)})
        recent.append(now)
        self._recent[tenant] = recent
        self.peak_per_minute[tenant] = max(self.peak_per_minute.get(tenant, 0), len(recent))
        return None

    def _pick_fault(self, req: _Request) -> _Fault | None:
        """The one-shot fault due for this request, else a random one, else None (counted when served)."""
        for fault in self._faults:
            if fault.remaining > 0 and self._applies(fault.name, req) and self._matches(fault, req):
                fault.remaining -= 1
                self._faults_served[fault.name] += 1
                return fault
        for name, rate in self._rates.items():
            if self._applies(name, req) and self._rng.random() < rate:
                self._faults_served[name] += 1
                return _Fault(name, 0, None, None, None, {"retry_after": 1, "status": 500, "delay": None, "host": ""})
        return None

    @staticmethod
    def _applies(name: str, req: _Request) -> bool:
        ops = FAULTS[name]
        if ops is not None and req.operation not in ops:
            return False
        paging = "nextPage" in req.query
        if name == "long_page_chain":
            return not paging
        if name == "invalid_next_page":
            return paging
        return True

    def _route(self, req: _Request, fault: _Fault | None) -> _Response:
        name = fault.name if fault else None
        if fault is not None and name in ("throttle_429", "throttle_403"):
            retry = fault.params["retry_after"]
            method = {"get_content": "GetBlob"}.get(req.operation, req.method)
            return _error(
                429 if name == "throttle_429" else 403,
                "AF429",
                f"Too many requests. Method={method}, PublisherId={req.query.get('PublisherIdentifier')}",
                {"Retry-After": str(retry)} if retry is not None else None,
            )
        if fault is not None and name == "server_error":
            if fault.params["status"] == 503:
                return _Response(503, b"Service Unavailable", {"Content-Type": "text/plain"})
            return _error(500, "AF50000", "An internal error occurred. Retry the request.")
        if fault is not None and name == "subscription_disabled":
            content_type = req.content_type or self._blob_type(req)
            if content_type is not None:
                self.disable_subscription(req.tenant or "", content_type)
        handler = {
            "start_subscription": self._start,
            "stop_subscription": self._stop,
            "list_subscriptions": self._list_subscriptions,
            "list_content": self._list_content,
            "get_content": self._get_content,
        }[req.operation]
        response = handler(req, fault)
        if fault is not None and name == "slow":
            response.delay = fault.params["delay"] if fault.params["delay"] is not None else self._slow_delay
        return response

    # ------------------------------------------------------------------ operations

    def _subscription_error(self, tenant: str, content_type: str) -> _Response | None:
        sub = self._subs.get((tenant, content_type))
        if sub is not None and sub.status == "enabled":
            return None
        if sub is not None and sub.disabled_by:
            return _error(400, "AF20023", f"The subscription was disabled by {sub.disabled_by}.")
        return _error(400, "AF20022", "No subscription found for the specified content type.")

    def _start(self, req: _Request, fault: _Fault | None) -> _Response:
        tenant, content_type, now = req.tenant or "", req.content_type or "", self.now()
        if content_type not in CONTENT_TYPES:
            return _error(400, "AF20020", "The specified content type is not valid.")
        try:
            body = orjson.loads(req.body) if req.body.strip() else {}
        except orjson.JSONDecodeError:
            return _error(400, "AF20002", "Invalid parameter type: webhook. Expected type: object")
        requested = body.get("webhook") if isinstance(body, dict) else None
        webhook = None
        if isinstance(requested, dict):
            webhook = {
                "status": "enabled",
                "address": str(requested.get("address") or ""),
                "authId": requested.get("authId"),
                "expiration": requested.get("expiration") or None,
            }
        with self._lock:
            last = self._last_start.get(tenant)
            if self._enforce_start_spacing and last is not None and now - last < START_SPACING:
                wait = int((START_SPACING - (now - last)).total_seconds()) + 1
                return _error(429, "AF429", "Too many requests. Method=POST", {"Retry-After": str(wait)})
            self._last_start[tenant] = now
            sub = self._subs.get((tenant, content_type))
            if sub is not None and sub.status == "enabled" and sub.webhook == webhook:
                return _error(400, "AF20024", "The subscription is already enabled. No property change.")
        if webhook is not None:
            failure = self._validate_webhook(webhook, now)  # outside the lock: the listener may call back
            if failure is not None:
                return failure
        with self._lock:
            sub = self._subs.setdefault((tenant, content_type), _Subscription())
            sub.status, sub.disabled_by, sub.webhook, sub.webhook_failures = "enabled", None, webhook, 0
            return _json(sub.as_json(content_type))

    def _validate_webhook(self, webhook: dict[str, Any], now: datetime) -> _Response | None:
        """REF "Webhook validation": POST the validation code; anything but 200 fails with AF20021."""
        address, expiration = webhook["address"], webhook["expiration"]
        if not address.startswith("https://") and urlsplit(address).hostname not in ("127.0.0.1", "localhost", "::1"):
            # Loopback http is allowed so tests can run a plain local listener.
            return _error(
                400,
                "AF20021",
                f"The webhook endpoint {address} could not be validated. The address must begin with HTTPS.",
            )
        if expiration is not None:
            try:
                if _parse_time(str(expiration)) <= now:
                    return _error(400, "AF20003", f"Expiration {expiration} provided is set to past date and time.")
            except ValueError:
                return _error(400, "AF20002", "Invalid parameter type: expiration. Expected type: datetime")
        code = secrets.token_urlsafe(16)
        headers = {"Content-Type": "application/json; charset=utf-8", "Webhook-ValidationCode": code}
        if webhook["authId"]:
            headers["Webhook-AuthID"] = str(webhook["authId"])
        if self._send("validation", address, headers, {"validationCode": code}) != 200:
            return _error(
                400,
                "AF20021",
                f"The webhook endpoint {address} could not be validated. The endpoint did not return HTTP 200.",
            )
        return None

    def _stop(self, req: _Request, fault: _Fault | None) -> _Response:
        with self._lock:
            sub = self._subs.get((req.tenant or "", req.content_type or ""))
            if req.content_type not in CONTENT_TYPES:
                return _error(400, "AF20020", "The specified content type is not valid.")
            if sub is None or (sub.status != "enabled" and not sub.disabled_by):
                return _error(400, "AF20022", "No subscription found for the specified content type.")
            sub.status, sub.disabled_by = "disabled", None
            return _Response(200)

    def _list_subscriptions(self, req: _Request, fault: _Fault | None) -> _Response:
        with self._lock:
            return _json([s.as_json(ct) for (t, ct), s in sorted(self._subs.items()) if t == req.tenant])

    def _list_content(self, req: _Request, fault: _Fault | None) -> _Response:
        tenant, content_type, now = req.tenant or "", req.content_type or "", self.now()
        if content_type not in CONTENT_TYPES:
            return _error(400, "AF20020", "The specified content type is not valid.")
        start_text, end_text = req.query.get("startTime"), req.query.get("endTime")
        if (start_text is None) != (end_text is None):
            return _error(400, "AF20030", "Start time and end time must both be specified (or both omitted).")
        if start_text is None or end_text is None:
            start, end = now - MAX_WINDOW, now
            start_text, end_text = start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            try:
                start, end = _parse_time(start_text), _parse_time(end_text)
            except ValueError:
                return _error(400, "AF20002", "Invalid parameter type: startTime/endTime. Expected type: datetime")
        if start >= end:
            return _error(
                400,
                "AF20055",
                "Start time and end time must both be specified (or both omitted) and must be less than or equal "
                "to 24 hours apart, with the start time prior to end time and start time no more than 7 days "
                "in the past.",
            )
        if end - start > MAX_WINDOW or start < now - RETENTION:
            return _error(
                400,
                "AF20030",
                "Start time and end time must both be specified (or both omitted) and must be less than or equal "
                "to 24 hours apart, with the start time no more than 7 days in the past.",
            )
        offset, size = 0, self.page_size
        if fault is not None and fault.name == "long_page_chain":
            size = 1
        cursor = req.query.get("nextPage")
        if cursor is not None:
            parsed = _NEXT_PAGE.match(cursor)
            if parsed is None or (fault is not None and fault.name == "invalid_next_page"):
                return _error(400, "AF20031", f"Invalid nextPage Input: {cursor}.")
            offset, size = int(parsed["offset"]), max(1, int(parsed["size"]))
        with self._lock:
            failure = self._subscription_error(tenant, content_type)
            if failure is not None:
                return failure
            listed = sorted(self._listings.get((tenant, content_type), []))
            in_window = [item for item in listed if start <= item[0] < end]
            page = [self._entry(tenant, cid, listed=created) for created, _, cid in in_window[offset : offset + size]]
            if fault is not None and fault.name == "duplicate_content" and listed:
                earlier = [item for item in listed if item[0] < start] or in_window or listed
                created, _, cid = earlier[-1]
                page.append(self._entry(tenant, cid, listed=created))
        headers: dict[str, str] = {}
        more = offset + size < len(in_window)
        if more or (fault is not None and fault.name == "foreign_next_page"):
            base = self.base_url
            if fault is not None and fault.name == "foreign_next_page":
                base = base.replace("127.0.0.1", str(fault.params["host"]))
            params = {"contentType": content_type, "startTime": start_text, "endTime": end_text}
            params["nextPage"] = f"{offset + size:010d}R{size:04d}"
            headers["NextPageUri"] = f"{base}/api/v1/{tenant}/activity/feed/subscriptions/content?{urlencode(params)}"
        return _json(page, headers)

    def _get_content(self, req: _Request, fault: _Fault | None) -> _Response:
        tenant, content_id = req.tenant or "", req.rest.removeprefix("audit/")
        name = fault.name if fault else None
        with self._lock:
            blob = self._blobs.get((tenant, content_id))
            if blob is None:
                return _error(404, "AF20050", f"The specified content ({content_id}) does not exist.")
            failure = self._subscription_error(tenant, blob.content_type)
            if failure is not None:
                return failure
            if name == "expired_content" or self.now() >= blob.expiration:
                return _error(
                    400,
                    "AF20051",
                    f"Content requested with the key {content_id} has already expired. "
                    "Content older than 7 days cannot be retrieved.",
                )
            if name == "invalid_json_blob":
                return _Response(200, b'{"Id": not json', {"Content-Type": "application/json; charset=utf-8"})
            response = _json_bytes(blob.body)
            if name == "truncated_blob":
                response.truncate = True
            else:
                self._served_ids.extend(blob.record_ids)
            return response

    # ------------------------------------------------------------------ helpers

    def _matches(self, fault: _Fault, req: _Request) -> bool:
        if fault.tenant is not None and fault.tenant != req.tenant:
            return False
        if fault.operation is not None and fault.operation != req.operation:
            return False
        return fault.content_type is None or fault.content_type == (req.content_type or self._blob_type(req))

    def _blob_type(self, req: _Request) -> str | None:
        blob = self._blobs.get((req.tenant or "", req.rest.removeprefix("audit/")))
        return blob.content_type if blob else None

    def _entry(self, tenant: str, content_id: str, *, listed: datetime) -> dict[str, Any]:
        blob = self._blobs[(tenant, content_id)]
        return {
            "contentType": blob.content_type,
            "contentId": content_id,
            "contentUri": f"{self.base_url}/api/v1.0/{tenant}/activity/feed/audit/{quote(content_id, safe='$')}",
            "contentCreated": _iso(listed),
            "contentExpiration": _iso(blob.expiration),
        }

    def _notify(self, tenant: str, content_type: str, webhook: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        expiration = webhook.get("expiration")
        if expiration and _parse_time(str(expiration)) <= self.now():
            with self._lock:
                sub = self._subs[(tenant, content_type)]
                if sub.webhook is not None:
                    sub.webhook["status"] = "expired"
            return
        if webhook.get("status") != "enabled":
            return
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if webhook.get("authId"):
            headers["Webhook-AuthID"] = str(webhook["authId"])
        payload = [{"tenantId": tenant, "clientId": self.client_id, **entry} for entry in entries]
        status = self._send("notification", str(webhook["address"]), headers, payload)
        with self._lock:
            sub = self._subs[(tenant, content_type)]
            sub.webhook_failures = 0 if status == 200 else sub.webhook_failures + 1
            if sub.webhook is not None and sub.webhook_failures >= self._webhook_failure_limit:
                sub.webhook["status"] = "disabled"

    def _send(self, kind: str, url: str, headers: dict[str, str], payload: Any) -> int:
        try:
            status = self._sender(url, headers, orjson.dumps(payload))
        except Exception:  # a sender that raises counts as a failed POST
            status = 0
        with self._lock:
            self._webhook_calls.append(WebhookCall(kind, url, dict(headers), payload, status))
        return status


# ---------------------------------------------------------------------- module helpers


def _tenant(tenant_id: str) -> str:
    return str(uuid.UUID(tenant_id))


def _record_ids(body: bytes) -> list[str]:
    try:
        records = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(records, list):
        return []
    return [str(r["Id"]) for r in records if isinstance(r, dict) and "Id" in r]


def _new_content_id(created: datetime, content_type: str, seq: int) -> str:
    """An opaque id shaped like the real ones: ``{stamp}${stamp}$audit_general$Audit_General$emu0001``."""
    stamp = created.strftime("%Y%m%d%H%M%S%f") + f"{seq % 1000:03d}"
    return f"{stamp}${stamp}${content_type.lower().replace('.', '_')}${content_type.replace('.', '_')}$emu{seq:04d}"


def _json_bytes(body: bytes) -> _Response:
    return _Response(200, body, {"Content-Type": "application/json; charset=utf-8"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: ManagementApiEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts in tests) are not errors worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.emulator._dispatch(method, self.path, headers, body)
        if response.delay:
            time.sleep(response.delay)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if response.truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body[: len(response.body) // 2] if response.truncate else response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if response.truncate:
            self.close_connection = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header from the emulator's clock (so tests can create clock skew)."""
        return formatdate(self.server.emulator.now().timestamp(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`ManagementApiEmulator.requests` instead."""
