"""The composition root: builds every service the functions use, once per process.

Production builds `Services` from the app settings (managed identity, Key Vault); the local
runtime (demo, chaos run, tests) builds it with Azurite, the in-process bus and the local
emulators and installs it with :func:`configure`. Nothing else reads settings or builds clients.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.platform import logsafety
from shared.platform.settings import Settings

logsafety.install()

if TYPE_CHECKING:  # keep `import function_app` light: Azure SDKs load on first use
    from shared.platform.bus import MessageBus
    from shared.platform.storage import StorageClients


@dataclass
class Services:
    """Everything a function body needs; built lazily where construction is costly."""

    settings: Settings
    storage: StorageClients
    bus: MessageBus
    credential: Any = None
    """A fixed token credential for every tenant (local emulators); None: the app certificate per tenant."""
    clock: Callable[[], float] = time.time
    graph_factory: Callable[[str], Any] | None = None
    """Tenant ID -> a synchronous Graph client (shared.graph.client.SyncGraphClient)."""
    management_factory: Callable[[str], Any] | None = None
    """Tenant ID -> a ManagementActivityClient for that tenant's cloud."""
    http_client_factory: Callable[[], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def cached(self, name: str, build: Callable[[], Any]) -> Any:
        """A per-process singleton (engine, intel tables, clients) built on first use."""
        with self._lock:
            if name not in self._cache:
                self._cache[name] = build()
            return self._cache[name]

    def tenant_cloud(self, tenant_id: str) -> str:
        from shared.tenants import TenantDirectory

        directory: TenantDirectory = self.cached("tenants", lambda: TenantDirectory(self.storage))
        rec = directory.get(tenant_id)
        return rec.cloud if rec is not None else "commercial"

    def management_client(self, tenant_id: str) -> Any:
        """The Management Activity API client of a tenant (one per tenant per process)."""
        factory = self.management_factory or self._default_management_client
        return self.cached(f"management:{tenant_id.lower()}", lambda: factory(tenant_id))

    def graph_client(self, tenant_id: str) -> Any:
        """The synchronous Graph client of a tenant (one per tenant per process)."""
        factory = self.graph_factory or self._default_graph_client
        return self.cached(f"graph:{tenant_id.lower()}", lambda: factory(tenant_id))

    def credential_for(self, tenant_id: str, cloud: str) -> Any:
        """App-only credential in the customer's tenant: the app certificate from Key Vault."""
        if self.credential is not None:
            return self.credential
        from azure.identity import CertificateCredential

        from shared.ingest.clouds import cloud_profile
        from shared.platform.errors import ConfigurationError

        s = self.settings
        if not s.app_client_id or s.app_certificate is None:
            raise ConfigurationError("ITDR_APP_CLIENT_ID and ITDR_APP_CERTIFICATE are required")
        import base64

        return CertificateCredential(
            tenant_id,
            s.app_client_id,
            certificate_data=base64.b64decode(s.app_certificate.get_secret_value()),
            authority=s.login_authority_override or cloud_profile(cloud).authority_host,
        )

    def _default_management_client(self, tenant_id: str) -> Any:
        from shared.ingest.client import ManagementActivityClient
        from shared.platform.errors import ConfigurationError

        if not self.settings.publisher_id:
            raise ConfigurationError("ITDR_PUBLISHER_ID is not set")
        cloud = self.tenant_cloud(tenant_id)
        return ManagementActivityClient(
            tenant_id,
            cloud=cloud,
            publisher_id=self.settings.publisher_id,
            credential=self.credential_for(tenant_id, cloud),
            base_url=self.settings.management_api_base_url,
        )

    def _default_graph_client(self, tenant_id: str) -> Any:
        from shared.graph.client import SyncGraphClient

        cloud = self.tenant_cloud(tenant_id)
        host = {"gcc_high": "graph.microsoft.us", "dod": "dod-graph.microsoft.us"}.get(cloud, "graph.microsoft.com")
        return SyncGraphClient.create(
            tenant_id,
            credential=self.credential_for(tenant_id, cloud),
            base_url=self.settings.graph_base_url,
            cloud_host=host,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        from shared.platform.servicebus import ServiceBusSender
        from shared.platform.storage import StorageClients

        if not settings.servicebus_namespace:
            from shared.platform.errors import ConfigurationError

            raise ConfigurationError("ServiceBusConnection__fullyQualifiedNamespace is not set")
        return cls(
            settings=settings,
            storage=StorageClients.from_settings(settings),
            bus=ServiceBusSender.from_namespace(
                settings.servicebus_namespace, client_id=settings.managed_identity_client_id
            ),
        )


_services: Services | None = None
_lock = threading.Lock()


def configure(services: Services | None) -> None:
    """Install the services of this process (the local runtime does; production builds its own)."""
    global _services
    with _lock:
        _services = services


def services() -> Services:
    """The services of this process, built from the environment on first use.

    The first build also sets up telemetry, so the logs of every function reach Application Insights from
    the first line on (not only after the first metric).
    """
    global _services
    with _lock:
        built = _services
        if built is None:
            built = _services = Services.from_settings(Settings.from_env())
            fresh = True
        else:
            fresh = False
    if fresh:
        from shared.platform.telemetry import telemetry

        telemetry()
    return built
