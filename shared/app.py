"""The composition root: one typed object that builds every service the functions use, once per process.

Production builds it from the app settings alone: ``Services(Settings.from_env())``. Storage comes from the
account name and the managed identity (or a connection string for Azurite), the bus from the Service Bus
namespace, each tenant's Management Activity API and Graph clients from the app registration's certificate
(a Key Vault reference the platform resolves into ``ITDR_APP_CERTIFICATE``) and the tenant's cloud, the
partner client from ``ITDR_PARTNER_ENDPOINT``.

Everything a local run, a test, the demo, the benchmark or the chaos run substitutes enters through the
keyword parameters of the constructor, each typed: no attribute is set after construction, nothing is
looked up by name. The pieces are built on first use (``cached_property``: ``import function_app`` stays
light), and a tenant's clients once per tenant and thread (msgraph-sdk's client owns an event loop and is
not thread-safe; the worker runs up to 16 invocations at once).

    Services(settings, storage=, bus=, credentials=, clock=, sleep=, rng=, intel=, partner=, ...)
      ├── tenants, record_ledger, webhook_stats                     (ingest)
      ├── management_client(tenant), graph_client(tenant)           (per tenant and thread)
      ├── identity_resolver                                         (enrich)
      ├── engine                                                    (detection)
      ├── alert_store, incident_book, suppressions, correlator,
      │   triage, publisher, delivery                               (alerts)
      └── remediation_policies, remediation_ledger, remediation     (remediation)
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from shared.platform import logsafety
from shared.platform.errors import ConfigurationError
from shared.platform.settings import Settings

logsafety.install()

_T = TypeVar("_T")


class cached_property(Generic[_T]):  # noqa: N801 - a drop-in for functools.cached_property
    """``functools.cached_property`` built under the instance's ``_build_lock`` (an RLock).

    Python 3.12 dropped cached_property's lock, and 3.11's is one lock per property for every instance;
    here two threads asking for a piece at once (eight function invocations on a fresh worker) build it
    once, and a builder may use other pieces (the lock is re-entrant).
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> cached_property[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _T | cached_property[_T]:
        if obj is None:
            return self
        cache = obj.__dict__
        if self.name in cache:
            value: _T = cache[self.name]
            return value
        lock: threading.RLock = obj.__dict__["_build_lock"]
        with lock:
            if self.name not in cache:
                cache[self.name] = self.func(obj)
            built: _T = cache[self.name]
            return built


if TYPE_CHECKING:  # keep `import function_app` light: the Azure SDKs load on first use
    import httpx
    from azure.core.credentials import TokenCredential

    from shared.alerts.crosstenant import TableCrossTenantCorrelator
    from shared.alerts.delivery import PartnerDeliveryClient
    from shared.alerts.incidents import TableIncidentBook
    from shared.alerts.publisher import IncidentPublisher
    from shared.alerts.store import TableAlertStore
    from shared.alerts.suppressions import TableSuppressionStore
    from shared.alerts.triage import Triage
    from shared.detection.engine import DetectionEngine
    from shared.detection.historical_rules import InboxRuleSweep
    from shared.detection.stage import DetectResult
    from shared.enrich.factory import IntelFeeds
    from shared.enrich.identity import IdentityResolver
    from shared.enrich.ipintel import IpIntelClient
    from shared.graph.client import SyncGraphClient
    from shared.ingest.client import ManagementActivityClient
    from shared.ingest.context import WebhookStats
    from shared.ingest.ledger import RecordLedger
    from shared.ingest.signin_client import SignInLogClient
    from shared.messages import EnrichedBatchRef
    from shared.platform.bus import MessageBus
    from shared.platform.principal import BearerVerifier
    from shared.platform.storage import StorageClients
    from shared.remediation.incidents import RemediationRecorder
    from shared.remediation.ledger import TableRemediationLedger
    from shared.remediation.policy import RemediationPolicies
    from shared.remediation.runner import RemediationRunner
    from shared.tenants import TenantDirectory


class CredentialSource(Protocol):
    """Tenant ID and cloud -> a token credential that signs in to that tenant as the app."""

    def __call__(self, tenant_id: str, cloud: str, /) -> TokenCredential: ...


DetectObserver = Callable[["EnrichedBatchRef", "DetectResult"], None]
"""Called after each detect batch (the chaos run counts the records that reached detection)."""


@dataclass(frozen=True, slots=True)
class IntelSources:
    """What the IP intelligence is built from, when not from the settings and the stored feeds."""

    feeds: IntelFeeds | None = None
    """The feed files (VPN, Tor, hosting ASN, rogue apps); None: the ones the refresh timer stored."""
    client: IpIntelClient | None = None
    """A ready IP intelligence client; None: built from the settings' IP data, adapters and ``feeds``."""


@dataclass(frozen=True, slots=True)
class PartnerTransport:
    """How the partner client reaches the endpoint: an httpx client, and plain http for a local stand-in."""

    http: httpx.Client | None = None
    allow_http: bool = False
    """Accept a plain http:// endpoint (the local stand-in; its host must still be allowed by the settings)."""


class AppCertificateCredentials:
    """Production credentials: the app registration's certificate from Key Vault, one credential per tenant."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._made: dict[tuple[str, str], TokenCredential] = {}

    def __call__(self, tenant_id: str, cloud: str, /) -> TokenCredential:
        from azure.identity import CertificateCredential

        from shared.ingest.clouds import cloud_profile

        s = self._settings
        if not s.app_client_id or s.app_certificate is None:
            raise ConfigurationError("ITDR_APP_CLIENT_ID and ITDR_APP_CERTIFICATE are required", tenant=tenant_id)
        key = (tenant_id.lower(), cloud)
        with self._lock:
            made = self._made.get(key)
            if made is None:
                try:
                    pfx = base64.b64decode(s.app_certificate.get_secret_value(), validate=True)
                except ValueError:
                    raise ConfigurationError("ITDR_APP_CERTIFICATE is not base64 (a PFX)") from None
                made = CertificateCredential(
                    tenant_id,
                    s.app_client_id,
                    certificate_data=pfx,
                    authority=s.login_authority_override or cloud_profile(cloud).authority_host,
                    # msal asks login.microsoftonline.com about any other authority host first; the override
                    # (a sovereign or local Entra endpoint) is trusted as configured
                    disable_instance_discovery=bool(s.login_authority_override),
                )
                self._made[key] = made
        return made


GRAPH_HOSTS: Mapping[str, str] = {"gcc_high": "graph.microsoft.us", "dod": "dod-graph.microsoft.us"}
"""The Graph host of each sovereign cloud (others: graph.microsoft.com)."""


class Services:
    """Everything the function bodies need, built from ``settings`` and the typed substitutes given here."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage: StorageClients | None = None,
        bus: MessageBus | None = None,
        credentials: CredentialSource | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        intel: IntelSources = IntelSources(),
        partner: PartnerTransport = PartnerTransport(),
        management_http: httpx.Client | None = None,
        entra_http: httpx.Client | None = None,
        management_max_retry_delay: float = 60.0,
        feed_silence: Mapping[str, timedelta] | None = None,
        remediation_defaults: Mapping[str, object] | None = None,
        on_detected: DetectObserver | None = None,
    ) -> None:
        """``settings`` alone is production. The rest are substitutes for local runs and tests:

        ``storage`` and ``bus`` (default: from the settings), ``credentials`` (default: the app certificate),
        ``clock``/``sleep``/``rng`` (simulated time), ``intel`` (feed files or a ready IP client), ``partner``
        (an httpx client and loopback stand-ins), ``management_http`` (an httpx client for the Management
        Activity API, e.g. with a fault-injecting transport), ``entra_http`` (an httpx client for Entra's signing
        keys, e.g. trusting a local stand-in's CA), ``feed_silence`` (per content type silence
        thresholds), ``remediation_defaults`` (policy fields under every tenant's own), ``on_detected``.
        """
        self.settings = settings
        given = {
            "storage": storage,
            "bus": bus,
            "credentials": credentials,
            "management_http": management_http,
            "entra_http": entra_http,
            "feed_silence": feed_silence,
            "remediation_defaults": remediation_defaults,
            "on_detected": on_detected,
            "rng": rng,
        }
        self.substituted: frozenset[str] = frozenset(
            {name for name, value in given.items() if value is not None}
            | ({"clock"} if clock is not time.time else set())
            | ({"sleep"} if sleep is not time.sleep else set())
            | ({"intel"} if intel != IntelSources() else set())
            | ({"partner"} if partner != PartnerTransport() else set())
        )
        """The constructor parameters given in place of what the settings build (empty in production)."""
        self._storage = storage
        self._bus = bus
        self._credentials: CredentialSource = credentials or AppCertificateCredentials(settings)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._intel = intel
        self._partner = partner
        self._management_http = management_http
        self._entra_http = entra_http
        self._management_max_retry_delay = management_max_retry_delay
        self.feed_silence: Mapping[str, timedelta] = dict(feed_silence or {})
        self._remediation_defaults: Mapping[str, object] = dict(remediation_defaults or {})
        self.on_detected = on_detected
        self._lock = threading.RLock()
        self._build_lock = self._lock  # one re-entrant lock for the lazy pieces and the client caches: no ordering

        self._local = threading.local()
        self._management: dict[str, ManagementActivityClient] = {}
        self._signin: dict[str, SignInLogClient] = {}
        self._graph_made: list[SyncGraphClient] = []
        self._sealed = True

    def __setattr__(self, name: str, value: object) -> None:
        """Nothing is set after construction: a substitute is a constructor parameter (the lazily built pieces
        are cached by ``cached_property``, which writes the instance's dict directly)."""
        if getattr(self, "_sealed", False):
            raise AttributeError(f"Services is immutable after construction; pass {name!r} to the constructor")
        object.__setattr__(self, name, value)

    # -- platform --------------------------------------------------------------------------------------------
    @cached_property
    def storage(self) -> StorageClients:
        """Blob and Table storage (the managed identity, or Azurite's connection string)."""
        if self._storage is not None:
            return self._storage
        from shared.platform.storage import StorageClients

        return StorageClients.from_settings(self.settings)

    @cached_property
    def bus(self) -> MessageBus:
        """The Service Bus sender (the managed identity on the namespace)."""
        if self._bus is not None:
            return self._bus
        from shared.platform.servicebus import ServiceBusSender

        if not self.settings.servicebus_namespace:
            raise ConfigurationError("ServiceBusConnection__fullyQualifiedNamespace is not set")
        return ServiceBusSender.from_namespace(
            self.settings.servicebus_namespace, client_id=self.settings.managed_identity_client_id
        )

    def now(self) -> datetime:
        """The clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- tenants and their clients -----------------------------------------------------------------------------
    @cached_property
    def tenants(self) -> TenantDirectory:
        from shared.tenants import TenantDirectory

        return TenantDirectory(self.storage)

    def tenant_cloud(self, tenant_id: str) -> str:
        rec = self.tenants.get(tenant_id)
        return rec.cloud if rec is not None else "commercial"

    def management_client(self, tenant_id: str) -> ManagementActivityClient:
        """The tenant's Management Activity API client for its cloud (one per tenant; the client is thread-safe)."""
        from shared.ingest.client import ManagementActivityClient

        key = tenant_id.lower()
        with self._lock:
            client = self._management.get(key)
            if client is None:
                if not self.settings.publisher_id:
                    raise ConfigurationError("ITDR_PUBLISHER_ID is not set", tenant=tenant_id)
                cloud = self.tenant_cloud(tenant_id)
                client = ManagementActivityClient(
                    tenant_id,
                    cloud=cloud,
                    publisher_id=self.settings.publisher_id,
                    credential=self._credentials(tenant_id, cloud),
                    base_url=self.settings.management_api_base_url,
                    http_client=self._management_http,
                    sleep=self.sleep,
                    clock=self.now,
                    max_retry_delay=self._management_max_retry_delay,
                )
                self._management[key] = client
        return client

    def graph_client(self, tenant_id: str) -> SyncGraphClient:
        """The tenant's Graph client, one per tenant and thread (msgraph-sdk's client is not thread-safe)."""
        from shared.graph.client import SyncGraphClient

        cache: dict[str, SyncGraphClient] | None = getattr(self._local, "graph", None)
        if cache is None:
            cache = self._local.graph = {}
        key = tenant_id.lower()
        client = cache.get(key)
        if client is None:
            cloud = self.tenant_cloud(tenant_id)
            client = SyncGraphClient.create(
                tenant_id,
                credential=self._credentials(tenant_id, cloud),
                base_url=self.settings.graph_base_url,
                cloud_host=GRAPH_HOSTS.get(cloud, "graph.microsoft.com"),
            )
            cache[key] = client
            with self._lock:
                self._graph_made.append(client)
        return client

    def signin_client(self, tenant_id: str) -> SignInLogClient:
        """The tenant's client of Graph's sign-in logs (one per tenant; the client is thread-safe)."""
        from shared.ingest.signin_client import SignInLogClient

        key = tenant_id.lower()
        with self._lock:
            client = self._signin.get(key)
            if client is None:
                cloud = self.tenant_cloud(tenant_id)
                base = self.settings.graph_base_url or f"https://{GRAPH_HOSTS.get(cloud, 'graph.microsoft.com')}/v1.0"
                client = SignInLogClient(
                    tenant_id,
                    credential=self._credentials(tenant_id, cloud),
                    base_url=base,
                    cloud=cloud,
                    sleep=self.sleep,
                    clock=self.now,
                    max_retry_delay=self._management_max_retry_delay,
                )
                self._signin[key] = client
        return client

    def close(self) -> None:
        """Close every client this object built (their connection pools); the object is not used after."""
        with self._lock:
            made: list[ManagementActivityClient | SyncGraphClient | SignInLogClient] = [
                *self._management.values(),
                *self._graph_made,
                *self._signin.values(),
            ]
            self._management.clear()
            self._graph_made.clear()
            self._signin.clear()
        for client in made:
            client.close()

    def graph_or_none(self, tenant_id: str) -> SyncGraphClient | None:
        """The tenant's Graph client, or None when Graph is not configured (identity resolution waits)."""
        try:
            return self.graph_client(tenant_id)
        except ConfigurationError:
            return None

    @cached_property
    def admin_verifier(self) -> BearerVerifier | None:
        """Validates operators' Entra bearer tokens for the admin API (``ITDR_ADMIN_PRINCIPAL_AUTH=entra``): the
        signing keys of ``ITDR_PUBLISHER_ID``'s tenant, audiences ``ITDR_ADMIN_API_AUDIENCE``; None otherwise."""
        s = self.settings
        if s.admin_principal_auth != "entra" or not s.publisher_id or not s.admin_api_audience:
            return None
        import httpx

        from shared.platform.principal import BearerVerifier

        return BearerVerifier(
            authority=s.login_authority_override or "https://login.microsoftonline.com",
            tenant_id=s.publisher_id,
            audience=[a.strip() for a in s.admin_api_audience.split(",")],
            http=self._entra_http or httpx.Client(),
            clock=self.clock,
        )

    # -- ingest ------------------------------------------------------------------------------------------------
    @cached_property
    def record_ledger(self) -> RecordLedger:
        from shared.ingest.ledger import RecordLedger

        return RecordLedger(self.storage)

    @cached_property
    def webhook_stats(self) -> WebhookStats:
        from shared.ingest.context import WebhookStats

        return WebhookStats()

    # -- enrichment and detection --------------------------------------------------------------------------------
    @cached_property
    def identity_resolver(self) -> IdentityResolver:
        from shared.enrich.identity import IdentityResolver

        return IdentityResolver(self.storage, self.graph_or_none, clock=self.clock)

    @cached_property
    def intel_feeds(self) -> IntelFeeds:
        if self._intel.feeds is not None:
            return self._intel.feeds
        from shared.enrich.feeds import load_intel_feeds

        return load_intel_feeds(self.storage)

    @cached_property
    def ip_intel(self) -> IpIntelClient:
        if self._intel.client is not None:
            return self._intel.client
        from shared.enrich.factory import intel_config_from_settings
        from shared.enrich.ipintel import IpIntelClient

        return IpIntelClient.from_config(intel_config_from_settings(self.settings, self.intel_feeds))

    @cached_property
    def engine(self) -> DetectionEngine:
        from detectors import default_registry
        from shared.detection.engine import DetectionEngine
        from shared.detection.table_state import TableStateStore
        from shared.enrich.factory import build_local_enricher, load_rogue_apps
        from shared.platform import names

        return DetectionEngine(
            default_registry(),
            store=TableStateStore(self.storage.table(names.TABLE_USER_STATE)),
            sink=self.alert_store,
            enricher=build_local_enricher(self.intel_feeds, intel=self.ip_intel),
            tenant_config=self.tenants.config,
            rogue_apps=load_rogue_apps(self.intel_feeds.rogue_app_feeds),
        )

    @cached_property
    def inbox_rule_sweep(self) -> InboxRuleSweep:
        """The historical inbox-rule sweep (at onboarding and weekly)."""
        from detectors.exchange_suspicious_inbox_rule import ExchangeSuspiciousInboxRule
        from shared.detection.historical_rules import InboxRuleSweep

        return InboxRuleSweep(
            meta=ExchangeSuspiciousInboxRule.meta,
            graph=self.graph_client,
            config=self.tenants.config,
            alerts=self.alert_store,
            bus=self.bus,
            shards=self.settings.tenant_shards,
            clock=self.clock,
        )

    # -- alerts ------------------------------------------------------------------------------------------------
    @cached_property
    def alert_store(self) -> TableAlertStore:
        from shared.alerts.store import TableAlertStore

        return TableAlertStore.from_storage(self.storage, now=self.clock)

    @cached_property
    def incident_book(self) -> TableIncidentBook:
        from shared.alerts.incidents import TableIncidentBook

        return TableIncidentBook.from_storage(self.storage, triage=self.triage.states)

    @cached_property
    def suppressions(self) -> TableSuppressionStore:
        from shared.alerts.suppressions import TableSuppressionStore

        return TableSuppressionStore.from_storage(self.storage, now=self.clock)

    @cached_property
    def correlator(self) -> TableCrossTenantCorrelator:
        from shared.alerts.crosstenant import TableCrossTenantCorrelator

        def partner_of(tenant_id: str) -> str | None:
            rec = self.tenants.get(tenant_id)
            return rec.partner_id if rec is not None else None

        return TableCrossTenantCorrelator.from_storage(self.storage, partner_of)

    @cached_property
    def triage(self) -> Triage:
        from shared.alerts.triage import Triage

        return Triage(self.tenants, self.suppressions, clock=self.clock)

    @cached_property
    def publisher(self) -> IncidentPublisher:
        from shared.alerts.publisher import IncidentPublisher

        return IncidentPublisher(self.incident_book, self.correlator, self.triage, self.bus)

    @cached_property
    def delivery(self) -> PartnerDeliveryClient:
        """The partner delivery client; ConfigurationError when ``ITDR_PARTNER_ENDPOINT`` is not set."""
        import httpx

        from shared.alerts.delivery import DEFAULT_ALLOWED_HOSTS, PartnerDeliveryClient, TableDeliveryLedger

        endpoint = self.settings.partner_endpoint
        if not endpoint:
            raise ConfigurationError("ITDR_PARTNER_ENDPOINT is not set")
        extra = tuple(h.strip() for h in (self.settings.partner_allowed_hosts or "").split(",") if h.strip())
        return PartnerDeliveryClient(
            endpoint,
            http=self._partner.http or httpx.Client(),
            ledger=TableDeliveryLedger.from_storage(self.storage),
            format=self.settings.partner_format,
            sleep=self.sleep,
            now=self.clock,
            allowed_hosts=(*DEFAULT_ALLOWED_HOSTS, *extra),
            allow_insecure=self._partner.allow_http,
        )

    # -- remediation ---------------------------------------------------------------------------------------------
    @cached_property
    def remediation_policies(self) -> RemediationPolicies:
        from shared.remediation.policy import RemediationPolicies

        return RemediationPolicies(self.tenants, defaults=self._remediation_defaults)

    @cached_property
    def remediation_ledger(self) -> TableRemediationLedger:
        from shared.remediation.ledger import TableRemediationLedger

        return TableRemediationLedger(self.storage)

    @cached_property
    def remediation_recorder(self) -> RemediationRecorder:
        from shared.remediation.incidents import RemediationRecorder

        return RemediationRecorder(self.incident_book, self.publisher)

    @cached_property
    def remediation(self) -> RemediationRunner:
        from contextlib import nullcontext

        from shared.remediation.runner import RemediationRunner

        return RemediationRunner(
            self.remediation_ledger,
            lambda tenant: nullcontext(self.graph_client(tenant)),
            self.bus,
            policy=self.remediation_policies.for_tenant,
            clock=self.now,
            rng=self.rng,
            alert_sink=self.alert_store,
            on_change=self.remediation_recorder.record,
        )


_services: Services | None = None
_lock = threading.Lock()


def configure(services: Services | None) -> None:
    """Install the services of this process (the local runtime does; production builds its own)."""
    global _services
    with _lock:
        _services = services


def services() -> Services:
    """The services of this process: built from the environment on first use, exactly as deployed.

    The first build also sets up telemetry, so the logs of every function reach Application Insights from
    the first line on (not only after the first metric).
    """
    global _services
    with _lock:
        built = _services
        if built is None:
            built = _services = Services(Settings.from_env())
            fresh = True
        else:
            fresh = False
    if fresh:
        from shared.platform.telemetry import telemetry

        telemetry()
    return built
