"""Feed health through the real client against the emulator: alerts, repairs, what needs a person."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.alert_model import Category, Severity, alert_id_for
from shared.app import Services
from shared.emulators.management_api import ManagementApiEmulator
from shared.functions import detect_records
from shared.functions.fate import Inbound, run_message
from shared.ingest.checkpoints import FEED_CONTENT_TYPES, Checkpoint, CheckpointStore
from shared.ingest.content import process_content_message
from shared.ingest.health import DETECTOR, check_feeds, emit_alerts, integration_alert
from shared.ingest.onboarding import onboard_tenant
from shared.ingest.webhook import handle_webhook
from shared.messages import ContentRef
from shared.platform import names
from shared.platform.bus import InProcessBus
from shared.platform.telemetry import telemetry

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
WEBHOOK = "https://itdr.example/api/o365/webhook"
AAD, EXO, SPO, GEN = FEED_CONTENT_TYPES
NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)


class Router:
    """Webhook sender: handshakes and notifications go to handle_webhook; ``fail`` makes notifications fail."""

    def __init__(self) -> None:
        self.svc: Services | None = None
        self.fail = False

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        assert self.svc is not None
        if self.fail and "Webhook-ValidationCode" not in headers:
            return 500
        return handle_webhook(self.svc, headers=headers, body=body)[0]


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def make_svc(make_services: Any, router: Router) -> Any:
    """Build Services for an emulator (optionally with a webhook, or a scripted HTTP transport); closes clients."""

    def build(emulator: ManagementApiEmulator, *, webhook: bool = False, http: httpx.Client | None = None) -> Services:
        svc: Services = make_services(emulator, http=http, webhook_url=WEBHOOK if webhook else None)
        router.svc = svc
        return svc

    return build


@pytest.fixture
def svc(make_svc: Any, emulator: ManagementApiEmulator) -> Services:
    services: Services = make_svc(emulator)
    onboard_tenant(services, tenant_id=TENANT_A, name="Contoso")
    return services


def seen_content(svc: Services, ct: str, at: datetime, watermark: datetime | None = None) -> None:
    CheckpointStore(svc.storage).save_progress(
        Checkpoint(TENANT_A, ct, watermark=watermark or NOW, newest_content_at=at)
    )


def kinds(report: Any) -> list[tuple[str, str]]:
    return sorted((a.context["kind"], a.context["content_type"]) for a in report.alerts)


def test_healthy_feeds_raise_nothing_and_are_recorded(svc: Services, clock) -> None:
    for ct in FEED_CONTENT_TYPES:
        seen_content(svc, ct, clock() - timedelta(hours=1))
    report = check_feeds(svc)
    assert (report.alerts, report.needs_human, report.errors) == ([], [], {})
    assert [(f.content_type, f.subscription, f.lag_s, f.repairs) for f in report.feeds] == [
        (ct, "enabled", 3600.0, []) for ct in FEED_CONTENT_TYPES
    ]
    row = svc.storage.table(names.TABLE_FEED_HEALTH).get_entity(TENANT_A, AAD)
    assert (row["subscription"], row["lag_s"], row["alerts"]) == ("enabled", 3600.0, "")


def test_a_disabled_subscription_alerts_is_repaired_and_parked_content_replayed(svc: Services, emulator, clock) -> None:
    clock.advance(minutes=20)
    for ct in FEED_CONTENT_TYPES:
        seen_content(svc, ct, clock() - timedelta(hours=1))
    entry = emulator.add_content(TENANT_A, AAD, [{"Id": "r1"}], created=clock() - timedelta(hours=1))
    body = ContentRef(
        tenant_id=TENANT_A,
        content_type=AAD,
        content_id=entry["contentId"],
        content_uri=entry["contentUri"],
        content_created=entry["contentCreated"],
    ).encode()
    emulator.disable_subscription(TENANT_A, AAD, by="a tenant admin")
    run_message(svc, Inbound(names.QUEUE_CONTENT, body, entry["contentId"]), process_content_message)  # parked
    report = check_feeds(svc)
    assert kinds(report) == [("subscription_disabled", AAD)]
    alert = report.alerts[0]
    assert (alert.alert_id, alert.category, alert.severity, alert.detector, alert.evidence_record_ids) == (
        alert_id_for(TENANT_A, DETECTOR, f"subscription_disabled:{AAD}", f"feed:{AAD}:2025-03-10"),
        Category.INTEGRATION_HEALTH,
        Severity.HIGH,
        DETECTOR,
        [f"feed:{AAD}:2025-03-10"],
    )
    assert [s.alert for s in svc.alert_store.list_alerts(TENANT_A)] == [alert]
    aad = report.feeds[0]
    assert (aad.subscription, aad.repairs) == ("enabled", ["started"])
    assert emulator.subscription(TENANT_A, AAD)["status"] == "enabled"
    repairs = list(svc.storage.table(names.TABLE_FEED_HEALTH).query_entities("RowKey ge 'repair|'"))
    assert [(r["content_type"], r["subscription_before"], orjson.loads(r["outcome"])["action"]) for r in repairs] == [
        (AAD, "disabled", "started")
    ]
    assert report.replayed == 1
    assert list(svc.storage.table(names.TABLE_DEADLETTERS).list_entities()) == []
    assert isinstance(svc.bus, InProcessBus)
    (replayed,) = svc.bus.receive(names.QUEUE_CONTENT, max_messages=10)
    assert (replayed.message_id, replayed.body) == (f"{entry['contentId']}:replay:1", body)


def test_a_restart_within_fifteen_minutes_waits(svc: Services, emulator, clock) -> None:
    emulator.disable_subscription(TENANT_A, AAD)
    before = emulator.stats.by_operation["start_subscription"]
    report = check_feeds(svc)
    assert report.feeds[0].repairs == ["deferred:start_spacing"]
    assert emulator.stats.by_operation["start_subscription"] == before


@pytest.mark.parametrize(
    ("ct", "silent_hours", "alerted"),
    [(AAD, 5, False), (AAD, 7, True), (EXO, 11, False), (EXO, 13, True), (SPO, 25, True), (GEN, 47, False)],
)
def test_silence_thresholds_per_content_type(svc: Services, clock, ct: str, silent_hours: int, alerted: bool) -> None:
    for other in FEED_CONTENT_TYPES:
        seen_content(svc, other, clock() - timedelta(hours=1))
    seen_content(svc, ct, clock() - timedelta(hours=silent_hours))
    report = check_feeds(svc)
    assert kinds(report) == ([("feed_silent", ct)] if alerted else [])
    if alerted:
        assert report.alerts[0].context["silent_hours"] == silent_hours


def test_a_new_tenant_gets_twelve_hours_for_its_first_content(svc: Services, clock) -> None:
    clock.advance(hours=17)  # 12 h grace + 5 h: under AAD's 6 h
    assert kinds(check_feeds(svc)) == []
    clock.advance(hours=2)
    assert kinds(check_feeds(svc)) == [("feed_silent", AAD)]


def test_thresholds_are_configurable(svc: Services, make_services: Any, emulator: ManagementApiEmulator, clock) -> None:
    for ct in FEED_CONTENT_TYPES:
        seen_content(svc, ct, clock() - timedelta(hours=2))
    assert kinds(check_feeds(svc, thresholds={GEN: timedelta(hours=1)})) == [("feed_silent", GEN)]
    shorter: Services = make_services(emulator, feed_silence={EXO: timedelta(minutes=30)})
    assert kinds(check_feeds(shorter)) == [("feed_silent", EXO)]


def test_a_watermark_far_behind_alerts(svc: Services, clock) -> None:
    for ct in FEED_CONTENT_TYPES:
        seen_content(svc, ct, clock() - timedelta(hours=1))
    seen_content(svc, EXO, clock() - timedelta(hours=1), watermark=clock() - timedelta(hours=50))
    report = check_feeds(svc)
    assert kinds(report) == [("watermark_lag", EXO)]
    assert report.alerts[0].context["lag_hours"] == 50.0


def test_a_disabled_webhook_is_registered_again(make_svc, clock, router: Router) -> None:
    with ManagementApiEmulator(now=clock, webhook_sender=router, webhook_failure_limit=2) as emu:
        svc = make_svc(emu, webhook=True)
        onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
        auth = emu.subscription(TENANT_A, AAD)["webhook"]["authId"]
        router.fail = True
        for _ in range(2):
            emu.add_content(TENANT_A, AAD, [{"Id": "r"}], created=clock() - timedelta(minutes=5))
        assert emu.subscription(TENANT_A, AAD)["webhook"]["status"] == "disabled"
        router.fail = False
        clock.advance(minutes=20)
        report = check_feeds(svc)
        assert [(f.content_type, f.webhook, f.repairs) for f in report.feeds] == [
            (AAD, "enabled", ["started"]),
            (EXO, "enabled", []),
            (SPO, "enabled", []),
            (GEN, "enabled", []),
        ]
        assert emu.subscription(TENANT_A, AAD)["webhook"] == {
            "status": "enabled",
            "address": WEBHOOK,
            "authId": auth,
            "expiration": None,
        }


def test_audit_logging_off_needs_a_human(make_svc, emulator) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant x does not exist."
        return httpx.Response(500, json={"error": {"code": "AF50000", "message": message}})

    svc = make_svc(emulator, http=httpx.Client(transport=httpx.MockTransport(handler)))
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    report = check_feeds(svc)
    assert [(h.tenant_id, h.reason) for h in report.needs_human] == [(TENANT_A, "audit_log_disabled")]
    assert ("audit_log_disabled", "*") in kinds(report)
    assert [f.subscription for f in report.feeds] == ["unknown"] * 4


def test_a_feed_alert_becomes_an_incident_in_the_tenant_session_once(
    svc: Services, clock, caplog: pytest.LogCaptureFixture
) -> None:
    for ct in FEED_CONTENT_TYPES:
        seen_content(svc, ct, clock() - timedelta(hours=1))
    seen_content(svc, EXO, clock() - timedelta(hours=13))
    with caplog.at_level(logging.WARNING, logger="shared.ingest.health"):
        (alert,) = check_feeds(svc).alerts
    # what the feed-health monitor of infra/modules/monitoring.bicep queries: a warning with the category
    (warning,) = [r for r in caplog.records if r.getMessage().startswith("integration health")]
    assert (warning.tenant_id, warning.category, warning.detector_id, warning.kind) == (  # type: ignore[attr-defined]
        TENANT_A,
        "integration_health",
        DETECTOR,
        "feed_silent",
    )
    clock.advance(minutes=30)
    assert kinds(check_feeds(svc)) == [("feed_silent", EXO)]  # still silent: the same alert, counted
    assert isinstance(svc.bus, InProcessBus)
    (msg,) = svc.bus.receive(names.QUEUE_DETECT, max_messages=10)  # one message for both checks
    assert (msg.session_id, orjson.loads(msg.body)) == (
        TENANT_A,
        {"kind": "raised_alerts", "tenant_id": TENANT_A, "alert_ids": [alert.alert_id], "source": "feed_health"},
    )
    mark = telemetry().items
    folded = run_message(svc, Inbound(names.QUEUE_DETECT, msg.body, msg.message_id, TENANT_A), detect_records.handle)
    assert isinstance(folded, list)
    svc.bus.complete(msg)
    emitted = telemetry().since(mark)
    assert [(n, v, d) for n, v, d in emitted if n == "itdr.alerts"] == [
        (
            "itdr.alerts",
            1,
            {
                "tenant_id": TENANT_A,
                "detector_id": DETECTOR,
                "severity": alert.severity.value,
                "category": "integration_health",
            },
        )
    ]
    assert [(a.alert_id, a.count) for a in folded] == [(alert.alert_id, 2)]
    (incident,) = svc.incident_book.list_incidents(TENANT_A)
    assert (incident.alert_ids, [e.category for e in incident.entries]) == (
        [alert.alert_id],
        [Category.INTEGRATION_HEALTH],
    )


def test_integration_alerts_are_deterministic_per_day_and_merge(svc: Services) -> None:
    def make(when: datetime) -> Any:
        return integration_alert(tenant_id=TENANT_A, kind="feed_silent", content_type=AAD, when=when, summary="s")

    first = make(NOW)
    assert (first.title, first.dedup_key, first.evidence_record_ids) == (
        "Audit feed silent",
        f"feed_silent:{AAD}",
        [f"feed:{AAD}:2025-03-10"],
    )
    assert make(NOW + timedelta(hours=8)).alert_id == first.alert_id  # same UTC day
    assert make(NOW + timedelta(hours=9)).alert_id != first.alert_id  # 2025-03-11
    emit_alerts(svc, [first])
    emit_alerts(svc, [make(NOW + timedelta(hours=2)), make(NOW + timedelta(hours=2))])
    (stored,) = [s.alert for s in svc.alert_store.list_alerts(TENANT_A)]
    assert (stored.count, stored.first_seen, stored.last_seen) == (
        2,
        NOW.timestamp(),
        (NOW + timedelta(hours=2)).timestamp(),
    )


def test_the_check_purges_expired_ledger_entries(svc: Services, clock) -> None:
    from shared.ingest.ledger import ContentEntry, ContentLedger, RecordLedger

    ledger = ContentLedger(svc.storage)
    ledger.put_entry(ContentEntry(TENANT_A, "old", "done"), now=clock() - timedelta(days=9))
    ledger.put_entry(ContentEntry(TENANT_A, "new", "done"), now=clock() - timedelta(days=1))
    records = RecordLedger(svc.storage)
    records.add(TENANT_A, {"2025-02-20": {1}, "2025-03-09": {2}})
    check_feeds(svc)
    rows = svc.storage.table(names.TABLE_CONTENT_LEDGER).list_entities()
    assert sorted(r["RowKey"] for r in rows) == ["new"]
    blobs = svc.storage.container(names.CONTAINER_LEDGER).list_blobs(name_starts_with="ledger/")
    assert [b.name for b in blobs] == [f"ledger/{TENANT_A}/2025-03-09"]


def test_the_protected_identities_are_refreshed_once_a_day(make_services: Any, emulator, clock) -> None:
    from shared.emulators.graph import GraphEmulator

    global_admin = "62e90394-69f5-4237-9190-012177145e10"
    with GraphEmulator(seed=3) as graph:
        graph.add_tenant(TENANT_A)
        alice = graph.add_user(TENANT_A, user_principal_name="alice@contoso.com")
        bob = graph.add_user(TENANT_A, user_principal_name="bob@contoso.com")
        graph.add_role_member(TENANT_A, global_admin, alice)
        services: Services = make_services(emulator, graph=graph)
        onboard_tenant(services, tenant_id=TENANT_A, name="Contoso")
        first = services.tenants.get(TENANT_A)
        assert first is not None and first.protected_identities == sorted([alice.lower(), "alice@contoso.com"])
        graph.add_role_member(TENANT_A, global_admin, bob)
        clock.advance(hours=23)
        check_feeds(services)
        same = services.tenants.get(TENANT_A)
        assert same is not None and same.protected_identities == first.protected_identities  # not a day yet
        clock.advance(hours=1)
        check_feeds(services)
        later = services.tenants.get(TENANT_A)
        assert later is not None
        assert later.protected_identities == sorted(
            [alice.lower(), bob.lower(), "alice@contoso.com", "bob@contoso.com"]
        )
        assert later.webhook_auth_hash == first.webhook_auth_hash  # the rest of the record kept
