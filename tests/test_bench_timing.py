"""The benchmark's floor (the engine with the detectors taken out does all the rest of the same work) and its results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from detectors import default_registry
from shared.bench.__main__ import REQUIRED_KEYS, missing_figures
from shared.bench.corpus import ensure_corpus
from shared.bench.timing import routes_only
from shared.detection.config import TenantConfig
from shared.detection.engine import BatchOutcome, DetectionEngine, InMemoryAlertSink
from shared.detection.state import InMemoryStateStore, UserState
from shared.enrich.factory import IntelFeeds, build_local_enricher
from shared.records.event import Event, parse_blob


class SavedKeys(InMemoryStateStore):
    """The memory store, noting which users each save wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, frozenset[str]]] = []

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        self.saved.append((tenant_id, frozenset(k for k, s in states.items() if s.dirty)))
        super().save(tenant_id, states)


class CountingEnricher:
    """The local enricher, counting the events it was given."""

    def __init__(self) -> None:
        self.inner = build_local_enricher(IntelFeeds())
        self.events = 0

    def enrich(self, events: Sequence[Event], tenant: TenantConfig) -> None:
        self.events += len(events)
        self.inner.enrich(events, tenant)


def run(registry: object, files: list[Path]) -> tuple[list[BatchOutcome], SavedKeys, CountingEnricher]:
    store, enricher = SavedKeys(), CountingEnricher()
    engine = DetectionEngine(registry, store=store, sink=InMemoryAlertSink(), enricher=enricher)  # type: ignore[arg-type]
    outcomes = []
    for i, f in enumerate(files):
        events = parse_blob(f.read_bytes()).events
        outcomes.append(engine.process(events[0].tenant_id, events, batch_id=f"b-{i}"))
    return outcomes, store, enricher


def test_routes_only_keeps_routing_enrichment_and_state_and_finds_nothing(tmp_path: Path) -> None:
    files = sorted(ensure_corpus(tmp_path, 3000).path.glob("*.json"))
    registry = default_registry()
    floor = routes_only(registry)
    assert floor.operations == registry.operations
    assert [d.meta.id for d in floor.detectors] == ["bench_no_detection"]

    full, full_store, full_enricher = run(registry, files)
    bare, bare_store, bare_enricher = run(floor, files)

    assert sum(o.routed for o in full) > 1000 and any(o.alerts for o in full)
    assert [(o.processed, o.routed) for o in bare] == [(o.processed, o.routed) for o in full]
    assert bare_enricher.events == full_enricher.events == sum(o.routed for o in full)
    assert all(not o.findings and not o.alerts for o in bare)
    assert bare_store.saved == full_store.saved  # the same users' state read and written, batch by batch


def test_results_must_carry_every_required_figure_as_a_finite_number() -> None:
    complete: dict[str, object] = {k: 1.0 for k in REQUIRED_KEYS} | {"records": 20000}
    assert missing_figures(complete) == []
    assert missing_figures({k: v for k, v in complete.items() if k != "cold_import_s"}) == ["cold_import_s"]
    for bad in (float("nan"), float("inf"), None, "0.5", True):
        assert missing_figures(complete | {"peak_rss_mb": bad}) == ["peak_rss_mb"], bad
