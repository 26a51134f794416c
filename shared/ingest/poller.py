"""The poller: list new content for every tenant and content type, enqueue one ContentRef per blob.

Per feed (tenant, content type), following docs/management-activity-api.md §3-§7 and §12:

- a window in progress (a stored ``NextPageUri`` cursor) is finished first, from its next page;
- then ``[watermark − OVERLAP, now)`` is listed (``[now − 24 h, now)`` on the first run), cut by the
  client into slices of at most 24 h and clamped to the 7-day lookback. A watermark older than the
  lookback means content was lost: an ``integration_health`` alert names the gap;
- every page is sent to ``QUEUE_CONTENT`` (MessageId = contentId: the queue drops duplicates) *before*
  the checkpoint moves: after a page, the cursor; after a slice's last page, the watermark = the
  slice's end. A crash between send and checkpoint lists the page again; duplicate detection and the
  content ledger make that harmless;
- a SubscriptionError (disabled by an admin, or missing) raises an alert and restarts the
  subscription (15 min spacing), then lists once more;
- errors stay inside their feed: a throttled tenant skips its remaining feeds for this run, other
  failures skip one feed, and no tenant stops another.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.ingest.checkpoints import FEED_CONTENT_TYPES, Checkpoint, CheckpointStore, utcnow
from shared.ingest.client import MAX_LOOKBACK, ContentBlob, ContentPage, ManagementActivityClient
from shared.ingest.context import IngestServices
from shared.ingest.health import emit_alerts, integration_alert
from shared.ingest.onboarding import ensure_feeds
from shared.messages import ContentRef
from shared.platform import names
from shared.platform.bus import OutboundMessage
from shared.platform.errors import ConcurrencyError, ItdrError, SubscriptionError
from shared.platform.faults import crash_point
from shared.tenants import TenantRecord

log = logging.getLogger("itdr.ingest")

OVERLAP = timedelta(hours=1)
"""Each poll lists again this much before the watermark (late listing, clock skew)."""
FIRST_RUN = timedelta(hours=24)
"""A feed without a checkpoint starts this far back."""


def content_message_id(content_id: str) -> str:
    """The MessageId of a content blob: its contentId (hashed when longer than Service Bus allows)."""
    if len(content_id) <= 128:
        return content_id
    return "cid-sha256:" + hashlib.sha256(content_id.encode()).hexdigest()


@dataclass(slots=True)
class FeedPoll:
    """What one poll did for one feed."""

    content_type: str
    enqueued: int = 0
    pages: int = 0
    watermark: datetime | None = None
    error: str | None = None
    restarted: bool = False
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["watermark"] = self.watermark.isoformat() if self.watermark else None
        return out


@dataclass(slots=True)
class TenantPoll:
    """What one poll did for one tenant."""

    tenant_id: str
    feeds: list[FeedPoll] = field(default_factory=list)
    error: str | None = None

    @property
    def enqueued(self) -> int:
        """ContentRefs sent for this tenant."""
        return sum(f.enqueued for f in self.feeds)


@dataclass(slots=True)
class PollReport:
    """One poll over every tenant."""

    tenants: list[TenantPoll] = field(default_factory=list)

    @property
    def enqueued(self) -> int:
        """ContentRefs sent in total (before the queue's duplicate detection)."""
        return sum(t.enqueued for t in self.tenants)

    def errors(self) -> dict[str, list[str]]:
        """Tenant -> the errors of its feeds (empty when all went well)."""
        out: dict[str, list[str]] = {}
        for t in self.tenants:
            reasons = ([t.error] if t.error else []) + [f"{f.content_type}:{f.error}" for f in t.feeds if f.error]
            if reasons:
                out[t.tenant_id] = reasons
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "enqueued": self.enqueued,
            "tenants": [
                {"tenant_id": t.tenant_id, "error": t.error, "feeds": [f.to_dict() for f in t.feeds]}
                for t in self.tenants
            ],
        }


