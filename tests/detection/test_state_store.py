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


# #25.4: C1 controls and ~1,000-character keys made the save fail on Azurite as ConcurrencyError (transient),
# so the batch was retried until dead-lettered. Any tenant or user id is storable now.
HOSTILE_KEYS = [
    "c1\u0085control\u009f@contoso.com",
    "x" * 1000,
    "é" * 700,
    "slash/back\\slash#hash?q%25\u0000\u007f",
    "~%~" + "a" * 300,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=["c1", "long", "long-utf8", "forbidden", "mark-lookalike"])
def test_any_user_key_is_stored_and_read_back(storage: StorageClients, key: str) -> None:
    table = storage.table("userstate")
    store = TableStateStore(table)
    states = store.load(TENANT_A, [key, "plain"])
    states[key].section("det")["n"] = 1
    states["plain"].section("det")["n"] = 2
    store.save(TENANT_A, states)
    fresh = TableStateStore(table).load(TENANT_A, [key, "plain"])
    assert fresh[key].data == {"det": {"n": 1}} and fresh["plain"].data == {"det": {"n": 2}}
    assert fresh[key].etag is not None


def test_encoded_keys_are_distinct_and_bounded() -> None:
    from shared.platform.storage import MAX_KEY_BYTES, decode_key, encode_key, is_hashed_key

    keys = [*HOSTILE_KEYS, "x" * 999, "x" * 1001, encode_key("x" * 1000)]
    encoded = [encode_key(k) for k in keys]
    assert len(set(encoded)) == len(keys)
    assert all(len(e.encode("utf-8")) <= MAX_KEY_BYTES for e in encoded)
    assert all(ord(c) >= 0xA0 or 0x20 <= ord(c) < 0x7F for e in encoded for c in e)
    assert decode_key(encode_key("c1\u0085x")) == "c1\u0085x" and not is_hashed_key(encode_key("c1\u0085x"))


def test_a_refused_write_is_permanent_not_a_conflict(storage: StorageClients) -> None:
    from shared.platform.errors import BadInputError

    store = TableStateStore(storage.table("userstate"))
    states = store.load(TENANT_A, ["u1"])
    states["u1"].section("det")["blob"] = "x" * 70_000  # a string property larger than 64 KiB: never accepted
    with pytest.raises(BadInputError) as refused:
        store.save(TENANT_A, states)
    assert refused.value.reason == "state_write_refused"
