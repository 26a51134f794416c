"""Ledgers that make content processing idempotent: one row per content blob, one hash per record.

:class:`ContentLedger` (``TABLE_CONTENT_LEDGER``, PartitionKey = tenant, RowKey = content id) says how
far a content blob got: ``invalid`` (downloaded, not a JSON array: the digest of those bytes is kept
so a second identical download quarantines it), ``batched`` (batch blobs written: a redelivery
republishes them instead of deciding again) and ``done``. Rows expire :data:`CONTENT_RETENTION`
after their last write (a duplicate contentId can come back days later; content lives 7 days).

:class:`RecordLedger` drops records already published from another blob (duplicates are by design,
docs/management-activity-api.md §7, §12.1-2) without a table write per record: per tenant and UTC
day of the record's ``CreationTime``, one blob ``ledger/<tenant>/<YYYY-MM-DD>`` in ``CONTAINER_LEDGER``
holding the sorted 8-byte (big-endian) BLAKE2b hashes of the record Ids. A content blob costs one
read (a conditional GET answered 304 when the cached copy is current) and one ETag-guarded write per
day it touches. A re-delivered record has the same Id and CreationTime, so it lands in the same day.
Day blobs older than :data:`RECORD_RETENTION_DAYS` can be deleted (:meth:`RecordLedger.purge`).
"""

from __future__ import annotations

import hashlib
import heapq
import sys
import threading
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
)
from azure.data.tables import UpdateMode

from shared.platform import names
from shared.platform.errors import ConcurrencyError
from shared.platform.storage import StorageClients, encode_key

CONTENT_RETENTION = timedelta(days=8)
"""How long a content ledger row is honoured after its last write."""
RECORD_RETENTION_DAYS = 10
"""Days of record-ledger blobs worth keeping (7 days of content retention plus late records)."""
_WRITE_ATTEMPTS = 6


# ----------------------------------------------------------------------------- content ledger


@dataclass(frozen=True, slots=True)
class ContentEntry:
    """A content ledger row."""

    tenant_id: str
    content_id: str
    phase: str
    """``invalid``, ``batched`` or ``done`` (``expired``: a row past its retention, to be overwritten)."""
    invalid_digest: str | None = None
    invalid_count: int = 0
    batches: int = 0
    shards: int = 1
    records: int = 0
    duplicates: int = 0
    quarantined: int = 0
    updated_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)
    """The row's ETag when read; None for a row not read (written only if none exists yet)."""

    @property
    def done(self) -> bool:
        """True when the blob was processed to the end."""
        return self.phase == "done"


