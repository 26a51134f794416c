"""Per-user detector state: a port with an in-memory and a Table Storage implementation.

One entity per (tenant, user): PartitionKey = tenant ID, RowKey = the user's state key
(object ID when known). The entity holds one JSON document with a sub-document per
detector, bounded to `MAX_STATE_BYTES` (oldest facts aged out first). Writes use ETags:
a concurrent writer makes `save` raise `ConcurrencyError`, and the message is replayed.

The Table Storage implementation lives in :mod:`shared.detection.table_state` (this module stays
free of Azure imports, so `itdr scan` and the detectors load fast).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from shared.platform.errors import ConcurrencyError

MAX_STATE_BYTES = 8 * 1024
TENANT_KEY = "_tenant"
"""State key of tenant-wide detector state (password spray, shared egress counts)."""
APPLIED_BATCHES = "_batches"
"""Sub-document listing the last batch IDs applied to this user: a replayed batch is skipped."""
MAX_APPLIED = 32


@dataclass(slots=True)
class UserState:
    """The state document of one user, as loaded, with its ETag."""

    data: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    dirty: bool = False

    def section(self, name: str) -> dict[str, Any]:
        """The mutable sub-document of one detector (created empty); marks the state dirty."""
        self.dirty = True
        sec = self.data.get(name)
        if not isinstance(sec, dict):
            sec = {}
            self.data[name] = sec
        return sec

    def peek(self, name: str) -> Mapping[str, Any]:
        """Read a sub-document without marking the state dirty."""
        sec = self.data.get(name)
        return sec if isinstance(sec, dict) else {}

    def has_applied(self, batch_id: str) -> bool:
        applied = self.data.get(APPLIED_BATCHES)
        return isinstance(applied, list) and batch_id in applied

    def mark_applied(self, batch_id: str) -> None:
        applied = self.data.get(APPLIED_BATCHES)
        if not isinstance(applied, list):
            applied = []
        if batch_id not in applied:
            applied.append(batch_id)
        self.data[APPLIED_BATCHES] = applied[-MAX_APPLIED:]
        self.dirty = True

    def encode(self) -> bytes:
        """JSON bytes within `MAX_STATE_BYTES`; the oldest halves of the longest lists go first."""
        blob = orjson.dumps(self.data)
        guard = 0
        while len(blob) > MAX_STATE_BYTES and guard < 64:
            guard += 1
            if not _trim_longest_list(self.data):
                break
            blob = orjson.dumps(self.data)
        return blob


def _trim_longest_list(doc: dict[str, Any]) -> bool:
    best: tuple[int, list[Any] | None, dict[str, Any] | None, str | None] = (0, None, None, None)

    def walk(d: dict[str, Any]) -> None:
        nonlocal best
        for k, v in d.items():
            if isinstance(v, list) and len(v) > best[0] and k != APPLIED_BATCHES:
                best = (len(v), v, d, k)
            elif isinstance(v, dict):
                walk(v)

    walk(doc)
    n, lst, parent, key = best
    if lst is None or parent is None or key is None:
        return False
    if n <= 1:
        parent.pop(key)
        return True
    parent[key] = lst[n // 2 :]
    return True


class StateStore(Protocol):
    """Where per-user detector state lives between batches."""

    def load(self, tenant_id: str, keys: Iterable[str]) -> dict[str, UserState]:
        """States of these users (a fresh empty state for users never seen)."""
        ...

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        """Write the dirty states; raises ConcurrencyError when another writer got there first."""
        ...


@dataclass(slots=True)
class StoreStats:
    reads: int = 0
    writes: int = 0

    @property
    def transactions(self) -> int:
        return self.reads + self.writes


class InMemoryStateStore:
    """State in a dict, with the same ETag semantics as the Table store (for `itdr scan` and tests)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[bytes, int]] = {}
        self._lock = threading.Lock()
        self.stats = StoreStats()

    def load(self, tenant_id: str, keys: Iterable[str]) -> dict[str, UserState]:
        out: dict[str, UserState] = {}
        with self._lock:
            for key in keys:
                row = self._rows.get((tenant_id, key))
                if row is None:
                    out[key] = UserState()
                else:
                    out[key] = UserState(orjson.loads(row[0]), str(row[1]))
        return out

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        with self._lock:
            dirty = {k: s for k, s in states.items() if s.dirty}
            for key, st in dirty.items():
                row = self._rows.get((tenant_id, key))
                current = None if row is None else str(row[1])
                if current != st.etag:
                    raise ConcurrencyError("state changed by another writer", tenant=tenant_id, user=key)
            for key, st in dirty.items():
                row = self._rows.get((tenant_id, key))
                version = 1 if row is None else row[1] + 1
                self._rows[(tenant_id, key)] = (st.encode(), version)
                st.etag = str(version)
                st.dirty = False
            self.stats.writes += (len(dirty) + 99) // 100

    def tenants(self) -> set[str]:
        return {t for t, _ in self._rows}


def copy_state(data: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return copied
