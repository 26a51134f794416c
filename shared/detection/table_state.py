"""Per-user detector state in Azure Table Storage (Azurite locally), cached per tenant partition.

Cost matters more than anything here (see the benchmark): the store reads a tenant's partition
once per process and keeps it cached (sessions give one consumer per tenant), and writes only
dirty users, in transactions of at most 100 entities, each guarded by its ETag.

The tenant-wide row (``TENANT_KEY``) is shared by every shard of a tenant: it goes in the first
transaction, and when that transaction fails because another shard changed the row since it was
loaded, the row is read again, this batch's change is merged into it (:func:`merge_state`) and the
transaction is sent again with the new ETag. A conflict on a user's row stays a ``ConcurrencyError``
(one shard owns each user).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.detection.state import (
    MERGE_ATTEMPTS,
    TENANT_KEY,
    StoreStats,
    UserState,
    copy_state,
    loaded_state,
    merge_state,
)
from shared.platform.errors import BadInputError, ConcurrencyError
from shared.platform.storage import decode_key, encode_key, is_hashed_key

_CONFLICT_CODES = frozenset(
    {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound", "EntityNotFound", "ConditionNotMet"}
)
"""Table error codes of a lost race (an ETag that changed, a row created or deleted by another writer)."""


class TableStateStore:
    """State in Azure Table Storage (Azurite locally), cached per tenant partition."""

    BATCH = 100

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._cache: dict[str, dict[str, UserState]] = {}
        self._lock = threading.Lock()
        self.stats = StoreStats()

    def _load_partition(self, tenant_id: str) -> dict[str, UserState]:
        part: dict[str, UserState] = {}
        pages = self._table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": encode_key(tenant_id)},
            select=["RowKey", "state", "key"],
            results_per_page=1000,
        ).by_page()
        for page in pages:
            self.stats.reads += 1
            for ent in page:
                etag = ent.metadata.get("etag")
                key = str(ent.get("key") or "") if is_hashed_key(ent["RowKey"]) else decode_key(ent["RowKey"])
                part[key] = UserState(orjson.loads(ent["state"]), etag)
        return part

    def load(self, tenant_id: str, keys: Iterable[str]) -> dict[str, UserState]:
        with self._lock:
            part = self._cache.get(tenant_id)
            if part is None:
                part = self._load_partition(tenant_id)
                self._cache[tenant_id] = part
            out: dict[str, UserState] = {}
            for key in keys:
                st = part.get(key)
                if st is None:
                    st = UserState()
                    part[key] = st
                out[key] = loaded_state(key, copy_state(st.data), st.etag)
            return out

    def invalidate(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant_id, None)

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        dirty = [(k, s) for k, s in states.items() if s.dirty]
        dirty.sort(key=lambda ks: ks[0] != TENANT_KEY)  # the tenant-wide row, if any, in the first transaction
        for i in range(0, len(dirty), self.BATCH):
            chunk = dirty[i : i + self.BATCH]
            merges = 0
            while True:
                try:
                    results = self._table.submit_transaction([_operation(tenant_id, key, st) for key, st in chunk])
                    break
                except (
                    TableTransactionError,
                    ResourceModifiedError,
                    ResourceExistsError,
                    ResourceNotFoundError,
                ) as exc:
                    code = str(getattr(exc, "error_code", "") or "")
                    if isinstance(exc, TableTransactionError) and code not in _CONFLICT_CODES:
                        self.invalidate(tenant_id)
                        # refused for what it is (a key, property or size storage will never accept): replaying
                        # the message cannot help, so it is permanent, not a concurrency conflict
                        raise BadInputError(
                            "state write refused by storage", reason="state_write_refused", tenant=tenant_id, code=code
                        ) from exc
                    tenant_row = chunk[0][1] if chunk[0][0] == TENANT_KEY else None
                    if (
                        tenant_row is None
                        or merges >= MERGE_ATTEMPTS
                        or not self._merge_tenant_row(tenant_id, tenant_row)
                    ):
                        self.invalidate(tenant_id)
                        raise ConcurrencyError("state changed by another writer", tenant=tenant_id) from exc
                    merges += 1
            self.stats.writes += 1
            with self._lock:
                part = self._cache.setdefault(tenant_id, {})
                for (key, st), res in zip(chunk, results, strict=True):
                    st.etag = res.get("etag")
                    st.dirty = False
                    if key == TENANT_KEY:
                        st.base = orjson.dumps(st.data)
                    part[key] = UserState(copy_state(st.data), st.etag)

    def _merge_tenant_row(self, tenant_id: str, st: UserState) -> bool:
        """Merge this batch's change of the tenant-wide row into the row as stored now; False when the row is as
        loaded (the conflict was on a user's row) or the change cannot be merged (no document as loaded)."""
        if st.base is None:
            return False
        self.stats.reads += 1
        try:
            ent = self._table.get_entity(encode_key(tenant_id), encode_key(TENANT_KEY))
        except ResourceNotFoundError:
            theirs: dict[str, Any] = {}
            etag: str | None = None
        else:
            theirs = orjson.loads(ent["state"])
            etag = ent.metadata.get("etag")
        if etag == st.etag:
            return False
        st.data = merge_state(orjson.loads(st.base), st.data, theirs)
        st.etag = etag
        st.base = orjson.dumps(theirs)
        return True


def _operation(tenant_id: str, key: str, st: UserState) -> tuple[Any, ...]:
    """The transaction operation writing one state: a create for a new row, else a replace on its ETag."""
    row_key = encode_key(key)
    entity = {"PartitionKey": encode_key(tenant_id), "RowKey": row_key, "state": st.encode().decode()}
    if is_hashed_key(row_key):
        entity["key"] = key  # a hashed RowKey cannot be decoded: the user key is kept beside it
    if st.etag is None:
        return ("create", entity)
    return (
        "update",
        entity,
        {"mode": UpdateMode.REPLACE, "etag": st.etag, "match_condition": MatchConditions.IfNotModified},
    )
