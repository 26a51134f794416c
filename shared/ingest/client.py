"""Client of the Office 365 Management Activity API, one instance per tenant.

:class:`ManagementActivityClient` speaks the protocol of docs/management-activity-api.md §2-§6:

- ``PublisherIdentifier`` on every request, including the ``contentUri`` GET and next-page URLs;
- one app-only token per (tenant, cloud), cached until five minutes before it expires, refreshed once
  on a 401;
- content windows cut into slices of at most 24 h, the start clamped to now − 167 h 55 min, times
  formatted ``%Y-%m-%dT%H:%M:%S`` (24-hour clock, UTC), every ``NextPageUri`` page followed;
- a token goes only to the tenant's API endpoint: next-page and content URLs on any other scheme,
  host or port raise :class:`ForbiddenTargetError` before a request is sent;
- failures classified on the body's ``AF…`` code first, then on the HTTP status, onto
  ``shared.platform.errors``; transient ones retried a bounded number of times, honouring
  ``Retry-After`` through an injectable ``sleep``.

Tokens are never logged; log lines carry the tenant.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar

import httpx
import orjson
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from shared.ingest.clouds import (
    ApiEndpoint,
    Cloud,
    cloud_profile,
    is_allowed_content_uri,
    is_allowed_next_page_uri,
    normalize_tenant_id,
)
from shared.platform.errors import (
    BadInputError,
    ConfigurationError,
    ExpiredContentError,
    ForbiddenTargetError,
    ItdrError,
    NotFoundError,
    PermissionError_,
    ServiceUnavailable,
    SubscriptionError,
    ThrottledError,
    TransientError,
)

__all__ = [
    "CONTENT_TYPES",
    "MAX_LOOKBACK",
    "MAX_WINDOW",
    "TIME_FORMAT",
    "AccessTokenCache",
    "ContentBlob",
    "ContentNotification",
    "ContentPage",
    "ManagementActivityClient",
    "Subscription",
    "TokenCredential",
    "WebhookConfig",
    "format_api_time",
    "parse_content_blob",
    "split_window",
]

_log = logging.getLogger(__name__)

CONTENT_TYPES: frozenset[str] = frozenset(
    {"Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All"}
)
"""The documented content types."""

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""startTime/endTime format: 24-hour clock, UTC, whole seconds."""
MAX_WINDOW = timedelta(hours=24)
"""Longest startTime..endTime span the API accepts."""
MAX_LOOKBACK = timedelta(hours=167, minutes=55)
"""Oldest start the client asks for (7 days minus a margin for latency and clock skew, as Elastic does)."""
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
"""A cached token is replaced when it has less than this left."""

_NEXT_PAGE_HEADER = "NextPageUri"  # httpx headers are case-insensitive: also matches Nextpageuri, NEXTPAGEURI


