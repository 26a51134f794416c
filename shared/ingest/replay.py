"""Operations on what ingestion kept: replay detection over the raw archive, and parked messages.

:func:`replay` re-runs detection for one tenant and time range over the raw archive, through exactly
the machinery of ``itdr scan``: it reads the raw content blobs (never the batch blobs) under
``raw/<tenant>/<content type>/<day>/``, keeps each record Id once, keeps the records whose
``CreationTime`` falls in ``[since, until)``, writes them to a temporary directory and calls
:func:`shared.cli.scan.scan` and :func:`shared.cli.scan.write_output` (same formats, same summary).
Blobs are listed from the day before ``since`` to :data:`LATE_CONTENT` after ``until``: a blob is
created after the events it holds, sometimes days after.

:func:`list_deadletters` / :func:`replay_deadletters` serve ``itdr deadletters``: rows of
``TABLE_DEADLETTERS`` (parked by ``shared.handlers.run_message``) and, on an in-process bus, its
dead-letter queues. A replay re-sends the body to its queue with the message ID suffixed
``:replay:<n>`` (duplicate detection would drop the original ID), then deletes the row.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from shared.app import Services
from shared.ingest.checkpoints import utcnow
from shared.ingest.clouds import normalize_tenant_id
from shared.ingest.content import is_batch_blob
from shared.ingest.onboarding import tenant_directory
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage
from shared.platform.errors import BadInputError
from shared.platform.storage import decode_key, encode_key
from shared.records.event import Event, parse_raw_record
from shared.records.split import split_array

log = logging.getLogger("itdr.ingest")

LATE_CONTENT = timedelta(days=7)
MAX_REPLAY_DAYS = 90


# ----------------------------------------------------------------------------- archive replay


@dataclass(slots=True)
class ReplayResult:
    """What a replay read and what the scan found."""

    tenant_id: str
    blobs: int = 0
    records: int = 0
    duplicates: int = 0
    out_of_range: int = 0
    unreadable_blobs: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    """The ``itdr scan`` summary of the replayed records."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _days(since: datetime, until: datetime, now: datetime) -> list[str]:
    first = (since - timedelta(days=1)).date()
    last = min(until + LATE_CONTENT, now).date()
    out = []
    day = first
    while day <= last:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def _select(
    data: bytes, tenant_id: str, since: float, until: float, seen: set[str], result: ReplayResult
) -> list[bytes]:
    """The records of one raw blob inside the range and not seen before (by Id)."""
    try:
        raws = [raw for raw, _ in split_array(data)]  # an element too deep or too large is b"": quarantined below
    except ValueError:
        result.unreadable_blobs += 1
        return []
    kept: list[bytes] = []
    for raw in raws:
        event = parse_raw_record(raw, expected_tenant=tenant_id)
        if not isinstance(event, Event) or not since <= event.time < until:
            result.out_of_range += 1  # records without a usable time were quarantined when ingested
            continue
        rid = event.record_id.lower()
        if rid in seen:
            result.duplicates += 1
            continue
        seen.add(rid)
        kept.append(event.raw)
    return kept


def replay(
    svc: Services,
    *,
    tenant_id: str,
    since: datetime,
    until: datetime,
    fmt: str = "jsonl",
    output: IO[bytes],
    summary_path: str | None = None,
    config_path: str | None = None,
) -> ReplayResult:
    """Detect again over the archived records of one tenant in ``[since, until)``; writes like ``itdr scan``.

    Tenant settings come from ``config_path`` (an ``itdr scan --config`` file) or else from the tenant row.
    """
    from shared.cli.scan import ScanConfig, scan, write_output

    tid = normalize_tenant_id(tenant_id)
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if since >= until:
        raise BadInputError("--since must be before --until", reason="bad_range")
    if until - since > timedelta(days=MAX_REPLAY_DAYS):
        raise BadInputError(f"replay at most {MAX_REPLAY_DAYS} days at a time", reason="bad_range")
    cfg = ScanConfig.load(config_path)
    record = tenant_directory(svc).get(tid)
    if config_path is None and record is not None:
        body = {**record.detection, "name": record.name, "partner_id": record.partner_id}
        cfg = ScanConfig(tenants={tid: body})
    container = svc.storage.container(names.CONTAINER_RAW)
    result = ReplayResult(tid)
    seen: set[str] = set()
    days = _days(since, until, utcnow(svc.clock))
    content_types = sorted(
        str(p.name).rstrip("/").rsplit("/", 1)[-1]
        for p in container.walk_blobs(name_starts_with=f"raw/{tid}/", delimiter="/")
    )
    with tempfile.TemporaryDirectory(prefix="itdr-replay-") as tmp:
        for ct in content_types:
            for day in days:
                for item in container.list_blobs(name_starts_with=f"raw/{tid}/{ct}/{day}/"):
                    if is_batch_blob(str(item.name)):
                        continue
                    data = container.download_blob(item.name).readall()
                    result.blobs += 1
                    kept = _select(data, tid, since.timestamp(), until.timestamp(), seen, result)
                    if kept:
                        path = Path(tmp) / f"{result.blobs:06d}.json"
                        path.write_bytes(b"[" + b",".join(kept) + b"]")
                        result.records += len(kept)
        scanned = scan([tmp], cfg)
    write_output(scanned, fmt, output)
    result.summary = scanned.summary()
    if summary_path:
        Path(summary_path).write_bytes(
            orjson.dumps(
                {**result.summary, "replay": {k: v for k, v in result.to_dict().items() if k != "summary"}},
                option=orjson.OPT_INDENT_2,
            )
        )
    log.info("replay done: tenant=%s blobs=%d records=%d", tid, result.blobs, result.records)
    return result


