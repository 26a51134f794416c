"""#25.10: the functions that hold cached clients, run by eight threads at once on one Services.

The Functions host runs several invocations of one worker on threads that share the composition root:
Graph clients are per tenant and thread (msgraph-sdk's client drives an event loop), Management Activity
clients per tenant (httpx.Client is thread-safe), and the cached pieces (tenant directory, identity resolver,
remediation runner) are built once under a lock. Each test releases its eight threads together (a barrier)
against the real emulators and Azurite, and checks every answer and that no thread raised (in particular no
``RuntimeError: This event loop is already running``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from shared.app import Services
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.checkpoints import FEED_CONTENT_TYPES
from shared.ingest.onboarding import onboard_tenant
from shared.remediation.ledger import ActionKind, LedgerEntry, RemediationRequest, RemediationState
from shared.remediation.runner import HandleOutcome

THREADS = 8
TENANTS = [f"{n:08x}-7c4f-4b8a-a2d6-3e5b7c9d0b{n:02x}" for n in range(1, THREADS + 1)]
TENANT = TENANTS[0]
USERS = [(f"{n:08x}-0000-4000-8000-0000000000{n:02x}", f"user{n}@contoso.com") for n in range(1, THREADS + 1)]

T = TypeVar("T")


def together(work: Callable[[int], T]) -> list[T]:
    """``work(0..7)`` on eight threads released at once; the results in order (any exception is re-raised)."""
    barrier = threading.Barrier(THREADS)

    def run(n: int) -> T:
        barrier.wait()
        return work(n)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(seed=11) as emu:
        for tenant in TENANTS:
            emu.add_tenant(tenant)
            for oid, upn in USERS:
                emu.add_user(tenant, id=oid, user_principal_name=upn, usage_location="DE")
        yield emu


@pytest.fixture
def svc(make_services: Any, emulator: ManagementApiEmulator, graph: GraphEmulator) -> Services:
    built: Services = make_services(emulator, graph=graph)
    return built


def test_eight_concurrent_onboardings_through_graph_and_the_management_api(svc: Services) -> None:
    statuses = together(lambda n: onboard_tenant(svc, tenant_id=TENANTS[n], name=f"Tenant {n}"))
    for n, status in enumerate(statuses):
        assert (status.tenant_id, status.state) == (TENANTS[n], "waiting_for_first_content")
        assert [f.subscription for f in status.feeds] == ["enabled"] * len(FEED_CONTENT_TYPES)
        assert status.identity == {"seeded": True, "users": THREADS, "home_countries": THREADS}
        record = svc.tenants.get(TENANTS[n])
        assert record is not None and record.detection["home_countries"] == {oid: "DE" for oid, _ in USERS}


def test_eight_concurrent_identity_resolutions_through_graph(svc: Services) -> None:
    results = together(lambda n: svc.identity_resolver.resolve(TENANT, [USERS[n][0], USERS[(n + 1) % THREADS][0]]))
    for n, got in enumerate(results):
        a, b = USERS[n], USERS[(n + 1) % THREADS]
        assert got.resolved == {a[0]: a[1], b[0]: b[1]} and got.unresolved == []
    # every answer is in the one shared cache now: no Graph call for any of them
    again = svc.identity_resolver.resolve(TENANT, [oid for oid, _ in USERS])
    assert (len(again.resolved), again.graph_calls, again.cache_hits) == (THREADS, 0, THREADS)


def test_eight_concurrent_remediations_through_graph(svc: Services, graph: GraphEmulator) -> None:
    def isolate(n: int) -> Any:
        request = RemediationRequest(
            tenant_id=TENANT,
            incident_id=f"inc-{n}",
            action=ActionKind.ISOLATE_IDENTITY,
            target={"user": USERS[n][0]},
            requested_by="itdr",
            approved=True,
        )
        # the ledger row of an approved action (a message claiming approval without one is refused)
        entry = LedgerEntry.new(request, state=RemediationState.PENDING, at=svc.now(), note="approved by soc")
        entry.approved_by = "soc"
        entry.decided_at = svc.now()
        svc.remediation_ledger.create_entry(entry)
        return svc.remediation.handle(request)

    results = together(isolate)
    assert [r.outcome for r in results] == [HandleOutcome.SUCCEEDED] * THREADS
    assert [r.entry.state for r in results] == [RemediationState.SUCCEEDED] * THREADS
    for oid, _ in USERS:
        user = graph.state.user(TENANT, oid)
        assert user is not None and user["accountEnabled"] is False


def test_pieces_are_built_once_when_threads_race_for_them(make_services: Any, emulator: ManagementApiEmulator) -> None:
    svc: Services = make_services(emulator)
    pieces = together(lambda n: (svc.tenants, svc.identity_resolver, svc.remediation, svc.management_client(TENANT)))
    for i in range(4):
        assert len({id(p[i]) for p in pieces}) == 1


def test_a_fresh_resolver_reads_the_partition_once_under_eight_threads(graph: GraphEmulator, azurite: Any) -> None:
    """The IdentityResolver's memory cache is shared by every thread: the partition is read once, not per thread."""
    import uuid

    from shared.enrich.identity import IdentityResolver
    from shared.graph.client import SyncGraphClient
    from shared.platform.storage import OperationCounter, StorageClients

    counter = OperationCounter()
    storage = StorageClients.from_connection_string(
        azurite.connection_string, namespace="t" + uuid.uuid4().hex[:10], counter=counter
    )
    storage.ensure_all()
    local = threading.local()
    made: list[SyncGraphClient] = []

    def graph_for(tenant: str) -> SyncGraphClient:
        if not hasattr(local, "client"):
            local.client = SyncGraphClient.create(tenant, credential=graph.credential(tenant), base_url=graph.base_url)
            made.append(local.client)
        client: SyncGraphClient = local.client
        return client

    IdentityResolver(storage, graph_for).learn(TENANT, [(oid, upn) for oid, upn in USERS])
    fresh = IdentityResolver(storage, graph_for)
    before = counter.counts["table"]
    results = together(lambda n: fresh.resolve(TENANT, [USERS[n][0]]))
    try:
        assert [r.resolved for r in results] == [{oid: upn} for oid, upn in USERS]
        assert sum(r.graph_calls for r in results) == 0
        assert counter.counts["table"] - before == 1  # one partition query for the eight threads
    finally:
        for c in made:
            c.close()
