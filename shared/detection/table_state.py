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
from shared.platform.errors import ConcurrencyError
from shared.platform.storage import decode_key, encode_key


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
            "PartitionKey eq @pk", parameters={"pk": tenant_id}, select=["RowKey", "state"], results_per_page=1000
        ).by_page()
        for page in pages:
            self.stats.reads += 1
            for ent in page:
                etag = ent.metadata.get("etag")
                part[decode_key(ent["RowKey"])] = UserState(orjson.loads(ent["state"]), etag)
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
                entity = {"PartitionKey": tenant_id, "RowKey": encode_key(key), "state": st.encode().decode()}
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
                raise ConcurrencyError("state changed by another writer", tenant=tenant_id) from exc
            self.stats.writes += 1
            with self._lock:
                part = self._cache.setdefault(tenant_id, {})
                for (key, st), res in zip(chunk, results, strict=True):
                    st.etag = res.get("etag")
                    st.dirty = False
                    part[key] = UserState(copy_state(st.data), st.etag)
