"""GraphClient: a thin async wrapper over msgraph-sdk for the remediation verbs, one instance per tenant.

    client = GraphClient.create(tenant_id, credential=cred)                    # production: graph.microsoft.com
    client = GraphClient.create(tenant_id, credential=cred, base_url=emulator.base_url)   # local emulator
    async with client:
        user = await client.get_user("alice@contoso.com")
        await client.disable_user(user.id)

Construction (docs/graph-remediation.md §5): kiota's ``AzureIdentityAuthenticationProvider`` is built here with
``allowed_hosts`` set explicitly to the one Graph host (``cloud_host``, or the host of ``base_url`` when it
points at an emulator), so the bearer token never goes anywhere else; the SDK's default middleware is kept but
its retry handler is turned down to ``max_retries`` (0 by default: the durable orchestrator owns retries and
honours ``Retry-After`` itself); the adapter's ``base_url`` is set before the service client is built.
``@odata.nextLink`` is followed only when it stays on the same scheme, host and port as ``base_url``.

Errors (the tree in shared/platform/errors.py; every error carries tenant, operation, target, status,
graph_code and request_id in ``context``):

    429                         ThrottledError      retry_after from the Retry-After header (seconds)
    500/502/503/504, transport  ServiceUnavailable  retry_after when given
    401/403                     PermissionError_    context["permission"] = REQUIRED_PERMISSIONS[operation]
    404                         NotFoundError       context["graph_code"]: ErrorItemNotFound (Exchange) vs
                                                    Request_ResourceNotFound (directory) vs ErrorInvalidUser
    409/412                     ConcurrencyError
    other 4xx                   BadInputError

``delete_`` verbs return False instead of raising when the object is already gone (a 404 with the object's
own not-found code); a retried DELETE's False says nothing on its own, so re-list to confirm absence.
The rest of m365-itdr only sees the frozen models defined here and in :mod:`shared.graph.rules`, never
msgraph models. :class:`SyncGraphClient` runs the same calls on a private event loop for synchronous code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.directory_roles.directory_roles_request_builder import DirectoryRolesRequestBuilder
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.message_rule import MessageRule
from msgraph.generated.models.message_rule_actions import MessageRuleActions
from msgraph.generated.models.message_rule_predicates import MessageRulePredicates
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.user import User
from msgraph.generated.oauth2_permission_grants.oauth2_permission_grants_request_builder import (
    Oauth2PermissionGrantsRequestBuilder,
)
from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
    ServicePrincipalItemRequestBuilder,
)
from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as _sdk_default_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from pydantic import BaseModel, ConfigDict

from shared.graph.rules import InboxRule, RuleActions, RuleConditions, is_graph_rule_id
from shared.platform.errors import (
    BadInputError,
    ConcurrencyError,
    ConfigurationError,
    ForbiddenTargetError,
    ItdrError,
    NotFoundError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
)

__all__ = [
    "DEFAULT_CLOUD_HOST",
    "DEFAULT_USER_SELECT",
    "REQUIRED_PERMISSIONS",
    "DirectoryMember",
    "GraphClient",
    "GraphUser",
    "PermissionGrant",
    "ServicePrincipalInfo",
    "SyncGraphClient",
    "parse_retry_after",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_CLOUD_HOST = "graph.microsoft.com"
DEFAULT_USER_SELECT: tuple[str, ...] = (
    "id",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
    "usageLocation",
    "onPremisesSyncEnabled",
)
_SP_SELECT = ["id", "appId", "displayName", "accountEnabled"]
_MAX_PAGES = 1000
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

REQUIRED_PERMISSIONS: dict[str, str] = {
    "get_user": "User.Read.All",
    "list_users": "User.Read.All",
    "disable_user": "User.EnableDisableAccount.All",
    "enable_user": "User.EnableDisableAccount.All",
    "revoke_sessions": "User.RevokeSessions.All",
    "list_inbox_rules": "MailboxSettings.Read",
    "delete_inbox_rule": "MailboxSettings.ReadWrite",
    "disable_inbox_rule": "MailboxSettings.ReadWrite",
    "create_inbox_rule": "MailboxSettings.ReadWrite",
    "list_permission_grants": "DelegatedPermissionGrant.ReadWrite.All",
    "delete_permission_grant": "DelegatedPermissionGrant.ReadWrite.All",
    "get_service_principal": "Application.Read.All",
    "disable_service_principal": "Application.ReadWrite.All",
    "enable_service_principal": "Application.ReadWrite.All",
    "find_service_principal": "Application.Read.All",
    "list_role_members": "RoleManagement.Read.Directory",
}
"""Operation → least-privilege Microsoft Graph *application* permission (docs/graph-remediation.md §1).

