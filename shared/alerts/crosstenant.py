"""The partner's view across tenants: one attacker indicator in alerts of several customers.

An IP address (not private, loopback or link-local: :func:`is_shared_ip`), an autonomous system
number or an OAuth application ID that appears in alerts of at least ``min_tenants`` (2) tenants
of the same partner within ``window`` (7 days) raises a partner-level incident linking those
alerts. Tenants of different partners are never linked: the partner of each tenant comes from the
``partner_of`` mapping, and each partner's incidents live in their own partition ``partner:<id>`` of ``TABLE_INCIDENTS``
(RowKey = the incident ID). Tenants without a partner are left out.

Where indicators come from: ``alert.ip``; the ASN from the alert context (``asn`` or
``ip_info.asn``); the application ID from the context keys ``app_id``, ``client_id``,
``application_id`` or ``appid`` (see :mod:`shared.alerts.incidents`).

A sighting in one tenant is kept (``raised`` false) until a second tenant shows the same
indicator; only raised incidents are returned by :meth:`CrossTenantCorrelator.add_alerts` and
listed by default. The ID is derived from the partner, the indicator and the first alert, so a
replay changes nothing. Severity: the highest alert severity raised one step, and at least high
from three tenants on.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.data.tables import TableClient, UpdateMode

from shared.alert_model import Alert, Category, Severity, iso
from shared.alerts.incidents import context_app_id, context_asn
from shared.alerts.store import chunks, get_json, put_json, storage_error
from shared.platform import names
from shared.platform.errors import ConcurrencyError, NotFoundError
from shared.platform.storage import StorageClients, encode_key
from shared.records.ip import normalize_ip

PARTNER_PREFIX = "partner:"


def partner_scope(partner_id: str) -> str:
    """The partition (and delivery-ledger scope) of a partner's cross-tenant incidents."""
    return f"{PARTNER_PREFIX}{partner_id}"


class IndicatorKind(StrEnum):
    IP = "ip"
    ASN = "asn"
    APP = "app"


_KIND_LABEL = {IndicatorKind.IP: "IP address", IndicatorKind.ASN: "ASN", IndicatorKind.APP: "OAuth application"}


_NOT_SHARED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
        "::/127",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
"""Addresses that mean nothing across tenants: private (RFC 1918, CGNAT, ULA), loopback, link-local,
multicast, unspecified and reserved. Documentation ranges are kept (tests and examples use them)."""


