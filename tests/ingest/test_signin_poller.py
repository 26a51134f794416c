"""The sign-in poller against the Graph emulator, on Azurite and the in-process bus (issue #23 item 2):
licence detection at onboarding, paging, 429 Retry-After, a durable checkpoint, no loss and no doubles, and the
sign-ins published to the same enrichment queue as audit content."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest

from shared.app import Services
from shared.emulators.graph import Fault, GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.checkpoints import CheckpointStore
from shared.ingest.onboarding import onboard_tenant, tenant_status
from shared.ingest.signin_poller import CONTENT_TYPE, OVERLAP, poll_signins
from shared.platform import names
from shared.records.batches import read_batch_blob
from shared.records.event import parse_blob
from tests.ingest.conftest import PUBLISHER, TENANT_A, FakeClock, RecordingSleep
from tests.ingest.test_content import sent

ALICE_ID = "5f09333a-842c-47da-a157-57da27fcbca5"


@pytest.fixture
def graph(clock: FakeClock) -> Iterator[GraphEmulator]:
    with GraphEmulator(page_size=2, clock=clock) as emu:
        emu.add_tenant(TENANT_A)
        yield emu


@pytest.fixture
def svc(make_services: Any, emulator: ManagementApiEmulator, graph: GraphEmulator) -> Services:
    services: Services = make_services(emulator, graph=graph, publisher_id=PUBLISHER)
    return services


def signin(graph: GraphEmulator, clock: FakeClock, n: int, *, minutes_ago: float, error: int = 0) -> str:
    sid = f"0b5e7c1a-1111-4222-8333-{n:012d}"
    graph.add_signin(
        TENANT_A,
        {
            "id": sid,
            "createdDateTime": (clock() - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "userPrincipalName": "alice@contoso.com",
            "userId": ALICE_ID,
            "appId": "00000002-0000-0ff1-ce00-000000000000",
            "ipAddress": "198.51.100.10",
            "clientAppUsed": "Browser",
            "correlationId": f"c0c0c0c0-1111-4222-8333-{n:012d}",
            "conditionalAccessStatus": "success",
            "isInteractive": True,
            "status": {"errorCode": error},
        },
    )
    return sid


def published(svc: Services) -> list[str]:
    """The record ids of every batch published to the enrichment queue since the last call."""
    ids: list[str] = []
    for _, _, body in sent(svc, names.QUEUE_RECORDS):
        data = read_batch_blob(svc.storage, body["batch_blob"])
        events = parse_blob(data, expected_tenant=TENANT_A).events
        assert all(e.signin is not None and e.op in ("userloggedin", "userloginfailed") for e in events)
        ids += [e.record_id for e in events]
        assert body["content_type"] == CONTENT_TYPE
    return sorted(ids)


def test_onboarding_detects_the_licence_and_the_status_shows_it(svc: Services, graph: GraphEmulator) -> None:
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert status.signin_logs["state"] == "unavailable"  # no SKU yet: the product works without the logs
    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM", ["AAD_PREMIUM", "EXCHANGE_S_STANDARD"])
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert status.signin_logs["state"] == "available"
    assert tenant_status(svc, TENANT_A, live=False).to_dict()["signin_logs"]["state"] == "available"


def test_pages_throttling_checkpoint_and_no_doubles(
    svc: Services, graph: GraphEmulator, clock: FakeClock, sleeps: RecordingSleep
) -> None:
    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM_P2", ["AAD_PREMIUM", "AAD_PREMIUM_P2"])
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    first = [signin(graph, clock, n, minutes_ago=10 - n) for n in range(5)]  # three pages of two
    graph.inject(Fault(status=429, retry_after=3, count=1, path_prefix="/auditLogs/signIns"))
    report = poll_signins(svc)
    [t] = report.tenants
    assert (t.signins, t.unique, t.duplicates, t.error) == (5, 5, 0, None)
    assert 3.0 in sleeps.delays  # Retry-After honoured
    assert published(svc) == sorted(first)
    cp = CheckpointStore(svc.storage).get_checkpoint(TENANT_A, CONTENT_TYPE)
    assert cp.watermark == clock() and cp.last_error is None
    pages = [c for c in graph.calls_to("/auditLogs/signIns") if c.status == 200]
    assert len(pages) == 3 and all("skiptoken" in c.query for c in pages[1:])

    # ten minutes on: the overlap reads the last sign-ins again (no doubles), a late entry is not lost
    clock.advance(minutes=10)
    late = signin(graph, clock, 10, minutes_ago=12)  # created before the watermark, listed late
    new = signin(graph, clock, 11, minutes_ago=1)
    [t] = poll_signins(svc).tenants
    assert published(svc) == sorted([late, new])
    assert t.unique == 2 and t.duplicates == t.signins - 2 > 0
    # and a run with nothing new publishes nothing
    [t] = poll_signins(svc).tenants
    assert published(svc) == [] and t.unique == 0
    assert CheckpointStore(svc.storage).get_checkpoint(TENANT_A, CONTENT_TYPE).watermark == clock()
    assert timedelta(minutes=12) <= OVERLAP


def test_service_principal_sign_ins_are_read_through_the_beta_filter(
    svc: Services, graph: GraphEmulator, clock: FakeClock
) -> None:
    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM", ["AAD_PREMIUM"])
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    user = signin(graph, clock, 1, minutes_ago=5)
    graph.add_signin(
        TENANT_A,
        {
            "id": "2f8e5d1b-3c6a-4e9f-8b7d-1a2c3e4f5a00",
            "createdDateTime": (clock() - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "appId": "a5b6c7d8-1111-2222-3333-444455556666",
            "appDisplayName": "Contoso Payroll Sync",
            "ipAddress": "198.51.100.77",
            "signInEventTypes": ["servicePrincipal"],
            "servicePrincipalId": "0e4c2a18-6b3d-4f5e-9a7c-8d1e2f3a4b5c",
            "servicePrincipalName": "Contoso Payroll Sync",
            "status": {"errorCode": 0},
        },
    )
    graph.add_signin(  # a non-interactive sign-in: not read by the poller yet
        TENANT_A,
        {
            "id": "3a9e5d1b-3c6a-4e9f-8b7d-1a2c3e4f5a00",
            "createdDateTime": (clock() - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "userPrincipalName": "alice@contoso.com",
            "userId": ALICE_ID,
            "ipAddress": "198.51.100.10",
            "signInEventTypes": ["nonInteractiveUser"],
            "status": {"errorCode": 0},
        },
    )
    [t] = poll_signins(svc).tenants
    assert (t.signins, t.unique, t.error) == (2, 2, None)
    ops: dict[str, str] = {}
    for _, _, body in sent(svc, names.QUEUE_RECORDS):
        data = read_batch_blob(svc.storage, body["batch_blob"])
        ops.update({e.record_id: e.op for e in parse_blob(data, expected_tenant=TENANT_A).events})
    assert ops == {user: "userloggedin", "2f8e5d1b-3c6a-4e9f-8b7d-1a2c3e4f5a00": "serviceprincipalloggedin"}
    beta = [c for c in graph.calls if c.path == "/beta/auditLogs/signIns"]
    assert len(beta) == 1 and "servicePrincipal" in unquote_plus(beta[0].query)


def test_a_failed_run_keeps_the_watermark_and_the_next_run_loses_nothing(
    svc: Services, graph: GraphEmulator, clock: FakeClock
) -> None:
    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM", ["AAD_PREMIUM"])
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    ids = [signin(graph, clock, n, minutes_ago=30 - n) for n in range(3)]
    graph.inject(Fault(status=503, count=10, path_prefix="/auditLogs/signIns"))
    [t] = poll_signins(svc).tenants
    assert t.error == "service_unavailable" and published(svc) == []
    cp = CheckpointStore(svc.storage).get_checkpoint(TENANT_A, CONTENT_TYPE)
    assert cp.watermark is None and (cp.last_error or "").startswith("service_unavailable")
    graph.clear_faults()
    clock.advance(minutes=5)
    [t] = poll_signins(svc).tenants
    assert published(svc) == sorted(ids) and t.error is None


def test_tenants_without_the_licence_or_the_permission(svc: Services, graph: GraphEmulator, clock: FakeClock) -> None:
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")  # no SKU: unavailable, skipped
    signin(graph, clock, 1, minutes_ago=5)
    assert [t.skipped for t in poll_signins(svc).tenants] == ["no_premium_licence"]
    assert graph.calls_to("/auditLogs/signIns") == []
    # licensed but the app lacks AuditLog.Read.All: reported on the checkpoint, retried next run
    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM", ["AAD_PREMIUM"])
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    graph.set_permissions(TENANT_A, ["User.Read.All", "LicenseAssignment.Read.All"])
    [t] = poll_signins(svc).tenants
    assert t.error == "missing_permission"
    cp = CheckpointStore(svc.storage).get_checkpoint(TENANT_A, CONTENT_TYPE)
    assert "AuditLog.Read.All" in (cp.last_error or "")


def test_a_tenant_whose_licence_was_not_known_is_marked_on_graphs_non_premium_answer(
    svc: Services, graph: GraphEmulator, clock: FakeClock
) -> None:
    graph.set_permissions(TENANT_A, ["User.Read.All", "AuditLog.Read.All"])  # licences not readable
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert (status.signin_logs["state"], status.signin_logs["error"]) == ("unknown", "missing_permission")
    signin(graph, clock, 1, minutes_ago=5)
    assert [t.skipped for t in poll_signins(svc).tenants] == ["no_premium_licence"]  # Graph's 403 says so
    record = svc.tenants.get(TENANT_A)
    assert record is not None and record.signin_logs == "unavailable"
    calls = len(graph.calls_to("/auditLogs/signIns"))
    assert [t.skipped for t in poll_signins(svc).tenants] == ["no_premium_licence"]
    assert len(graph.calls_to("/auditLogs/signIns")) == calls  # not asked again until onboarding runs


def test_the_timer_feeds_the_same_enrichment_and_detection(
    svc: Services, graph: GraphEmulator, clock: FakeClock
) -> None:
    """function_app.poll_signins, then the queues: a sign-in Entra rated high risk becomes an alert."""
    from shared.app import configure
    from shared.platform.bus import InProcessBus
    from shared.runtime.local import LocalRuntime

    graph.add_subscribed_sku(TENANT_A, "AAD_PREMIUM_P2", ["AAD_PREMIUM", "AAD_PREMIUM_P2"])
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    sent(svc, names.QUEUE_ALERTS)
    sid = signin(graph, clock, 1, minutes_ago=3)
    with graph.state.lock:
        t = graph.state.tenant(TENANT_A)
        assert t is not None
        t.signins[-1].update(riskLevelDuringSignIn="high", riskState="atRisk", riskEventTypes_v2=["unfamiliarFeatures"])
    assert isinstance(svc.bus, InProcessBus)
    configure(svc)
    try:
        runtime = LocalRuntime(svc.bus)
        runtime.tick("poll_signins")
        runtime.run_until_idle()
    finally:
        configure(None)
    alerts = [a for a in (s.alert for s in svc.alert_store.list_alerts(TENANT_A)) if a.detector == "signin_entra_risk"]
    assert [(a.severity.value, list(a.evidence_record_ids)) for a in alerts] == [("high", [sid])]
    parked = {r["queue"] for r in svc.storage.table(names.TABLE_DEADLETTERS).list_entities()}
    assert parked <= {names.QUEUE_ALERTS}  # only the partner delivery, which this test does not configure
