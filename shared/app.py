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
from typing import Any

from shared.platform.bus import MessageBus
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients


@dataclass
class Services:
    """Everything a function body needs; built lazily where construction is costly."""

    settings: Settings
    storage: StorageClients
    bus: MessageBus
    credential: Any = None
    """Token credential for the Management Activity API and Graph (a stub against emulators)."""
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

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        from azure.identity import DefaultAzureCredential

        from shared.platform.servicebus import ServiceBusSender

        if not settings.servicebus_namespace:
            from shared.platform.errors import ConfigurationError

            raise ConfigurationError("ServiceBusConnection__fullyQualifiedNamespace is not set")
        return cls(
            settings=settings,
            storage=StorageClients.from_settings(settings),
            bus=ServiceBusSender.from_namespace(
                settings.servicebus_namespace, client_id=settings.managed_identity_client_id
            ),
            credential=DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id),
        )


_services: Services | None = None
_lock = threading.Lock()


def configure(services: Services | None) -> None:
    """Install the services of this process (the local runtime does; production builds its own)."""
    global _services
    with _lock:
        _services = services


def services() -> Services:
    """The services of this process, built from the environment on first use."""
    global _services
    with _lock:
        if _services is None:
            _services = Services.from_settings(Settings.from_env())
        return _services
