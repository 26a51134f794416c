"""The content function: one ContentRef in, unique parsed-clean record batches out.

Steps, in this order, so that dying between any two loses nothing and a redelivery changes nothing
in effect (a redelivered RecordBatchRef is harmless: the detection engine skips users that already
absorbed its ``batch_id``):

1. content ledger: a contentId already ``done`` is a no-op; one ``batched`` resumes at step 7;
2. expiry: ``contentExpiration`` past → ExpiredContentError (parked) and an integration-health note;
3. download through the tenant's client (the URL must pass ``is_allowed_content_uri``);
4. split: bytes that are not a JSON array are a TransientError (the API may serve the blob whole
   later); the same invalid bytes twice (or three invalid downloads) → quarantined, BadInputError
   ``invalid_blob``;
5. archive the raw bytes to ``raw/<tenant>/<content type>/<YYYY-MM-DD>/<content id>`` in
   ``CONTAINER_RAW`` (write-once: created, never overwritten, see :func:`archive_content`; the day is
   ``contentCreated``'s), quarantine records that do not parse
   (``TABLE_QUARANTINE`` rows, bytes in ``CONTAINER_QUARANTINE``);
6. drop records whose Id this blob repeats or the record ledger already holds, write the rest as
   batch blobs ``<archive name>.batch<N>.json`` in ``CONTAINER_BATCHES`` (JSON arrays of at most
   ``records_per_batch`` raw records), and mark the ledger row ``batched`` (so a redelivery republishes these exact batches
   instead of deciding again);
7. publish one RecordBatchRef per batch and shard with users in it (session = tenant shard, MessageId
   ``records:{content_id}:{n}:{shard}``), add the records to the record ledger, mark the row ``done``;
8. the tenant's first content ever: a ``proof_of_life`` message to ``QUEUE_ALERTS``, then
   ``first_content_at`` on the tenant row (at least once).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from shared.alert_model import iso
from shared.ingest.checkpoints import utcnow
from shared.ingest.clouds import content_uri_matches
from shared.ingest.context import IngestServices
from shared.ingest.health import emit_alerts, integration_alert
from shared.ingest.ledger import ContentEntry, ContentLedger, RecordLedger, record_hash
from shared.ingest.onboarding import tenant_endpoint
from shared.ingest.poller import content_message_id
from shared.messages import ContentRef, RecordBatchRef, session_for, shard_of
from shared.platform import names
from shared.platform.bus import OutboundMessage
from shared.platform.errors import (
    BadInputError,
    ExpiredContentError,
    ForbiddenTargetError,
    NotFoundError,
    ServiceUnavailable,
)
from shared.platform.faults import crash_point
from shared.platform.storage import encode_key
from shared.records.batches import read_batch_blob, write_batch_blob
from shared.records.event import MAX_ID_CHARS, Event, Quarantined, parse_blob, parse_raw_record
from shared.records.split import split_array
from shared.tenants import TenantRecord

log = logging.getLogger("itdr.ingest")

MAX_INVALID_DOWNLOADS = 3
"""Invalid downloads (whatever their bytes) after which a blob is quarantined."""


@dataclass(slots=True)
class ContentReport:
    """What processing one content blob did."""

    tenant_id: str
    content_id: str
    content_type: str
    status: str
    """``processed``, ``resumed`` (finished from its batch blobs) or ``duplicate`` (already done)."""
    records: int = 0
    unique: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0
    messages: int = 0
    first_record_time: str | None = None
    proof_of_life: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# ----------------------------------------------------------------------------- blob names


def blob_day(ref: ContentRef) -> str:
    """The archive day of a content blob: its ``contentCreated`` UTC date."""
    return ref.content_created.astimezone(UTC).date().isoformat()


def raw_blob_name(tenant_id: str, content_type: str, day: str, content_id: str) -> str:
    """``raw/<tenant>/<content type>/<YYYY-MM-DD>/<content id>`` in ``CONTAINER_RAW``."""
    return f"raw/{tenant_id}/{content_type}/{day}/{quote(content_id, safe='$')}"


def batch_blob_name(archive_name: str, n: int) -> str:
    """The n-th batch blob of an archived content blob."""
    return f"{archive_name}.batch{n}.json"


def is_batch_blob(name: str) -> bool:
    """True for batch blob names (replay reads only the raw content blobs; the raw container of a deployment
    from before batch blobs had their own container still holds some)."""
    _, dot, rest = name.rpartition(".batch")
    return bool(dot) and rest.endswith(".json") and rest[: -len(".json")].isdigit()


def archive_content(svc: IngestServices, name: str, data: bytes) -> str:
    """Archive a content blob's bytes write-once; returns the name they are archived under.

    The raw container is immutable in Azure (time-based retention): a blob is created, never overwritten.
    A redelivery after a crash archives the same bytes again, which is harmless (the blob is left as it is).
    Should the API ever serve other bytes under the same content id, they are archived beside the first ones,
    under ``<name>.v-<sha256 prefix>``, so the archive holds every byte that was processed.
    """
    from azure.core.exceptions import ResourceExistsError

    container = svc.storage.container(names.CONTAINER_RAW)
    try:
        container.upload_blob(name, data, overwrite=False)
        return name
    except ResourceExistsError:
        if container.download_blob(name).readall() == data:
            return name
    variant = f"{name}.v-{hashlib.sha256(data).hexdigest()[:32]}"
    log.warning("content archived before with other bytes; archived beside it: blob=%s", variant)
    try:
        container.upload_blob(variant, data, overwrite=False)
    except ResourceExistsError:
        pass  # named by its digest: the same bytes
    return variant


# ----------------------------------------------------------------------------- entry point


def process_content_message(svc: IngestServices, body: bytes) -> ContentReport:
    """Process one ContentRef message body (see the module docstring)."""
    parsed = ContentRef.parse(body)
    assert isinstance(parsed, ContentRef)
    ref = parsed.model_copy(update={"tenant_id": parsed.tenant_id.strip().lower()})
    tid = ref.tenant_id
    record = svc.tenants.get(tid)
    if record is None or record.status == "offboarded":
        raise BadInputError("content of a tenant that is not onboarded", reason="unknown_tenant", tenant=tid)
    # the ledger row is keyed on the content id; it must be the id of the blob actually fetched, or a
    # forged (id X, URI of blob Y) pair would mark X done with Y's records and X would never be processed
    if not content_uri_matches(
        ref.content_uri,
        tenant_id=tid,
        endpoint=tenant_endpoint(svc, record),
        content_id=ref.content_id,
        content_type=ref.content_type,
    ):
        raise ForbiddenTargetError(
            "contentUri is not the URI of this content id in the tenant's feed", tenant=tid, content_id=ref.content_id
        )
    now = utcnow(svc.clock)
    ledger = ContentLedger(svc.storage)
    entry = ledger.get_entry(tid, ref.content_id, now=now)
    if entry is not None and entry.done:
        log.info("content already processed: tenant=%s content_id=%s", tid, ref.content_id)
        return ContentReport(tid, ref.content_id, ref.content_type, "duplicate")
    if entry is not None and entry.phase == "batched":
        report = _resume(svc, ref, entry, now)
    else:
        report = _process(svc, ref, entry, now)
    _proof_of_life(svc, record, ref, report)
    _telemetry(ref, report, now)
    return report


def _telemetry(ref: ContentRef, report: ContentReport, now: datetime) -> None:
    """Per blob, never per record: records ingested and quarantined, and the feed's lag."""
    from shared.platform.telemetry import telemetry

    tel = telemetry()
    dims = {"tenant_id": ref.tenant_id, "content_type": ref.content_type}
    tel.metric("itdr.records.ingested", report.unique, **dims)
    if report.quarantined:
        tel.metric("itdr.records.quarantined", report.quarantined, **dims)
    tel.metric("itdr.ingest.lag_seconds", max(0.0, (now - ref.content_created).total_seconds()), **dims)


