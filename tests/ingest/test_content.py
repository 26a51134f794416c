"""The content function through the real client against the emulator, on Azurite and the in-process bus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.app import Services
from shared.emulators.management_api import ManagementApiEmulator
from shared.functions.fate import Inbound, run_message
from shared.ingest.content import ContentReport, process_content_message, raw_blob_name
from shared.ingest.ledger import ContentLedger, RecordLedger, record_hash
from shared.ingest.onboarding import onboard_tenant
from shared.messages import ContentRef, RecordBatchRef
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage
from shared.platform.errors import BadInputError, ForbiddenTargetError, ServiceUnavailable
from shared.records.batches import load_batch

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
PUBLISHER = "46b472a7-c68e-4adf-8ade-3db49497518e"
AAD = "Audit.AzureActiveDirectory"
DAY = "2025-03-10"


@pytest.fixture
def settings(emulator: ManagementApiEmulator) -> dict[str, Any]:
    """Settings of the test's Services (tests change them before ``svc`` is built)."""
    return {"publisher_id": PUBLISHER, "management_api_base_url": emulator.base_url}


@pytest.fixture
def svc(make_services: Any, emulator: ManagementApiEmulator, settings: dict[str, Any]) -> Services:
    """Services on Azurite, an in-process bus and the emulator, with tenant A onboarded."""
    services: Services = make_services(emulator, **settings)
    onboard_tenant(services, tenant_id=TENANT_A, name="Contoso")
    return services


def record(n: int, *, tenant: str = TENANT_A, user: str = "alice", **extra: Any) -> dict[str, Any]:
    return {
        "Id": f"00000000-0000-4000-8000-{n:012d}",
        "RecordType": 15,
        "CreationTime": f"2025-03-10T{8 + n % 6:02d}:00:{n % 60:02d}",
        "Operation": "UserLoggedIn",
        "OrganizationId": tenant,
        "UserId": f"{user}@contoso.com",
        "ClientIP": "203.0.113.7",
        "ResultStatus": "Success",
        **extra,
    }


def ref_of(entry: dict[str, Any], *, tenant: str = TENANT_A) -> bytes:
    return ContentRef(
        tenant_id=tenant,
        content_type=entry["contentType"],
        content_id=entry["contentId"],
        content_uri=entry["contentUri"],
        content_created=entry["contentCreated"],
        content_expiration=entry["contentExpiration"],
    ).encode()


def blob(
    emulator: ManagementApiEmulator, clock: Any, records: list[dict[str, Any]] | bytes, **kw: Any
) -> dict[str, Any]:
    return emulator.add_content(TENANT_A, AAD, records, created=clock() - timedelta(hours=1), **kw)