# --------------------------------------------------------------------------- models


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class WebhookConfig(_ApiModel):
    """A subscription's webhook: what ``/start`` is given, and what ``/list`` reports (with ``status``)."""

    address: str
    auth_id: str | None = Field(default=None, alias="authId")
    """Sent back by Microsoft as the ``Webhook-AuthID`` header of every notification."""
    expiration: datetime | None = None
    """After this time no notifications are sent (None: no end)."""
    status: str | None = None
    """``enabled``, ``disabled`` or ``expired`` in API answers; None in requests."""

    @field_validator("expiration", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("expiration")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    def request_body(self) -> dict[str, Any]:
        """The ``webhook`` object of a ``/start`` request body."""
        body: dict[str, Any] = {"address": self.address}
        if self.auth_id is not None:
            body["authId"] = self.auth_id
        body["expiration"] = None if self.expiration is None else self.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
        return body


class Subscription(_ApiModel):
    """One content-type subscription of a tenant."""

    content_type: str = Field(alias="contentType")
    status: str | None = None
    """``enabled`` or ``disabled`` (REF's list sample omits it for one entry, hence optional)."""
    webhook: WebhookConfig | None = None

    @property
    def enabled(self) -> bool:
        """True when the subscription status is ``enabled``."""
        return (self.status or "").lower() == "enabled"


class ContentBlob(_ApiModel):
    """One entry of ``/subscriptions/content``: a content blob available for retrieval."""

    content_type: str = Field(alias="contentType")
    content_id: str = Field(alias="contentId")
    content_uri: str = Field(alias="contentUri")
    content_created: datetime = Field(alias="contentCreated")
    content_expiration: datetime = Field(alias="contentExpiration")

    @field_validator("content_created", "content_expiration")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class ContentNotification(ContentBlob):
    """One entry of a webhook notification: a :class:`ContentBlob` plus the tenant and the app."""

    tenant_id: str = Field(alias="tenantId")
    client_id: str | None = Field(default=None, alias="clientId")


class ContentPage(NamedTuple):
    """One page of a content listing.

    ``next_page_uri`` is the cursor to store (None on the window's last page); ``window_start`` and
    ``window_end`` are the <= 24 h slice the page belongs to (whole seconds, UTC): when a page with
    ``next_page_uri is None`` has been handled, everything created before ``window_end`` is listed.
    """

    items: list[ContentBlob]
    next_page_uri: str | None
    window_start: datetime
    window_end: datetime


_BLOBS = TypeAdapter(list[ContentBlob])
_SUBSCRIPTIONS = TypeAdapter(list[Subscription])
_SUBSCRIPTION = TypeAdapter(Subscription)


def parse_content_blob(
    data: bytes, *, tenant_id: str | None = None, content_id: str | None = None
) -> list[dict[str, Any]]:
    """The audit records of a content blob (a JSON array of objects); BadInputError otherwise."""
    try:
        records = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(
            "content blob is not JSON", reason="invalid_blob", tenant=tenant_id, content_id=content_id
        ) from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BadInputError(
            "content blob is not a JSON array of objects",
            reason="invalid_blob",
            tenant=tenant_id,
            content_id=content_id,
        )
    return records


# --------------------------------------------------------------------------- time windows


def format_api_time(value: datetime) -> str:
    """``value`` in UTC as ``YYYY-MM-DDTHH:MM:SS`` (24-hour clock). Naive values are refused."""
    if value.tzinfo is None:
        raise BadInputError("naive datetime: pass an aware (UTC) datetime", reason="naive_datetime")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _floor_second(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise BadInputError("naive datetime: pass an aware (UTC) datetime", reason="naive_datetime")
    return value.astimezone(UTC).replace(microsecond=0)


def _ceil_second(value: datetime) -> datetime:
    floor = _floor_second(value)
    return floor if floor == value.astimezone(UTC) else floor + timedelta(seconds=1)


def split_window(start: datetime, end: datetime, *, now: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` as consecutive slices of at most 24 h, whole seconds, start clamped.

    The start is raised to ``now − 167 h 55 min`` when older; an empty list when nothing is left.
    """
    lo = max(_floor_second(start), _ceil_second(now - MAX_LOOKBACK))
    hi = _floor_second(end)
    slices: list[tuple[datetime, datetime]] = []
    while lo < hi:
        nxt = min(lo + MAX_WINDOW, hi)
        slices.append((lo, nxt))
        lo = nxt
    return slices


# --------------------------------------------------------------------------- tokens


class TokenCredential(Protocol):
    """What the client needs of a credential: azure-core's ``get_token``.

    azure-identity's CertificateCredential and ClientSecretCredential (built for the customer tenant)
    fit; tests pass a stub.
    """

    def get_token(self, *scopes: str) -> AccessToken: ...


class AccessTokenCache:
    """Tokens keyed by (tenant, cloud), reused until :data:`TOKEN_REFRESH_MARGIN` before expiry.

    One per client by default; pass one instance to several clients to share it in a process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, Cloud], threading.Lock] = {}
        self._tokens: dict[tuple[str, Cloud], AccessToken] = {}

    def get(self, tenant_id: str, cloud: Cloud, credential: TokenCredential, scope: str, now: datetime) -> str:
        """A valid token for the tenant, asking ``credential`` only when none is cached or it is near expiry.

        One token request at a time per (tenant, cloud); other tenants are not held up.
        """
        key = (tenant_id, cloud)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached.expires_on - now.timestamp() > TOKEN_REFRESH_MARGIN.total_seconds():
                return cached.token
            token = _request_token(credential, scope, tenant_id)
            with self._lock:
                self._tokens[key] = token
            return token.token

    def invalidate(self, tenant_id: str, cloud: Cloud) -> None:
        """Forget the tenant's token (after a 401)."""
        with self._lock:
            self._tokens.pop((tenant_id, cloud), None)


def _request_token(credential: TokenCredential, scope: str, tenant_id: str) -> AccessToken:
    try:
        return credential.get_token(scope)
    except ClientAuthenticationError as exc:
        raise PermissionError_(
            "token request refused (consent, certificate or secret)", reason="token_request_failed", tenant=tenant_id
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise ServiceUnavailable("token authority unreachable", tenant=tenant_id) from exc


# --------------------------------------------------------------------------- errors


class _NextPageRejected(BadInputError):
    """AF20031: the service refused a nextPage cursor; the window is listed again from page 1."""

    reason = "bad_next_page"


_SUBSCRIPTION_REASONS = {"AF20022": "subscription_not_enabled", "AF20023": "subscription_disabled"}
_TENANT_REASONS = {
    "AF20010": "tenant_mismatch",
    "AF20011": "tenant_not_found",
    "AF20012": "tenant_misconfigured",
    "AF20013": "tenant_id_invalid",
    "AF20021": "webhook_validation_failed",
    "AF20052": "invalid_content_id",
}
_TRANSIENT_CODES = frozenset({"AF50000", "AF50005", "AF50006"})


def _error_code(response: httpx.Response) -> tuple[str | None, str]:
    """(AF code, message) from an error body; (None, short text) when the body has none."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.text[:200]
    code = error.get("code")
    message = error.get("message")
    return (str(code) if code is not None else None), (str(message)[:300] if message is not None else "")


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (_as_utc(when) - now).total_seconds())


_E = TypeVar("_E", bound=ItdrError)
_T = TypeVar("_T")


def _with_context(error: _E, context: Mapping[str, object]) -> _E:
    error.context.update({k: v for k, v in context.items() if v is not None})
    return error


def _classify(response: httpx.Response, *, now: datetime, context: Mapping[str, object]) -> ItdrError:
    """The error a failed response stands for: body code first, then status."""
    status = response.status_code
    code, message = _error_code(response)
    ctx = {**context, "status": status, "code": code}
    text = f"Management API {status} {code or ''}: {message}".strip()
    retry_after = _retry_after(response, now)

    error: ItdrError
    if code == "AF429" or status == 429:
        error = ThrottledError(text, retry_after=retry_after)
    elif code in _TRANSIENT_CODES or status >= 500 or status == 408:
        if "DataServiceException" in message and "does not exist" in message:
            # TRBL: unified audit logging off shows up as "Tenant <id> does not exist".
            error = ConfigurationError(text, reason="audit_log_disabled")
        else:
            error = ServiceUnavailable(text, retry_after=retry_after)
    elif code in _SUBSCRIPTION_REASONS:
        error = SubscriptionError(text, reason=_SUBSCRIPTION_REASONS[code])
    elif code == "AF20051":
        error = ExpiredContentError(text)
    elif code == "AF20050" or status == 404:
        error = NotFoundError(text)
    elif code in ("AF20030", "AF20055"):
        error = BadInputError(text, reason="bad_window")
    elif code == "AF20031":
        error = _NextPageRejected(text)
    elif code == "AF10001":
        error = PermissionError_(text)
    elif code in _TENANT_REASONS:
        error = ConfigurationError(text, reason=_TENANT_REASONS[code])
    elif status in (401, 403):
        error = PermissionError_(text, reason="unauthorized" if status == 401 else "forbidden")
    else:
        error = BadInputError(text, reason="bad_request")
    return _with_context(error, ctx)


# --------------------------------------------------------------------------- client


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ManagementActivityClient:
    """The Management Activity API for one tenant. Thread-safe; options are fixed at construction.

    ``credential`` issues app-only tokens for the tenant (anything with azure-core's ``get_token``).
    ``base_url`` overrides the cloud's API host (the local emulator, e.g. ``http://127.0.0.1:8081``).
    ``max_retries`` bounds the retries of one request on transient errors; ``sleep`` waits between them
    (tests pass a recorder); a ``Retry-After`` above ``max_retry_delay`` seconds is not waited for: the
    ThrottledError goes to the caller with ``retry_after`` set. Without ``Retry-After`` the waits are
    ``retry_backoff * 2**attempt`` seconds. ``clock`` gives the current UTC time (window clamp, token expiry,
    HTTP-date Retry-After). A client built without ``http_client`` owns its httpx client (``timeout``
    seconds per request): close it, or use the client as a context manager. An injected ``http_client``
    keeps its own timeouts and is not closed here. ``token_cache`` shares tokens between clients.
    """

    def __init__(
        self,
        tenant_id: str,
        *,
        cloud: Cloud | str,
        publisher_id: str,
        credential: TokenCredential,
        http_client: httpx.Client | None = None,
        base_url: str | None = None,
        max_retries: int = 3,
        retry_backoff: float = 2.0,
        max_retry_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utcnow,
        timeout: float = 30.0,
        token_cache: AccessTokenCache | None = None,
    ) -> None:
        self._tenant_id = normalize_tenant_id(tenant_id)
        self._scope = cloud_profile(cloud).scope  # ConfigurationError for an unknown cloud
        self._cloud = Cloud(cloud)
        try:
            self._publisher_id = str(uuid.UUID(publisher_id))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ConfigurationError(
                "publisher id must be the vendor's tenant GUID", reason="publisher_id_invalid", tenant=self._tenant_id
            ) from exc
        if max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0", reason="invalid_option")
        self._endpoint = ApiEndpoint.parse(base_url) if base_url else ApiEndpoint.for_cloud(self._cloud)
        self._root = self._endpoint.tenant_root(self._tenant_id)
        self._credential = credential
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=httpx.Timeout(timeout))
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._max_retry_delay = max_retry_delay
        self._sleep = sleep
        self._clock = clock
        self._tokens = token_cache if token_cache is not None else AccessTokenCache()

    # -- properties ------------------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        """The tenant GUID (lower case)."""
        return self._tenant_id

    @property
    def cloud(self) -> Cloud:
        """The tenant's cloud."""
        return self._cloud

    @property
    def endpoint(self) -> ApiEndpoint:
        """Where requests go (the cloud's API host, or the override)."""
        return self._endpoint

    @property
    def root_url(self) -> str:
        """The tenant's API root: ``{endpoint}/api/v1.0/{tenant}/activity/feed``."""
        return self._root

    def __repr__(self) -> str:
        return f"ManagementActivityClient(tenant_id={self._tenant_id!r}, cloud={self._cloud.value!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the httpx client if this object built it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ManagementActivityClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- subscriptions ---------------------------------------------------------------------------

    def start_subscription(self, content_type: str, *, webhook: WebhookConfig | None = None) -> Subscription:
        """Start (or update, re-enable) the subscription to ``content_type``; returns it.

        AF20024 ("already enabled") counts as success: the current subscription is returned. Respect the
        documented 15 minutes between start calls; this method does not wait.
        """
        body = {"webhook": webhook.request_body()} if webhook is not None else None
        try:
            response = self._request(
                "POST",
                f"{self._root}/subscriptions/start",
                params={"contentType": content_type},
                json=body,
                operation="start_subscription",
                content_type=content_type,
            )
        except BadInputError as exc:
            if exc.context.get("code") != "AF20024":
                raise
            _log.info("subscription already enabled: tenant=%s content_type=%s", self._tenant_id, content_type)
            for sub in self.list_subscriptions():
                if sub.content_type == content_type:
                    return sub
            return Subscription(content_type=content_type, status="enabled")
        return self._parse(response, _SUBSCRIPTION, operation="start_subscription")

    def list_subscriptions(self) -> list[Subscription]:
        """Every subscription of the tenant (empty list when none)."""
        response = self._request("GET", f"{self._root}/subscriptions/list", operation="list_subscriptions")
        return self._parse(response, _SUBSCRIPTIONS, operation="list_subscriptions")

    def stop_subscription(self, content_type: str) -> None:
        """Stop the subscription. Succeeds when there is none (AF20022).

        Content from the stopped interval is lost for good: never stop as part of a repair.
        """
        try:
            self._request(
                "POST",
                f"{self._root}/subscriptions/stop",
                params={"contentType": content_type},
                operation="stop_subscription",
                content_type=content_type,
            )
        except SubscriptionError as exc:
            if exc.reason != "subscription_not_enabled":
                raise

    # -- content ---------------------------------------------------------------------------------

    def list_content(self, content_type: str, *, start: datetime, end: datetime) -> Iterator[ContentBlob]:
        """Every blob with ``start <= contentCreated < end``, page after page, slice after slice."""
        for page in self.list_content_pages(content_type, start=start, end=end):
            yield from page.items

    def list_content_pages(
        self, content_type: str, *, start: datetime, end: datetime, resume_page_uri: str | None = None
    ) -> Iterator[ContentPage]:
        """The listing of ``[start, end)`` one page at a time, for callers that checkpoint a page cursor.

        The window is cut into <= 24 h slices (:func:`split_window`, start clamped to now − 167 h 55 min).
        ``resume_page_uri`` is a ``next_page_uri`` stored from an earlier page of the first slice (its
        ``window_start`` equal to the clamped ``start``): listing resumes there. A cursor for another window
        is ignored (the slice is listed from page 1). AF20031 on a cursor restarts the slice from page 1,
        once. A ``NextPageUri`` off the tenant's endpoint raises ForbiddenTargetError before it is followed.
        """
        slices = split_window(start, end, now=self._clock())
        for index, (lo, hi) in enumerate(slices):
            cursor = resume_page_uri if index == 0 else None
            if cursor is not None and not self._cursor_matches(cursor, lo, hi):
                _log.warning(
                    "ignoring a page cursor of another window: tenant=%s content_type=%s", self._tenant_id, content_type
                )
                cursor = None
            yield from self._window_pages(content_type, lo, hi, cursor)

    def _window_pages(self, content_type: str, lo: datetime, hi: datetime, cursor: str | None) -> Iterator[ContentPage]:
        first_params = {"contentType": content_type, "startTime": format_api_time(lo), "endTime": format_api_time(hi)}
        url = cursor
        restarted = False
        seen: set[str] = set()
        while True:
            try:
                if url is None:
                    response = self._request(
                        "GET",
                        f"{self._root}/subscriptions/content",
                        params=first_params,
                        operation="list_content",
                        content_type=content_type,
                    )
                else:
                    self._check_next_page(url, content_type)
                    response = self._request("GET", url, operation="list_content", content_type=content_type)
            except _NextPageRejected:
                if url is None or restarted:
                    raise
                _log.warning(
                    "nextPage refused (AF20031), listing the window again: tenant=%s content_type=%s",
                    self._tenant_id,
                    content_type,
                )
                restarted, url = True, None
                seen.clear()
                continue
            items = self._parse(response, _BLOBS, operation="list_content")
            next_uri = response.headers.get(_NEXT_PAGE_HEADER) or None
            if next_uri is not None:
                self._check_next_page(next_uri, content_type)
                if next_uri in seen:
                    raise BadInputError(
                        "NextPageUri repeats an earlier page",
                        reason="pagination_loop",
                        tenant=self._tenant_id,
                        content_type=content_type,
                    )
                seen.add(next_uri)
            yield ContentPage(items, next_uri, lo, hi)
            if next_uri is None:
                return
            url = next_uri

    def get_content(self, content_uri: str) -> bytes:
        """The raw bytes of a content blob (a JSON array of records; see :func:`parse_content_blob`).

        The URI must be on the tenant's endpoint under ``/api/v1.0/{tenant}/activity/feed/``; otherwise
        ForbiddenTargetError, before any token is requested or sent. 404 / AF20050 → NotFoundError,
        AF20051 → ExpiredContentError.
        """
        if not self.is_allowed_content_uri(content_uri):
            raise ForbiddenTargetError(
                "content URI outside the tenant's Management API feed", tenant=self._tenant_id, operation="get_content"
            )
        return self._request("GET", content_uri, operation="get_content").content

    def is_allowed_content_uri(self, uri: str) -> bool:
        """True when ``uri`` is on this tenant's endpoint and under its feed path (the SSRF guard)."""
        return is_allowed_content_uri(uri, tenant_id=self._tenant_id, endpoint=self._endpoint)

    # -- plumbing --------------------------------------------------------------------------------

    def _check_next_page(self, url: str, content_type: str) -> None:
        if not is_allowed_next_page_uri(url, tenant_id=self._tenant_id, endpoint=self._endpoint):
            raise ForbiddenTargetError(
                "NextPageUri outside the tenant's Management API feed",
                tenant=self._tenant_id,
                content_type=content_type,
                operation="list_content",
            )

    @staticmethod
    def _cursor_matches(cursor: str, lo: datetime, hi: datetime) -> bool:
        try:
            params = httpx.URL(cursor).params
            start = _as_utc(datetime.fromisoformat(params["startTime"]))
            end = _as_utc(datetime.fromisoformat(params["endTime"]))
        except (KeyError, ValueError, httpx.InvalidURL):
            return False
        return start == lo and end == hi

    def _parse(self, response: httpx.Response, adapter: TypeAdapter[_T], *, operation: str) -> _T:
        try:
            return adapter.validate_json(response.content)
        except ValidationError as exc:
            raise BadInputError(
                f"unexpected Management API answer: {exc.error_count()} error(s)",
                reason="invalid_response",
                tenant=self._tenant_id,
                operation=operation,
            ) from exc

    def _backoff(self, attempt: int, error: TransientError) -> float:
        if error.retry_after is not None:
            return error.retry_after
        return float(self._retry_backoff * (2**attempt))

    def _request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: dict[str, str] | None = None,
        json: object | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        """Send with PublisherIdentifier and a bearer token; retry transient failures; raise the mapped error."""
        target = httpx.URL(url)
        if not self._endpoint.same_origin(target):
            raise ForbiddenTargetError("URL outside the tenant's endpoint", tenant=self._tenant_id, operation=operation)
        target = target.copy_merge_params({**(params or {}), "PublisherIdentifier": self._publisher_id})
        ctx: dict[str, object] = {"tenant": self._tenant_id, "operation": operation, "content_type": content_type}
        refreshed = False
        attempt = 0
        while True:
            token = self._tokens.get(self._tenant_id, self._cloud, self._credential, self._scope, self._clock())
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            error: ItdrError
            try:
                response = self._http.request(method, target, headers=headers, json=json, follow_redirects=False)
            except httpx.TimeoutException as exc:
                error = _with_context(
                    ServiceUnavailable(f"Management API timeout: {type(exc).__name__}", reason="timeout"), ctx
                )
                error.__cause__ = exc
            except httpx.TransportError as exc:
                error = _with_context(ServiceUnavailable(f"Management API connection error: {type(exc).__name__}"), ctx)
                error.__cause__ = exc
            else:
                if response.is_success:
                    return response
                error = _classify(response, now=self._clock(), context=ctx)
                unauthorized = response.status_code == 401 and error.context.get("code") != "AF10001"
                if unauthorized and not refreshed and isinstance(error, PermissionError_):
                    refreshed = True
                    self._tokens.invalidate(self._tenant_id, self._cloud)
                    _log.info("401 from Management API, refreshing the token: tenant=%s", self._tenant_id)
                    continue
            if not isinstance(error, TransientError) or attempt >= self._max_retries:
                raise error
            delay = self._backoff(attempt, error)
            if delay > self._max_retry_delay:
                raise error
            _log.warning(
                "Management API %s failed (%s), retry %d/%d in %.1fs: tenant=%s",
                operation,
                error.reason,
                attempt + 1,
                self._max_retries,
                delay,
                self._tenant_id,
            )
            self._sleep(delay)
            attempt += 1