``disable_user``/``enable_user`` also need ``User.Read.All``, and privileged targets need a higher Entra
role for the app. ``list_permission_grants`` names the permission the remediation needs anyway
(``DelegatedPermissionGrant.Read.All`` would be enough for reading alone)."""

_PRIVILEGED_TARGET_NOTE = {
    "disable_user": " (or, for a privileged target, a higher Entra role for the app)",
    "enable_user": " (or, for a privileged target, a higher Entra role for the app)",
}


# --------------------------------------------------------------------------- models


class GraphUser(BaseModel):
    """A directory user as m365-itdr needs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    account_enabled: bool | None = None
    usage_location: str | None = None
    on_premises_sync_enabled: bool | None = None


class PermissionGrant(BaseModel):
    """A delegated permission grant (oauth2PermissionGrant). ``scope`` is Graph's space-separated string."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    client_id: str
    consent_type: str | None = None
    principal_id: str | None = None
    resource_id: str | None = None
    scope: str = ""

    @property
    def scopes(self) -> tuple[str, ...]:
        """The delegated scopes, split."""
        return tuple(self.scope.split())


class ServicePrincipalInfo(BaseModel):
    """A service principal: its object id, the application id, the name and whether it can sign in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    app_id: str | None = None
    display_name: str | None = None
    account_enabled: bool | None = None


# --------------------------------------------------------------------------- conversions