def sent(svc: Services, queue: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(message id, session id, body) of every message waiting on ``queue`` (received and completed)."""
    assert isinstance(svc.bus, InProcessBus)
    out = []
    while got := svc.bus.receive(queue, max_messages=50):
        for m in got:
            out.append((m.message_id, m.session_id, orjson.loads(m.body)))
            svc.bus.complete(m)
    return sorted(out, key=lambda x: x[0])


def deliver(svc: Services, body: bytes, *, message_id: str = "m1") -> Any:
    """One delivery through the function body's fate rules (PermanentError → parked)."""
    return run_message(svc, Inbound(names.QUEUE_CONTENT, body, message_id), process_content_message)


def parked(svc: Services) -> list[tuple[str, str]]:
    rows = svc.storage.table(names.TABLE_DEADLETTERS).list_entities()
    return sorted((r["message_id"], r["reason"]) for r in rows)


def integration_kinds(svc: Services) -> list[str]:
    return [a.context["kind"] for a in [s.alert for s in svc.alert_store.list_alerts(TENANT_A)]]


# ----------------------------------------------------------------------------- the happy path


def test_a_blob_is_archived_batched_published_and_ledgered(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1), record(2), record(3)])
    cid = entry["contentId"]
    report = process_content_message(svc, ref_of(entry))
    assert report == ContentReport(
        TENANT_A,
        cid,
        AAD,
        "processed",
        records=3,
        unique=3,
        duplicates=0,
        quarantined=0,
        batches=1,
        messages=1,
        first_record_time="2025-03-10T09:00:01Z",
        proof_of_life=True,
    )
    archive = raw_blob_name(TENANT_A, AAD, DAY, cid)
    raw = svc.storage.container(names.CONTAINER_RAW)
    assert orjson.loads(raw.download_blob(archive).readall()) == [record(1), record(2), record(3)]
    assert [b.name for b in raw.list_blobs()] == [archive]  # the raw archive holds content blobs only
    batch_blob = f"{archive}.batch0.json"
    batches = svc.storage.container(names.CONTAINER_BATCHES)
    assert orjson.loads(batches.download_blob(batch_blob).readall()) == [record(1), record(2), record(3)]
    assert sent(svc, names.QUEUE_RECORDS) == [
        (
            f"records:{cid}:0:0",
            TENANT_A,
            {
                "tenant_id": TENANT_A,
                "content_type": AAD,
                "content_id": cid,
                "batch_blob": batch_blob,
                "batch_id": f"{cid}#0",
                "records": 3,
                "shard": 0,
                "shards": 1,
            },
        )
    ]
    events = load_batch(
        svc.storage,
        RecordBatchRef.model_validate(
            {
                "tenant_id": TENANT_A,
                "content_type": AAD,
                "content_id": cid,
                "batch_blob": batch_blob,
                "batch_id": f"{cid}#0",
                "records": 3,
            }
        ),
    )
    assert [e.record_id for e in events] == [record(n)["Id"] for n in (1, 2, 3)]
    ledger = RecordLedger(svc.storage)
    hashes = {record_hash(record(n)["Id"]) for n in (1, 2, 3, 4)}
    assert ledger.seen(TENANT_A, {DAY: hashes}) == {(DAY, record_hash(record(n)["Id"])) for n in (1, 2, 3)}
    entry_row = ContentLedger(svc.storage).get_entry(TENANT_A, cid, now=clock())
    assert entry_row is not None and (entry_row.phase, entry_row.records, entry_row.batches) == ("done", 3, 1)


@pytest.mark.parametrize(("per_batch", "shards"), [(2, 1), (2, 3)])
def test_batches_and_shards(
    svc: Services, make_services: Any, emulator, clock, settings, per_batch: int, shards: int
) -> None:
    # the same storage and bus (tenant A onboarded), built with these settings
    svc = make_services(emulator, bus=svc.bus, **{**settings, "records_per_batch": per_batch, "tenant_shards": shards})
    records = [record(n, user=f"user{n}") for n in range(1, 6)]
    entry = blob(emulator, clock, records)
    cid = entry["contentId"]
    report = process_content_message(svc, ref_of(entry))
    assert (report.unique, report.batches) == (5, 3)
    messages = sent(svc, names.QUEUE_RECORDS)
    assert report.messages == len(messages)
    seen: dict[str, list[str]] = {}
    for message_id, session, body in messages:
        n, shard = body["batch_id"].split("#")[1], body["shard"]
        assert message_id == f"records:{cid}:{n}:{shard}"
        assert session == (TENANT_A if shards == 1 else f"{TENANT_A}#{shard}")
        events = load_batch(svc.storage, RecordBatchRef.model_validate(body))
        assert len(events) == body["records"] > 0
        seen.setdefault(body["batch_id"], []).extend(e.record_id for e in events)
    assert sorted(seen) == [f"{cid}#0", f"{cid}#1", f"{cid}#2"]
    assert sorted(i for ids in seen.values() for i in ids) == sorted(r["Id"] for r in records)


