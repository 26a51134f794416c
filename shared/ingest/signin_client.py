"""Client of Microsoft Graph's sign-in logs (``GET /auditLogs/signIns``), one instance per tenant.

What the Management Activity API client does for content, this does for sign-ins (the same error tree, the same
token cache, the same retry rules): an app-only Graph token per tenant, refreshed once on a 401; every
``@odata.nextLink`` page followed, but only on the configured Graph origin (a token never goes elsewhere);
429 / 5xx / transport failures retried a bounded number of times honouring ``Retry-After`` through an injectable
``sleep`` (a ``Retry-After`` above ``max_retry_delay`` goes to the caller as a ThrottledError).

Permissions: ``AuditLog.Read.All`` (read the sign-in logs) and, to tell whether the tenant has the Entra ID P1 or
P2 licence the sign-in logs API requires, ``LicenseAssignment.Read.All`` (``GET /subscribedSkus``). A tenant
without the licence answers 403 ``Authentication_RequestFromNonPremiumTenantOrB2CTenant``: a ConfigurationError
with reason ``no_premium_licence`` (the product works without the sign-in logs).

Sign-ins are read as raw JSON objects (beta and v1.0 fields alike) and mapped by :mod:`shared.records.signins`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from azure.core.credentials import AccessToken

from shared.ingest.client import AccessTokenCache, TokenCredential, _retry_after
from shared.ingest.clouds import Cloud
from shared.platform.errors import (
    BadInputError,
    ConfigurationError,
    ForbiddenTargetError,
    ItdrError,
    NotFoundError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
    TransientError,
)

_log = logging.getLogger(__name__)

SIGNIN_PERMISSION = "AuditLog.Read.All"
SKU_PERMISSION = "LicenseAssignment.Read.All"
PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
"""Service plans of Entra ID P1 and P2: the licence the sign-in logs API needs."""
NON_PREMIUM_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
PAGE_SIZE = 1000
"""Graph's largest page of sign-ins."""
MAX_PAGES = 10_000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EVENT_TYPES = frozenset({"interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _CaeTokens:
    """The credential asked as the Graph SDK asks it (``enable_cae=True``): azure-identity keeps CAE tokens in a
    cache of their own, so asking without it would sign a second client assertion for a token the process
    already holds (and an authority may refuse the reused assertion id)."""

    def __init__(self, inner: TokenCredential) -> None:
        self._inner: Any = inner

    def get_token(self, *scopes: str) -> AccessToken:
        got: AccessToken = self._inner.get_token(*scopes, enable_cae=True)
        return got


def _graph_error(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.text[:200]
    code = error.get("code")
    return (str(code) if code is not None else None), str(error.get("message") or "")[:300]


class SignInLogClient:
    """Graph's sign-in logs for one tenant (see the module docstring). Thread-safe; closes its own httpx client."""

    def __init__(
        self,
        tenant_id: str,
        *,
        credential: TokenCredential,
        base_url: str,
        cloud: Cloud | str = Cloud.COMMERCIAL,
        http_client: httpx.Client | None = None,
        max_retries: int = 3,
        retry_backoff: float = 2.0,
        max_retry_delay: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utcnow,
        timeout: float = 60.0,
        token_cache: AccessTokenCache | None = None,
    ) -> None:
        self._tenant_id = tenant_id.lower()
        self._base = httpx.URL(base_url.rstrip("/"))
        host = self._base.host
        self._scope = (
            f"{self._base.scheme}://{host}/.default"
            if host not in ("127.0.0.1", "localhost")
            else ("https://graph.microsoft.com/.default")
        )
        self._cloud = Cloud(cloud)
        self._credential = _CaeTokens(credential)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=httpx.Timeout(timeout))
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._max_retry_delay = max_retry_delay
        self._sleep = sleep
        self._clock = clock
        self._tokens = token_cache if token_cache is not None else AccessTokenCache()

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- calls ---------------------------------------------------------------------------------------------
    def premium_licence(self) -> bool:
        """True when a subscribed SKU has an Entra ID P1/P2 service plan provisioned (``GET /subscribedSkus``).
        One request, no retries: onboarding is best effort and must not wait."""
        body = self._get_json(self._url("/subscribedSkus"), operation="list_subscribed_skus", retries=0)
        for sku in body.get("value") or []:
            for plan in (sku.get("servicePlans") or []) if isinstance(sku, dict) else []:
                if (
                    isinstance(plan, dict)
                    and plan.get("servicePlanName") in PREMIUM_PLANS
                    and str(plan.get("provisioningStatus") or "").lower() == "success"
                ):
                    return True
        return False

    def signin_pages(
        self, *, start: datetime, end: datetime, event_type: str | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """The sign-ins created in [start, end), page by page (Graph's order: newest first): the interactive user
        sign-ins Graph lists by default, or those of ``event_type`` (``servicePrincipal``, ``nonInteractiveUser``,
        ``managedIdentity``: a ``signInEventTypes`` filter of the beta endpoint)."""
        flt = (
            f"createdDateTime ge {start.astimezone(UTC).strftime(TIME_FORMAT)} "
            f"and createdDateTime lt {end.astimezone(UTC).strftime(TIME_FORMAT)}"
        )
        if event_type is not None:
            if event_type not in EVENT_TYPES:
                raise BadInputError(f"unknown sign-in event type {event_type!r}", reason="bad_request")
            flt += f" and signInEventTypes/any(t: t eq '{event_type}')"
        path = "/auditLogs/signIns"
        url = (self._beta_url(path) if event_type is not None else self._url(path)).copy_merge_params(
            {"$filter": flt, "$top": str(page_size)}
        )
        for _ in range(MAX_PAGES):
            body = self._get_json(url, operation="list_signins")
            value = body.get("value")
            if not isinstance(value, list):
                raise BadInputError(
                    "Graph sign-ins page without a value list", reason="invalid_response", tenant=self._tenant_id
                )
            yield [x for x in value if isinstance(x, dict)]
            link = body.get("@odata.nextLink")
            if not link:
                return
            url = self._same_origin(str(link))
        raise ServiceUnavailable("too many sign-in pages in one window", tenant=self._tenant_id)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _url(self, path: str) -> httpx.URL:
        return self._base.copy_with(path=self._base.path.rstrip("/") + path)

    def _beta_url(self, path: str) -> httpx.URL:
        """The beta endpoint beside the configured version (``.../v1.0`` → ``.../beta``)."""
        root = self._base.path.rstrip("/")
        if root.endswith("/v1.0"):
            root = root[: -len("/v1.0")] + "/beta"
        return self._base.copy_with(path=root + path)

    def _same_origin(self, link: str) -> httpx.URL:
        url = httpx.URL(link)
        if (url.scheme, url.host, url.port) != (self._base.scheme, self._base.host, self._base.port):
            raise ForbiddenTargetError(
                "Graph @odata.nextLink points outside the Graph host; not followed",
                tenant=self._tenant_id,
                operation="list_signins",
                host=url.host,
            )
        return url

    def _classify(self, response: httpx.Response, operation: str) -> ItdrError:
        status = response.status_code
        code, message = _graph_error(response)
        text = f"Graph {status} {code or ''}: {message}".strip()
        ctx = {"tenant": self._tenant_id, "operation": operation, "status": status, "graph_code": code}
        retry_after = _retry_after(response, self._clock())
        error: ItdrError
        if status == 429:
            error = ThrottledError(text, retry_after=retry_after)
        elif status >= 500 or status == 408:
            error = ServiceUnavailable(text, retry_after=retry_after)
        elif code == NON_PREMIUM_CODE:
            error = ConfigurationError(text, reason="no_premium_licence")
        elif status in (401, 403):
            permission = SIGNIN_PERMISSION if operation == "list_signins" else SKU_PERMISSION
            error = PermissionError_(
                f"{text} (the app needs the application permission {permission})",
                reason="missing_permission" if status == 403 else "unauthorized",
            )
            ctx["permission"] = permission
        elif status == 404:
            error = NotFoundError(text)
        else:
            error = BadInputError(text, reason="bad_request")
        error.context.update({k: v for k, v in ctx.items() if v is not None})
        return error

    def _get_json(self, url: httpx.URL, *, operation: str, retries: int | None = None) -> dict[str, Any]:
        max_retries = self._max_retries if retries is None else retries
        refreshed = False
        attempt = 0
        while True:
            token = self._tokens.get(self._tenant_id, self._cloud, self._credential, self._scope, self._clock())
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            error: ItdrError
            try:
                response = self._http.get(url, headers=headers, follow_redirects=False)
            except httpx.TimeoutException as exc:
                error = ServiceUnavailable(f"Graph {operation} timed out", reason="timeout", tenant=self._tenant_id)
                error.__cause__ = exc
            except httpx.TransportError as exc:
                error = ServiceUnavailable(f"Graph {operation} transport failure", tenant=self._tenant_id)
                error.__cause__ = exc
            else:
                if response.is_success:
                    try:
                        body = orjson.loads(response.content)
                    except orjson.JSONDecodeError as exc:
                        raise BadInputError(
                            "Graph answer is not JSON", reason="invalid_response", tenant=self._tenant_id
                        ) from exc
                    if not isinstance(body, dict):
                        raise BadInputError("Graph answer is not an object", reason="invalid_response")
                    return body
                error = self._classify(response, operation)
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    self._tokens.invalidate(self._tenant_id, self._cloud)
                    continue
            if not isinstance(error, TransientError) or attempt >= max_retries:
                raise error
            delay = error.retry_after if error.retry_after is not None else self._retry_backoff * (2**attempt)
            if delay > self._max_retry_delay:
                raise error
            _log.warning(
                "Graph %s failed (%s), retry %d/%d in %.1fs: tenant=%s",
                operation,
                error.reason,
                attempt + 1,
                max_retries,
                delay,
                self._tenant_id,
            )
            self._sleep(delay)
            attempt += 1