class DirectoryMember(BaseModel):
    """A member of a directory role: a user (``user_principal_name``) or a service principal (``app_id``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_principal_name: str | None = None
    app_id: str | None = None


def _addresses(recipients: list[Recipient] | None) -> tuple[str, ...]:
    out: list[str] = []
    for r in recipients or []:
        addr = r.email_address.address if r.email_address is not None else None
        if addr:
            out.append(addr)
    return tuple(out)


def _recipients(addresses: Sequence[str]) -> list[Recipient] | None:
    if not addresses:
        return None
    return [Recipient(email_address=EmailAddress(address=a)) for a in addresses]


def _strs(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v for v in values or [] if isinstance(v, str))


def _conditions_from_graph(p: MessageRulePredicates | None) -> RuleConditions:
    if p is None:
        return RuleConditions()
    return RuleConditions(
        subject_contains=_strs(p.subject_contains),
        body_contains=_strs(p.body_contains),
        body_or_subject_contains=_strs(p.body_or_subject_contains),
        sender_contains=_strs(p.sender_contains),
        recipient_contains=_strs(p.recipient_contains),
        header_contains=_strs(p.header_contains),
        from_addresses=_addresses(p.from_addresses),
        sent_to_addresses=_addresses(p.sent_to_addresses),
        has_attachments=p.has_attachments,
    )


def _conditions_to_graph(c: RuleConditions) -> MessageRulePredicates | None:
    if c.is_empty():
        return None
    return MessageRulePredicates(
        subject_contains=list(c.subject_contains) or None,
        body_contains=list(c.body_contains) or None,
        body_or_subject_contains=list(c.body_or_subject_contains) or None,
        sender_contains=list(c.sender_contains) or None,
        recipient_contains=list(c.recipient_contains) or None,
        header_contains=list(c.header_contains) or None,
        from_addresses=_recipients(c.from_addresses),
        sent_to_addresses=_recipients(c.sent_to_addresses),
        has_attachments=c.has_attachments,
    )


def _enum_value(value: object) -> str | None:
    if value is None:
        return None
    raw = getattr(value, "value", value)
    return str(raw)


def _actions_from_graph(a: MessageRuleActions | None) -> RuleActions:
    if a is None:
        return RuleActions()
    return RuleActions(
        forward_to=_addresses(a.forward_to),
        redirect_to=_addresses(a.redirect_to),
        forward_as_attachment_to=_addresses(a.forward_as_attachment_to),
        move_to_folder=a.move_to_folder,
        copy_to_folder=a.copy_to_folder,
        delete=a.delete,
        permanent_delete=a.permanent_delete,
        mark_as_read=a.mark_as_read,
        mark_importance=_enum_value(a.mark_importance),
        assign_categories=_strs(a.assign_categories),
        stop_processing_rules=a.stop_processing_rules,
    )


def _actions_to_graph(a: RuleActions) -> MessageRuleActions:
    importance = Importance(a.mark_importance) if a.mark_importance else None
    return MessageRuleActions(
        forward_to=_recipients(a.forward_to),
        redirect_to=_recipients(a.redirect_to),
        forward_as_attachment_to=_recipients(a.forward_as_attachment_to),
        move_to_folder=a.move_to_folder,
        copy_to_folder=a.copy_to_folder,
        delete=a.delete,
        permanent_delete=a.permanent_delete,
        mark_as_read=a.mark_as_read,
        mark_importance=importance,
        assign_categories=list(a.assign_categories) or None,
        stop_processing_rules=a.stop_processing_rules,
    )


def _rule_from_graph(m: MessageRule) -> InboxRule:
    if not m.id:
        raise BadInputError("Graph returned a messageRule without an id")
    return InboxRule(
        id=m.id,
        display_name=m.display_name or "",
        sequence=m.sequence,
        is_enabled=bool(m.is_enabled),
        is_read_only=bool(m.is_read_only),
        has_error=bool(m.has_error),
        conditions=_conditions_from_graph(m.conditions),
        exceptions=_conditions_from_graph(m.exceptions),
        actions=_actions_from_graph(m.actions),
    )


def _rule_to_graph(r: InboxRule) -> MessageRule:
    return MessageRule(
        display_name=r.display_name,
        sequence=r.sequence,
        is_enabled=r.is_enabled,
        conditions=_conditions_to_graph(r.conditions),
        exceptions=_conditions_to_graph(r.exceptions),
        actions=_actions_to_graph(r.actions),
    )


def _user_from_graph(u: User) -> GraphUser:
    if not u.id:
        raise BadInputError("Graph returned a user without an id (is 'id' in $select?)")
    return GraphUser(
        id=u.id,
        user_principal_name=u.user_principal_name,
        display_name=u.display_name,
        account_enabled=u.account_enabled,
        usage_location=u.usage_location,
        on_premises_sync_enabled=u.on_premises_sync_enabled,
    )


# --------------------------------------------------------------------------- error mapping


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            lowered = {str(k).lower(): v for k, v in headers.items()}
            value = lowered.get(name.lower())
    except (AttributeError, TypeError):
        return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return str(value) if value is not None else None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _map_api_error(exc: APIError, *, tenant_id: str, operation: str, target: str | None) -> ItdrError:
    status = exc.response_status_code or 0
    headers = exc.response_headers
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    if isinstance(exc, ODataError) and exc.error is not None:
        code = exc.error.code
        message = exc.error.message
        if exc.error.inner_error is not None:
            request_id = exc.error.inner_error.request_id
    if message is None:
        message = exc.message or "no error body"
    request_id = request_id or _header(headers, "request-id")
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    ctx: dict[str, Any] = {
        "tenant": tenant_id,
        "operation": operation,
        "target": target,
        "status": status,
        "graph_code": code,
        "request_id": request_id,
    }
    text = f"Graph {operation} failed with {status} {code or ''}: {message}".replace("  ", " ")
    if status == 429:
        return ThrottledError(text, retry_after=retry_after, **ctx)
    if status >= 500:
        return ServiceUnavailable(text, retry_after=retry_after, **ctx)
    if status in (401, 403):
        permission = REQUIRED_PERMISSIONS.get(operation)
        need = f"; the app needs the application permission {permission}" if permission else ""
        need += _PRIVILEGED_TARGET_NOTE.get(operation, "")
        return PermissionError_(text + need, permission=permission, **ctx)
    if status == 404:
        return NotFoundError(text, **ctx)
    if status in (409, 412):
        return ConcurrencyError(text, retry_after=retry_after, **ctx)
    return BadInputError(text, **ctx)


# --------------------------------------------------------------------------- the async client


class GraphClient:
    """Async Microsoft Graph client for one tenant. Build with :meth:`create`; close with :meth:`close`."""

    def __init__(
        self,
        *,
        tenant_id: str,
        service_client: GraphServiceClient,
        http_client: httpx.AsyncClient,
        owns_http_client: bool,
        base_url: str,
        allowed_hosts: tuple[str, ...],
        owned_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Use :meth:`create`."""
        self._tenant_id = tenant_id
        self._sdk = service_client
        self._http = http_client
        self._owns_http = owns_http_client
        self._owned_transport = owned_transport
        self._base_url = base_url
        self._allowed_hosts = allowed_hosts

    @classmethod
    def create(
        cls,
        tenant_id: str,
        *,
        credential: TokenCredential | AsyncTokenCredential,
        base_url: str | None = None,
        cloud_host: str = DEFAULT_CLOUD_HOST,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int = 0,
        timeout: float = 30.0,
    ) -> GraphClient:
        """Build the client for ``tenant_id``.

        ``credential`` must issue tokens for that tenant (the caller owns and closes it). ``base_url``
        overrides ``https://{cloud_host}/v1.0`` (the local emulator: plain http only on loopback). The token
        scope is ``https://{cloud_host}/.default``; the token is sent only to the host of the effective base
        URL. ``http_client`` (its transport is wrapped by the SDK middleware; the caller keeps ownership)
        replaces the default ``httpx.AsyncClient(timeout=timeout)``. ``max_retries`` is the SDK retry
        handler's limit for 429/503/504 (0: no SDK retries).
        """
        if not tenant_id:
            raise ConfigurationError("GraphClient needs a tenant id")
        if not cloud_host or "/" in cloud_host or ":" in cloud_host:
            raise ConfigurationError("cloud_host must be a bare host name", cloud_host=cloud_host, tenant=tenant_id)
        effective = (base_url or f"https://{cloud_host}/v1.0").rstrip("/")
        parts = urlsplit(effective)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
            raise ConfigurationError("invalid Graph base URL", base_url=effective, tenant=tenant_id)
        if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
            raise ConfigurationError("plain http is allowed only for a loopback emulator", base_url=effective)
        if not 0 <= max_retries <= RetryHandlerOption.MAX_MAX_RETRIES:
            raise ConfigurationError("max_retries must be between 0 and 10", max_retries=max_retries)

        allowed_hosts = (host,)
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[f"https://{cloud_host}/.default"], allowed_hosts=list(allowed_hosts)
        )
        options = dict(_sdk_default_options)
        options[RetryHandlerOption.get_key()] = RetryHandlerOption(
            delay=0.0, max_retries=max_retries, should_retry=max_retries > 0
        )
        owns = http_client is None
        transport = httpx.AsyncHTTPTransport() if owns else None
        raw = http_client or httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        wrapped = GraphClientFactory.create_with_default_middleware(client=raw, options=options)
        adapter = GraphRequestAdapter(auth, client=wrapped)
        adapter.base_url = effective  # before the service client captures it in its path parameters
        sdk = GraphServiceClient(request_adapter=adapter)
        return cls(
            tenant_id=tenant_id,
            service_client=sdk,
            http_client=wrapped,
            owns_http_client=owns,
            base_url=effective,
            allowed_hosts=allowed_hosts,
            owned_transport=transport,
        )

    # -- properties and lifecycle -------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        """The tenant this client acts in."""
        return self._tenant_id

    @property
    def base_url(self) -> str:
        """The Graph root, e.g. ``https://graph.microsoft.com/v1.0``."""
        return self._base_url

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """The only hosts that receive the bearer token."""
        return self._allowed_hosts

    async def close(self) -> None:
        """Close the HTTP client if this client created it. The credential stays the caller's."""
        if self._owns_http:
            await self._http.aclose()
            if self._owned_transport is not None:
                # msgraph-core's transport wrapper does not close the transport it wraps: its pool's sockets
                # would stay open until collected
                await self._owned_transport.aclose()

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing -------------------------------------------------------------------------------------
    async def _call(self, operation: str, target: str | None, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except APIError as exc:
            mapped = _map_api_error(exc, tenant_id=self._tenant_id, operation=operation, target=target)
            _log.log(
                logging.WARNING if isinstance(mapped, PermissionError_) else logging.INFO,
                "graph call failed",
                extra={
                    "tenant_id": self._tenant_id,
                    "operation": operation,
                    "status": mapped.context.get("status"),
                    "graph_code": mapped.context.get("graph_code"),
                    "request_id": mapped.context.get("request_id"),
                },
            )
            raise mapped from exc
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(
                f"Graph {operation} timed out: {type(exc).__name__}",
                tenant=self._tenant_id,
                operation=operation,
                target=target,
                cause="timeout",
            ) from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Graph {operation} transport failure: {type(exc).__name__}",
                tenant=self._tenant_id,
                operation=operation,
                target=target,
                cause="transport",
            ) from exc
        except ClientAuthenticationError as exc:
            raise PermissionError_(
                f"Graph {operation}: no token for tenant {self._tenant_id}: {exc.message}",
                reason="token_unavailable",
                tenant=self._tenant_id,
                operation=operation,
                target=target,
            ) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ServiceUnavailable(
                f"Graph {operation}: token service unreachable: {type(exc).__name__}",
                tenant=self._tenant_id,
                operation=operation,
                target=target,
                cause="token_service",
            ) from exc

    def _check_next_link(self, link: str, operation: str) -> str:
        base = urlsplit(self._base_url)
        nxt = urlsplit(link)

        def origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int]:
            return scheme, (host or "").lower(), port if port is not None else (443 if scheme == "https" else 80)

        if origin(nxt.scheme, nxt.hostname, nxt.port) != origin(base.scheme, base.hostname, base.port):
            raise ForbiddenTargetError(
                "Graph @odata.nextLink points outside the Graph host; not followed",
                tenant=self._tenant_id,
                operation=operation,
                host=nxt.hostname,
            )
        return link

    @staticmethod
    def _require_id(value: str, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise BadInputError(f"{what} must be a non-empty string")
        return value

    # -- users ----------------------------------------------------------------------------------------
    async def get_user(self, user_id: str, *, select: Sequence[str] = DEFAULT_USER_SELECT) -> GraphUser:
        """GET /users/{id|upn}?$select=… (``id`` is always selected). NotFoundError when absent."""
        self._require_id(user_id, "user_id")
        fields = ["id", *[s for s in select if s != "id"]]
        cfg = RequestConfiguration(
            query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=fields)
        )
        user = await self._call(
            "get_user", user_id, lambda: self._sdk.users.by_user_id(user_id).get(request_configuration=cfg)
        )
        if user is None:
            raise NotFoundError("Graph returned no user", tenant=self._tenant_id, target=user_id)
        return _user_from_graph(user)

    async def list_users(
        self, *, select: Sequence[str] = DEFAULT_USER_SELECT, page_size: int | None = None
    ) -> list[GraphUser]:
        """GET /users, following every ``@odata.nextLink`` on the Graph host."""
        fields = ["id", *[s for s in select if s != "id"]]
        cfg = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=fields, top=page_size)
        )
        page = await self._call("list_users", None, lambda: self._sdk.users.get(request_configuration=cfg))
        users: list[GraphUser] = []
        for _ in range(_MAX_PAGES):
            if page is None:
                break
            users.extend(_user_from_graph(u) for u in page.value or [])
            if not page.odata_next_link:
                break
            link = self._check_next_link(page.odata_next_link, "list_users")
            page = await self._call("list_users", None, self._sdk.users.with_url(link).get)
        return users

    async def _set_account_enabled(self, operation: str, user_id: str, enabled: bool) -> None:
        self._require_id(user_id, "user_id")
        body = User(account_enabled=enabled)
        await self._call(operation, user_id, lambda: self._sdk.users.by_user_id(user_id).patch(body))

    async def disable_user(self, user_id: str) -> None:
        """PATCH /users/{id} {"accountEnabled": false}. Idempotent."""
        await self._set_account_enabled("disable_user", user_id, False)

    async def enable_user(self, user_id: str) -> None:
        """PATCH /users/{id} {"accountEnabled": true}. Idempotent."""
        await self._set_account_enabled("enable_user", user_id, True)

    async def revoke_sessions(self, user_id: str) -> bool:
        """POST /users/{id}/revokeSignInSessions; returns Graph's ``value``. Idempotent."""
        self._require_id(user_id, "user_id")
        resp = await self._call(
            "revoke_sessions", user_id, lambda: self._sdk.users.by_user_id(user_id).revoke_sign_in_sessions.post()
        )
        return bool(resp is not None and resp.value)

    # -- inbox rules ----------------------------------------------------------------------------------
    def _rules_builder(self, user_id: str) -> Any:
        return self._sdk.users.by_user_id(user_id).mail_folders.by_mail_folder_id("inbox").message_rules

    async def list_inbox_rules(self, user_id: str) -> list[InboxRule]:
        """GET the mailbox's inbox rules (hidden rules never appear; read-only ones show no conditions)."""
        self._require_id(user_id, "user_id")
        builder = self._rules_builder(user_id)
        page = await self._call("list_inbox_rules", user_id, lambda: builder.get())
        rules: list[InboxRule] = []
        for _ in range(_MAX_PAGES):
            if page is None:
                break
            rules.extend(_rule_from_graph(m) for m in page.value or [])
            if not page.odata_next_link:
                break
            link = self._check_next_link(page.odata_next_link, "list_inbox_rules")
            page = await self._call("list_inbox_rules", user_id, builder.with_url(link).get)
        return rules

    def _require_rule_id(self, rule_id: str, operation: str) -> str:
        if not is_graph_rule_id(rule_id):
            raise BadInputError(
                f"{rule_id!r} is not a Graph messageRule id; resolve audit names and identities with "
                "shared.graph.rules.match_rules first",
                tenant=self._tenant_id,
                operation=operation,
            )
        return rule_id

    async def delete_inbox_rule(self, user_id: str, rule_id: str) -> bool:
        """DELETE the rule. True when deleted, False when Graph says ErrorItemNotFound (already gone, or
        never there: re-list to confirm). ``rule_id`` must be Graph's base64 id (BadInputError otherwise)."""
        self._require_id(user_id, "user_id")
        self._require_rule_id(rule_id, "delete_inbox_rule")
        builder = self._rules_builder(user_id).by_message_rule_id(rule_id)
        try:
            await self._call("delete_inbox_rule", f"{user_id}/{rule_id}", lambda: builder.delete())
        except NotFoundError as exc:
            if exc.context.get("graph_code") == "ErrorItemNotFound":
                return False
            raise
        return True

    async def disable_inbox_rule(self, user_id: str, rule_id: str) -> InboxRule:
        """PATCH the rule {"isEnabled": false}; returns the rule as Graph now has it."""
        self._require_id(user_id, "user_id")
        self._require_rule_id(rule_id, "disable_inbox_rule")
        builder = self._rules_builder(user_id).by_message_rule_id(rule_id)
        body = MessageRule(is_enabled=False)
        result = await self._call("disable_inbox_rule", f"{user_id}/{rule_id}", lambda: builder.patch(body))
        if result is None:
            result = await self._call("disable_inbox_rule", f"{user_id}/{rule_id}", lambda: builder.get())
        if result is None:
            raise NotFoundError("Graph returned no rule", tenant=self._tenant_id, target=f"{user_id}/{rule_id}")
        return _rule_from_graph(result)

    async def create_inbox_rule(self, user_id: str, rule: InboxRule) -> InboxRule:
        """POST a rule (to restore one removed by mistake); Graph assigns a new id, returned here.

        Not idempotent: a retry after a lost response creates a duplicate, so re-list before retrying.
        """
        self._require_id(user_id, "user_id")
        if rule.is_read_only:
            raise BadInputError(
                "a read-only rule's conditions are not visible through Graph; it cannot be recreated from them",
                tenant=self._tenant_id,
                operation="create_inbox_rule",
            )
        builder = self._rules_builder(user_id)
        body = _rule_to_graph(rule)
        created = await self._call("create_inbox_rule", user_id, lambda: builder.post(body))
        if created is None:
            raise ServiceUnavailable("Graph returned no body for a created rule", tenant=self._tenant_id)
        return _rule_from_graph(created)

    # -- permission grants ----------------------------------------------------------------------------
    async def list_permission_grants(self, *, client_id: str) -> list[PermissionGrant]:
        """GET /oauth2PermissionGrants?$filter=clientId eq '{client_id}' (the client's service principal id)."""
        self._require_id(client_id, "client_id")
        escaped = client_id.replace("'", "''")
        cfg = RequestConfiguration(
            query_parameters=Oauth2PermissionGrantsRequestBuilder.Oauth2PermissionGrantsRequestBuilderGetQueryParameters(
                filter=f"clientId eq '{escaped}'"
            )
        )
        builder = self._sdk.oauth2_permission_grants
        page = await self._call("list_permission_grants", client_id, lambda: builder.get(request_configuration=cfg))
        grants: list[PermissionGrant] = []
        for _ in range(_MAX_PAGES):
            if page is None:
                break
            for g in page.value or []:
                if not g.id or not g.client_id:
                    raise BadInputError("Graph returned a grant without id or clientId", tenant=self._tenant_id)
                grants.append(
                    PermissionGrant(
                        id=g.id,
                        client_id=g.client_id,
                        consent_type=g.consent_type,
                        principal_id=g.principal_id,
                        resource_id=g.resource_id,
                        scope=g.scope or "",
                    )
                )
            if not page.odata_next_link:
                break
            link = self._check_next_link(page.odata_next_link, "list_permission_grants")
            page = await self._call("list_permission_grants", client_id, builder.with_url(link).get)
        return grants

    async def delete_permission_grant(self, grant_id: str) -> bool:
        """DELETE /oauth2PermissionGrants/{id}. True when deleted, False when already gone."""
        self._require_id(grant_id, "grant_id")
        builder = self._sdk.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant_id)
        try:
            await self._call("delete_permission_grant", grant_id, lambda: builder.delete())
        except NotFoundError:
            return False
        return True

    # -- directory roles -------------------------------------------------------------------------------
    async def list_role_members(self, role_template_id: str) -> list[DirectoryMember]:
        """The members of the activated directory role of a template: ``GET /directoryRoles?$filter=roleTemplateId
        eq '{id}'`` then ``GET /directoryRoles/{id}/members`` (every page). Empty when the role is not activated."""
        self._require_id(role_template_id, "role_template_id")
        escaped = role_template_id.replace("'", "''")
        cfg = RequestConfiguration(
            query_parameters=DirectoryRolesRequestBuilder.DirectoryRolesRequestBuilderGetQueryParameters(
                filter=f"roleTemplateId eq '{escaped}'"
            )
        )
        roles = await self._call(
            "list_role_members", role_template_id, lambda: self._sdk.directory_roles.get(request_configuration=cfg)
        )
        out: list[DirectoryMember] = []
        for role in (roles.value or []) if roles is not None else []:
            if not role.id:
                continue
            builder = self._sdk.directory_roles.by_directory_role_id(role.id).members
            page = await self._call("list_role_members", role.id, builder.get)
            for _ in range(_MAX_PAGES):
                if page is None:
                    break
                for m in page.value or []:
                    if not m.id:
                        continue
                    out.append(
                        DirectoryMember(
                            id=m.id,
                            user_principal_name=m.user_principal_name if isinstance(m, User) else None,
                            app_id=m.app_id if isinstance(m, ServicePrincipal) else None,
                        )
                    )
                if not page.odata_next_link:
                    break
                link = self._check_next_link(page.odata_next_link, "list_role_members")
                page = await self._call("list_role_members", role.id, builder.with_url(link).get)
        return out

    async def find_service_principal(self, app_id: str) -> ServicePrincipalInfo | None:
        """``GET /servicePrincipals?$filter=appId eq '{app_id}'``: the tenant's service principal of an app."""
        self._require_id(app_id, "app_id")
        escaped = app_id.replace("'", "''")
        cfg = RequestConfiguration(
            query_parameters=ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
                filter=f"appId eq '{escaped}'"
            )
        )
        page = await self._call(
            "find_service_principal", app_id, lambda: self._sdk.service_principals.get(request_configuration=cfg)
        )
        for sp in (page.value or []) if page is not None else []:
            if sp.id:
                return ServicePrincipalInfo(
                    id=sp.id, app_id=sp.app_id, display_name=sp.display_name, account_enabled=sp.account_enabled
                )
        return None

    # -- service principals ---------------------------------------------------------------------------
    async def get_service_principal(self, sp_id: str) -> ServicePrincipalInfo:
        """GET /servicePrincipals/{id} (the object id, not the appId)."""
        self._require_id(sp_id, "sp_id")
        cfg = RequestConfiguration(
            query_parameters=ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters(
                select=list(_SP_SELECT)
            )
        )
        builder = self._sdk.service_principals.by_service_principal_id(sp_id)
        sp = await self._call("get_service_principal", sp_id, lambda: builder.get(request_configuration=cfg))
        if sp is None or not sp.id:
            raise NotFoundError("Graph returned no service principal", tenant=self._tenant_id, target=sp_id)
        return ServicePrincipalInfo(
            id=sp.id, app_id=sp.app_id, display_name=sp.display_name, account_enabled=sp.account_enabled
        )

    async def _set_sp_enabled(self, operation: str, sp_id: str, enabled: bool) -> None:
        self._require_id(sp_id, "sp_id")
        body = ServicePrincipal(account_enabled=enabled)
        builder = self._sdk.service_principals.by_service_principal_id(sp_id)
        await self._call(operation, sp_id, lambda: builder.patch(body))

    async def disable_service_principal(self, sp_id: str) -> None:
        """PATCH /servicePrincipals/{id} {"accountEnabled": false}: no new tokens for the app in this tenant."""
        await self._set_sp_enabled("disable_service_principal", sp_id, False)

    async def enable_service_principal(self, sp_id: str) -> None:
        """PATCH /servicePrincipals/{id} {"accountEnabled": true}."""
        await self._set_sp_enabled("enable_service_principal", sp_id, True)


