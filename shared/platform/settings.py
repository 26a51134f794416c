"""Settings: the only module that reads the process environment.

Each setting has one name, used here, in ``local.settings.sample.json`` and in
``infra/modules/function-app.bicep`` (tests/test_settings_parity.py checks all three).
Production uses identity, not secrets: storage and Service Bus are reached through the
Function App's user-assigned managed identity; the Management Activity API certificate
and the partner endpoint (a Logic App URL with a SAS signature) come from Key Vault
references. Connection strings are only for Azurite and the local emulators.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from shared.platform.errors import ConfigurationError


class Settings(BaseModel):
    """Typed view of the app settings. Build with :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    storage_connection_string: str | None = Field(default=None, alias="ITDR_STORAGE_CONNECTION_STRING")
    """Azurite / development only. Production leaves it empty and sets the account name."""
    storage_account_name: str | None = Field(default=None, alias="ITDR_STORAGE_ACCOUNT_NAME")
    servicebus_namespace: str | None = Field(default=None, alias="ServiceBusConnection__fullyQualifiedNamespace")
    managed_identity_client_id: str | None = Field(default=None, alias="AZURE_CLIENT_ID")

    publisher_id: str | None = Field(default=None, alias="ITDR_PUBLISHER_ID")
    """The vendor's own tenant GUID, sent as PublisherIdentifier on every Management API call."""
    app_client_id: str | None = Field(default=None, alias="ITDR_APP_CLIENT_ID")
    """The multi-tenant app registration used for the Management Activity API and Graph."""
    app_certificate: SecretStr | None = Field(default=None, alias="ITDR_APP_CERTIFICATE")
    """The app registration's certificate (base64 PFX), as a Key Vault reference; never logged."""
    webhook_url: str | None = Field(default=None, alias="ITDR_WEBHOOK_URL")
    partner_endpoint: str | None = Field(default=None, alias="ITDR_PARTNER_ENDPOINT")
    """The partner Logic App HTTP trigger URL (a Key Vault reference in production)."""
    partner_allowed_hosts: str | None = Field(default=None, alias="ITDR_PARTNER_ALLOWED_HOSTS")
    """Development only: host names the partner endpoint may use besides Logic App hosts (comma-separated; the
    local stand-in's 127.0.0.1). Empty in Azure."""
    partner_format: str = Field(default="itdr", alias="ITDR_PARTNER_FORMAT")
    """`itdr` (our versioned JSON schema) or `ocsf` (OCSF Detection Finding)."""
    admin_api_key_hash: str | None = Field(default=None, alias="ITDR_ADMIN_KEY_SHA256")
    admin_principal_auth: str = Field(default="off", alias="ITDR_ADMIN_PRINCIPAL_AUTH")
    """`appservice`: App Service Authentication fronts the app (it strips client-sent ``X-MS-CLIENT-PRINCIPAL``),
    so the admin API also accepts its principals with the ``Admin`` or ``PartnerAdmin`` app role; `entra`: the
    app validates the operator's Entra bearer token itself (Flex Consumption has no App Service Authentication:
    RS256 against the JWKS of ``ITDR_PUBLISHER_ID``'s tenant, ``aud`` one of ``ITDR_ADMIN_API_AUDIENCE``); `off`:
    only the admin key (the header is ignored: without App Service Authentication anyone could send it)."""
    admin_api_audience: str | None = Field(default=None, alias="ITDR_ADMIN_API_AUDIENCE")
    """Comma-separated ``aud`` values an operator's token must carry in `entra` mode: the App ID URI of the admin
    API (``api://<client id>``) and/or its client id."""
    consent_state_key: SecretStr | None = Field(default=None, alias="ITDR_CONSENT_STATE_KEY")
    """The HMAC key of consent-link ``state`` values (a Key Vault reference; at least 32 characters); unset:
    no consent links."""
    consent_redirect_url: str | None = Field(default=None, alias="ITDR_CONSENT_REDIRECT_URL")
    """The public HTTPS URL of the ``onboarding/consent-callback`` function, registered as a Web redirect URI of
    the app registration; the admin-consent link returns there."""

    management_api_base_url: str | None = Field(default=None, alias="ITDR_MANAGEMENT_API_BASE_URL")
    """Override of the Management Activity API root (the local emulator); empty in production."""
    graph_base_url: str | None = Field(default=None, alias="ITDR_GRAPH_BASE_URL")
    """Override of the Microsoft Graph root (the local emulator); empty in production."""
    login_authority_override: str | None = Field(default=None, alias="ITDR_LOGIN_AUTHORITY")

    poll_schedule: str = Field(default="0 */5 * * * *", alias="ITDR_POLL_SCHEDULE")
    feed_health_schedule: str = Field(default="0 */30 * * * *", alias="ITDR_FEED_HEALTH_SCHEDULE")
    intel_refresh_schedule: str = Field(default="0 15 * * * *", alias="ITDR_INTEL_REFRESH_SCHEDULE")
    weekly_report_schedule: str = Field(default="0 0 7 * * 1", alias="ITDR_WEEKLY_REPORT_SCHEDULE")
    signin_poll_schedule: str = Field(default="0 */10 * * * *", alias="ITDR_SIGNIN_POLL_SCHEDULE")
    """NCRONTAB of the sign-in log poller (Graph auditLogs/signIns, tenants with Entra ID P1 or higher)."""
    intel_feed_urls: str | None = Field(default=None, alias="ITDR_INTEL_FEED_URLS")
    """JSON object: feed kind (vpn, tor, hosting_asn, rogue_app) -> list of https URLs."""
    ipdata_dir: str | None = Field(default=None, alias="ITDR_IPDATA_DIR")
    """The embedded IP data directory (``ipdata.bin``, the DB-IP IPv6 mmdb); unset: ``ipdata/`` in the package.
    Relative paths (this and the other IP data paths) are relative to the app root."""
    maxmind_city_db: str | None = Field(default=None, alias="ITDR_MAXMIND_CITY_DB")
    """A MaxMind GeoIP2/GeoLite2 City mmdb (on a mounted share or in the package); its geo wins over DB-IP's."""
    maxmind_asn_db: str | None = Field(default=None, alias="ITDR_MAXMIND_ASN_DB")
    """A MaxMind GeoLite2/GeoIP2 ASN mmdb."""
    maxmind_anonymous_db: str | None = Field(default=None, alias="ITDR_MAXMIND_ANONYMOUS_DB")
    """A MaxMind GeoIP2 Anonymous IP mmdb (VPN, proxy, Tor, hosting flags)."""
    spur_feed_paths: str | None = Field(default=None, alias="ITDR_SPUR_FEED_PATHS")
    """Comma-separated Spur feed files (NDJSON, optionally gzipped)."""
    spur_token: SecretStr | None = Field(default=None, alias="ITDR_SPUR_TOKEN")
    """The Spur Context API token (a Key Vault reference in production); never logged. Unset: no Spur API."""
    records_per_batch: int = Field(default=2000, alias="ITDR_RECORDS_PER_BATCH", ge=1, le=20000)
    tenant_shards: int = Field(default=1, alias="ITDR_TENANT_SHARDS", ge=1, le=64)

    appinsights_connection_string: str | None = Field(default=None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {k: v for k, v in env.items() if k in _ALIASES and v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid settings: {exc.errors(include_url=False)}") from exc


def setting_names() -> frozenset[str]:
    """Every app setting name the code reads (used by the parity tests)."""
    return frozenset(_ALIASES)


_ALIASES: frozenset[str] = frozenset(f.alias for f in Settings.model_fields.values() if f.alias is not None)


class OperatorSettings(BaseModel):
    """The operator workstation's settings for ``itdr`` commands that change the deployment (no secrets).

    They name the deployed admin API and how the operator signs in with their own Entra account; they are
    not app settings (the Function App never reads them).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    api_url: str | None = Field(default=None, alias="ITDR_API_URL")
    """The deployed app's base URL (``https://<app>.azurewebsites.net``); ``--api`` overrides it."""
    api_scope: str | None = Field(default=None, alias="ITDR_API_SCOPE")
    """The scope of the operator's token: the admin API's App ID URI + ``/.default``."""
    tenant_id: str | None = Field(default=None, alias="ITDR_OPERATOR_TENANT_ID")
    """The operator's (the partner's) Entra tenant."""
    client_id: str | None = Field(default=None, alias="ITDR_OPERATOR_CLIENT_ID")
    """The public client app registration the CLI signs in with (pre-authorised on the admin API)."""
    authority: str = Field(default="https://login.microsoftonline.com", alias="ITDR_OPERATOR_AUTHORITY")
    """Entra's login host, for resolving a customer's domain to its tenant id (a sovereign cloud's, or a stand-in)."""
    signin: str = Field(default="browser", alias="ITDR_SIGNIN", pattern="^(browser|device)$")
    """``browser`` (InteractiveBrowserCredential) or ``device`` (DeviceCodeCredential, for a shell without one)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias is not None}
        try:
            return cls.model_validate({k: v for k, v in env.items() if k in names and v != ""})
        except ValidationError as exc:
            raise ConfigurationError(f"invalid operator settings: {exc.errors(include_url=False)}") from exc
