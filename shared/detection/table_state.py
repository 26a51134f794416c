"""Per-user detector state in Azure Table Storage (Azurite locally), cached per tenant partition.

Cost matters more than anything here (see the benchmark): the store reads a tenant's partition
once per process and keeps it cached (sessions give one consumer per tenant), and writes only
dirty users, in transactions of at most 100 entities, each guarded by its ETag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.detection.state import StoreStats, UserState, copy_state
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
                out[key] = UserState(copy_state(st.data), st.etag)
            return out

    def invalidate(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant_id, None)

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        dirty = [(k, s) for k, s in states.items() if s.dirty]
        for i in range(0, len(dirty), self.BATCH):
            chunk = dirty[i : i + self.BATCH]
            ops: list[Any] = []
            for key, st in chunk:
                row_key = encode_key(key)
                entity = {"PartitionKey": encode_key(tenant_id), "RowKey": row_key, "state": st.encode().decode()}
                if is_hashed_key(row_key):
                    entity["key"] = key  # a hashed RowKey cannot be decoded: the user key is kept beside it
                if st.etag is None:
                    ops.append(("create", entity))
                else:
                    ops.append(
                        (
                            "update",
                            entity,
                            {
                                "mode": UpdateMode.REPLACE,
                                "etag": st.etag,
                                "match_condition": MatchConditions.IfNotModified,
                            },
                        )
                    )
            try:
                results = self._table.submit_transaction(ops)
            except (TableTransactionError, ResourceModifiedError, ResourceExistsError, ResourceNotFoundError) as exc:
                self.invalidate(tenant_id)
                code = str(getattr(exc, "error_code", "") or "")
                if isinstance(exc, TableTransactionError) and code not in _CONFLICT_CODES:
                    # refused for what it is (a key, property or size storage will never accept): replaying
                    # the message cannot help, so it is permanent, not a concurrency conflict
                    raise BadInputError(
                        "state write refused by storage", reason="state_write_refused", tenant=tenant_id, code=code
                    ) from exc
                raise ConcurrencyError("state changed by another writer", tenant=tenant_id) from exc
            self.stats.writes += 1
            with self._lock:
                part = self._cache.setdefault(tenant_id, {})
                for (key, st), res in zip(chunk, results, strict=True):
                    st.etag = res.get("etag")
                    st.dirty = False
                    part[key] = UserState(copy_state(st.data), st.etag)
