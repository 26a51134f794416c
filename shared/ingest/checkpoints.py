"""Per-feed state of the Management Activity API ingestion: checkpoints and the subscription start log.

A *feed* is one (tenant, content type). Its row in ``TABLE_CHECKPOINTS`` (PartitionKey = tenant,
RowKey = content type) holds:

- ``watermark``: the end of the last listing window whose every page was durably enqueued;
- ``cursor`` / ``cursor_start`` / ``cursor_end``: the ``NextPageUri`` of a window in progress, so a
  poll that died mid-window resumes on the next page instead of page 1 (docs/management-activity-api.md
  §4, §12.8);
- ``newest_content_at``: the newest ``contentCreated`` listed (feed health measures lag with it);
- ``last_poll_at`` / ``last_error``: what the last poll did;
- ``last_start_at`` / ``last_start_error``: the last ``/subscriptions/start`` attempt (15 min spacing).

Listing fields and start-log fields are written by separate MERGE writes, so the poller and the
onboarding / repair code never overwrite each other's columns. Times are ISO 8601 UTC text.

The listing columns are claimed: :meth:`CheckpointStore.save_progress` writes only if the row is still the
one the poller read (its ETag, or a conditional create when there was no row), else ConcurrencyError: two
overlapping polls of one feed cannot move its watermark backwards or drop each other's cursor; the loser
stops and the next poll starts from what the winner saved. The start log (:meth:`record_start`) is a plain
MERGE: it only stamps when a start was tried, and repeating that is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.platform import names
from shared.platform.errors import ConcurrencyError
from shared.platform.storage import StorageClients, encode_key

NO_ROW = ""
"""The ``Checkpoint.etag`` of a feed that had no row when read: saving it is a conditional create."""

FEED_CONTENT_TYPES: tuple[str, ...] = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
)
"""The content types m365-itdr subscribes to and polls for every tenant (DLP.All is not used)."""


def utcnow(clock: Any) -> datetime:
    """The current time of an epoch-seconds clock (``IngestServices.clock``) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(clock()), UTC)


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def _time(value: object) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The listing state of one feed (see the module docstring)."""

    tenant_id: str
    content_type: str
    watermark: datetime | None = None
    cursor: str | None = None
    cursor_start: datetime | None = None
    cursor_end: datetime | None = None
    newest_content_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_error: str | None = None
    last_start_at: datetime | None = None
    last_start_error: str | None = None
    etag: str | None = field(default=None, compare=False)
    """The row's ETag when read (:data:`NO_ROW` when there was none): save_progress claims with it.
    None: not read from storage, written without a claim (seeding and repair tools)."""

    @classmethod
    def from_entity(cls, tenant_id: str, content_type: str, row: dict[str, Any], etag: str | None = None) -> Checkpoint:
        """A checkpoint from its table row (missing columns are None)."""
        return cls(
            tenant_id=tenant_id,
            content_type=content_type,
            watermark=_time(row.get("watermark")),
            cursor=row.get("cursor") or None,
            cursor_start=_time(row.get("cursor_start")),
            cursor_end=_time(row.get("cursor_end")),
            newest_content_at=_time(row.get("newest_content_at")),
            last_poll_at=_time(row.get("last_poll_at")),
            last_error=row.get("last_error") or None,
            last_start_at=_time(row.get("last_start_at")),
            last_start_error=row.get("last_start_error") or None,
            etag=etag,
        )


class CheckpointStore:
    """Checkpoints and start attempts in ``TABLE_CHECKPOINTS``."""

    def __init__(self, storage: StorageClients) -> None:
        self._table = storage.table(names.TABLE_CHECKPOINTS)

    def get_checkpoint(self, tenant_id: str, content_type: str) -> Checkpoint:
        """The feed's checkpoint; an empty one (no watermark: first run) when none is stored."""
        tenant = tenant_id.lower()
        try:
            row = self._table.get_entity(encode_key(tenant), encode_key(content_type))
        except ResourceNotFoundError:
            return Checkpoint(tenant, content_type, etag=NO_ROW)
        return Checkpoint.from_entity(tenant, content_type, dict(row), etag=row.metadata.get("etag"))

    def list_checkpoints(self, tenant_id: str) -> list[Checkpoint]:
        """Every stored checkpoint of a tenant, by content type (empty when none)."""
        tenant = tenant_id.lower()
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(tenant)})
        found = [Checkpoint.from_entity(tenant, str(r["content_type"]), dict(r)) for r in rows if r.get("content_type")]
        return sorted(found, key=lambda c: c.content_type)

    def save_progress(self, checkpoint: Checkpoint) -> Checkpoint:
        """Write the listing columns (watermark, cursor, newest content, last poll and error); the checkpoint
        with its new ETag is returned. ConcurrencyError when the row changed since it was read."""
        cp = checkpoint
        entity = {
            "PartitionKey": encode_key(cp.tenant_id),
            "RowKey": encode_key(cp.content_type),
            "content_type": cp.content_type,
            "watermark": _iso(cp.watermark),
            "cursor": cp.cursor or "",
            "cursor_start": _iso(cp.cursor_start),
            "cursor_end": _iso(cp.cursor_end),
            "newest_content_at": _iso(cp.newest_content_at),
            "last_poll_at": _iso(cp.last_poll_at),
            "last_error": cp.last_error or "",
        }
        try:
            if cp.etag is None:
                meta = self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
            elif cp.etag == NO_ROW:
                meta = self._table.create_entity(entity)
            else:
                meta = self._table.update_entity(
                    entity, mode=UpdateMode.MERGE, etag=cp.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(
                "checkpoint changed by another poller", tenant=cp.tenant_id, content_type=cp.content_type
            ) from exc
        return replace(cp, etag=str(meta.get("etag") or "") or None)

    def record_start(self, tenant_id: str, content_type: str, *, at: datetime, error: str | None = None) -> None:
        """Record a ``/subscriptions/start`` attempt (written before the call, updated with its error)."""
        self._table.upsert_entity(
            {
                "PartitionKey": encode_key(tenant_id.lower()),
                "RowKey": encode_key(content_type),
                "content_type": content_type,
                "last_start_at": _iso(at),
                "last_start_error": error or "",
            },
            mode=UpdateMode.MERGE,
        )
