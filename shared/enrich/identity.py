"""Identity resolution: object ID <-> user principal name through Graph, cached per tenant.

Sign-ins are keyed on the user's object ID; Exchange and SharePoint records often carry only the UPN (their
``UserKey`` is a PUID). So that one person's sign-ins and mailbox changes share one per-user state and one
incident on every instance, the pairs that records carry together are stored (:meth:`IdentityResolver.learn`)
and a UPN seen without its object ID is resolved (:meth:`IdentityResolver.resolve_upns`, ``GET /users/{upn}``)
like an object ID without its UPN.

Microsoft often logs ``UserId`` as "Not Available" or a GUID. The enrichment function asks
Graph (``GET /users/{id}?$select=id,userPrincipalName``) once per unknown object ID, caches
the answer in the identities table with an expiry (read once per tenant per process, written in
batches), and caches misses too (negative caching) so a deleted user does not cost a Graph call
per record. When Graph fails, resolution is marked unresolved and detection goes on; a later batch
resolves it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.platform import names
from shared.platform.errors import NotFoundError, PermanentError, TransientError
from shared.platform.storage import StorageClients, decode_key, encode_key, is_hashed_key

_UPN = "upn:"
"""Cache keys of UPN -> object ID answers (object IDs are GUIDs, so the two never collide)."""
POSITIVE_TTL_S = 7 * 86400.0
NEGATIVE_TTL_S = 86400.0


class UserLookup(Protocol):
    def get_user(self, user_id: str) -> Any: ...


@dataclass(slots=True)
class Resolution:
    resolved: dict[str, str]
    unresolved: list[str]
    graph_calls: int = 0
    cache_hits: int = 0


class IdentityResolver:
    """Resolves object IDs of one tenant; ``graph_for(tenant)`` gives a Graph client with get_user.

    Table Storage costs what the detection state costs (see the benchmark): a tenant's cached answers are
    read once per process, a partition query of up to 1,000 rows a page, and the answers one `resolve` call
    learns are written in transactions of up to 100 entities. An answer another instance wrote after this
    process read the partition is asked of Graph once more (the sessions keep a tenant on one consumer at a
    time, so that is rare); the last write wins, and both writers hold the same answer.
    """

    BATCH = 100

    def __init__(
        self,
        storage: StorageClients | None,
        graph_for: Callable[[str], UserLookup | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = storage.table(names.TABLE_IDENTITIES) if storage is not None else None
        self._graph_for = graph_for
        self._clock = clock
        self._memory: dict[tuple[str, str], tuple[str | None, float]] = {}
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        """Guards the memory cache: one resolver serves every thread of the worker (#25 item 10)."""

    def _load_partition(self, tenant_id: str) -> None:
        """The tenant's stored answers into memory, once per process (one thread reads, the others wait)."""
        if self._table is None or tenant_id in self._loaded:
            return
        with self._lock:
            if tenant_id in self._loaded:
                return
            pages = self._table.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": encode_key(tenant_id)},
                select=["RowKey", "upn", "expires", "key"],
                results_per_page=1000,
            ).by_page()
            for page in pages:
                for ent in page:
                    row_key = str(ent["RowKey"])
                    key = (tenant_id, str(ent.get("key") or "") if is_hashed_key(row_key) else decode_key(row_key))
                    if key not in self._memory:  # an answer this process learned itself is at least as new
                        self._memory[key] = (ent.get("upn") or None, float(ent.get("expires", 0)))
            self._loaded.add(tenant_id)

    def _cached(self, tenant_id: str, oid: str) -> tuple[bool, str | None]:
        self._load_partition(tenant_id)
        with self._lock:
            hit = self._memory.get((tenant_id, oid))
        if hit is not None and hit[1] > self._clock():
            return True, hit[0]
        return False, None

    def _store(self, tenant_id: str, oid: str, upn: str | None, into: list[dict[str, Any]]) -> None:
        expires = self._clock() + (POSITIVE_TTL_S if upn else NEGATIVE_TTL_S)
        with self._lock:
            self._memory[(tenant_id, oid)] = (upn, expires)
        row_key = encode_key(oid)
        entity: dict[str, Any] = {"PartitionKey": encode_key(tenant_id), "RowKey": row_key, "upn": upn or ""}
        entity["expires"] = expires
        if is_hashed_key(row_key):
            entity["key"] = oid  # a hashed RowKey cannot be decoded: the cache key is kept beside it
        into.append(entity)

    def _write(self, learned: list[dict[str, Any]]) -> None:
        if self._table is None:
            return
        for i in range(0, len(learned), self.BATCH):
            self._table.submit_transaction([("upsert", e) for e in learned[i : i + self.BATCH]])

    def learn(self, tenant_id: str, pairs: Iterable[tuple[str, str]]) -> int:
        """Store (object ID, UPN) pairs that records carried together, both ways; returns how many were new."""
        learned: list[dict[str, Any]] = []
        for oid, upn in sorted({(o.lower(), u.lower()) for o, u in pairs}):
            hit, known = self._cached(tenant_id, oid)
            if not (hit and known == upn):
                self._store(tenant_id, oid, upn, learned)
            hit, known = self._cached(tenant_id, _UPN + upn)
            if not (hit and known == oid):
                self._store(tenant_id, _UPN + upn, oid, learned)
        self._write(learned)
        return len(learned)

    def resolve_upns(self, tenant_id: str, upns: Iterable[str]) -> Resolution:
        """UPN -> object ID for UPNs seen without their object ID (``resolved`` maps UPN to object ID)."""
        found = self.resolve(tenant_id, [_UPN + u.lower() for u in upns], answer="id")
        return Resolution(
            {k.removeprefix(_UPN): v for k, v in found.resolved.items()},
            [k.removeprefix(_UPN) for k in found.unresolved],
            found.graph_calls,
            found.cache_hits,
        )

    def resolve(self, tenant_id: str, object_ids: Iterable[str], *, answer: str = "user_principal_name") -> Resolution:
        """Object ID -> UPN (``resolved`` maps object ID to UPN), from the cache, else one Graph call each."""
        out = Resolution({}, [])
        learned: list[dict[str, Any]] = []
        graph: UserLookup | None = None
        graph_down = False
        for oid in sorted(set(object_ids)):
            hit, upn = self._cached(tenant_id, oid)
            if hit:
                out.cache_hits += 1
                if upn:
                    out.resolved[oid] = upn
                continue
            if graph_down:
                out.unresolved.append(oid)
                continue
            if graph is None:
                graph = self._graph_for(tenant_id)
                if graph is None:
                    graph_down = True
                    out.unresolved.append(oid)
                    continue
            out.graph_calls += 1
            try:
                user = graph.get_user(oid.removeprefix(_UPN))
            except NotFoundError:
                self._store(tenant_id, oid, None, learned)
                continue
            except (TransientError, PermanentError):
                graph_down = True
                out.unresolved.append(oid)
                continue
            upn = getattr(user, answer, None)
            upn = upn.lower() if isinstance(upn, str) and upn else None
            self._store(tenant_id, oid, upn, learned)
            if upn:
                out.resolved[oid] = upn
        self._write(learned)
        return out