def test_bad_records_are_quarantined_with_their_reasons(svc: Services, emulator, clock) -> None:
    bad_time = record(2, CreationTime="yesterday")
    other_tenant = record(3, tenant=TENANT_B)
    no_id = {k: v for k, v in record(4).items() if k != "Id"}
    raw = orjson.dumps([record(1), bad_time, other_tenant, no_id, 42])
    entry = blob(emulator, clock, raw)
    report = process_content_message(svc, ref_of(entry))
    assert (report.records, report.unique, report.quarantined) == (5, 1, 4)
    rows = sorted(svc.storage.table(names.TABLE_QUARANTINE).list_entities(), key=lambda r: r["index"])
    assert [(r["tenant_id"], r["content_id"], r["index"], r["reason"], r["record_id"]) for r in rows] == [
        (TENANT_A, entry["contentId"], 1, "bad_creation_time", record(2)["Id"]),
        (TENANT_A, entry["contentId"], 2, "tenant_mismatch", record(3)["Id"]),
        (TENANT_A, entry["contentId"], 3, "missing_id", ""),
        (TENANT_A, entry["contentId"], 4, "not_an_object", ""),
    ]
    kept = svc.storage.container(names.CONTAINER_QUARANTINE).download_blob(rows[0]["blob"]).readall()
    assert orjson.loads(kept) == [bad_time, other_tenant, no_id, 42]
    assert [r["blob_index"] for r in rows] == [0, 1, 2, 3]


def test_hostile_records_are_quarantined_alone_and_the_good_ones_detected(svc: Services, emulator, clock) -> None:
    # issue #18: each of these used to raise an error nothing classified, so the message retried and the
    # whole blob was dead-lettered with its good records
    deep = b'{"Id":"deep","Payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    year_zero = orjson.dumps(record(2, CreationTime="0001-01-01T00:00:00+05:00"))
    long_id = orjson.dumps(record(3, OrganizationId=None) | {"Id": "x" * 100_000, "OrganizationId": "y" * 300})
    nan = orjson.dumps(record(4))[:-1] + b',"Score":NaN}'
    control = orjson.dumps(record(5, UserId="ev\u0085il@contoso.com"))
    raw = (
        b"["
        + b",".join([orjson.dumps(record(1)), deep, year_zero, long_id, nan, control, orjson.dumps(record(6))])
        + b"]"
    )
    entry = blob(emulator, clock, raw)
    report = deliver(svc, ref_of(entry))
    assert isinstance(report, ContentReport)
    assert (report.records, report.unique, report.quarantined) == (7, 2, 5)
    rows = sorted(svc.storage.table(names.TABLE_QUARANTINE).list_entities(), key=lambda r: r["index"])
    assert [(r["index"], r["reason"]) for r in rows] == [
        (1, "too_deep"),
        (2, "bad_creation_time"),
        (3, "oversized_field"),
        (4, "invalid_json"),
        (5, "control_characters"),
    ]
    assert len(rows[2]["record_id"]) <= 256
    assert parked(svc) == []
    batch = raw_blob_name(TENANT_A, AAD, DAY, entry["contentId"]) + ".batch0.json"
    kept = orjson.loads(svc.storage.container(names.CONTAINER_BATCHES).download_blob(batch).readall())
    assert [r["Id"] for r in kept] == [record(1)["Id"], record(6)["Id"]]


def test_duplicate_records_across_blobs_are_dropped(svc: Services, emulator, clock) -> None:
    first = blob(emulator, clock, [record(1), record(2)])
    process_content_message(svc, ref_of(first))
    clock.advance(days=3)
    second = blob(emulator, clock, [record(2), record(3), record(3), record(1)])  # repeats, also within the blob
    report = process_content_message(svc, ref_of(second))
    assert (report.records, report.unique, report.duplicates) == (4, 1, 3)
    bodies = [body for _, _, body in sent(svc, names.QUEUE_RECORDS) if body["content_id"] == second["contentId"]]
    events = load_batch(svc.storage, RecordBatchRef.model_validate(bodies[0]))
    assert [e.record_id for e in events] == [record(3)["Id"]]


