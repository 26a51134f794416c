"""The per-user state store: Table Storage against Azurite, and its in-memory twin."""

from __future__ import annotations

import threading

import orjson
import pytest

from shared.detection.state import (
    APPLIED_BATCHES,
    MAX_APPLIED,
    MAX_STATE_BYTES,
    TENANT_KEY,
    InMemoryStateStore,
    StateStore,
    UserState,
    merge_state,
)
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


# #25.5: the tenant-wide row is shared by every shard of a tenant. Two shards changing it at once both succeed:
# the later save merges its change into what the earlier one wrote (neither change is lost).


def _prevalence_user(doc: dict[str, object], country: str, user: str, t: int) -> None:
    table = doc.setdefault("_prevalence", {})
    assert isinstance(table, dict)
    entry = table.setdefault("c", {}).setdefault(country, [t, t, []])
    entry[0], entry[1] = min(entry[0], t), max(entry[1], t)
    if user not in entry[2]:
        entry[2].append(user)


def test_two_shards_changing_the_tenant_row_both_succeed(make_store: object) -> None:
    seed: StateStore = make_store()  # type: ignore[operator]
    first = seed.load(TENANT_A, [TENANT_KEY])
    first[TENANT_KEY].dirty = True
    _prevalence_user(first[TENANT_KEY].data, "US", "h0", 100)
    seed.save(TENANT_A, first)
    one: StateStore = make_store()  # type: ignore[operator]
    two: StateStore = make_store()  # type: ignore[operator]
    a = one.load(TENANT_A, [TENANT_KEY, "u1"])
    b = two.load(TENANT_A, [TENANT_KEY, "u2"])
    _prevalence_user(a[TENANT_KEY].data, "US", "h1", 200)
    a[TENANT_KEY].section("spray")["src"] = {"ip:203.0.113.9": {"u": [["h1", 200]]}}
    a["u1"].section("det")["n"] = 1
    _prevalence_user(b[TENANT_KEY].data, "US", "h2", 300)
    _prevalence_user(b[TENANT_KEY].data, "FR", "h2", 300)
    b[TENANT_KEY].section("spray")["src"] = {"ip:203.0.113.9": {"u": [["h2", 300]]}}
    b["u2"].section("det")["n"] = 2
    one.save(TENANT_A, a)
    two.save(TENANT_A, b)  # the row changed since it was loaded: merged, not a ConcurrencyError
    fresh = make_store().load(TENANT_A, [TENANT_KEY, "u1", "u2"])  # type: ignore[operator]
    tenant = fresh[TENANT_KEY].data
    assert tenant["_prevalence"]["c"] == {"US": [100, 300, ["h0", "h1", "h2"]], "FR": [300, 300, ["h2"]]}
    assert tenant["spray"]["src"]["ip:203.0.113.9"]["u"] == [["h1", 200], ["h2", 300]]
    assert fresh["u1"].data == {"det": {"n": 1}} and fresh["u2"].data == {"det": {"n": 2}}
    assert b[TENANT_KEY].etag == fresh[TENANT_KEY].etag and not b[TENANT_KEY].dirty


