"""What the ingest functions need from the composition root, as a typed interface.

`shared.app.Services` satisfies it; ingest never imports the composition root (data flows one way: the
root builds ingest, ingest knows nothing above it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.alert_model import Alert
from shared.graph.client import SyncGraphClient
from shared.ingest.client import ManagementActivityClient
from shared.ingest.ledger import RecordLedger
from shared.ingest.signin_client import SignInLogClient
from shared.platform.bus import MessageBus
from shared.platform.principal import BearerVerifier
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.tenants import TenantDirectory


class AlertSink(Protocol):
    """Where integration-health alerts are kept (the alert store)."""

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...


@dataclass
class WebhookStats:
    """Counters of one process: handshakes, accepted items, refused requests by reason."""

    handshakes: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, handshakes: int = 0, accepted: int = 0, refused: str | None = None) -> None:
        """Add to the counters."""
        with self._lock:
            self.handshakes += handshakes
            self.accepted += accepted
            if refused is not None:
                self.refused[refused] += 1

    def to_dict(self) -> dict[str, Any]:
        """A snapshot."""
        with self._lock:
            return {"handshakes": self.handshakes, "accepted": self.accepted, "refused": dict(self.refused)}


class RuleScanResult(Protocol):
    @property
    def mailboxes(self) -> int: ...

    @property
    def rules(self) -> int: ...

    @property
    def alerts(self) -> Sequence[Alert]: ...


class RuleSweeper(Protocol):
    """The historical inbox-rule sweep that onboarding runs (detection implements it)."""

    def scan(self, tenant_id: str) -> RuleScanResult: ...


class IngestServices(Protocol):
    """The settings, storage, bus, tenants and per-tenant clients of the ingest functions."""

    @property
    def settings(self) -> Settings: ...

    @property
    def storage(self) -> StorageClients: ...

    @property
    def bus(self) -> MessageBus: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def tenants(self) -> TenantDirectory: ...

    @property
    def record_ledger(self) -> RecordLedger: ...

    @property
    def alert_store(self) -> AlertSink: ...

    @property
    def webhook_stats(self) -> WebhookStats: ...

    @property
    def inbox_rule_sweep(self) -> RuleSweeper: ...

    @property
    def feed_silence(self) -> Mapping[str, timedelta]: ...

    @property
    def admin_verifier(self) -> BearerVerifier | None: ...

    def now(self) -> datetime: ...

    def management_client(self, tenant_id: str) -> ManagementActivityClient: ...

    def graph_client(self, tenant_id: str) -> SyncGraphClient: ...

    def signin_client(self, tenant_id: str) -> SignInLogClient: ...
