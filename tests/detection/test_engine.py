"""The engine: routing, deterministic alerts, dedup within the window, replay safety."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.alert_model import Category, DetectorMeta, Finding, Severity
from shared.detection.base import DetectionContext, Detector, Registry, RegistryError
from shared.detection.engine import DetectionEngine, InMemoryAlertSink
from shared.detection.state import InMemoryStateStore
from shared.records.event import Event, parse_records

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


class CountFailures(Detector):
    """Test double: alerts on every 3rd failed sign-in of a user (stateful)."""

    meta = DetectorMeta(
        id="test_count_failures",
        title="Three failures",
        description="Every third failed sign-in of a user.",
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.MEDIUM,
        mitre=("T1110",),
        dedup_window=timedelta(hours=1),
        operations=frozenset({"userloginfailed"}),
        runbook="Look at the failures and the source addresses; reset the password if one succeeded.",
        reference="https://attack.mitre.org/techniques/T1110/",
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        st = ctx.state(event, self.meta.id)
        st["n"] = st.get("n", 0) + 1
        if st["n"] % 3:
            return ()
        return (self.finding(event, summary=f"{st['n']} failures"),)


def failure(i: int, minute: int, user: str = "a@contoso.com") -> bytes:
    return orjson.dumps(
        {
            "Id": f"rec-{user}-{i}",
            "CreationTime": f"2026-11-24T10:{minute:02d}:00",
            "Operation": "UserLoginFailed",
            "OrganizationId": TENANT,
            "RecordType": 15,
            "UserId": user,
            "ErrorNumber": "50126",
        }
    )


def events(raws: list[bytes]) -> list[Event]:
    return parse_records(raws).events


def make_engine(store: InMemoryStateStore | None = None, sink: InMemoryAlertSink | None = None) -> DetectionEngine:
    return DetectionEngine(
        Registry([CountFailures]), store=store or InMemoryStateStore(), sink=sink or InMemoryAlertSink()
    )


def test_findings_in_window_merge_into_one_deterministic_alert() -> None:
    sink = InMemoryAlertSink()
    engine = make_engine(sink=sink)
    out = engine.process(TENANT, events([failure(i, i) for i in range(6)]), batch_id="b1")
    assert len(out.findings) == 2
    (alert,) = sink.list_alerts()
    assert alert.evidence_record_ids == ["rec-a@contoso.com-2", "rec-a@contoso.com-5"]
    assert alert.count == 2 and alert.summary == "3 failures"
    again = make_engine(sink=InMemoryAlertSink())
    again.process(TENANT, events([failure(i, i) for i in range(6)]), batch_id="b1")
    assert [a.alert_id for a in again.sink.list_alerts()] == [alert.alert_id]  # type: ignore[attr-defined]


def test_a_finding_after_the_window_opens_a_new_alert() -> None:
    sink = InMemoryAlertSink()
    engine = make_engine(sink=sink)
    engine.process(TENANT, events([failure(i, i) for i in range(3)]), batch_id="b1")
    late = [orjson.loads(failure(i, 0)) for i in range(3, 6)]
    for r in late:
        r["CreationTime"] = "2026-11-24T12:30:00"
    engine.process(TENANT, events([orjson.dumps(r) for r in late]), batch_id="b2")
    assert len(sink.list_alerts()) == 2


def test_redelivered_batch_doubles_nothing() -> None:
    store, sink = InMemoryStateStore(), InMemoryAlertSink()
    engine = make_engine(store, sink)
    batch = [failure(i, i) for i in range(3)]
    first = engine.process(TENANT, events(batch), batch_id="content-1#0")
    again = engine.process(TENANT, events(batch), batch_id="content-1#0")
    assert len(first.findings) == 1 and again.findings == [] and again.replayed_users >= 1
    assert store.load(TENANT, ["a@contoso.com"])["a@contoso.com"].data["test_count_failures"] == {"n": 3}
    assert len(sink.list_alerts()) == 1


def test_crash_before_state_save_replays_to_the_same_alert() -> None:
    class Boom(Exception):
        pass

    store, sink = InMemoryStateStore(), InMemoryAlertSink()
    engine = make_engine(store, sink)

    def crash(_t: str, _a: object) -> None:
        raise Boom

    with pytest.raises(Boom):
        engine.process(TENANT, events([failure(i, i) for i in range(3)]), batch_id="b", after_alerts=crash)
    engine.process(TENANT, events([failure(i, i) for i in range(3)]), batch_id="b")
    (alert,) = sink.list_alerts()
    assert alert.count == 1 and alert.evidence_record_ids == ["rec-a@contoso.com-2"]


def test_events_of_another_tenant_are_refused() -> None:
    with pytest.raises(ValueError, match="another|tenant"):
        make_engine().process("11111111-1111-1111-1111-111111111111", events([failure(0, 0)]), batch_id="x")


def test_registry_rejects_bad_declarations() -> None:
    class NoMeta(Detector):
        def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
            return ()

    with pytest.raises(RegistryError, match="meta"):
        Registry([NoMeta])
    with pytest.raises(RegistryError, match="duplicate"):
        Registry([CountFailures, CountFailures])
    with pytest.raises(ValueError, match="MITRE"):
        DetectorMeta.model_validate({**CountFailures.meta.model_dump(), "mitre": ("TA0001",)})
    with pytest.raises(ValueError, match="normalised"):
        DetectorMeta.model_validate(
            {**CountFailures.meta.model_dump(), "operations": frozenset({"Consent to application."})}
        )


def test_shards_of_one_tenant_do_not_conflict_on_an_unchanged_tenant_row(storage: Any) -> None:
    """#25.5: every batch rewrote the tenant-wide row, so two shards of a tenant conflicted on it.

    Shard 0's batch loads, detects and (inside ``after_alerts``, before its save) shard 1's batch runs to the
    end: with the old code shard 0's save then failed on the tenant row (ConcurrencyError, a replay). Neither
    batch changes tenant-wide state, so neither writes it now; both users' states are saved.
    """
    from shared.detection.table_state import TableStateStore

    table = storage.table("userstate")
    shard0 = DetectionEngine(Registry([CountFailures]), store=TableStateStore(table), sink=InMemoryAlertSink())
    shard1 = DetectionEngine(Registry([CountFailures]), store=TableStateStore(table), sink=InMemoryAlertSink())
    a = events([failure(i, i, "a@contoso.com") for i in range(3)])
    b = events([failure(i, i, "b@contoso.com") for i in range(3)])
    inner: list[Any] = []
    out = shard0.process(
        TENANT, a, batch_id="c1#0", after_alerts=lambda t, alerts: inner.append(shard1.process(t, b, batch_id="c1#1"))
    )
    assert (len(out.alerts), len(inner[0].alerts)) == (1, 1)
    fresh = TableStateStore(table).load(TENANT, ["a@contoso.com", "b@contoso.com"])
    assert fresh["a@contoso.com"].data["test_count_failures"] == {"n": 3}
    assert fresh["b@contoso.com"].data["test_count_failures"] == {"n": 3}


class TenantUsers(Detector):
    """Test double: remembers, tenant-wide, every user that failed to sign in (a set in the tenant row)."""

    meta = DetectorMeta(
        id="test_tenant_users",
        title="Users that failed",
        description="Remembers users that failed to sign in, tenant-wide.",
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.LOW,
        mitre=("T1110",),
        dedup_window=timedelta(hours=1),
        operations=frozenset({"userloginfailed"}),
        runbook="Nothing to do: a test double that only remembers users tenant-wide.",
        reference="https://attack.mitre.org/techniques/T1110/",
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        users = ctx.tenant_state(self.meta.id).setdefault("users", [])
        if event.user_key not in users:
            users.append(event.user_key)
        return ()


def test_shards_of_one_tenant_both_changing_the_tenant_row_both_succeed(storage: Any) -> None:
    """#25.5: shard 1's batch runs to the end while shard 0's is between its detection and its save; both
    change the tenant-wide row. With the old code shard 0's save failed (ConcurrencyError: the batch replayed,
    and with many shards could keep losing the race until dead-lettered); now it merges into shard 1's row."""
    from shared.detection.table_state import TableStateStore

    table = storage.table("userstate")
    registry = [CountFailures, TenantUsers]
    shard0 = DetectionEngine(Registry(registry), store=TableStateStore(table), sink=InMemoryAlertSink())
    shard1 = DetectionEngine(Registry(registry), store=TableStateStore(table), sink=InMemoryAlertSink())
    a = events([failure(i, i, "a@contoso.com") for i in range(3)])
    b = events([failure(i, i, "b@contoso.com") for i in range(3)])
    inner: list[Any] = []
    out = shard0.process(
        TENANT, a, batch_id="c1#0", after_alerts=lambda t, alerts: inner.append(shard1.process(t, b, batch_id="c1#1"))
    )
    assert (len(out.alerts), len(inner[0].alerts)) == (1, 1)
    fresh = TableStateStore(table).load(TENANT, ["_tenant", "a@contoso.com", "b@contoso.com"])
    assert sorted(fresh["_tenant"].data["test_tenant_users"]["users"]) == ["a@contoso.com", "b@contoso.com"]
    assert sorted(fresh["_tenant"].data["_batches"]) == ["c1#0", "c1#1"]
    assert fresh["a@contoso.com"].data["test_count_failures"] == {"n": 3}
    assert fresh["b@contoso.com"].data["test_count_failures"] == {"n": 3}
    # a redelivery of shard 0's batch changes nothing: its users and the tenant row absorbed it
    again = shard0.process(TENANT, a, batch_id="c1#0")
    assert again.replayed_users == 2 and again.alerts == []
    assert TableStateStore(table).load(TENANT, ["_tenant"])["_tenant"].etag == fresh["_tenant"].etag


def test_a_replay_does_not_add_to_a_tenant_row_that_absorbed_the_batch() -> None:
    """The tenant row is saved with the first users; a batch that failed on a later user replays, and what the
    replayed users add to the tenant row is already in it."""
    store = InMemoryStateStore()
    engine = DetectionEngine(Registry([TenantUsers]), store=store, sink=InMemoryAlertSink())
    engine.process(TENANT, events([failure(0, 0, "a@contoso.com")]), batch_id="b1")
    states = store.load(TENANT, ["_tenant"])
    states["_tenant"].section("test_tenant_users")["users"] = ["a@contoso.com", "z@contoso.com"]
    states["_tenant"].mark_applied("b2")  # as if batch b2 wrote the tenant row, then failed on a user's row
    store.save(TENANT, states)
    before = store.load(TENANT, ["_tenant"])["_tenant"]
    out = engine.process(TENANT, events([failure(1, 1, "b@contoso.com")]), batch_id="b2")
    after = store.load(TENANT, ["_tenant"])["_tenant"]
    assert out.replayed_users == 1 and after.etag == before.etag and after.data == before.data
    assert store.load(TENANT, ["b@contoso.com"])["b@contoso.com"].has_applied("b2")
