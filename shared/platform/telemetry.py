"""Telemetry: custom metrics per batch, never per record, and a count of every item emitted.

When ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (and not under tests), metrics go to
Application Insights through azure-monitor-opentelemetry; otherwise they are only counted.
Every metric carries the tenant as a dimension. Nothing here accepts free text: names and
dimensions are fixed strings and numbers, so tokens, passwords and mail content cannot leak in.

Metric names (docs/operations.md has the KQL): ``itdr.records.ingested``, ``itdr.records.quarantined``,
``itdr.ingest.lag_seconds``, ``itdr.records.detected``, ``itdr.alerts``, ``itdr.remediations``,
``itdr.deadletters``.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

ALLOWED_DIMENSIONS = frozenset(
    {"tenant_id", "content_type", "detector_id", "severity", "category", "queue", "reason", "action", "outcome"}
)
"""The dimensions docs/operations.md documents and infra/modules/monitoring.bicep queries."""
RECENT_ITEMS = 2048


class Telemetry:
    """Counts telemetry items; forwards them to OpenTelemetry meters when configured."""

    def __init__(self, meter: Any = None) -> None:
        self._meter = meter
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.items = 0
        self.totals: dict[str, float] = {}
        self.recent: deque[tuple[str, float, dict[str, str | int]]] = deque(maxlen=RECENT_ITEMS)
        """The last items emitted, with their dimensions (tests and the local run read them)."""

    def since(self, mark: int) -> list[tuple[str, float, dict[str, str | int]]]:
        """The items emitted after ``items`` was ``mark`` (at most the last `RECENT_ITEMS`)."""
        with self._lock:
            count = min(self.items - mark, len(self.recent))
            return list(self.recent)[len(self.recent) - count :] if count > 0 else []

    def metric(self, name: str, value: float, **dims: str | int) -> None:
        bad = set(dims) - ALLOWED_DIMENSIONS
        if bad:
            raise ValueError(f"telemetry dimensions not allowed: {sorted(bad)}")
        with self._lock:
            self.items += 1
            self.totals[name] = self.totals.get(name, 0.0) + value
            self.recent.append((name, value, dims))
            if self._meter is None:
                return
            inst = self._instruments.get(name)
            if inst is None:
                inst = (
                    self._meter.create_histogram(name)
                    if name.endswith("_seconds")
                    else self._meter.create_counter(name)
                )
                self._instruments[name] = inst
        if name.endswith("_seconds"):
            inst.record(value, attributes=dims)
        else:
            inst.add(value, attributes=dims)


_telemetry: Telemetry | None = None
_lock = threading.Lock()


def telemetry() -> Telemetry:
    """The process's telemetry (Application Insights when configured outside tests)."""
    global _telemetry
    with _lock:
        if _telemetry is None:
            _telemetry = Telemetry(_configure_azure_monitor())
        return _telemetry


def _configure_azure_monitor() -> Any:
    from shared.platform.settings import Settings

    settings = Settings.from_env()
    conn = settings.appinsights_connection_string
    if not conn or "pytest" in sys.modules:
        return None
    try:
        from shared.platform import tracing
    except ImportError:  # the OpenTelemetry SDK is not installed: metrics are only counted
        return None
    from azure.identity import ManagedIdentityCredential

    # Application Insights has local (key) authentication off: telemetry is sent with the identity.
    return tracing.configure(conn, ManagedIdentityCredential(client_id=settings.managed_identity_client_id))
