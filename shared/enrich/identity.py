"""Identity resolution: object ID -> user principal name through Graph, cached per tenant.

Microsoft often logs ``UserId`` as "Not Available" or a GUID. The enrichment function asks
Graph (``GET /users/{id}?$select=id,userPrincipalName``) once per unknown object ID, caches
the answer in the identities table with an expiry, and caches misses too (negative caching)
so a deleted user does not cost a Graph call per record. When Graph fails, resolution is
marked unresolved and detection goes on; a later batch resolves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError

from shared.platform import names
from shared.platform.errors import NotFoundError, PermanentError, TransientError
from shared.platform.storage import StorageClients, encode_key

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
    """Resolves object IDs of one tenant; ``graph_for(tenant)`` gives a Graph client with get_user."""

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

    def _cached(self, tenant_id: str, oid: str) -> tuple[bool, str | None]:
        now = self._clock()
        hit = self._memory.get((tenant_id, oid))
        if hit is not None and hit[1] > now:
            return True, hit[0]
        if self._table is None:
            return False, None
        try:
            ent = self._table.get_entity(tenant_id, encode_key(oid))
        except ResourceNotFoundError:
            return False, None
        expires = float(ent.get("expires", 0))
        if expires <= now:
            return False, None
        upn = ent.get("upn") or None
        self._memory[(tenant_id, oid)] = (upn, expires)
        return True, upn

    def _store(self, tenant_id: str, oid: str, upn: str | None) -> None:
        expires = self._clock() + (POSITIVE_TTL_S if upn else NEGATIVE_TTL_S)
        self._memory[(tenant_id, oid)] = (upn, expires)
        if self._table is not None:
            self._table.upsert_entity(
                {"PartitionKey": tenant_id, "RowKey": encode_key(oid), "upn": upn or "", "expires": expires}
            )

    def resolve(self, tenant_id: str, object_ids: Iterable[str]) -> Resolution:
        out = Resolution({}, [])
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
                user = graph.get_user(oid)
            except NotFoundError:
                self._store(tenant_id, oid, None)
                continue
            except (TransientError, PermanentError):
                graph_down = True
                out.unresolved.append(oid)
                continue
            upn = getattr(user, "user_principal_name", None)
            upn = upn.lower() if isinstance(upn, str) and upn else None
            self._store(tenant_id, oid, upn)
            if upn:
                out.resolved[oid] = upn
        return out
