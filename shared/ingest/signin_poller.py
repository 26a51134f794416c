"""The sign-in poller: each tenant's Entra sign-in logs through Graph, into the same pipeline as audit content.

Per tenant whose licence allows it (Entra ID P1 or higher: ``TenantRecord.signin_logs`` is not ``unavailable``,
detected at onboarding), once per run:

- the window is ``[watermark − OVERLAP, now)`` (``[now − FIRST_RUN, now)`` on the first run), at most
  `MAX_WINDOW` long and never older than `LOOKBACK` (the logs' retention); the checkpoint is the row
  ``SignInLogs`` of the tenant in ``TABLE_CHECKPOINTS`` (claimed with its ETag, as the content poller's);
- every page of ``GET /auditLogs/signIns`` in the window is read, for each of `EVENT_TYPES` (``@odata.nextLink``, 429 ``Retry-After``:
  :class:`~shared.ingest.signin_client.SignInLogClient`), each entry mapped to the audit record the detectors
  read (:mod:`shared.records.signins`); the window is sorted oldest first and cut into chunks of
  `CHUNK` sign-ins;
- each chunk is processed like a downloaded content blob (:func:`shared.ingest.content.process_fetched`): content
  ledger, raw archive, quarantine, the record ledger's duplicate check, batch blobs, RecordBatchRefs to the
  enrichment queue. Its content id is a digest of the sign-in ids it holds, so a chunk read again is a duplicate
  and a chunk of another composition only carries its new sign-ins on: the overlap re-reads late entries without
  doubles;
- the watermark moves to the window's end only after every chunk is published: a run that dies re-reads the
  window, and nothing is lost.

Read: interactive user sign-ins and service principal sign-ins (`EVENT_TYPES`). Not read yet: non-interactive user
sign-ins and managed identities (``itdr scan`` reads them from exports and diagnostic-settings archives).

A tenant without the licence (403 ``Authentication_RequestFromNonPremiumTenantOrB2CTenant``) is marked
``unavailable`` and skipped until onboarding runs again; a missing ``AuditLog.Read.All`` is reported on the
checkpoint (``last_error``) and retried next run. Errors stay inside their tenant.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.ingest.checkpoints import CheckpointStore, utcnow
from shared.ingest.content import process_fetched
from shared.ingest.context import IngestServices
from shared.messages import ContentRef
from shared.platform.errors import ConcurrencyError, ConfigurationError, ItdrError
from shared.records.event import parse_time
from shared.records.signins import map_signin
from shared.tenants import TenantRecord

log = logging.getLogger("itdr.ingest")

CONTENT_TYPE = "SignInLogs"
"""The checkpoint row, archive folder and content type of the sign-in logs."""
OVERLAP = timedelta(minutes=15)
"""Each run reads again this much before the watermark (sign-ins appear in the log minutes late)."""
FIRST_RUN = timedelta(hours=1)
MAX_WINDOW = timedelta(hours=1)
"""A tenant far behind catches up over several runs (memory: one window's sign-ins)."""
LOOKBACK = timedelta(days=29)
"""Sign-in logs are kept 30 days with Entra ID P1/P2."""
CHUNK = 500
EVENT_TYPES: tuple[str | None, ...] = (None, "servicePrincipal")
"""What is read: the interactive user sign-ins (Graph's default list) and the service principals' sign-ins (the beta
endpoint's ``signInEventTypes`` filter). Non-interactive user sign-ins (about ten times as many) are not read yet."""
"""Sign-ins per processed chunk (one content ledger row, one raw archive blob)."""


@dataclass(slots=True)
class SigninPoll:
    tenant_id: str
    skipped: str | None = None
    signins: int = 0
    chunks: int = 0
    unique: int = 0
    duplicates: int = 0
    quarantined: int = 0
    window: tuple[str, str] | None = None
    error: str | None = None


@dataclass(slots=True)
class SigninPollReport:
    tenants: list[SigninPoll] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tenants": [asdict(t) for t in self.tenants]}


def poll_signins(svc: IngestServices) -> SigninPollReport:
    """Read the sign-in logs of every onboarded tenant whose licence allows it (see the module docstring)."""
    report = SigninPollReport()
    for record in svc.tenants.list():
        if record.status == "offboarded":
            continue
        if record.signin_logs == "unavailable":
            report.tenants.append(SigninPoll(record.tenant_id, skipped="no_premium_licence"))
            continue
        try:
            report.tenants.append(poll_tenant_signins(svc, record))
        except Exception as exc:  # a bug or storage outage in one tenant must not stop the others
            log.exception("sign-in poll failed: tenant=%s", record.tenant_id)
            report.tenants.append(SigninPoll(record.tenant_id, error=getattr(exc, "reason", type(exc).__name__)))
    return report


def _chunk_id(signins: list[dict[str, Any]]) -> str:
    ids = sorted(str(s.get("Id") or "") for s in signins)
    return "signins:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:40]


def _time_of(rec: dict[str, Any]) -> float:
    try:
        return parse_time(str(rec.get("CreationTime") or ""))
    except (ValueError, OverflowError):
        return 0.0


def poll_tenant_signins(svc: IngestServices, record: TenantRecord) -> SigninPoll:
    """One tenant's run; API failures are in the result (and on the checkpoint), never raised."""
    tid = record.tenant_id
    result = SigninPoll(tid)
    store = CheckpointStore(svc.storage)
    now = utcnow(svc.clock)
    cp = store.get_checkpoint(tid, CONTENT_TYPE)
    start = cp.watermark - OVERLAP if cp.watermark is not None else now - FIRST_RUN
    start = max(start, now - LOOKBACK)
    end = min(now, start + MAX_WINDOW)
    result.window = (start.isoformat(), end.isoformat())
    try:
        client = svc.signin_client(tid)
        mapped: list[dict[str, Any]] = []
        pages = [
            page
            for event_type in EVENT_TYPES
            for page in client.signin_pages(start=start, end=end, event_type=event_type)
        ]
        for page in pages:
            for entry in page:
                got = map_signin(entry)
                if got is not None:
                    got["OrganizationId"] = tid  # the tenant whose log it is (a member's sign-in to another
                    # tenant's resource names that tenant as resourceTenantId)
                mapped.append(got if got is not None else entry)
    except ConfigurationError as exc:
        if exc.reason == "no_premium_licence":
            svc.tenants.upsert(record.model_copy(update={"signin_logs": "unavailable"}))
            result.skipped = "no_premium_licence"
            return result
        return _failed(store, cp, now, result, exc)
    except ItdrError as exc:
        return _failed(store, cp, now, result, exc)
    mapped.sort(key=lambda r: (_time_of(r), str(r.get("Id") or "")))
    result.signins = len(mapped)
    for i in range(0, len(mapped), CHUNK):
        chunk = mapped[i : i + CHUNK]
        newest = max(_time_of(r) for r in chunk)
        ref = ContentRef(
            tenant_id=tid,
            content_type=CONTENT_TYPE,
            content_id=_chunk_id(chunk),
            content_uri=f"{svc.settings.graph_base_url or 'https://graph.microsoft.com/v1.0'}/auditLogs/signIns",
            content_created=datetime.fromtimestamp(newest, UTC) if newest > 0 else end,
        )
        done = process_fetched(svc, ref, orjson.dumps(chunk))
        result.chunks += 1
        result.unique += done.unique
        result.duplicates += done.duplicates
        result.quarantined += done.quarantined
    newest_seen = max((_time_of(r) for r in mapped), default=0.0)
    try:
        store.save_progress(
            replace(
                cp,
                watermark=end,
                newest_content_at=datetime.fromtimestamp(newest_seen, UTC) if newest_seen > 0 else cp.newest_content_at,
                last_poll_at=now,
                last_error=None,
            )
        )
    except ConcurrencyError:
        result.error = "concurrent_poll"  # another run moved the checkpoint; the next run starts from it
    if record.signin_logs != "available":
        svc.tenants.upsert(record.model_copy(update={"signin_logs": "available"}))
    log.info(
        "sign-ins polled: tenant=%s signins=%d unique=%d duplicates=%d",
        tid,
        result.signins,
        result.unique,
        result.duplicates,
        extra={"tenant_id": tid},
    )
    return result


def _failed(store: CheckpointStore, cp: Any, now: datetime, result: SigninPoll, exc: ItdrError) -> SigninPoll:
    result.error = exc.reason
    log.warning("sign-in poll failed: tenant=%s reason=%s", result.tenant_id, exc.reason)
    try:
        store.save_progress(replace(cp, last_poll_at=now, last_error=f"{exc.reason}: {str(exc)[:300]}"))
    except ConcurrencyError:
        pass
    return result