def is_shared_ip(ip: str) -> bool:
    """True when a normalised address can link tenants (it is not private, loopback, link-local, ...)."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:  # pragma: no cover - normalize_ip unmaps these
        addr = addr.ipv4_mapped
    return not any(addr.version == n.version and addr in n for n in _NOT_SHARED)


def indicators_of(alert: Alert) -> list[tuple[IndicatorKind, str]]:
    """The indicators an alert carries: a shareable IP, an ASN, an OAuth application ID."""
    out: list[tuple[IndicatorKind, str]] = []
    ip = normalize_ip(alert.ip)
    if ip is not None and is_shared_ip(ip):
        out.append((IndicatorKind.IP, ip))
    asn = context_asn(alert.context)
    if asn is not None:
        out.append((IndicatorKind.ASN, str(asn)))
    app = context_app_id(alert.context)
    if app is not None and alert.category is Category.ROGUE_APP and not is_first_party_app(app):
        # the client a user signed in with (Office, Outlook) is not an attacker's app: only apps
        # that were consented to, given credentials or roles link tenants
        out.append((IndicatorKind.APP, app))
    return out


def is_first_party_app(app_id: str) -> bool:
    from shared.records.apps import KNOWN_APPS

    return app_id.lower() in KNOWN_APPS


@dataclass(frozen=True, slots=True)
class Sighting:
    """One alert of one tenant that carried the indicator."""

    tenant_id: str
    alert_id: str
    detector: str
    title: str
    user: str
    severity: Severity
    first_seen: float
    last_seen: float

    @classmethod
    def from_alert(cls, alert: Alert) -> Sighting:
        return cls(
            alert.tenant_id,
            alert.alert_id,
            alert.detector,
            alert.title,
            alert.user,
            alert.severity,
            float(alert.first_seen),
            float(alert.last_seen),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "alert_id": self.alert_id,
            "detector": self.detector,
            "title": self.title,
            "user": self.user,
            "severity": self.severity.value,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sighting:
        return cls(
            str(d["tenant_id"]),
            str(d["alert_id"]),
            str(d["detector"]),
            str(d["title"]),
            str(d.get("user", "")),
            Severity(d["severity"]),
            float(d["first_seen"]),
            float(d["last_seen"]),
        )


@dataclass(slots=True)
class PartnerIncident:
    """Alerts of several tenants of one partner that share an indicator."""

    incident_id: str
    partner_id: str
    kind: IndicatorKind
    indicator: str
    sightings: list[Sighting] = field(default_factory=list)
    severity: Severity = Severity.LOW
    raised: bool = False
    revision: int = 0
    updated_at: float = 0.0

    @property
    def scope(self) -> str:
        return partner_scope(self.partner_id)

    @property
    def tenant_ids(self) -> list[str]:
        return sorted({s.tenant_id for s in self.sightings})

    @property
    def alert_ids(self) -> list[str]:
        return [s.alert_id for s in self.sightings]

    @property
    def first_seen(self) -> float:
        return min((s.first_seen for s in self.sightings), default=0.0)

    @property
    def last_seen(self) -> float:
        return max((s.last_seen for s in self.sightings), default=0.0)

    @property
    def title(self) -> str:
        return f"{_KIND_LABEL[self.kind]} {self.indicator} seen in alerts of {len(self.tenant_ids)} tenants"

    def fingerprint(self) -> bytes:
        d = self.to_dict()
        d.pop("revision")
        d.pop("updated_at")
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "partner_id": self.partner_id,
            "indicator_kind": self.kind.value,
            "indicator": self.indicator,
            "title": self.title,
            "severity": self.severity.value,
            "raised": self.raised,
            "tenant_ids": self.tenant_ids,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "revision": self.revision,
            "updated_at": iso(self.updated_at),
            "alerts": [
                {**s.to_dict(), "first_seen": iso(s.first_seen), "last_seen": iso(s.last_seen)} for s in self.sightings
            ],
        }


def partner_incident_id_for(partner_id: str, kind: IndicatorKind, indicator: str, first: Sighting) -> str:
    """Deterministic ID from the partner, the indicator and the first alert that carried it."""
    key = f"{partner_id}|{kind.value}|{indicator}|{first.tenant_id}|{first.alert_id}"
    return "pinc-" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(slots=True)
class _Working:
    incident: PartnerIncident
    etag: str | None
    before: bytes | None


class CrossTenantCorrelator:
    """Links alerts of a partner's tenants by shared indicators. Use the in-memory or Table subclass."""

    def __init__(
        self,
        partner_of: Mapping[str, str] | Callable[[str], str | None],
        *,
        window: timedelta = timedelta(days=7),
        min_tenants: int = 2,
        kinds: Iterable[IndicatorKind] = tuple(IndicatorKind),
        ignore_asns: Iterable[int] = (),
        max_sightings: int = 200,
        now: Callable[[], float] = time.time,
    ) -> None:
        if min_tenants < 2:
            raise ValueError("a cross-tenant incident needs at least two tenants")
        self._partner_of = partner_of
        self.window = window
        self.min_tenants = min_tenants
        self.kinds = frozenset(kinds)
        self.ignore_asns = frozenset(str(a) for a in ignore_asns)
        self.max_sightings = max_sightings
        self._now = now

    def partner_of(self, tenant_id: str) -> str | None:
        if callable(self._partner_of):
            return self._partner_of(tenant_id)
        return self._partner_of.get(tenant_id)

    # storage hooks
    def _query(
        self,
        partner_id: str,
        *,
        kind: IndicatorKind | None = None,
        indicator: str | None = None,
        since: float | None = None,
    ) -> list[tuple[PartnerIncident, str | None]]:
        raise NotImplementedError

    def _write(self, partner_id: str, items: Sequence[tuple[PartnerIncident, str | None]]) -> None:
        raise NotImplementedError

    def add_alerts(self, alerts: Iterable[Alert], *, include_unchanged: bool = False) -> list[PartnerIncident]:
        """Record the indicators of these alerts; returns raised partner incidents that changed.

        With ``include_unchanged``, raised incidents that already held these alerts are returned too
        (replay-safe delivery: the delivery ledger keeps them from being posted twice).
        """
        groups: dict[tuple[str, IndicatorKind, str], dict[tuple[str, str], Alert]] = {}
        for a in alerts:
            partner = self.partner_of(a.tenant_id)
            if not partner:
                continue
            for kind, value in indicators_of(a):
                if kind not in self.kinds or (kind is IndicatorKind.ASN and value in self.ignore_asns):
                    continue
                groups.setdefault((partner, kind, value), {})[(a.tenant_id, a.alert_id)] = a
        win = self.window / timedelta(seconds=1)
        writes: dict[str, list[tuple[PartnerIncident, str | None]]] = {}
        changed: list[PartnerIncident] = []
        for (partner, kind, value), by_key in sorted(groups.items()):
            items = sorted(by_key.values(), key=lambda a: (a.first_seen, a.tenant_id, a.alert_id))
            since = items[0].first_seen - win
            working = [
                _Working(inc, etag, inc.fingerprint())
                for inc, etag in self._query(partner, kind=kind, indicator=value, since=since)
            ]
            touched = {id(self._place(partner, kind, value, Sighting.from_alert(a), working, win)) for a in items}
            now = self._now()
            for w in working:
                inc = w.incident
                inc.sightings.sort(key=lambda s: (s.first_seen, s.tenant_id, s.alert_id))
                inc.raised = len(inc.tenant_ids) >= self.min_tenants
                inc.severity = _severity(inc)
                if w.before is None or inc.fingerprint() != w.before:
                    inc.revision += 1
                    inc.updated_at = now
                    writes.setdefault(partner, []).append((inc, w.etag))
                    if inc.raised:
                        changed.append(inc)
                elif include_unchanged and inc.raised and id(w) in touched:
                    changed.append(inc)
        for partner, items_ in writes.items():
            self._write(partner, items_)
        return changed

    def _place(
        self,
        partner: str,
        kind: IndicatorKind,
        value: str,
        sighting: Sighting,
        working: list[_Working],
        win: float,
    ) -> _Working:
        for w in working:
            for i, s in enumerate(w.incident.sightings):
                if (s.tenant_id, s.alert_id) == (sighting.tenant_id, sighting.alert_id):
                    if s != sighting:
                        w.incident.sightings[i] = sighting
                    return w
        fits = [
            w
            for w in working
            if len(w.incident.sightings) < self.max_sightings
            and w.incident.first_seen - win <= sighting.first_seen <= w.incident.last_seen + win
        ]
        if fits:
            target = max(fits, key=lambda w: (w.incident.last_seen, w.incident.incident_id))
        else:
            target = _Working(
                PartnerIncident(partner_incident_id_for(partner, kind, value, sighting), partner, kind, value),
                None,
                None,
            )
            working.append(target)
        target.incident.sightings.append(sighting)
        return target

    def list_partner_incidents(self, partner_id: str, *, include_unraised: bool = False) -> list[PartnerIncident]:
        """A partner's cross-tenant incidents (oldest first); single-tenant sightings only on request."""
        found = [inc for inc, _ in self._query(partner_id)]
        return sorted((i for i in found if include_unraised or i.raised), key=lambda i: (i.first_seen, i.incident_id))

    def get_partner_incident(self, partner_id: str, incident_id: str) -> PartnerIncident:
        for inc, _ in self._query(partner_id):
            if inc.incident_id == incident_id:
                return inc
        raise NotFoundError("no such partner incident", partner=partner_id, incident=incident_id)


