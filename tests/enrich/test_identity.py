"""Identity resolution through msgsgraph-sdk against the Graph emulator, cached per tenant in Table Storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.emulators.graph import Fault, GraphEmulator
from shared.enrich.identity import IdentityResolver
from shared.graph.client import SyncGraphClient
from shared.platform.azurite import Azurite
from shared.platform.storage import OperationCounter, StorageClients

TENANT_A = "aaaaaaaa-1111-4111-8111-000000000001"
TENANT_B = "bbbbbbbb-2222-4222-8222-000000000002"
ALICE = "0a0a0a0a-0000-4000-8000-00000000a11c"
GONE = "0d0d0d0d-0000-4000-8000-0000000000dd"


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator() as g:
        for t in (TENANT_A, TENANT_B):
            g.add_tenant(t)
        g.add_user(TENANT_A, user_principal_name="Alice@Contoso.com", id=ALICE)
        yield g


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(
    graph: GraphEmulator, storage: StorageClients, clock: Clock
) -> tuple[IdentityResolver, dict[str, SyncGraphClient]]:
    clients: dict[str, SyncGraphClient] = {}

    def graph_for(tenant: str) -> SyncGraphClient:
        if tenant not in clients:
            clients[tenant] = SyncGraphClient.create(
                tenant, credential=graph.credential(tenant), base_url=graph.base_url
            )
        return clients[tenant]

    return IdentityResolver(storage, graph_for, clock=clock), clients


def test_hits_misses_and_negative_cache(graph: GraphEmulator, storage: StorageClients) -> None:
    clock = Clock()
    resolver, clients = make(graph, storage, clock)
    first = resolver.resolve(TENANT_A, [ALICE, GONE])
    assert (first.resolved, first.unresolved, first.graph_calls) == ({ALICE: "alice@contoso.com"}, [], 2)
    # a second process (fresh memory) finds both answers in Table Storage, the miss included
    again, _ = make(graph, storage, clock)
    second = again.resolve(TENANT_A, [ALICE, GONE])
    assert (second.resolved, second.graph_calls, second.cache_hits) == ({ALICE: "alice@contoso.com"}, 0, 2)
    # the negative answer expires after a day; the positive one lasts a week
    clock.now += 2 * 86400
    third = again.resolve(TENANT_A, [ALICE, GONE])
    assert (third.graph_calls, third.cache_hits) == (1, 1)
    for c in clients.values():
        c.close()


def test_graph_down_leaves_identities_unresolved_and_uncached(graph: GraphEmulator, storage: StorageClients) -> None:
    resolver, clients = make(graph, storage, Clock())
    graph.inject(Fault(503, count=1))
    down = resolver.resolve(TENANT_A, [ALICE, GONE])
    assert (down.resolved, sorted(down.unresolved), down.graph_calls) == ({}, sorted([ALICE, GONE]), 1)
    later = resolver.resolve(TENANT_A, [ALICE])
    assert later.resolved == {ALICE: "alice@contoso.com"}
    for c in clients.values():
        c.close()


def test_tenants_do_not_share_answers(graph: GraphEmulator, storage: StorageClients) -> None:
    resolver, clients = make(graph, storage, Clock())
    assert resolver.resolve(TENANT_A, [ALICE]).resolved == {ALICE: "alice@contoso.com"}
    other = resolver.resolve(TENANT_B, [ALICE])
    assert (other.resolved, other.cache_hits) == ({}, 0)
    for c in clients.values():
        c.close()


def test_table_cost_is_one_partition_read_per_process_and_one_transaction_per_hundred_answers(
    graph: GraphEmulator, azurite: Azurite
) -> None:
    known = [f"0a0a0a0a-0000-4000-8000-{i:012d}" for i in range(120)]
    for i, oid in enumerate(known):
        graph.add_user(TENANT_A, user_principal_name=f"user{i}@contoso.com", id=oid)
    asked = [*known, GONE]
    counter = OperationCounter()
    storage = StorageClients.from_connection_string(
        azurite.connection_string, namespace="t" + uuid.uuid4().hex[:10], counter=counter
    )
    clock = Clock()
    resolver, clients = make(graph, storage, clock)
    storage.ensure_all()
    before = counter.counts["table"]

    first = resolver.resolve(TENANT_A, asked)
    # one partition query (empty), then the 121 answers in two transactions (100 + 21)
    assert (len(first.resolved), first.graph_calls, counter.counts["table"] - before) == (120, 121, 3)
    before = counter.counts["table"]
    assert resolver.resolve(TENANT_A, asked).graph_calls == 0
    assert counter.counts["table"] == before  # the process remembers: no request at all

    again, more = make(graph, storage, clock)  # a second process reads the partition once
    second = again.resolve(TENANT_A, asked)
    assert (second.resolved, second.graph_calls, second.cache_hits) == (first.resolved, 0, 121)
    assert counter.counts["table"] - before == 1
    for c in [*clients.values(), *more.values()]:
        c.close()


def test_a_upn_without_its_object_id_resolves_through_graph_then_from_the_cache(
    graph: GraphEmulator, storage: StorageClients
) -> None:
    """Exchange records carry a PUID in UserKey: their UPN is resolved to the object ID the sign-ins are keyed on."""
    clock = Clock()
    resolver, _ = make(graph, storage, clock)
    first = resolver.resolve_upns(TENANT_A, ["alice@contoso.com", "nobody@contoso.com"])
    assert (first.resolved, first.unresolved, first.graph_calls) == ({"alice@contoso.com": ALICE}, [], 2)
    again, _ = make(graph, storage, clock)  # another instance reads the stored answers
    second = again.resolve_upns(TENANT_A, ["Alice@Contoso.com", "nobody@contoso.com"])
    assert (second.resolved, second.graph_calls, second.cache_hits) == ({"alice@contoso.com": ALICE}, 0, 2)


def test_pairs_carried_by_records_are_learned_both_ways_without_graph(
    graph: GraphEmulator, storage: StorageClients
) -> None:
    clock = Clock()
    resolver, _ = make(graph, storage, clock)
    bob = "0b0b0b0b-0000-4000-8000-00000000b0b0"
    assert resolver.learn(TENANT_A, [(bob.upper(), "Bob@Contoso.com")]) == 2
    assert resolver.learn(TENANT_A, [(bob, "bob@contoso.com")]) == 0  # known: nothing written again
    other, _ = make(graph, storage, clock)
    upns = other.resolve_upns(TENANT_A, ["bob@contoso.com"])
    oids = other.resolve(TENANT_A, [bob])
    assert (upns.resolved, oids.resolved, upns.graph_calls + oids.graph_calls) == (
        {"bob@contoso.com": bob},
        {bob: "bob@contoso.com"},
        0,
    )


def test_hostile_upns_and_object_ids_are_stored_and_found_again(graph: GraphEmulator, storage: StorageClients) -> None:
    """#25.4: a C1 control character or a ~1,000-character id in a record must not make the write fail."""
    clock = Clock()
    resolver, _ = make(graph, storage, clock)
    pairs = [("c1\u0085\u009fid", "c1\u0085user@contoso.com"), ("o" * 1000, ("u" * 990) + "@contoso.com")]
    assert resolver.learn(TENANT_A, pairs) == 4
    other, _ = make(graph, storage, clock)
    upns = other.resolve_upns(TENANT_A, [u for _, u in pairs])
    oids = other.resolve(TENANT_A, [o for o, _ in pairs])
    assert upns.resolved == {u: o for o, u in pairs} and oids.resolved == dict(pairs)
    assert upns.graph_calls + oids.graph_calls == 0
