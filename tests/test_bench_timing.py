"""The benchmark's floor (the engine with the detectors taken out does all the rest of the same work) and its results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from detectors import default_registry
from shared.bench.__main__ import REQUIRED_KEYS, cost, cron_runs_per_month, missing_figures
from shared.bench.corpus import ensure_corpus
from shared.bench.timing import routes_only
from shared.detection.engine import BatchOutcome, DetectionEngine, InMemoryAlertSink
from shared.detection.state import TENANT_KEY, InMemoryStateStore, UserState
from shared.enrich.factory import IntelFeeds, build_local_enricher
from shared.records.event import Event, parse_blob
from shared.tenant_config import TenantConfig


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

    # the same users' state read and written, batch by batch; the tenant-wide row is written only when a detector
    # changed it (a batch that leaves it unchanged does not rewrite it), which the floor's no-op detector never does
    def users(saved: SavedKeys) -> list[tuple[str, frozenset[str]]]:
        return [(tid, keys - {TENANT_KEY}) for tid, keys in saved.saved]

    assert users(bare_store) == users(full_store)
    assert all(TENANT_KEY not in keys for _, keys in bare_store.saved)


def test_results_must_carry_every_required_figure_as_a_finite_number() -> None:
    complete: dict[str, object] = {k: 1.0 for k in REQUIRED_KEYS} | {"records": 20000}
    assert missing_figures(complete) == []
    assert missing_figures({k: v for k, v in complete.items() if k != "cold_import_s"}) == ["cold_import_s"]
    for bad in (float("nan"), float("inf"), None, "0.5", True):
        assert missing_figures(complete | {"peak_rss_mb": bad}) == ["peak_rss_mb"], bad


@pytest.mark.parametrize(
    ("schedule", "runs"),
    [
        ("0 */5 * * * *", 12 * 24 * 30.4),  # the poll
        ("0 */30 * * * *", 2 * 24 * 30.4),  # feed health
        ("0 15 * * * *", 24 * 30.4),  # intel refresh
        ("0 0 7 * * 1", 30.4 / 7),  # the weekly report, Mondays
        ("*/30 * * * * *", 2 * 60 * 24 * 30.4),
        ("0 0 9-17 * * 1-5", 9 * 5 * 30.4 / 7),
        ("0 0,30 8 * * 0,6", 2 * 2 * 30.4 / 7),
    ],
)
def test_timer_runs_a_month(schedule: str, runs: float) -> None:
    assert cron_runs_per_month(schedule) == pytest.approx(runs)


def test_a_schedule_tied_to_the_calendar_has_no_monthly_rate() -> None:
    with pytest.raises(ValueError, match="weekday"):
        cron_runs_per_month("0 0 0 1 * *")


def test_the_monthly_cost_carries_the_timers_of_the_default_schedules() -> None:
    per_record = dict.fromkeys(
        (
            "servicebus_messages_per_record",
            "function_invocations_per_record",
            "table_transactions_per_record",
            "blob_operations_per_record",
            "appinsights_items_per_record",
        ),
        0.0,
    )
    got = cost(per_record)
    runs = (12 + 2 + 1) * 24 * 30.4 + 30.4 / 7
    timers = runs * (0.40 / 1e6 + 2.048 * 0.000026)
    assert got["cost_fixed_per_month"] == {"servicebus_base": 9.81, "timers": round(timers, 2)}
    assert got["cost_usd_per_1000_users_month"] == round(9.81 + timers, 2)