def _severity(inc: PartnerIncident) -> Severity:
    if not inc.sightings:
        return Severity.LOW
    base = max((s.severity for s in inc.sightings), key=lambda s: s.rank)
    tenants = len(inc.tenant_ids)
    if tenants < 2:
        return base
    sev = base.upgrade(1)
    if tenants >= 3 and sev.rank < Severity.HIGH.rank:
        sev = Severity.HIGH
    return sev


def partner_incident_to_entity(inc: PartnerIncident) -> dict[str, Any]:
    ent: dict[str, Any] = {
        "PartitionKey": encode_key(inc.scope),
        "RowKey": encode_key(inc.incident_id),
        "kind": "partner",
        "incident_id": inc.incident_id,
        "partner_id": inc.partner_id,
        "indicator_kind": inc.kind.value,
        "indicator": inc.indicator,
        "first_seen": float(inc.first_seen),
        "last_seen": float(inc.last_seen),
        "severity": inc.severity.value,
        "raised": inc.raised,
        "tenant_count": len(inc.tenant_ids),
        "revision": inc.revision,
        "updated_at": float(inc.updated_at),
    }
    put_json(ent, "sightings", [s.to_dict() for s in inc.sightings])
    return ent


def partner_incident_from_entity(ent: Mapping[str, Any]) -> PartnerIncident:
    return PartnerIncident(
        incident_id=str(ent["incident_id"]),
        partner_id=str(ent["partner_id"]),
        kind=IndicatorKind(ent["indicator_kind"]),
        indicator=str(ent["indicator"]),
        sightings=[Sighting.from_dict(s) for s in get_json(ent, "sightings", [])],
        severity=Severity(ent["severity"]),
        raised=bool(ent.get("raised", False)),
        revision=int(ent.get("revision", 0)),
        updated_at=float(ent.get("updated_at", 0.0)),
    )


