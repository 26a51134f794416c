"""The per-user state store: Table Storage against Azurite, and its in-memory twin."""

from __future__ import annotations

import pytest

from shared.detection.state import MAX_STATE_BYTES, InMemoryStateStore, StateStore, UserState
from shared.detection.table_state import TableStateStore
from shared.platform.errors import ConcurrencyError
from shared.platform.storage import StorageClients

TENANT_A = "aaaaaaaa-0000-0000-0000-000000000001"
TENANT_B = "bbbbbbbb-0000-0000-0000-000000000002"


@pytest.fixture(params=["memory", "table"])
def make_store(request: pytest.FixtureRequest, storage: StorageClients) -> object:
    if request.param == "memory":
        shared = InMemoryStateStore()
        return lambda: shared
    table = storage.table("userstate")
    return lambda: TableStateStore(table)


def test_round_trip_and_tenant_isolation(make_store: object) -> None:
    store: StateStore = make_store()  # type: ignore[operator]
    st = store.load(TENANT_A, ["u1"])
    st["u1"].section("det")["seen"] = [[1.0, "US"]]
    store.save(TENANT_A, st)
    again = make_store().load(TENANT_A, ["u1"])  # type: ignore[operator]
    assert again["u1"].data == {"det": {"seen": [[1.0, "US"]]}}
    other = make_store().load(TENANT_B, ["u1"])  # type: ignore[operator]
    assert other["u1"].data == {} and other["u1"].etag is None


def test_etag_conflict_raises_concurrency_error(make_store: object) -> None:
    one: StateStore = make_store()  # type: ignore[operator]
    two: StateStore = make_store()  # type: ignore[operator]
    first = one.load(TENANT_A, ["u1"])
    first["u1"].section("det")["n"] = 1
    one.save(TENANT_A, first)
    a = one.load(TENANT_A, ["u1"])
    b = two.load(TENANT_A, ["u1"])
    a["u1"].section("det")["n"] = 2
    one.save(TENANT_A, a)
    b["u1"].section("det")["n"] = 3
    with pytest.raises(ConcurrencyError):
        two.save(TENANT_A, b)
    fresh = make_store().load(TENANT_A, ["u1"])  # type: ignore[operator]
    assert fresh["u1"].data["det"]["n"] == 2


def test_two_creators_of_the_same_user_conflict(make_store: object) -> None:
    one: StateStore = make_store()  # type: ignore[operator]
    two: StateStore = make_store()  # type: ignore[operator]
    a, b = one.load(TENANT_A, ["new"]), two.load(TENANT_A, ["new"])
    a["new"].section("d")["x"] = 1
    b["new"].section("d")["x"] = 2
    one.save(TENANT_A, a)
    with pytest.raises(ConcurrencyError):
        two.save(TENANT_A, b)


def test_more_than_100_users_are_written_in_batches(storage: StorageClients) -> None:
    store = TableStateStore(storage.table("userstate"))
    keys = [f"user/{i}#?" for i in range(250)]  # forbidden key characters are escaped
    states = store.load(TENANT_A, keys)
    for k in keys:
        states[k].section("d")["k"] = k
    store.save(TENANT_A, states)
    assert store.stats.writes == 3
    fresh = TableStateStore(storage.table("userstate"))
    loaded = fresh.load(TENANT_A, keys)
    assert all(loaded[k].data == {"d": {"k": k}} for k in keys)
    assert fresh.stats.reads == 1  # one partition query page, not 250 point reads


def test_state_is_bounded_oldest_facts_first() -> None:
    st = UserState()
    st.section("det")["events"] = [[i, "x" * 50] for i in range(1000)]
    blob = st.encode()
    assert len(blob) <= MAX_STATE_BYTES
    kept = st.data["det"]["events"]
    assert kept[-1][0] == 999 and kept[0][0] > 0