def poll_tenants(svc: IngestServices) -> PollReport:
    """Poll every onboarded tenant (status not ``offboarded``) and content type once."""
    report = PollReport()
    for record in svc.tenants.list():
        if record.status != "offboarded":
            report.tenants.append(poll_tenant(svc, record))
    log.info("poll done: tenants=%d enqueued=%d", len(report.tenants), report.enqueued)
    return report


def poll_tenant(svc: IngestServices, record: TenantRecord) -> TenantPoll:
    """Poll one tenant's feeds; never raises for API or storage failures (they are in the result)."""
    result = TenantPoll(record.tenant_id)
    try:
        client = svc.management_client(record.tenant_id)
    except ItdrError as exc:
        result.error = exc.reason
        return result
    throttled = False
    for ct in FEED_CONTENT_TYPES:
        if throttled:
            result.feeds.append(FeedPoll(ct, skipped=True, error="throttled"))
            continue
        try:
            feed = _poll_feed(svc, client, record, ct)
        except Exception as exc:  # a bug or storage outage in one feed must not stop the others
            log.exception("poll failed: tenant=%s content_type=%s", record.tenant_id, ct)
            feed = FeedPoll(ct, error=getattr(exc, "reason", type(exc).__name__))
        throttled = feed.error == "throttled"
        result.feeds.append(feed)
    return result


def _poll_feed(svc: IngestServices, client: ManagementActivityClient, record: TenantRecord, ct: str) -> FeedPoll:
    store = CheckpointStore(svc.storage)
    tid = record.tenant_id
    feed = FeedPoll(ct)
    now = utcnow(svc.clock)
    cp = store.get_checkpoint(tid, ct)
    try:
        cp = _list(svc, client, store, cp, now, feed)
    except SubscriptionError as exc:
        cp = _on_subscription_error(svc, client, store, record, cp, now, feed, exc)
    except ItdrError as exc:
        feed.error = exc.reason
        cp = _note_error(store, tid, ct, now, exc.reason)
        log.warning("poll of a feed failed: tenant=%s content_type=%s reason=%s", tid, ct, exc.reason)
    feed.watermark = cp.watermark
    return feed


def _note_error(store: CheckpointStore, tenant_id: str, content_type: str, now: datetime, reason: str) -> Checkpoint:
    """Record a failed poll on a fresh read of the row; when another poller wrote it meanwhile, its newer
    state stands (the note is lost, which is harmless: the next poll records its own outcome)."""
    cp = store.get_checkpoint(tenant_id, content_type)
    try:
        return store.save_progress(replace(cp, last_poll_at=now, last_error=reason))
    except ConcurrencyError:
        return store.get_checkpoint(tenant_id, content_type)


def _on_subscription_error(
    svc: IngestServices,
    client: ManagementActivityClient,
    store: CheckpointStore,
    record: TenantRecord,
    cp: Checkpoint,
    now: datetime,
    feed: FeedPoll,
    error: SubscriptionError,
) -> Checkpoint:
    tid, ct = record.tenant_id, feed.content_type
    kind = "subscription_disabled" if error.reason == "subscription_disabled" else "subscription_missing"
    emit_alerts(
        svc,
        [
            integration_alert(
                tenant_id=tid,
                kind=kind,
                content_type=ct,
                when=now,
                summary=f"Listing {ct} for tenant {tid} failed: {error.reason}; restarting the subscription.",
                context={"code": error.context.get("code")},
            )
        ],
    )
    cp = store.get_checkpoint(tid, ct)
    started = False
    try:
        _, outcomes = ensure_feeds(svc, client, record, content_types=[ct])
        started = outcomes[0].action == "started"
    except ItdrError as exc:
        log.warning("subscription restart failed: tenant=%s content_type=%s reason=%s", tid, ct, exc.reason)
    if not started:
        feed.error = error.reason
        return _note_error(store, tid, ct, now, error.reason)
    feed.restarted = True
    cp = store.get_checkpoint(tid, ct)  # the start log was written meanwhile: claim the current row
    try:
        return _list(svc, client, store, cp, now, feed)
    except ItdrError as exc:
        feed.error = exc.reason
        return _note_error(store, tid, ct, now, exc.reason)