def test_all_duplicates_publish_nothing(svc: Services, emulator, clock) -> None:
    process_content_message(svc, ref_of(blob(emulator, clock, [record(1)])))
    sent(svc, names.QUEUE_RECORDS)
    report = process_content_message(svc, ref_of(blob(emulator, clock, [record(1)])))
    assert (report.unique, report.batches, report.messages) == (0, 0, 0)
    assert sent(svc, names.QUEUE_RECORDS) == []


def test_the_same_content_id_again_is_a_no_op(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    process_content_message(svc, ref_of(entry))
    sent(svc, names.QUEUE_RECORDS)
    clock.advance(days=5)
    requests = emulator.stats.by_operation.get("get_content", 0)
    again = process_content_message(svc, ref_of(entry))
    assert again == ContentReport(TENANT_A, entry["contentId"], AAD, "duplicate")
    assert emulator.stats.by_operation.get("get_content", 0) == requests
    assert sent(svc, names.QUEUE_RECORDS) == []


# ----------------------------------------------------------------------------- faults


def test_expired_content_is_parked_with_a_note(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    clock.advance(days=8)
    assert deliver(svc, ref_of(entry)) is None
    assert parked(svc) == [("m1", "content_expired")]
    assert integration_kinds(svc) == ["content_expired"]
    assert emulator.stats.by_operation.get("get_content", 0) == 0


def test_content_the_api_says_expired_is_parked_too(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    emulator.inject("expired_content")
    deliver(svc, ref_of(entry))
    assert parked(svc) == [("m1", "content_expired")]
    assert integration_kinds(svc) == ["content_expired"]


def test_a_truncated_download_is_retried_by_the_client(svc: Services, emulator, clock, sleeps) -> None:
    entry = blob(emulator, clock, [record(1), record(2)])
    emulator.inject("truncated_blob")
    report = process_content_message(svc, ref_of(entry))
    assert (report.status, report.unique) == ("processed", 2)
    assert sleeps.delays == [2.0]
    assert emulator.served_record_ids == [record(1)["Id"], record(2)["Id"]]


def test_an_invalid_blob_served_once_is_retried_then_processed(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    emulator.inject("invalid_json_blob")
    with pytest.raises(ServiceUnavailable) as first:
        process_content_message(svc, ref_of(entry))
    assert first.value.reason == "invalid_blob_retry"
    report = process_content_message(svc, ref_of(entry))
    assert (report.status, report.unique) == ("processed", 1)
    assert list(svc.storage.table(names.TABLE_QUARANTINE).list_entities()) == []


def test_the_same_invalid_bytes_twice_are_quarantined(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, b'[{"Id": "x", "Operation": ')
    with pytest.raises(ServiceUnavailable):
        process_content_message(svc, ref_of(entry))
    with pytest.raises(BadInputError) as second:
        process_content_message(svc, ref_of(entry))
    assert second.value.reason == "invalid_blob"
    rows = list(svc.storage.table(names.TABLE_QUARANTINE).list_entities())
    assert [(r["index"], r["reason"]) for r in rows] == [(-1, "invalid_blob")]
    kept = svc.storage.container(names.CONTAINER_QUARANTINE).download_blob(rows[0]["blob"]).readall()
    assert kept == b'[{"Id": "x", "Operation": '
    # through the function body the second failure parks the message
    deliver(svc, ref_of(entry))
    assert parked(svc) == [("m1", "invalid_blob")]


def test_a_content_uri_on_another_host_is_refused_before_any_request(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    evil = {**entry, "contentUri": entry["contentUri"].replace("127.0.0.1", "localhost")}
    before = emulator.stats.requests
    with pytest.raises(ForbiddenTargetError):
        process_content_message(svc, ref_of(evil))
    assert emulator.stats.requests == before


def test_a_forged_id_and_uri_pair_cannot_mark_another_blob_done(svc: Services, emulator, clock) -> None:
    """#25.1 reproduced: blob X's id with blob Y's URI used to mark X done with Y's records; X was then lost."""
    x = blob(emulator, clock, [record(1)])
    y = blob(emulator, clock, [record(2)])
    forged = {**x, "contentUri": y["contentUri"]}
    before = emulator.stats.requests
    deliver(svc, ref_of(forged), message_id="forged")
    assert parked(svc) == [("forged", "forbidden_target")]
    assert emulator.stats.requests == before  # refused before any fetch
    assert ContentLedger(svc.storage).get_entry(TENANT_A, x["contentId"], now=clock()) is None
    report = process_content_message(svc, ref_of(x))
    assert (report.status, report.unique) == ("processed", 1)
    batches = sent(svc, names.QUEUE_RECORDS)
    ids = [
        r["Id"]
        for _, _, body in batches
        for r in orjson.loads(
            svc.storage.container(names.CONTAINER_BATCHES).download_blob(body["batch_blob"]).readall()
        )
    ]
    assert ids == ["00000000-0000-4000-8000-000000000001"]


def test_a_subscription_list_uri_is_never_fetched_nor_archived(svc: Services, emulator, clock) -> None:
    """#25.2: /subscriptions/list (with the webhook's plaintext AuthID) was fetched as content and archived."""
    entry = blob(emulator, clock, [record(1)])
    listing = {**entry, "contentUri": entry["contentUri"].split("/audit/")[0] + "/subscriptions/list"}
    deliver(svc, ref_of(listing), message_id="listing")
    deliver(svc, ref_of(listing), message_id="listing")
    assert parked(svc) == [("listing", "forbidden_target")]
    for container in (names.CONTAINER_RAW, names.CONTAINER_BATCHES, names.CONTAINER_QUARANTINE):
        assert list(svc.storage.container(container).list_blobs()) == []
    assert list(svc.storage.table(names.TABLE_QUARANTINE).list_entities()) == []


def test_a_subscription_disabled_while_fetching_parks_the_message(svc: Services, emulator, clock) -> None:
    entry = blob(emulator, clock, [record(1)])
    emulator.inject("subscription_disabled", operation="get_content")
    deliver(svc, ref_of(entry), message_id=entry["contentId"])
    assert parked(svc) == [(entry["contentId"], "subscription_disabled")]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid_message"),
        (orjson.dumps({"tenant_id": TENANT_A}), "invalid_message"),
    ],
)
def test_junk_messages_are_parked(svc: Services, body: bytes, reason: str) -> None:
    deliver(svc, body)
    assert parked(svc) == [("m1", reason)]


def test_content_of_a_tenant_that_is_not_onboarded_is_refused(svc: Services, emulator, clock) -> None:
    entry = emulator.add_content(TENANT_B, AAD, [record(1, tenant=TENANT_B)], created=clock() - timedelta(hours=1))
    with pytest.raises(BadInputError) as refused:
        process_content_message(svc, ref_of(entry, tenant=TENANT_B))
    assert refused.value.reason == "unknown_tenant"


# ----------------------------------------------------------------------------- crash safety


class FailingBus:
    """Dies on the n-th send to ``queue``: before it (``after=False``) or right after it."""

    def __init__(self, inner: InProcessBus, queue: str, *, after: bool) -> None:
        self.inner, self.queue, self.after = inner, queue, after

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        if queue == self.queue and not self.after:
            raise RuntimeError("died before publishing")
        self.inner.send(queue, messages)
        if queue == self.queue:
            raise RuntimeError("died after publishing")


@pytest.mark.parametrize("after", [False, True])
def test_dying_around_the_publish_step_resumes_the_same_batches(
    svc: Services, make_services: Any, emulator, clock, settings, after: bool
) -> None:
    two_per_batch = {**settings, "records_per_batch": 2}
    svc = make_services(emulator, bus=svc.bus, **two_per_batch)
    process_content_message(svc, ref_of(blob(emulator, clock, [record(9)])))  # record 9 is already known
    sent(svc, names.QUEUE_RECORDS)
    entry = blob(emulator, clock, [record(1), record(9), record(2), record(3)])
    real = svc.bus
    assert isinstance(real, InProcessBus)
    dying = make_services(emulator, bus=FailingBus(real, names.QUEUE_RECORDS, after=after), **two_per_batch)
    with pytest.raises(RuntimeError):
        process_content_message(dying, ref_of(entry))
    first = sent(svc, names.QUEUE_RECORDS)
    # meanwhile another blob publishes record 2: the resumed delivery must not decide again
    process_content_message(svc, ref_of(blob(emulator, clock, [record(2)])))
    sent(svc, names.QUEUE_RECORDS)
    report = process_content_message(svc, ref_of(entry))
    assert (report.status, report.unique, report.duplicates, report.batches) == ("resumed", 3, 1, 2)
    second = sent(svc, names.QUEUE_RECORDS)
    # the resumed delivery republishes the same MessageIds; the records queue drops repeats (#25.5), so the
    # batches are on the queue exactly once whether the first delivery died before or after publishing them
    published = first + second
    assert [m[0] for m in published] == [f"records:{entry['contentId']}:0:0", f"records:{entry['contentId']}:1:0"]
    assert second == ([] if after else published)
    ids = [
        e.record_id for _, _, body in published for e in load_batch(svc.storage, RecordBatchRef.model_validate(body))
    ]
    assert ids == [record(n)["Id"] for n in (1, 2, 3)]
    assert process_content_message(svc, ref_of(entry)).status == "duplicate"


def test_proof_of_life_is_sent_once(svc: Services, emulator, clock) -> None:
    process_content_message(svc, ref_of(blob(emulator, clock, [record(1), record(2)])))
    process_content_message(svc, ref_of(blob(emulator, clock, [record(3)])))
    assert sent(svc, names.QUEUE_ALERTS) == [
        (
            f"proof_of_life:{TENANT_A}",
            None,
            {
                "kind": "proof_of_life",
                "tenant_id": TENANT_A,
                "content_type": AAD,
                "first_record_time": "2025-03-10T09:00:01Z",
            },
        )
    ]
    stored = svc.tenants.get(TENANT_A)
    assert stored is not None and stored.first_content_at == datetime(2025, 3, 10, 15, 0, tzinfo=UTC)


def test_content_ledger_writes_are_claimed(svc: Services, clock) -> None:
    """#25.5: two deliveries of one blob read the ledger, then both write: the second write is refused."""
    from shared.ingest.ledger import ContentEntry
    from shared.platform.errors import ConcurrencyError

    ledger = ContentLedger(svc.storage)
    now = clock()
    assert ledger.get_entry(TENANT_A, "c1", now=now) is None  # both deliveries see no row
    mine = ledger.put_entry(ContentEntry(TENANT_A, "c1", "batched", batches=2), now=now)
    with pytest.raises(ConcurrencyError):
        ledger.put_entry(ContentEntry(TENANT_A, "c1", "batched", batches=1), now=now)
    read = ledger.get_entry(TENANT_A, "c1", now=now)
    assert read is not None and (read.phase, read.batches) == ("batched", 2)
    ledger.put_entry(replace(mine, phase="done"), now=now)
    with pytest.raises(ConcurrencyError):
        ledger.put_entry(replace(read, phase="invalid"), now=now)  # read before "done" was written
    final = ledger.get_entry(TENANT_A, "c1", now=now)
    assert final is not None and final.phase == "done"
    # an expired row (not purged yet) can be claimed again by a new delivery
    later = now + timedelta(days=9)
    expired = ledger.get_entry(TENANT_A, "c1", now=later)
    assert expired is not None and expired.phase == "expired"
    ledger.put_entry(replace(expired, phase="done"), now=later)


# ----------------------------------------------------------------------------- #25.9: a write-once raw archive


def test_a_redelivery_after_a_crash_leaves_the_archive_as_it_was(
    svc: Services, emulator: ManagementApiEmulator, clock: Any
) -> None:
    """The raw archive is created, never overwritten (immutable in Azure): dying right after archiving and
    processing the redelivery archives the same bytes again, which leaves the blob untouched."""
    from shared.platform import faults

    entry = blob(emulator, clock, [record(1), record(2)])
    faults.install(faults.CrashInjector(seed=1, rate=1.0, points=["content.after_archive"]))
    try:
        with pytest.raises(faults.InjectedCrash):
            process_content_message(svc, ref_of(entry))
    finally:
        faults.install(None)
    archive = svc.storage.container(names.CONTAINER_RAW).get_blob_client(
        raw_blob_name(TENANT_A, AAD, DAY, entry["contentId"])
    )
    first = archive.get_blob_properties()
    report = process_content_message(svc, ref_of(entry))
    assert (report.status, report.unique) == ("processed", 2)
    again = archive.get_blob_properties()
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    assert [b.name for b in svc.storage.container(names.CONTAINER_RAW).list_blobs()] == [archive.blob_name]


def test_the_archive_refuses_to_overwrite_and_keeps_other_bytes_beside(svc: Services) -> None:
    from azure.core.exceptions import ResourceExistsError

    from shared.ingest.content import archive_content

    name = raw_blob_name(TENANT_A, AAD, DAY, "c1")
    raw = svc.storage.container(names.CONTAINER_RAW)
    assert archive_content(svc, name, b"[1]") == name
    etag = raw.get_blob_client(name).get_blob_properties().etag
    assert archive_content(svc, name, b"[1]") == name  # the same bytes again: harmless, nothing written
    variant = archive_content(svc, name, b"[2]")  # other bytes under the same content id: kept beside
    assert variant.startswith(f"{name}.v-") and variant != name
    assert archive_content(svc, name, b"[2]") == variant
    assert raw.download_blob(name).readall() == b"[1]" and raw.download_blob(variant).readall() == b"[2]"
    assert raw.get_blob_client(name).get_blob_properties().etag == etag
    assert sorted(b.name for b in raw.list_blobs()) == sorted([name, variant])
    with pytest.raises(ResourceExistsError):  # what the archive relies on: a create of an existing blob fails
        raw.upload_blob(name, b"[3]", overwrite=False)


def test_batch_and_ledger_blobs_written_before_they_had_their_own_containers_still_count(
    svc: Services, emulator: ManagementApiEmulator, clock: Any
) -> None:
    """A records message and a ledger day written by the previous version (both in the raw container) are read
    from there: the message's batch loads, and a record that day already published is still a duplicate."""
    legacy = svc.storage.container(names.CONTAINER_RAW)
    name = raw_blob_name(TENANT_A, AAD, DAY, "old") + ".batch0.json"
    legacy.upload_blob(name, orjson.dumps([record(7)]))
    ref = RecordBatchRef(
        tenant_id=TENANT_A, content_type=AAD, content_id="old", batch_blob=name, batch_id="old#0", records=1
    )
    assert [e.record_id for e in load_batch(svc.storage, ref)] == [record(7)["Id"]]
    day = record(1)["CreationTime"][:10]
    hashes = sorted([record_hash(record(1)["Id"])])
    legacy.upload_blob(RecordLedger.blob_name(TENANT_A, day), b"".join(h.to_bytes(8, "big") for h in hashes))
    report = process_content_message(svc, ref_of(blob(emulator, clock, [record(1), record(2)])))
    assert (report.unique, report.duplicates) == (1, 1)
    moved = svc.storage.container(names.CONTAINER_LEDGER).download_blob(RecordLedger.blob_name(TENANT_A, day))
    assert len(moved.readall()) == 16  # the legacy day's hash and the new record's, in the ledger container