# ----------------------------------------------------------------------------- steps


def _note(svc: IngestServices, ref: ContentRef, kind: str, summary: str, now: datetime) -> None:
    alert = integration_alert(
        tenant_id=ref.tenant_id,
        kind=kind,
        content_type=ref.content_type,
        when=now,
        summary=summary,
        context={"content_id": ref.content_id},
    )
    emit_alerts(svc, [alert])


def _download(svc: IngestServices, ref: ContentRef, now: datetime) -> bytes:
    tid, cid = ref.tenant_id, ref.content_id
    if ref.content_expiration is not None and ref.content_expiration <= now:
        _note(svc, ref, "content_expired", f"Content {cid} of tenant {tid} expired before it was fetched.", now)
        raise ExpiredContentError("content expired before it was fetched", tenant=tid, content_id=cid)
    client = svc.management_client(tid)
    if not client.is_allowed_content_uri(ref.content_uri):
        raise ForbiddenTargetError("content URI outside the tenant's feed", tenant=tid, content_id=cid)
    try:
        return client.get_content(ref.content_uri)
    except ExpiredContentError:
        _note(svc, ref, "content_expired", f"Content {cid} of tenant {tid} expired before it was fetched.", now)
        raise
    except NotFoundError:
        _note(svc, ref, "content_missing", f"Content {cid} of tenant {tid} was listed but does not exist.", now)
        raise