def _list(
    svc: IngestServices,
    client: ManagementActivityClient,
    store: CheckpointStore,
    cp: Checkpoint,
    now: datetime,
    feed: FeedPoll,
) -> Checkpoint:
    """Finish a window in progress, then list from the watermark; the checkpoint moves page by page."""
    ct = feed.content_type
    if cp.cursor and cp.cursor_start and cp.cursor_end:
        pages = client.list_content_pages(ct, start=cp.cursor_start, end=cp.cursor_end, resume_page_uri=cp.cursor)
        cp = _consume(svc, store, cp, pages, now, feed)
    oldest = now - MAX_LOOKBACK
    if cp.watermark is not None and cp.watermark < oldest:
        _data_loss_alert(svc, cp, oldest, now)
    start = max(cp.watermark - OVERLAP if cp.watermark else now - FIRST_RUN, oldest)
    pages = client.list_content_pages(ct, start=start, end=now)
    cp = _consume(svc, store, cp, pages, now, feed)
    return store.save_progress(replace(cp, last_poll_at=now, last_error=None))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _consume(
    svc: IngestServices,
    store: CheckpointStore,
    cp: Checkpoint,
    pages: Iterator[ContentPage],
    now: datetime,
    feed: FeedPoll,
) -> Checkpoint:
    """Send each page, then record it: the cursor mid-slice, the watermark at a slice's end."""
    for page in pages:
        _enqueue(svc, cp.tenant_id, page.items)
        crash_point("poll.after_enqueue")
        feed.pages += 1
        feed.enqueued += len(page.items)
        newest = _later(cp.newest_content_at, max((b.content_created for b in page.items), default=None))
        if page.next_page_uri is not None:
            cp = replace(
                cp,
                cursor=page.next_page_uri,
                cursor_start=page.window_start,
                cursor_end=page.window_end,
                newest_content_at=newest,
            )
        else:
            cp = replace(
                cp,
                watermark=_later(cp.watermark, page.window_end),
                cursor=None,
                cursor_start=None,
                cursor_end=None,
                newest_content_at=newest,
            )
        cp = store.save_progress(replace(cp, last_poll_at=now))
    return cp


def _enqueue(svc: IngestServices, tenant_id: str, blobs: list[ContentBlob]) -> None:
    if not blobs:
        return
    messages = [
        OutboundMessage(
            ContentRef(
                tenant_id=tenant_id,
                content_type=b.content_type,
                content_id=b.content_id,
                content_uri=b.content_uri,
                content_created=b.content_created,
                content_expiration=b.content_expiration,
                source="poll",
            ).encode(),
            message_id=content_message_id(b.content_id),
        )
        for b in blobs
    ]
    svc.bus.send(names.QUEUE_CONTENT, messages)


def _data_loss_alert(svc: IngestServices, cp: Checkpoint, oldest: datetime, now: datetime) -> None:
    assert cp.watermark is not None
    lost_h = round((oldest - cp.watermark).total_seconds() / 3600, 1)
    log.error(
        "data-loss gap: tenant=%s content_type=%s watermark=%s",
        cp.tenant_id,
        cp.content_type,
        cp.watermark.isoformat(),
        extra={"tenant_id": cp.tenant_id, "content_type": cp.content_type},
    )
    emit_alerts(
        svc,
        [
            integration_alert(
                tenant_id=cp.tenant_id,
                kind="data_loss_gap",
                content_type=cp.content_type,
                when=now,
                summary=(
                    f"{cp.content_type} of tenant {cp.tenant_id} was last polled up to {cp.watermark.isoformat()}: "
                    f"about {lost_h} h of content before {oldest.isoformat()} is past the 7-day retention."
                ),
                context={"gap_start": cp.watermark.isoformat(), "gap_end": oldest.isoformat(), "lost_hours": lost_h},
            )
        ],
    )