# ----------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetterItem:
    """A parked or dead-lettered message."""

    source: str
    """``table`` (parked by the app) or ``bus`` (the in-process bus's dead-letter queue)."""
    tenant_id: str
    queue: str
    message_id: str
    reason: str
    description: str
    parked_at: str
    session_id: str | None = None
    body: bytes = b""
    key: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the body)."""
        out = asdict(self)
        out.pop("body")
        out.pop("key")
        return out


def _tenant_of(body: bytes) -> str:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unknown"
    tid = obj.get("tenant_id") if isinstance(obj, dict) else None
    return str(tid).lower() if tid else "unknown"


def list_deadletters(svc: Services, *, tenant_id: str | None = None) -> list[DeadLetterItem]:
    """Parked messages (all tenants, or one), then the in-process bus's dead letters, oldest first."""
    table = svc.storage.table(names.TABLE_DEADLETTERS)
    if tenant_id is None:
        rows = table.list_entities()
    else:
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(tenant_id.lower())})
    items = [
        DeadLetterItem(
            source="table",
            tenant_id=decode_key(str(r["PartitionKey"])),
            queue=str(r.get("queue") or ""),
            message_id=str(r.get("message_id") or ""),
            reason=str(r.get("reason") or ""),
            description=str(r.get("description") or ""),
            parked_at=str(r.get("parked_at") or ""),
            session_id=r.get("session_id") or None,
            body=str(r.get("body") or "").encode(),
            key=(str(r["PartitionKey"]), str(r["RowKey"])),
        )
        for r in rows
    ]
    if isinstance(svc.bus, InProcessBus):
        for d in svc.bus.dead_letters():
            tenant = _tenant_of(d.message.body)
            if tenant_id is None or tenant == tenant_id.lower():
                items.append(
                    DeadLetterItem(
                        "bus",
                        tenant,
                        d.queue,
                        d.message.message_id,
                        d.reason,
                        d.description,
                        d.dead_lettered_at.isoformat(),
                        d.message.session_id,
                        d.message.body,
                    )
                )
    return sorted(items, key=lambda i: (i.parked_at, i.queue, i.message_id))


def replay_message_id(message_id: str) -> str:
    """``<id>:replay:<n+1>`` for ``<id>:replay:<n>``, else ``<id>:replay:1`` (hashed beyond 128 chars)."""
    base, marker, n = message_id.rpartition(":replay:")
    new = f"{base}:replay:{int(n) + 1}" if marker and n.isdigit() else f"{message_id}:replay:1"
    if len(new) <= 128:
        return new
    return f"sha256:{hashlib.sha256(message_id.encode()).hexdigest()}:replay:1"


def replay_deadletters(
    svc: Services,
    *,
    tenant_id: str | None = None,
    queue: str | None = None,
    reasons: Collection[str] | None = None,
    message_ids: Collection[str] | None = None,
) -> list[DeadLetterItem]:
    """Re-send matching dead letters to their queues, then forget them; returns what was replayed."""
    done: list[DeadLetterItem] = []
    for item in list_deadletters(svc, tenant_id=tenant_id):
        if queue is not None and item.queue != queue:
            continue
        if reasons is not None and item.reason not in reasons:
            continue
        if message_ids is not None and item.message_id not in message_ids:
            continue
        if item.queue not in names.ALL_QUEUES or not item.body:
            log.warning("dead letter cannot be replayed: queue=%s message_id=%s", item.queue, item.message_id)
            continue
        message = OutboundMessage(item.body, message_id=replay_message_id(item.message_id), session_id=item.session_id)
        svc.bus.send(item.queue, [message])
        _forget(svc, item)
        done.append(item)
        log.info("dead letter replayed: tenant=%s queue=%s message_id=%s", item.tenant_id, item.queue, item.message_id)
    return done


def _forget(svc: Services, item: DeadLetterItem) -> None:
    if item.source == "table" and item.key is not None:
        svc.storage.table(names.TABLE_DEADLETTERS).delete_entity(*item.key)
    elif isinstance(svc.bus, InProcessBus):
        for d in svc.bus.dead_letters(item.queue):
            if d.message.message_id == item.message_id:
                svc.bus.remove_dead_letter(d)
                break