def _split(
    svc: IngestServices, ref: ContentRef, entry: ContentEntry | None, data: bytes, now: datetime
) -> list[tuple[bytes, str | None]]:
    """The records of a blob, each with the reason it cannot be kept (too deep, too large) or None."""
    try:
        return split_array(data)
    except ValueError as exc:
        detail = str(exc)[:200]
    tid, cid = ref.tenant_id, ref.content_id
    digest = hashlib.sha256(data).hexdigest()
    count = (entry.invalid_count if entry else 0) + 1
    invalid = ContentEntry(
        tid, cid, "invalid", invalid_digest=digest, invalid_count=count, etag=entry.etag if entry else None
    )
    ContentLedger(svc.storage).put_entry(invalid, now=now, content_type=ref.content_type)
    if (entry is not None and entry.invalid_digest == digest) or count >= MAX_INVALID_DOWNLOADS:
        _quarantine_blob(svc, ref, data, detail, now)
        raise BadInputError("content blob is not a JSON array of records", reason="invalid_blob", tenant=tid)
    raise ServiceUnavailable(
        "content blob is not a JSON array; fetching it again", reason="invalid_blob_retry", tenant=tid, content_id=cid
    )


def process_fetched(svc: IngestServices, ref: ContentRef, data: bytes) -> ContentReport:
    """Content fetched by another reader (a page of Entra sign-ins mapped to audit records by
    ``shared.ingest.signin_poller``): steps 1 and 4-7 as for a downloaded blob (ledger, archive, quarantine,
    duplicates, batches, publishing), so it flows through the same enrichment and detection, once."""
    now = utcnow(svc.clock)
    entry = ContentLedger(svc.storage).get_entry(ref.tenant_id, ref.content_id, now=now)
    if entry is not None and entry.done:
        return ContentReport(ref.tenant_id, ref.content_id, ref.content_type, "duplicate")
    if entry is not None and entry.phase == "batched":
        return _resume(svc, ref, entry, now)
    return _process(svc, ref, entry, now, data=data)


def _process(
    svc: IngestServices, ref: ContentRef, entry: ContentEntry | None, now: datetime, *, data: bytes | None = None
) -> ContentReport:
    tid, cid, ct = ref.tenant_id, ref.content_id, ref.content_type
    if data is None:
        data = _download(svc, ref, now)
    crash_point("content.after_download")
    raws = _split(svc, ref, entry, data, now)
    archive = raw_blob_name(tid, ct, blob_day(ref), cid)
    archive_content(svc, archive, data)
    crash_point("content.after_archive")
    events: list[Event] = []
    bad: list[tuple[int, Quarantined]] = []
    for index, (raw, error) in enumerate(raws):
        if error is not None:
            bad.append((index, Quarantined(error, f"record {index}: {error}", b"", tid)))
            continue
        got = parse_raw_record(raw, expected_tenant=tid)
        if isinstance(got, Event):
            events.append(got)
        else:
            bad.append((index, got))
    if bad:
        _quarantine_records(svc, ref, bad, now)
    unique, duplicates = _unique(svc, tid, events)
    size = svc.settings.records_per_batch
    batches = [unique[i : i + size] for i in range(0, len(unique), size)]
    for n, batch in enumerate(batches):
        payload = b"[" + b",".join(e.raw for e in batch) + b"]"
        write_batch_blob(svc.storage, batch_blob_name(archive, n), payload)
    shards = svc.settings.tenant_shards
    batched = ContentEntry(
        tid,
        cid,
        "batched",
        batches=len(batches),
        shards=shards,
        records=len(raws),
        duplicates=duplicates,
        quarantined=len(bad),
        etag=entry.etag if entry else None,
    )
    batched = ContentLedger(svc.storage).put_entry(batched, now=now, content_type=ct)
    report = ContentReport(tid, cid, ct, "processed", len(raws), len(unique), duplicates, len(bad), len(batches))
    _finish(svc, ref, batched, batches, report, now)
    return report


