"""The poller through the real client against the Management API emulator, with Azurite and the in-process bus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.alert_model import alert_id_for
from shared.app import Services
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.checkpoints import FEED_CONTENT_TYPES, Checkpoint, CheckpointStore
from shared.ingest.health import DETECTOR
from shared.ingest.onboarding import onboard_tenant
from shared.ingest.poller import OVERLAP, poll_tenants
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
AAD, EXO, SPO, GEN = FEED_CONTENT_TYPES
H = timedelta(hours=1)


@pytest.fixture
def svc(make_services: Any, emulator: ManagementApiEmulator) -> Services:
    """Services on Azurite, an in-process bus and the emulator (one cached client per tenant)."""
    services: Services = make_services(emulator)
    return services


def onboard(svc: Services, *tenants: str) -> None:
    for tid in tenants or (TENANT_A,):
        onboard_tenant(svc, tenant_id=tid, name=tid[:4])


def add(emulator: ManagementApiEmulator, created: datetime, *, tenant: str = TENANT_A, ct: str = AAD, **kw: Any) -> str:
    record = {"Id": f"rec-{created.isoformat()}-{ct}", "Operation": "UserLoggedIn", "OrganizationId": tenant}
    return str(emulator.add_content(tenant, ct, [record], created=created, **kw)["contentId"])


def queued(svc: Services) -> list[dict[str, Any]]:
    """The ContentRefs waiting on the content queue (received and completed)."""
    assert isinstance(svc.bus, InProcessBus)
    out = []
    while got := svc.bus.receive(names.QUEUE_CONTENT, max_messages=50):
        for m in got:
            body = orjson.loads(m.body)
            assert m.message_id == body["content_id"]
            out.append(body)
            svc.bus.complete(m)
    return out


def queued_ids(svc: Services) -> list[str]:
    return sorted(r["content_id"] for r in queued(svc))


def listings(emulator: ManagementApiEmulator, since: int = 0) -> list[tuple[str, str, bool]]:
    return [
        (r.query.get("startTime", ""), r.query.get("endTime", ""), "nextPage" in r.query)
        for r in emulator.requests[since:]
        if r.operation == "list_content" and r.query.get("contentType") == AAD
    ]


def feed(report: Any, tenant: str, ct: str) -> Any:
    t = next(t for t in report.tenants if t.tenant_id == tenant)
    return next(f for f in t.feeds if f.content_type == ct)


def set_watermark(svc: Services, watermark: datetime, *, tenant: str = TENANT_A, ct: str = AAD) -> None:
    CheckpointStore(svc.storage).save_progress(Checkpoint(tenant, ct, watermark=watermark))


# ----------------------------------------------------------------------------- windows and pages


def test_first_poll_covers_the_last_24_hours_and_moves_the_watermark(svc: Services, emulator, clock) -> None:
    onboard(svc)
    now = clock()
    add(emulator, now - 30 * H)  # before the first window
    inside = [add(emulator, now - 23 * H), add(emulator, now - H), add(emulator, now - H, ct=EXO)]
    report = poll_tenants(svc)
    assert queued_ids(svc) == sorted(inside)
    assert report.errors() == {}
    assert report.enqueued == 3
    cp = CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD)
    assert (cp.watermark, cp.cursor, cp.newest_content_at, cp.last_error) == (now, None, now - H, None)
    assert listings(emulator) == [("2025-03-09T15:00:00", "2025-03-10T15:00:00", False)]


def test_a_poll_follows_more_than_three_pages(svc: Services, emulator, clock) -> None:
    onboard(svc)
    ids = [add(emulator, clock() - timedelta(minutes=10 * i + 1)) for i in range(7)]  # page_size=2: 4 pages
    report = poll_tenants(svc)
    aad = feed(report, TENANT_A, AAD)
    assert (aad.pages, aad.enqueued, aad.error) == (4, 7, None)
    assert queued_ids(svc) == sorted(ids)
    assert [paging for *_, paging in listings(emulator)] == [False, True, True, True]


def test_a_window_longer_than_24_hours_is_listed_in_slices(svc: Services, emulator, clock) -> None:
    onboard(svc)
    now = clock()
    set_watermark(svc, now - 50 * H)
    ids = [add(emulator, now - h * H) for h in (50.5, 49, 30, 26, 2)]  # 50.5 h: inside the overlap
    poll_tenants(svc)
    assert queued_ids(svc) == sorted(ids)
    assert listings(emulator) == [
        ("2025-03-08T12:00:00", "2025-03-09T12:00:00", False),
        ("2025-03-08T12:00:00", "2025-03-09T12:00:00", True),  # its second page
        ("2025-03-09T12:00:00", "2025-03-10T12:00:00", False),
        ("2025-03-10T12:00:00", "2025-03-10T15:00:00", False),
    ]
    assert CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD).watermark == now


def test_catch_up_after_a_week_of_downtime(svc: Services, emulator, clock) -> None:
    onboard(svc)
    now = clock()
    set_watermark(svc, now - timedelta(hours=166))
    ids = [add(emulator, now - h * H) for h in range(1, 166, 12)]
    report = poll_tenants(svc)
    assert queued_ids(svc) == sorted(ids)
    windows = listings(emulator)
    assert len(windows) == 7  # 167 h in 24 h slices
    assert windows[0][0] == "2025-03-03T16:00:00"  # watermark − 1 h overlap
    assert report.errors() == {}
    assert [s.alert for s in svc.alert_store.list_alerts(TENANT_A)] == []


def test_a_watermark_past_the_retention_raises_a_data_loss_alert(svc: Services, emulator, clock) -> None:
    onboard(svc)
    now = clock()
    set_watermark(svc, now - timedelta(days=9))
    kept = add(emulator, now - timedelta(hours=100))
    poll_tenants(svc)
    assert queued_ids(svc) == [kept]
    assert listings(emulator)[0][0] == "2025-03-03T15:05:00"  # clamped to now − 167 h 55 min
    alerts = [s.alert for s in svc.alert_store.list_alerts(TENANT_A)]
    assert [(a.detector, a.category.value, a.severity.value, a.context["kind"]) for a in alerts] == [
        (DETECTOR, "integration_health", "high", "data_loss_gap")
    ]
    assert alerts[0].alert_id == alert_id_for(TENANT_A, DETECTOR, f"data_loss_gap:{AAD}", f"feed:{AAD}:2025-03-10")
    assert alerts[0].context["gap_start"] == (now - timedelta(days=9)).isoformat()
    assert alerts[0].context["lost_hours"] == 48.1


def test_the_next_poll_starts_an_hour_before_the_watermark(svc: Services, emulator, clock) -> None:
    onboard(svc)
    poll_tenants(svc)
    clock.advance(minutes=5)
    first = len(emulator.requests)
    poll_tenants(svc)
    assert listings(emulator, first) == [("2025-03-10T14:00:00", "2025-03-10T15:05:00", False)]
    assert OVERLAP == H


# ----------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "options", "waits"),
    [
        ("throttle_429", {"retry_after": 1}, [1.0]),
        ("throttle_403", {"retry_after": 2}, [2.0]),
        ("server_error", {}, [2.0]),
        ("server_error", {"status": 503}, [2.0]),
        ("slow", {"delay": 0.05}, []),
        ("long_page_chain", {}, []),
        ("invalid_next_page", {}, []),
        ("duplicate_content", {}, []),
    ],
)
def test_listing_faults_are_absorbed(
    svc: Services, emulator, clock, sleeps, fault: str, options: dict, waits: list
) -> None:
    onboard(svc)
    ids = [add(emulator, clock() - timedelta(minutes=5 * i + 1)) for i in range(5)]
    emulator.inject(fault, tenant=TENANT_A, content_type=AAD, operation="list_content", **options)
    report = poll_tenants(svc)
    assert report.errors() == {}
    assert queued_ids(svc) == sorted(ids)
    assert sleeps.delays == waits
    assert emulator.stats.faults == {fault: 1}


def test_a_throttled_tenant_does_not_stop_the_others(svc: Services, emulator, clock, sleeps) -> None:
    onboard(svc, TENANT_A, TENANT_B)
    a, b = add(emulator, clock() - H), add(emulator, clock() - H, tenant=TENANT_B)
    emulator.inject("throttle_429", times=100, tenant=TENANT_A, retry_after=1)
    report = poll_tenants(svc)
    assert queued_ids(svc) == [b]
    assert report.errors() == {TENANT_A: [f"{ct}:throttled" for ct in FEED_CONTENT_TYPES]}
    assert [feed(report, TENANT_A, ct).skipped for ct in FEED_CONTENT_TYPES] == [False, True, True, True]
    assert CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD).watermark is None
    assert sleeps.delays == [1.0, 1.0, 1.0]  # the client's bounded retries, then the tenant waits for the next run
    emulator.clear_faults()
    poll_tenants(svc)
    assert queued_ids(svc) == [a]


class CrashingBus:
    """Sends, then dies (the process stopped between the send and the checkpoint write) on chosen sends."""

    def __init__(self, inner: InProcessBus, crash_on: set[int]) -> None:
        self.inner, self.crash_on, self.sends = inner, crash_on, 0

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self.inner.send(queue, messages)
        self.sends += 1
        if self.sends in self.crash_on:
            raise RuntimeError("process died after the send")


def test_a_crash_between_send_and_checkpoint_replays_without_duplicates(
    svc: Services, make_services: Any, emulator, clock
) -> None:
    onboard(svc)
    ids = [add(emulator, clock() - timedelta(minutes=10 * i + 1)) for i in range(5)]  # 3 pages
    real = svc.bus
    assert isinstance(real, InProcessBus)
    crashing = make_services(emulator, bus=CrashingBus(real, crash_on={2}))  # the process that dies
    report = poll_tenants(crashing)
    assert feed(report, TENANT_A, AAD).error == "RuntimeError"
    cp = CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD)
    assert (cp.watermark, cp.cursor is not None) == (None, True)  # after page 1: its cursor, no watermark
    before = len(emulator.requests)
    poll_tenants(svc)
    assert listings(emulator, before)[0][2] is True  # resumed on page 2, not page 1
    assert queued_ids(svc) == sorted(ids)  # every blob exactly once
    # page 2 was sent twice, and the 1 h overlap lists the five blobs again: the queue dropped all copies
    assert real.stats.duplicates_dropped == 2 + 5
    assert CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD).watermark == clock()


def test_a_subscription_disabled_by_an_admin_alerts_and_restarts(svc: Services, emulator, clock) -> None:
    onboard(svc)
    clock.advance(minutes=20)
    blob = add(emulator, clock() - H)
    emulator.disable_subscription(TENANT_A, AAD, by="a tenant admin")
    report = poll_tenants(svc)
    aad = feed(report, TENANT_A, AAD)
    assert (aad.restarted, aad.error, aad.enqueued) == (True, None, 1)
    assert queued_ids(svc) == [blob]
    assert emulator.subscription(TENANT_A, AAD)["status"] == "enabled"
    alerts = [s.alert for s in svc.alert_store.list_alerts(TENANT_A)]
    assert [(a.context["kind"], a.context["code"], a.mitre) for a in alerts] == [
        ("subscription_disabled", "AF20023", ("T1562.008",))
    ]
    # disabled again five minutes later: the 15 min spacing holds the restart back
    clock.advance(minutes=5)
    emulator.disable_subscription(TENANT_A, AAD)
    starts = emulator.stats.by_operation["start_subscription"]
    report = poll_tenants(svc)
    assert (feed(report, TENANT_A, AAD).restarted, feed(report, TENANT_A, AAD).error) == (
        False,
        "subscription_disabled",
    )
    assert emulator.stats.by_operation["start_subscription"] == starts
    assert feed(report, TENANT_A, EXO).error is None


def test_the_same_content_listed_again_days_later_is_dropped_by_the_queue(svc: Services, emulator, clock) -> None:
    onboard(svc)
    cid = add(emulator, clock() - H)
    poll_tenants(svc)
    assert queued_ids(svc) == [cid]
    clock.advance(days=3)
    emulator.add_content(TENANT_A, AAD, [{"Id": "again"}], created=clock() - timedelta(minutes=30), content_id=cid)
    report = poll_tenants(svc)
    assert feed(report, TENANT_A, AAD).enqueued == 2  # the first listing (in the overlap) and the new one
    assert queued_ids(svc) == []
    assert isinstance(svc.bus, InProcessBus) and svc.bus.stats.duplicates_dropped == 2


def test_offboarded_tenants_are_not_polled(svc: Services, emulator, clock) -> None:
    onboard(svc, TENANT_A, TENANT_B)
    directory = svc.tenants
    record = directory.get(TENANT_B)
    assert record is not None
    directory.upsert(record.model_copy(update={"status": "offboarded"}))
    add(emulator, clock() - H, tenant=TENANT_B)
    report = poll_tenants(svc)
    assert [t.tenant_id for t in report.tenants] == [TENANT_A]
    assert queued_ids(svc) == []


def test_content_created_exactly_at_the_window_end_waits_for_the_next_window(svc: Services, emulator, clock) -> None:
    onboard(svc)
    edge = add(emulator, clock().astimezone(UTC))  # contentCreated == now: endTime is exclusive
    poll_tenants(svc)
    assert queued_ids(svc) == []
    clock.advance(minutes=5)
    poll_tenants(svc)
    assert queued_ids(svc) == [edge]


def test_a_next_page_on_another_host_is_never_followed(svc: Services, emulator, clock) -> None:
    onboard(svc)
    ids = [add(emulator, clock() - timedelta(minutes=10 * i + 1)) for i in range(3)]
    emulator.inject("foreign_next_page", tenant=TENANT_A, content_type=AAD, host="localhost")
    report = poll_tenants(svc)
    assert feed(report, TENANT_A, AAD).error == "forbidden_target"
    assert queued_ids(svc) == []  # the page that named another host is not used
    assert listings(emulator) == [("2025-03-09T15:00:00", "2025-03-10T15:00:00", False)]  # page 2 never requested
    assert CheckpointStore(svc.storage).get_checkpoint(TENANT_A, AAD).last_error == "forbidden_target"
    poll_tenants(svc)
    assert queued_ids(svc) == sorted(ids)


# ----------------------------------------------------------------------------- #25.5: claimed checkpoint writes


def test_concurrent_checkpoint_writers_cannot_move_the_watermark_back(storage: Any) -> None:
    """Two overlapping polls read the same row; the one that saves second (a stale ETag) loses and writes nothing."""
    from shared.platform.errors import ConcurrencyError

    store = CheckpointStore(storage)
    first = store.get_checkpoint(TENANT_A, AAD)
    second = store.get_checkpoint(TENANT_A, AAD)
    early, late = datetime(2025, 3, 10, 14, 0, tzinfo=UTC), datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
    saved = store.save_progress(replace(first, watermark=late))  # conditional create: there was no row
    with pytest.raises(ConcurrencyError):
        store.save_progress(replace(second, watermark=early))  # both found no row: only one creates it
    assert store.get_checkpoint(TENANT_A, AAD).watermark == late
    again = store.get_checkpoint(TENANT_A, AAD)
    store.save_progress(replace(saved, cursor="https://x/next", cursor_start=early, cursor_end=late))
    with pytest.raises(ConcurrencyError):
        store.save_progress(replace(again, watermark=early, cursor=None))  # read before the save above
    now = store.get_checkpoint(TENANT_A, AAD)
    assert (now.watermark, now.cursor) == (late, "https://x/next")
    # the start log is a plain MERGE of other columns: it never takes the listing columns with it
    store.record_start(TENANT_A, AAD, at=late)
    assert store.get_checkpoint(TENANT_A, AAD).watermark == late
