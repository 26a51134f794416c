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
    base: bytes | None = None
    """The document as loaded (JSON), kept for the tenant-wide row only: a save that finds the row changed by
    another shard merges this batch's change into the stored row (:func:`merge_state`) instead of failing."""

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


# ----------------------------------------------------------------------------- tenant-wide row merge

_MISSING: Any = object()
MERGE_ATTEMPTS = 8
"""How often a save merges into a tenant-wide row another shard changed before it gives up (ConcurrencyError)."""


def loaded_state(key: str, data: dict[str, Any], etag: str | None) -> UserState:
    """A state as a store hands it out: the tenant-wide row also keeps its document as loaded (`UserState.base`)."""
    return UserState(data, etag, base=orjson.dumps(data) if key == TENANT_KEY else None)


def merge_state(base: Mapping[str, Any], mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Three-way merge of the tenant-wide document: this batch's change (``base`` -> ``mine``) applied to the row
    another shard has written since (``theirs``); neither side's change is lost.

    Commutative wherever both sides changed the same value, so two shards merging in either order agree:

    * objects merge key by key; a key only one side changed takes that side's value; a key one side deleted
      (pruned) and the other did not touch is deleted; a key one side deleted and the other changed is kept;
    * a list of one kind of element (a set of user hashes, of ``[user, time]`` pairs, of batch ids) is a
      set: the elements either side removed go, the elements either side added are appended (``theirs``
      first); a list mixing kinds (``[first, last, users]``, ``[alert id, last seen]``) is a record, merged
      position by position when both have the same length;
    * a number both sides moved in the same direction takes the further one (first and last seen, day
      counters that both shards rolled over: a high-water mark, not a sum); otherwise, and for strings and
      booleans both changed, the larger value (a deterministic choice, the same whichever shard merges).

    Detectors keep no additive counters in tenant-wide state (distinct users are sets), so no sum is needed.
    """
    merged = _merge(dict(base), dict(mine), dict(theirs))
    out: dict[str, Any] = merged if isinstance(merged, dict) else dict(mine)
    applied = out.get(APPLIED_BATCHES)
    if isinstance(applied, list):
        out[APPLIED_BATCHES] = applied[-MAX_APPLIED:]
    return out


def _merge(base: Any, mine: Any, theirs: Any) -> Any:
    if mine in (theirs, base):
        return theirs
    if theirs == base:
        return mine
    if mine is _MISSING or theirs is _MISSING:
        return theirs if mine is _MISSING else mine  # deleted by one, changed by the other: kept
    if isinstance(mine, dict) and isinstance(theirs, dict):
        b = base if isinstance(base, dict) else {}
        out: dict[str, Any] = {}
        for key in [
            *theirs,
            *(k for k in mine if k not in theirs),
            *(k for k in b if k not in mine and k not in theirs),
        ]:
            got = _merge(b.get(key, _MISSING), mine.get(key, _MISSING), theirs.get(key, _MISSING))
            if got is not _MISSING:
                out[key] = got
        return out
    if isinstance(mine, list) and isinstance(theirs, list):
        lb: list[Any] = base if isinstance(base, list) else []
        if _is_record(mine) and _is_record(theirs) and len(mine) == len(theirs):
            return [
                _merge(lb[i] if i < len(lb) and len(lb) == len(mine) else _MISSING, m, t)
                for i, (m, t) in enumerate(zip(mine, theirs, strict=True))
            ]
        return _merge_set(lb, mine, theirs)
    if _is_number(mine) and _is_number(theirs):
        if _is_number(base) and mine < base and theirs < base:
            return min(mine, theirs)
        return max(mine, theirs)
    if type(mine) is type(theirs) and isinstance(mine, str | bool):
        return max(mine, theirs)
    return mine


def _merge_set(base: list[Any], mine: list[Any], theirs: list[Any]) -> list[Any]:
    removed = [x for x in base if x not in mine]
    out = [x for x in theirs if x not in removed]
    out.extend(x for x in mine if x not in base and x not in out)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "number" if _is_number(value) else type(value).__name__


def _is_record(value: list[Any]) -> bool:
    """A list whose elements are of more than one kind: a fixed-shape record, not a set."""
    return len({_kind(v) for v in value}) > 1


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
                    out[key] = loaded_state(key, {}, None)
                else:
                    out[key] = loaded_state(key, orjson.loads(row[0]), str(row[1]))
        return out

    def save(self, tenant_id: str, states: Mapping[str, UserState]) -> None:
        with self._lock:
            dirty = {k: s for k, s in states.items() if s.dirty}
            for key, st in dirty.items():
                row = self._rows.get((tenant_id, key))
                current = None if row is None else str(row[1])
                if current != st.etag and (key != TENANT_KEY or st.base is None):
                    raise ConcurrencyError("state changed by another writer", tenant=tenant_id, user=key)
            for key, st in dirty.items():
                row = self._rows.get((tenant_id, key))
                if row is not None and str(row[1]) != st.etag and st.base is not None:
                    # the tenant-wide row, changed by another shard since it was loaded: merged, as the Table store does
                    st.data = merge_state(orjson.loads(st.base), st.data, orjson.loads(row[0]))
                version = 1 if row is None else row[1] + 1
                self._rows[(tenant_id, key)] = (st.encode(), version)
                st.etag = str(version)
                st.dirty = False
                if key == TENANT_KEY:
                    st.base = orjson.dumps(st.data)
            self.stats.writes += (len(dirty) + 99) // 100

    def tenants(self) -> set[str]:
        return {t for t, _ in self._rows}


def copy_state(data: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return copied