class InMemoryCrossTenantCorrelator(CrossTenantCorrelator):
    """Partner incidents in memory, with the Table correlator's ETag semantics."""

    def __init__(self, partner_of: Mapping[str, str] | Callable[[str], str | None], **options: Any) -> None:
        super().__init__(partner_of, **options)
        self._rows: dict[tuple[str, str], tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def _query(
        self,
        partner_id: str,
        *,
        kind: IndicatorKind | None = None,
        indicator: str | None = None,
        since: float | None = None,
    ) -> list[tuple[PartnerIncident, str | None]]:
        with self._lock:
            rows = [(b, v) for (p, _), (b, v) in self._rows.items() if p == partner_id]
        out: list[tuple[PartnerIncident, str | None]] = []
        for blob, version in rows:
            inc = partner_incident_from_entity(orjson.loads(blob))
            if (
                (kind is None or inc.kind is kind)
                and (indicator is None or inc.indicator == indicator)
                and (since is None or inc.last_seen >= since)
            ):
                out.append((inc, str(version)))
        return out

    def _write(self, partner_id: str, items: Sequence[tuple[PartnerIncident, str | None]]) -> None:
        with self._lock:
            for inc, etag in items:
                cur = self._rows.get((partner_id, inc.incident_id))
                if (None if cur is None else str(cur[1])) != etag:
                    raise ConcurrencyError("partner incident changed by another writer", partner=partner_id)
            for inc, _ in items:
                cur = self._rows.get((partner_id, inc.incident_id))
                self._rows[(partner_id, inc.incident_id)] = (
                    orjson.dumps(partner_incident_to_entity(inc)),
                    1 if cur is None else cur[1] + 1,
                )


class TableCrossTenantCorrelator(CrossTenantCorrelator):
    """Partner incidents in ``TABLE_INCIDENTS``, partition ``partner:<id>``."""

    def __init__(
        self, table: TableClient, partner_of: Mapping[str, str] | Callable[[str], str | None], **options: Any
    ) -> None:
        super().__init__(partner_of, **options)
        self._table = table

    @classmethod
    def from_storage(
        cls, storage: StorageClients, partner_of: Mapping[str, str] | Callable[[str], str | None], **options: Any
    ) -> TableCrossTenantCorrelator:
        return cls(storage.table(names.TABLE_INCIDENTS), partner_of, **options)

    def _query(
        self,
        partner_id: str,
        *,
        kind: IndicatorKind | None = None,
        indicator: str | None = None,
        since: float | None = None,
    ) -> list[tuple[PartnerIncident, str | None]]:
        query = "PartitionKey eq @pk and kind eq @kind"
        params: dict[str, Any] = {"pk": encode_key(partner_scope(partner_id)), "kind": "partner"}
        if kind is not None:
            query += " and indicator_kind eq @ik"
            params["ik"] = kind.value
        if indicator is not None:
            query += " and indicator eq @ind"
            params["ind"] = indicator
        if since is not None:
            query += " and last_seen ge @since"
            params["since"] = float(since)
        try:
            return [
                (partner_incident_from_entity(e), e.metadata.get("etag"))
                for e in self._table.query_entities(query, parameters=params)
            ]
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="query_partner_incidents", partner=partner_id) from exc

    def _write(self, partner_id: str, items: Sequence[tuple[PartnerIncident, str | None]]) -> None:
        for chunk in chunks(list(items)):
            ops: list[Any] = []
            for inc, etag in chunk:
                ent = partner_incident_to_entity(inc)
                if etag is None:
                    ops.append(("create", ent))
                else:
                    opts = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
                    ops.append(("update", ent, opts))
            try:
                self._table.submit_transaction(ops)
            except (HttpResponseError, ServiceRequestError) as exc:
                if isinstance(exc, ResourceNotFoundError) or getattr(exc, "error_code", None) == "ResourceNotFound":
                    raise ConcurrencyError("partner incident deleted by another writer", partner=partner_id) from exc
                raise storage_error(exc, action="write_partner_incidents", partner=partner_id) from exc
