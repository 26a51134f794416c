"""How ``itdr`` changes the deployment: through the deployed app's admin API, signed in as the operator.

:class:`AdminApiClient` calls ``{api}/api/admin/...`` with ``Authorization: Bearer`` from the operator's own
Entra sign-in (:func:`operator_credential`: azure-identity's ``InteractiveBrowserCredential``, or
``DeviceCodeCredential`` in a shell without a browser). The workstation holds no certificate, key or function
key; the app checks the token (``ITDR_ADMIN_PRINCIPAL_AUTH=entra``) and the operator's app role.

:class:`LocalAdmin` is the same interface on this process's own services (development against Azurite and the
stand-ins, where ``itdr`` runs with the app settings): :func:`connect` picks it only when no API URL is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import orjson

from shared.platform.errors import ConfigurationError, PermissionError_, ServiceUnavailable
from shared.platform.settings import OperatorSettings

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials import TokenCredential


class TenantAdmin(Protocol):
    """What the tenant commands need from the deployment."""

    def list_tenants(self) -> list[dict[str, Any]]: ...

    def onboard(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def status(self, tenant_id: str) -> dict[str, Any]: ...

    def policy(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def consent_link(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def consent_records(self) -> list[dict[str, Any]]: ...

    def decide(self, tenant_id: str, key: str, action: str, *, reason: str = "") -> dict[str, Any]: ...


class AdminApiClient:
    """The admin API over HTTPS with the operator's bearer token (``credential`` for ``scope``)."""

    def __init__(
        self, base_url: str, *, credential: TokenCredential, scope: str, http: httpx.Client | None = None
    ) -> None:
        import httpx

        if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigurationError("the API URL must be https:// (plain http only for a local host)")
        self.base_url = base_url.rstrip("/")
        self._credential = credential
        self._scope = scope
        self._http = http or httpx.Client(timeout=120.0)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        token = self._credential.get_token(self._scope).token
        try:
            response = self._http.request(
                method,
                f"{self.base_url}/api/{path}",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                content=orjson.dumps(body) if body is not None else None,
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"admin API unreachable: {type(exc).__name__}") from exc
        try:
            value = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            value = {"error": response.text[:200]}
        if response.status_code == 200:
            return value
        error = value.get("error", "") if isinstance(value, dict) else ""
        detail = value.get("detail", "") if isinstance(value, dict) else ""
        text = f"admin API {response.status_code} {error}{': ' + detail if detail else ''}"
        if response.status_code in (401, 403):
            raise PermissionError_(text + " (sign in with an account holding the Admin or PartnerAdmin app role)")
        if response.status_code >= 500 or response.status_code == 429:
            raise ServiceUnavailable(text)
        raise ConfigurationError(text, reason=str(error) or "admin_api_refused")

    def list_tenants(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "admin/tenants")["tenants"])

    def onboard(self, request: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "admin/tenants", request))

    def status(self, tenant_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"admin/tenants/{quote(tenant_id, safe='')}"))

    def policy(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"admin/tenants/{quote(tenant_id, safe='')}/policy", body))

    def consent_link(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "admin/consent", body))

    def consent_records(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "admin/consent")["links"])

    def decide(self, tenant_id: str, key: str, action: str, *, reason: str = "") -> dict[str, Any]:
        """Approve, reject or undo a remediation; recorded as the signed-in operator."""
        path = f"admin/remediations/{quote(tenant_id, safe='')}/{quote(key, safe='')}/{quote(action, safe='')}"
        return dict(self._call("POST", path, {"reason": reason}))


class LocalAdmin:
    """The same operations on this process's services (development: Azurite and the stand-ins)."""

    def __init__(self, svc: Any) -> None:
        self._svc = svc

    def list_tenants(self) -> list[dict[str, Any]]:
        from shared.ingest.onboarding import list_tenant_statuses

        return list_tenant_statuses(self._svc)

    def onboard(self, request: dict[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        from shared.ingest.onboarding import OnboardRequest, onboard_tenant

        try:
            valid = OnboardRequest.model_validate(request)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise ConfigurationError(f"invalid request: {first['loc']}: {first['msg']}") from exc
        return onboard_tenant(self._svc, **valid.model_dump()).to_dict()

    def status(self, tenant_id: str) -> dict[str, Any]:
        from shared.ingest.onboarding import tenant_status

        return tenant_status(self._svc, tenant_id, live=True).to_dict()

    def policy(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        from shared.functions.admin_api import set_tenant_policy
        from shared.ingest.onboarding import refresh_protected_identities

        out: dict[str, Any] = {}
        if body.get("refresh_protected"):
            record = self._svc.tenants.get(tenant_id)
            if record is None:
                raise ConfigurationError("no such tenant: onboard it first (itdr tenants add)", tenant=tenant_id)
            _, out["protected"] = refresh_protected_identities(self._svc, record)
        out.update(
            set_tenant_policy(
                self._svc.tenants, tenant_id, remediation=body.get("remediation"), triage=body.get("triage")
            )
        )
        return out

    def consent_link(self, body: dict[str, Any]) -> dict[str, Any]:
        from datetime import timedelta

        from shared.functions.admin_api import ConsentLinkRequest
        from shared.ingest.consent import issue_consent_link

        req = ConsentLinkRequest.model_validate(body)
        link = issue_consent_link(
            self._svc,
            partner_id=req.partner_id,
            tenant=req.tenant,
            name=req.name,
            cloud=req.cloud,
            detection=req.detection,
            ttl=timedelta(hours=req.ttl_hours),
        )
        return link.to_dict()

    def consent_records(self) -> list[dict[str, Any]]:
        from shared.ingest.consent import consent_records

        return consent_records(self._svc)

    def decide(self, tenant_id: str, key: str, action: str, *, reason: str = "") -> dict[str, Any]:
        raise ConfigurationError("decisions without --api: use itdr remediate approve|reject|undo --by NAME")


def operator_credential(settings: OperatorSettings) -> TokenCredential:
    """The operator's own Entra sign-in: a browser window, or a device code printed on standard error."""
    from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

    options: dict[str, Any] = {}
    if settings.tenant_id:
        options["tenant_id"] = settings.tenant_id
    if settings.client_id:
        options["client_id"] = settings.client_id
    if settings.signin == "device":
        return DeviceCodeCredential(**options)
    return InteractiveBrowserCredential(**options)


def connect(
    api_url: str | None,
    *,
    credential: TokenCredential | None = None,
    http: httpx.Client | None = None,
    settings: OperatorSettings | None = None,
) -> TenantAdmin:
    """The admin API at ``api_url`` (else ``ITDR_API_URL``) with the operator's sign-in (``credential`` replaces
    it: tests); without any URL, this process's own services (:class:`LocalAdmin`, development only)."""
    opts = settings or OperatorSettings.from_env()
    url = api_url or opts.api_url
    if not url:
        from shared.app import services

        return LocalAdmin(services())
    if not opts.api_scope:
        raise ConfigurationError("ITDR_API_SCOPE is required with --api (the admin API's App ID URI + /.default)")
    return AdminApiClient(url, credential=credential or operator_credential(opts), scope=opts.api_scope, http=http)


def names_by_tenant(admin: TenantAdmin) -> dict[str, str]:
    """Tenant id -> display name (for the views)."""
    return {str(t["tenant_id"]): str(t.get("name") or "") for t in admin.list_tenants()}


__all__: Sequence[str] = ("AdminApiClient", "LocalAdmin", "TenantAdmin", "connect", "operator_credential")