class ContentLedger:
    """Progress of content blobs per tenant; rows older than :data:`CONTENT_RETENTION` are ignored."""

    def __init__(self, storage: StorageClients) -> None:
        self._table = storage.table(names.TABLE_CONTENT_LEDGER)

    def get_entry(self, tenant_id: str, content_id: str, *, now: datetime) -> ContentEntry | None:
        """The row of a content blob, or None (never seen). An expired row (not purged yet) is an entry of phase
        ``expired`` with nothing else but its ETag (so that a new delivery can claim the row)."""
        try:
            row = self._table.get_entity(encode_key(tenant_id), encode_key(content_id))
        except ResourceNotFoundError:
            return None
        expires = datetime.fromisoformat(str(row.get("expires_at") or "1970-01-01T00:00:00+00:00"))
        if expires <= now:
            return ContentEntry(tenant_id, content_id, "expired", etag=row.metadata.get("etag"))
        return ContentEntry(
            tenant_id=tenant_id,
            content_id=content_id,
            phase=str(row.get("phase") or ""),
            invalid_digest=row.get("invalid_digest") or None,
            invalid_count=int(row.get("invalid_count") or 0),
            batches=int(row.get("batches") or 0),
            shards=int(row.get("shards") or 1),
            records=int(row.get("records") or 0),
            duplicates=int(row.get("duplicates") or 0),
            quarantined=int(row.get("quarantined") or 0),
            updated_at=datetime.fromisoformat(str(row["updated_at"])) if row.get("updated_at") else None,
            etag=row.metadata.get("etag"),
        )

    def put_entry(self, entry: ContentEntry, *, now: datetime, content_type: str = "") -> ContentEntry:
        """Write a row (its expiry moves to ``now`` + :data:`CONTENT_RETENTION`); the entry with its new ETag.

        Claimed: an entry read from the ledger is written only if the row is unchanged (its ETag), a new one
        only if no row exists (a row that expired but was not purged yet counts as changed). ConcurrencyError
        otherwise: another delivery of the same content got there first, and this one is retried against its row.
        """
        entity = {
            "PartitionKey": encode_key(entry.tenant_id),
            "RowKey": encode_key(entry.content_id),
            "content_id": entry.content_id,
            "content_type": content_type,
            "phase": entry.phase,
            "invalid_digest": entry.invalid_digest or "",
            "invalid_count": entry.invalid_count,
            "batches": entry.batches,
            "shards": entry.shards,
            "records": entry.records,
            "duplicates": entry.duplicates,
            "quarantined": entry.quarantined,
            "updated_at": now.astimezone(UTC).isoformat(),
            "expires_at": (now + CONTENT_RETENTION).astimezone(UTC).isoformat(),
        }
        try:
            if entry.etag is None:
                meta = self._table.create_entity(entity)
            else:
                meta = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=entry.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(
                "content ledger row changed by another delivery", tenant=entry.tenant_id, content_id=entry.content_id
            ) from exc
        return replace(entry, etag=meta.get("etag"))

    def purge_expired(self, tenant_id: str, *, now: datetime) -> int:
        """Delete the tenant's expired rows; returns how many went."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and expires_at lt @now",
            parameters={"pk": encode_key(tenant_id), "now": now.astimezone(UTC).isoformat()},
            select=["PartitionKey", "RowKey"],
        )
        deleted = 0
        for row in rows:
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
            deleted += 1
        return deleted


# ----------------------------------------------------------------------------- record ledger


def record_hash(record_id: str) -> int:
    """The 8-byte ledger hash of a record Id (case-insensitive: Ids are GUIDs)."""
    return int.from_bytes(hashlib.blake2b(record_id.strip().lower().encode(), digest_size=8).digest(), "big")


def _decode(data: bytes) -> array[int]:
    values = array("Q")
    values.frombytes(data[: len(data) - len(data) % 8])
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _encode(values: array[int]) -> bytes:
    out = array("Q", values)
    if sys.byteorder == "little":
        out.byteswap()
    return out.tobytes()


class RecordLedger:
    """Record-Id hashes per tenant and day in blobs (see the module docstring). Thread-safe.

    Keeps up to ``cache_size`` day blobs in memory with their ETags; share one instance per process.
    """

    def __init__(self, storage: StorageClients, *, cache_size: int = 32) -> None:
        self._container = storage.container(names.CONTAINER_LEDGER)
        self._storage = storage
        self._legacy_checked: OrderedDict[tuple[str, str], None] = OrderedDict()
        """Days already looked up in ``CONTAINER_LEGACY_WORK`` (bounded): each is read there once at most."""
        self._cache: OrderedDict[tuple[str, str], tuple[str | None, array[int]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @staticmethod
    def blob_name(tenant_id: str, day: str) -> str:
        """``ledger/<tenant>/<YYYY-MM-DD>``."""
        return f"ledger/{tenant_id.lower()}/{day}"

    def seen(self, tenant_id: str, keys: Mapping[str, Iterable[int]]) -> set[tuple[str, int]]:
        """The (day, hash) pairs of ``keys`` (day -> hashes) already in the ledger."""
        found: set[tuple[str, int]] = set()
        for day, hashes in keys.items():
            _, values = self._load(tenant_id, day)
            found.update((day, h) for h in hashes if _contains(values, h))
        return found

    def add(self, tenant_id: str, keys: Mapping[str, Iterable[int]]) -> None:
        """Add hashes (day -> hashes), merging with concurrent writers; ConcurrencyError when it cannot."""
        for day, hashes in keys.items():
            new = set(hashes)
            if new:
                self._add_day(tenant_id, day, new)

    def purge(self, tenant_id: str, *, before: date) -> int:
        """Delete the tenant's day blobs older than ``before``; returns how many went."""
        deleted = 0
        prefix = f"ledger/{tenant_id.lower()}/"
        for item in self._container.list_blobs(name_starts_with=prefix):
            day = str(item.name)[len(prefix) :]
            try:
                if date.fromisoformat(day) >= before:
                    continue
            except ValueError:
                continue
            try:
                self._container.delete_blob(item.name)
            except ResourceNotFoundError:
                pass
            deleted += 1
            with self._lock:
                self._cache.pop((tenant_id.lower(), day), None)
        return deleted

    # -- internals -------------------------------------------------------------------------------

    def _add_day(self, tenant_id: str, day: str, new: set[int]) -> None:
        blob = self._container.get_blob_client(self.blob_name(tenant_id, day))
        for _ in range(_WRITE_ATTEMPTS):
            etag, values = self._load(tenant_id, day)
            missing = sorted(h for h in new if not _contains(values, h))
            if not missing:
                return
            merged = array("Q", heapq.merge(values, missing))
            try:
                if etag is None:
                    result = blob.upload_blob(_encode(merged), overwrite=False)
                else:
                    result = blob.upload_blob(
                        _encode(merged), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
            except (ResourceExistsError, ResourceModifiedError):
                self._forget(tenant_id, day)
                continue
            self._remember(tenant_id, day, str(result["etag"]), merged)
            return
        raise ConcurrencyError(
            "record ledger kept changing under concurrent writers", tenant=tenant_id, day=day, reason="ledger_conflict"
        )

    def _load(self, tenant_id: str, day: str) -> tuple[str | None, array[int]]:
        key = (tenant_id.lower(), day)
        with self._lock:
            cached = self._cache.get(key)
        blob = self._container.get_blob_client(self.blob_name(tenant_id, day))
        kwargs: dict[str, Any] = {}
        if cached is not None and cached[0] is not None:
            kwargs = {"etag": cached[0], "match_condition": MatchConditions.IfModified}
        try:
            stream = blob.download_blob(**kwargs)
            data = stream.readall()
        except (ResourceNotModifiedError, ResourceModifiedError) as exc:
            # 304: the cached copy is current (the SDK raises either class for it)
            if cached is None or getattr(exc, "status_code", 304) != 304:
                raise
            return cached
        except ResourceNotFoundError:
            self._forget(tenant_id, day)
            return self._migrate(tenant_id, day) or (None, array("Q"))
        values = _decode(data)
        etag = str(stream.properties.etag)
        self._remember(tenant_id, day, etag, values)
        return etag, values

    def _migrate(self, tenant_id: str, day: str) -> tuple[str, array[int]] | None:
        """A day written before the ledger had its own container: copied from ``CONTAINER_LEGACY_WORK`` (read
        only, looked up at most once per day and process) into the ledger container; None when there is none."""
        key = (tenant_id.lower(), day)
        with self._lock:
            if key in self._legacy_checked:
                return None
            self._legacy_checked[key] = None
            while len(self._legacy_checked) > 4096:
                self._legacy_checked.popitem(last=False)
        name = self.blob_name(tenant_id, day)
        try:
            data = self._storage.container(names.CONTAINER_LEGACY_WORK).download_blob(name).readall()
        except ResourceNotFoundError:
            return None
        blob = self._container.get_blob_client(name)
        try:
            etag = str(blob.upload_blob(data, overwrite=False)["etag"])
        except ResourceExistsError:
            stream = blob.download_blob()  # another instance wrote the day meanwhile (it holds the legacy hashes)
            data, etag = stream.readall(), str(stream.properties.etag)
        values = _decode(data)
        self._remember(tenant_id, day, etag, values)
        return etag, values

    def _remember(self, tenant_id: str, day: str, etag: str, values: array[int]) -> None:
        key = (tenant_id.lower(), day)
        with self._lock:
            self._cache[key] = (etag, values)
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, tenant_id: str, day: str) -> None:
        with self._lock:
            self._cache.pop((tenant_id.lower(), day), None)


def _contains(values: array[int], h: int) -> bool:
    i = bisect_left(values, h)
    return i < len(values) and values[i] == h