# --------------------------------------------------------------------------- the sync facade


class SyncGraphClient:
    """Synchronous facade over :class:`GraphClient` for the (sync) Functions code paths.

    Runs every call on a private event loop owned by this facade; call :meth:`close` (or use ``with``).
    Not thread-safe, and not usable from inside a running event loop (use :class:`GraphClient` there).
    """

    def __init__(self, client: GraphClient, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Wrap ``client``; prefer :meth:`create`."""
        self._client = client
        self._loop = loop or asyncio.new_event_loop()
        self._closed = False

    @classmethod
    def create(
        cls,
        tenant_id: str,
        *,
        credential: TokenCredential | AsyncTokenCredential,
        base_url: str | None = None,
        cloud_host: str = DEFAULT_CLOUD_HOST,
        max_retries: int = 0,
        timeout: float = 30.0,
    ) -> SyncGraphClient:
        """Same options as :meth:`GraphClient.create` (the HTTP client is always the facade's own)."""
        client = GraphClient.create(
            tenant_id,
            credential=credential,
            base_url=base_url,
            cloud_host=cloud_host,
            max_retries=max_retries,
            timeout=timeout,
        )
        return cls(client)

    @property
    def tenant_id(self) -> str:
        """The tenant this client acts in."""
        return self._client.tenant_id

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """The only hosts that receive the bearer token."""
        return self._client.allowed_hosts

    def _run(self, call: Callable[[], Awaitable[_T]]) -> _T:
        if self._closed:
            raise RuntimeError("SyncGraphClient is closed")

        async def runner() -> _T:
            return await call()

        return self._loop.run_until_complete(runner())

    def close(self) -> None:
        """Close the HTTP client and the private loop."""
        if self._closed:
            return
        try:
            self._loop.run_until_complete(self._client.close())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._closed = True
            self._loop.close()

    def __enter__(self) -> SyncGraphClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def get_user(self, user_id: str, *, select: Sequence[str] = DEFAULT_USER_SELECT) -> GraphUser:
        """See :meth:`GraphClient.get_user`."""
        return self._run(lambda: self._client.get_user(user_id, select=select))

    def list_users(
        self, *, select: Sequence[str] = DEFAULT_USER_SELECT, page_size: int | None = None
    ) -> list[GraphUser]:
        """See :meth:`GraphClient.list_users`."""
        return self._run(lambda: self._client.list_users(select=select, page_size=page_size))

    def list_role_members(self, role_template_id: str) -> list[DirectoryMember]:
        """See :meth:`GraphClient.list_role_members`."""
        return self._run(lambda: self._client.list_role_members(role_template_id))

    def find_service_principal(self, app_id: str) -> ServicePrincipalInfo | None:
        """See :meth:`GraphClient.find_service_principal`."""
        return self._run(lambda: self._client.find_service_principal(app_id))

    def disable_user(self, user_id: str) -> None:
        """See :meth:`GraphClient.disable_user`."""
        self._run(lambda: self._client.disable_user(user_id))

    def enable_user(self, user_id: str) -> None:
        """See :meth:`GraphClient.enable_user`."""
        self._run(lambda: self._client.enable_user(user_id))

    def revoke_sessions(self, user_id: str) -> bool:
        """See :meth:`GraphClient.revoke_sessions`."""
        return self._run(lambda: self._client.revoke_sessions(user_id))

    def list_inbox_rules(self, user_id: str) -> list[InboxRule]:
        """See :meth:`GraphClient.list_inbox_rules`."""
        return self._run(lambda: self._client.list_inbox_rules(user_id))

    def delete_inbox_rule(self, user_id: str, rule_id: str) -> bool:
        """See :meth:`GraphClient.delete_inbox_rule`."""
        return self._run(lambda: self._client.delete_inbox_rule(user_id, rule_id))

    def disable_inbox_rule(self, user_id: str, rule_id: str) -> InboxRule:
        """See :meth:`GraphClient.disable_inbox_rule`."""
        return self._run(lambda: self._client.disable_inbox_rule(user_id, rule_id))

    def create_inbox_rule(self, user_id: str, rule: InboxRule) -> InboxRule:
        """See :meth:`GraphClient.create_inbox_rule`."""
        return self._run(lambda: self._client.create_inbox_rule(user_id, rule))

    def list_permission_grants(self, *, client_id: str) -> list[PermissionGrant]:
        """See :meth:`GraphClient.list_permission_grants`."""
        return self._run(lambda: self._client.list_permission_grants(client_id=client_id))

    def delete_permission_grant(self, grant_id: str) -> bool:
        """See :meth:`GraphClient.delete_permission_grant`."""
        return self._run(lambda: self._client.delete_permission_grant(grant_id))

    def get_service_principal(self, sp_id: str) -> ServicePrincipalInfo:
        """See :meth:`GraphClient.get_service_principal`."""
        return self._run(lambda: self._client.get_service_principal(sp_id))

    def disable_service_principal(self, sp_id: str) -> None:
        """See :meth:`GraphClient.disable_service_principal`."""
        self._run(lambda: self._client.disable_service_principal(sp_id))

    def enable_service_principal(self, sp_id: str) -> None:
        """See :meth:`GraphClient.enable_service_principal`."""
        self._run(lambda: self._client.enable_service_principal(sp_id))