def test_concurrent_tenant_row_writers_on_threads_lose_nothing(storage: StorageClients) -> None:
    """Eight shards (threads, each its own store) load the tenant row, wait for each other, then all save."""
    table = storage.table("userstate")
    shards = 8
    barrier = threading.Barrier(shards)
    errors: list[BaseException] = []

    def shard(n: int) -> None:
        try:
            store = TableStateStore(table)
            states = store.load(TENANT_B, [TENANT_KEY, f"user{n}"])
            states[TENANT_KEY].section("seen").setdefault("users", []).append(f"user{n}")
            states[TENANT_KEY].mark_applied(f"batch:{n}")
            states[f"user{n}"].section("det")["n"] = n
            barrier.wait(timeout=30)
            store.save(TENANT_B, states)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=shard, args=(n,)) for n in range(shards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    fresh = TableStateStore(table).load(TENANT_B, [TENANT_KEY, *(f"user{n}" for n in range(shards))])
    assert sorted(fresh[TENANT_KEY].data["seen"]["users"]) == [f"user{n}" for n in range(shards)]
    assert sorted(fresh[TENANT_KEY].data["_batches"]) == sorted(f"batch:{n}" for n in range(shards))
    assert all(fresh[f"user{n}"].data == {"det": {"n": n}} for n in range(shards))


def test_a_user_row_conflict_beside_the_tenant_row_is_still_a_concurrency_error(make_store: object) -> None:
    one: StateStore = make_store()  # type: ignore[operator]
    two: StateStore = make_store()  # type: ignore[operator]
    a = one.load(TENANT_A, [TENANT_KEY, "u1"])
    b = two.load(TENANT_A, [TENANT_KEY, "u1"])
    a[TENANT_KEY].section("seen")["x"] = 1
    a["u1"].section("det")["n"] = 1
    one.save(TENANT_A, a)
    b[TENANT_KEY].section("seen")["y"] = 2
    b["u1"].section("det")["n"] = 2  # one shard owns each user: this is a real conflict, replayed
    with pytest.raises(ConcurrencyError):
        two.save(TENANT_A, b)
    fresh = make_store().load(TENANT_A, [TENANT_KEY, "u1"])  # type: ignore[operator]
    assert fresh["u1"].data == {"det": {"n": 1}} and fresh[TENANT_KEY].data["seen"] == {"x": 1}


@pytest.mark.parametrize(
    ("base", "mine", "theirs", "merged"),
    [
        # a set of user hashes: both additions kept, in a stable order
        ({"s": ["a"]}, {"s": ["a", "b"]}, {"s": ["a", "c"]}, {"s": ["a", "c", "b"]}),
        # a set both sides pruned differently and added to (a day's mailboxes reset by both)
        ({"s": ["a", "b", "c"]}, {"s": ["x"]}, {"s": ["b", "y"]}, {"s": ["y", "x"]}),
        # a prevalence record [first, last, users]: first is the lowest, last the highest, users the union
        (
            {"e": [100, 200, ["a"]]},
            {"e": [90, 250, ["a", "b"]]},
            {"e": [95, 300, ["a", "c"]]},
            {"e": [90, 300, ["a", "c", "b"]]},
        ),
        # a day counter both shards rolled over (the same day): the high-water mark, not a sum
        (
            {"app": [1, [], None, 5, 0, 1]},
            {"app": [9, ["m"], 3.0, 6, 0, 1]},
            {"app": [8, ["n"], 3.0, 6, 0, 1]},
            {"app": [9, ["n", "m"], 3.0, 6, 0, 1]},
        ),
        # a key one side pruned and the other did not touch is gone; one the other changed is kept
        (
            {"d": {"old": [1, "r"], "k": [2, "r"]}},
            {"d": {"k": [2, "r"]}},
            {"d": {"old": [1, "r"], "k": [2, "r"], "n": [3, "s"]}},
            {"d": {"k": [2, "r"], "n": [3, "s"]}},
        ),
        ({"d": {"old": [1, "r"]}}, {"d": {}}, {"d": {"old": [5, "t"]}}, {"d": {"old": [5, "t"]}}),
        # sections only one side touched
        ({}, {"mine": {"x": 1}}, {"theirs": {"y": 2}}, {"theirs": {"y": 2}, "mine": {"x": 1}}),
    ],
)
def test_merge_state_keeps_both_sides(
    base: dict[str, object], mine: dict[str, object], theirs: dict[str, object], merged: dict[str, object]
) -> None:
    assert merge_state(base, mine, theirs) == merged
    swapped = merge_state(base, theirs, mine)
    assert orjson.dumps(swapped, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        merged, option=orjson.OPT_SORT_KEYS
    ) or _same_sets(swapped, merged)


def _same_sets(a: object, b: object) -> bool:
    """Equal up to the order of set elements (a merge appends the other side's additions last)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_sets(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(any(_same_sets(x, y) for y in b) for x in a)
    return a == b


def test_merge_state_keeps_the_last_applied_batches() -> None:
    base = {APPLIED_BATCHES: [f"b{i}" for i in range(MAX_APPLIED)]}
    mine = {APPLIED_BATCHES: [*base[APPLIED_BATCHES][1:], "mine"]}
    theirs = {APPLIED_BATCHES: [*base[APPLIED_BATCHES][1:], "theirs"]}
    got = merge_state(base, mine, theirs)[APPLIED_BATCHES]
    assert len(got) == MAX_APPLIED and got[-2:] == ["theirs", "mine"]
