"""`itdr replay`: detection over the raw archive for one tenant and period, through the machinery of `itdr scan`.

:func:`replay` reads the raw content blobs (never the batch blobs) under ``raw/<tenant>/<content type>/<day>/``,
keeps each record Id once, keeps the records whose ``CreationTime`` falls in ``[since, until)``, writes them to a
temporary directory and calls :func:`shared.cli.scan.scan` and :func:`shared.cli.scan.write_output` (same
formats, same summary). Blobs are listed from the day before ``since`` to :data:`LATE_CONTENT` after ``until``:
a blob is created after the events it holds, sometimes days after.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from shared.app import Services
from shared.cli.scan import ScanConfig, scan, write_output
from shared.ingest.checkpoints import utcnow
from shared.ingest.clouds import normalize_tenant_id
from shared.ingest.content import is_batch_blob
from shared.platform import names
from shared.platform.errors import BadInputError
from shared.records.event import Event, parse_raw_record
from shared.records.split import split_array

log = logging.getLogger("itdr.cli")

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

    tid = normalize_tenant_id(tenant_id)
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if since >= until:
        raise BadInputError("--since must be before --until", reason="bad_range")
    if until - since > timedelta(days=MAX_REPLAY_DAYS):
        raise BadInputError(f"replay at most {MAX_REPLAY_DAYS} days at a time", reason="bad_range")
    cfg = ScanConfig.load(config_path)
    record = svc.tenants.get(tid)
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