def _resume(svc: IngestServices, ref: ContentRef, entry: ContentEntry, now: datetime) -> ContentReport:
    """Republish the batches a previous delivery wrote, then finish (the batches are not recomputed)."""
    tid, ct = ref.tenant_id, ref.content_type
    archive = raw_blob_name(tid, ct, blob_day(ref), ref.content_id)
    batches = []
    for n in range(entry.batches):
        data = read_batch_blob(svc.storage, batch_blob_name(archive, n))
        batches.append(parse_blob(data, expected_tenant=tid).events)
    unique = sum(len(b) for b in batches)
    report = ContentReport(
        tid, ref.content_id, ct, "resumed", entry.records, unique, entry.duplicates, entry.quarantined, len(batches)
    )
    _finish(svc, ref, entry, batches, report, now)
    return report


def _finish(
    svc: IngestServices,
    ref: ContentRef,
    entry: ContentEntry,
    batches: Sequence[Sequence[Event]],
    report: ContentReport,
    now: datetime,
) -> None:
    tid, cid = ref.tenant_id, ref.content_id
    archive = raw_blob_name(tid, ref.content_type, blob_day(ref), cid)
    messages: list[OutboundMessage] = []
    for n, batch in enumerate(batches):
        per_shard = Counter(shard_of(e.user_key, entry.shards) for e in batch)
        for shard in sorted(per_shard):
            batch_ref = RecordBatchRef(
                tenant_id=tid,
                content_type=ref.content_type,
                content_id=cid,
                batch_blob=batch_blob_name(archive, n),
                batch_id=f"{cid}#{n}",
                records=per_shard[shard],
                shard=shard,
                shards=entry.shards,
            )
            messages.append(
                OutboundMessage(
                    batch_ref.encode(),
                    message_id=_records_message_id(cid, n, shard),
                    session_id=session_for(tid, shard, entry.shards),
                )
            )
    if messages:
        svc.bus.send(names.QUEUE_RECORDS, messages)
    crash_point("content.after_publish")
    keys: dict[str, set[int]] = {}
    for batch in batches:
        for e in batch:
            keys.setdefault(_day(e), set()).add(record_hash(e.record_id))
    _record_ledger(svc).add(tid, keys)
    ContentLedger(svc.storage).put_entry(replace(entry, phase="done"), now=now, content_type=ref.content_type)
    times = [e.time for batch in batches for e in batch]
    report.messages = len(messages)
    report.first_record_time = iso(min(times)) if times else None
    log.info(
        "content processed: tenant=%s content_id=%s unique=%d duplicates=%d quarantined=%d",
        tid,
        cid,
        report.unique,
        report.duplicates,
        report.quarantined,
        extra={"tenant_id": tid, "content_id": cid},
    )


# ----------------------------------------------------------------------------- helpers


def _record_ledger(svc: IngestServices) -> RecordLedger:
    ledger: RecordLedger = svc.record_ledger
    return ledger


def _day(event: Event) -> str:
    return datetime.fromtimestamp(event.time, UTC).date().isoformat()


def _unique(svc: IngestServices, tenant_id: str, events: list[Event]) -> tuple[list[Event], int]:
    """Events whose Id is neither repeated earlier in the blob nor in the record ledger; and the dropped count."""
    candidates: list[tuple[Event, str, int]] = []
    in_blob: set[tuple[str, int]] = set()
    for e in events:
        key = (_day(e), record_hash(e.record_id))
        if key not in in_blob:
            in_blob.add(key)
            candidates.append((e, *key))
    keys: dict[str, set[int]] = {}
    for _, day, h in candidates:
        keys.setdefault(day, set()).add(h)
    seen = _record_ledger(svc).seen(tenant_id, keys)
    unique = [e for e, day, h in candidates if (day, h) not in seen]
    return unique, len(events) - len(unique)


