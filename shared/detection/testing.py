"""Test helpers that ship with the engine: run detectors over schema-shaped records in memory.

Used by every detector's table-driven tests::

    result = run_detector(MyDetector, records, tenant=TenantConfig(...), intel=StaticIntel({...}))
    assert result.alerts[0].to_dict() == {...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.alert_model import Alert, Finding
from shared.detection.base import Detector, Registry
from shared.detection.engine import DetectionEngine, Enricher, InMemoryAlertSink
from shared.detection.state import InMemoryStateStore
from shared.records.event import Event, parse_records
from shared.tenant_config import TenantConfig

TEST_TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


class StaticIntel:
    """An IP lookup from a fixed mapping (addresses not listed are unknown)."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        self._table = dict(table)

    def lookup(self, ip: str | None) -> Any:
        return self._table.get(ip) if ip else None


class StaticEnricher:
    """An enricher for tests: IP context from a fixed table, access method from a classifier."""

    def __init__(self, ip_table: Mapping[str, Any] | None = None, *, classify: Any = None) -> None:
        self._intel = StaticIntel(ip_table or {})
        self._classify = classify

    def enrich(self, events: Sequence[Event], tenant: TenantConfig) -> None:
        for ev in events:
            if ev.ip_info is None:
                ev.ip_info = self._intel.lookup(ev.ip)
            if ev.access is None and self._classify is not None:
                ev.access = self._classify(ev)


@dataclass
class DetectorRun:
    findings: list[Finding] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    store: InMemoryStateStore = field(default_factory=InMemoryStateStore)


def run_detector(
    detectors: type[Detector] | Sequence[type[Detector]],
    records: Sequence[Mapping[str, Any] | bytes],
    *,
    tenant: TenantConfig | None = None,
    enricher: Enricher | None = None,
    batch_size: int = 0,
    rogue_apps: Mapping[str, Any] | None = None,
) -> DetectorRun:
    """Parse ``records`` like the content function does and run the detectors over them.

    Records are processed in CreationTime order, one batch per ``batch_size`` records
    (0: all in one batch), through the real engine with in-memory state and alerts.
    """
    classes = [detectors] if isinstance(detectors, type) else list(detectors)
    cfg = tenant or TenantConfig(tenant_id=TEST_TENANT)
    sink = InMemoryAlertSink()
    run = DetectorRun()
    engine = DetectionEngine(
        Registry(classes),
        store=run.store,
        sink=sink,
        enricher=enricher,
        tenant_config=lambda _t: cfg,
        rogue_apps=rogue_apps,
    )
    raws = [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]
    parsed = parse_records(raws)
    run.quarantined = [q.reason for q in parsed.quarantined]
    by_tenant: dict[str, list[Event]] = {}
    for ev in sorted(parsed.events, key=lambda e: (e.time, e.record_id)):
        by_tenant.setdefault(ev.tenant_id, []).append(ev)
    for tid, events in by_tenant.items():
        size = batch_size or len(events)
        for i in range(0, len(events), size):
            out = engine.process(tid, events[i : i + size], batch_id=f"test-{tid}-{i}")
            run.findings.extend(out.findings)
    run.alerts = sink.list_alerts()
    return run
