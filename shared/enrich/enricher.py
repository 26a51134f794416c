"""The in-process enricher: IP context, access method and identities for a batch of events.

Used by the detection function (after the enrichment function resolved identities through
Graph) and by `itdr scan` (offline). IP lookups are cached per process; everything here is
local and fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from shared.records.event import Event
from shared.tenant_config import TenantConfig

_MISSING: Any = object()


class IpLookup(Protocol):
    """Anything that answers the context of an address (the IP intelligence client, a test table)."""

    def lookup(self, ip: str | None) -> Any: ...


class IdentityMap:
    """Object ID <-> UPN of one tenant's users, learned from records and resolved through Graph.

    Records that carry both (sign-ins) teach the map; records that carry only a UPN then join
    the same per-user state as records that carry only the object ID.
    """

    def __init__(self) -> None:
        self._upn_by_oid: dict[str, str] = {}
        self._oid_by_upn: dict[str, str] = {}

    def learn(self, object_id: str, upn: str) -> None:
        oid, u = object_id.lower(), upn.lower()
        self._upn_by_oid[oid] = u
        self._oid_by_upn[u] = oid

    def upn(self, object_id: str) -> str | None:
        return self._upn_by_oid.get(object_id.lower())

    def object_id(self, upn: str) -> str | None:
        return self._oid_by_upn.get(upn.lower())

    def items(self) -> Mapping[str, str]:
        return dict(self._upn_by_oid)

    def apply(self, ev: Event) -> None:
        """Fill the missing half of an event's identity and key state on the object ID."""
        if ev.object_id and ev.upn:
            self.learn(ev.object_id, ev.upn)
        elif ev.object_id and ev.upn is None:
            ev.upn = self.upn(ev.object_id)
        elif ev.upn and ev.object_id is None:
            oid = self.object_id(ev.upn)
            if oid is not None:
                ev.object_id = oid
                ev.user_key = oid


class LocalEnricher:
    """`Enricher` for the engine: identities per tenant, IP context, access method."""

    def __init__(
        self,
        intel: IpLookup | None,
        *,
        classify: Callable[[Event], Any] | None = None,
        identities: Callable[[str], IdentityMap] | None = None,
    ) -> None:
        self._intel = intel
        self._classify = classify
        self._maps: dict[str, IdentityMap] = {}
        self._identities = identities

    def identity_map(self, tenant_id: str) -> IdentityMap:
        if self._identities is not None:
            return self._identities(tenant_id)
        m = self._maps.get(tenant_id)
        if m is None:
            m = self._maps[tenant_id] = IdentityMap()
        return m

    def enrich(self, events: Sequence[Event], tenant: TenantConfig) -> None:
        if not events:
            return
        ids = self.identity_map(events[0].tenant_id)
        learn = ids.learn
        for ev in events:
            oid = ev.object_id
            if oid:
                upn = ev.upn
                if upn:
                    learn(oid, upn)
        lookup = self._intel.lookup if self._intel is not None else None
        classify = self._classify
        apply = ids.apply
        # one lookup per distinct address per batch: a batch repeats its users' few addresses many times
        infos: dict[str, Any] = {}
        for ev in events:
            apply(ev)
            if lookup is not None and ev.ip_info is None:
                ip = ev.ip
                if ip is not None:
                    info = infos.get(ip, _MISSING)
                    if info is _MISSING:
                        info = infos[ip] = lookup(ip)
                    ev.ip_info = info
            if classify is not None and ev.access is None:
                ev.access = classify(ev)