def _records_message_id(content_id: str, n: int, shard: int) -> str:
    message_id = f"records:{content_id}:{n}:{shard}"
    return message_id if len(message_id) <= 128 else f"records:{content_message_id(content_id)}:{n}:{shard}"


def _quarantine_name(ref: ContentRef, suffix: str) -> str:
    return f"{ref.tenant_id}/{ref.content_type}/{blob_day(ref)}/{quote(ref.content_id, safe='$')}{suffix}"


def _quarantine_rows(svc: IngestServices, ref: ContentRef, rows: list[dict[str, Any]]) -> None:
    table = svc.storage.table(names.TABLE_QUARANTINE)
    for i in range(0, len(rows), 100):
        table.submit_transaction([("upsert", row) for row in rows[i : i + 100]])


def _quarantine_row(ref: ContentRef, index: int, reason: str, detail: str, blob: str, now: datetime) -> dict[str, Any]:
    return {
        "PartitionKey": encode_key(ref.tenant_id),
        "RowKey": encode_key(f"{ref.content_id}:{index:06d}" if index >= 0 else f"{ref.content_id}:blob"),
        "tenant_id": ref.tenant_id,
        "content_id": ref.content_id,
        "content_type": ref.content_type,
        "index": index,
        "reason": reason,
        "detail": detail[:1000],
        "blob": blob,
        "quarantined_at": now.isoformat(),
    }


def _quarantine_records(
    svc: IngestServices, ref: ContentRef, bad: list[tuple[int, Quarantined]], now: datetime
) -> None:
    """One blob with the bad records (a JSON array, in order) and one row per record."""
    name = _quarantine_name(ref, ".records.json")
    payload = b"[" + b",".join(q.raw or b"null" for _, q in bad) + b"]"
    svc.storage.container(names.CONTAINER_QUARANTINE).upload_blob(name, payload, overwrite=True)
    rows = []
    for position, (index, q) in enumerate(bad):
        row = _quarantine_row(ref, index, q.reason, q.detail, name, now)
        row.update(record_id=(q.record_id or "")[:MAX_ID_CHARS], blob_index=position)
        rows.append(row)
    _quarantine_rows(svc, ref, rows)
    log.warning(
        "records quarantined: tenant=%s content_id=%s count=%d reasons=%s",
        ref.tenant_id,
        ref.content_id,
        len(bad),
        orjson.dumps(dict(Counter(q.reason for _, q in bad))).decode(),
        extra={"tenant_id": ref.tenant_id, "content_id": ref.content_id},
    )


def _quarantine_blob(svc: IngestServices, ref: ContentRef, data: bytes, detail: str, now: datetime) -> None:
    name = _quarantine_name(ref, ".blob")
    svc.storage.container(names.CONTAINER_QUARANTINE).upload_blob(name, data, overwrite=True)
    _quarantine_rows(svc, ref, [_quarantine_row(ref, -1, "invalid_blob", detail, name, now)])
    log.warning("content blob quarantined: tenant=%s content_id=%s", ref.tenant_id, ref.content_id)


def _proof_of_life(svc: IngestServices, record: TenantRecord, ref: ContentRef, report: ContentReport) -> None:
    """First content of a tenant: tell the partner (message first, then the mark: at least once)."""
    directory = svc.tenants
    current = directory.get(record.tenant_id) or record
    if current.first_content_at is not None:
        return
    body = {
        "kind": "proof_of_life",
        "tenant_id": current.tenant_id,
        "content_type": ref.content_type,
        "first_record_time": report.first_record_time,
    }
    message = OutboundMessage(orjson.dumps(body), message_id=f"proof_of_life:{current.tenant_id}")
    svc.bus.send(names.QUEUE_ALERTS, [message])
    directory.upsert(current.model_copy(update={"first_content_at": utcnow(svc.clock)}))
    report.proof_of_life = True
    log.info("proof of life: tenant=%s content_type=%s", current.tenant_id, ref.content_type)
