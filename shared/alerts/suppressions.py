"""Suppressions: per-tenant rules that keep known-benign alerts from being published.

A suppression names a tenant and at least one selector: a user (UPN or object ID), an IP address
or network (CIDR), an autonomous system number, a detector. An alert matches when every selector
the suppression sets matches it. Suppressions expire (``expires_at``) and can be revoked; a revoked
or expired suppression stays listed with ``include_inactive=True`` so the SOC can see what was
hidden and why. Triage (:func:`shared.alerts.triage.decide`) applies them before publishing; the
alerts themselves are still kept and grouped.

The ID is derived from the tenant and the selectors, so adding the same suppression twice updates
(and revives) one row instead of creating two.

Table layout (``TABLE_SUPPRESSIONS``): PartitionKey = tenant ID, RowKey = suppression ID.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cached_property
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.alert_model import Alert
from shared.alerts.incidents import TimelineEntry, context_asn
from shared.alerts.store import AlertStore, StoredAlert, storage_error
from shared.platform import names
from shared.platform.errors import BadInputError, NotFoundError
from shared.platform.storage import StorageClients, encode_key
from shared.records.ip import normalize_ip

SCOPES = ("user", "ip", "asn", "detector")
"""Selectors a suppression may set (and a dismissal may copy from the alert)."""


class Suppression(BaseModel):
    """One suppression rule of one tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1)
    user: str | None = None
    """UPN or object ID; compared case-insensitively with the alert's user and user key."""
    ip: str | None = None
    """An address or a CIDR network."""
    asn: int | None = Field(default=None, ge=0, le=4294967295)
    detector: str | None = None
    reason: str = Field(min_length=1)
    created_by: str = Field(min_length=1)
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    revoked_by: str | None = None

    @field_validator("user", "detector", mode="before")
    @classmethod
    def _clean(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip()
            return v or None
        return v

    @field_validator("ip", mode="before")
    @classmethod
    def _network(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if not isinstance(v, str):
            raise ValueError("ip must be text")
        text = v.strip()
        if "/" not in text:
            addr = normalize_ip(text)
            if addr is None:
                raise ValueError(f"not an IP address or network: {text!r}")
            return addr
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {text!r}") from exc

    @model_validator(mode="after")
    def _selector(self) -> Suppression:
        if self.user is None and self.ip is None and self.asn is None and self.detector is None:
            raise ValueError("a suppression needs at least one of user, ip, asn or detector")
        return self

    @property
    def suppression_id(self) -> str:
        return suppression_id_for(self.tenant_id, user=self.user, ip=self.ip, asn=self.asn, detector=self.detector)

    @cached_property
    def _net(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        return ipaddress.ip_network(self.ip, strict=False) if self.ip else None

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def matches(
        self,
        *,
        tenant_id: str,
        detector: str,
        user: str | None,
        user_key: str | None,
        ip: str | None,
        asn: int | None,
        now: float,
    ) -> bool:
        """True when the suppression is active and every selector it sets matches."""
        if tenant_id != self.tenant_id or not self.is_active(now):
            return False
        if self.detector is not None and detector != self.detector:
            return False
        if self.user is not None:
            wanted = self.user.lower()
            if wanted not in {(user or "").strip().lower(), (user_key or "").strip().lower()}:
                return False
        if self._net is not None:
            addr = normalize_ip(ip)
            if addr is None or ipaddress.ip_address(addr) not in self._net:
                return False
        return self.asn is None or asn == self.asn

    def matches_alert(self, alert: Alert, *, now: float) -> bool:
        return self.matches(
            tenant_id=alert.tenant_id,
            detector=alert.detector,
            user=alert.user,
            user_key=alert.user_key,
            ip=alert.ip,
            asn=context_asn(alert.context),
            now=now,
        )

    def matches_entry(self, tenant_id: str, user_key: str, entry: TimelineEntry, *, now: float) -> bool:
        return self.matches(
            tenant_id=tenant_id,
            detector=entry.detector,
            user=entry.user,
            user_key=user_key,
            ip=entry.ip,
            asn=entry.asn,
            now=now,
        )

    def to_dict(self) -> dict[str, Any]:
        """The model's fields plus ``suppression_id``."""
        return {"suppression_id": self.suppression_id, **self.model_dump()}


def suppression_id_for(
    tenant_id: str,
    *,
    user: str | None = None,
    ip: str | None = None,
    asn: int | None = None,
    detector: str | None = None,
) -> str:
    """Deterministic suppression ID from the tenant and the selectors."""
    key = f"{tenant_id}|{(user or '').lower()}|{ip or ''}|{'' if asn is None else asn}|{detector or ''}"
    return "sup-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def first_match(
    suppressions: Iterable[Suppression], tenant_id: str, user_key: str, entry: TimelineEntry, *, now: float
) -> Suppression | None:
    """The first active suppression (by ID) that matches an incident entry."""
    for s in sorted(suppressions, key=lambda s: s.suppression_id):
        if s.matches_entry(tenant_id, user_key, entry, now=now):
            return s
    return None


class SuppressionStore(Protocol):
    """Where suppressions are kept."""

    def add_suppression(self, suppression: Suppression) -> Suppression: ...

    def get_suppression(self, tenant_id: str, suppression_id: str) -> Suppression: ...

    def list_suppressions(
        self, tenant_id: str, *, include_inactive: bool = False, now: float | None = None
    ) -> list[Suppression]: ...

    def revoke_suppression(self, tenant_id: str, suppression_id: str, *, by: str) -> Suppression: ...


def _listed(items: Iterable[Suppression], include_inactive: bool, now: float) -> list[Suppression]:
    return sorted(
        (s for s in items if include_inactive or s.is_active(now)), key=lambda s: (s.created_at, s.suppression_id)
    )


class InMemorySuppressionStore:
    """Suppressions in memory (``itdr scan`` and tests)."""

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self._rows: dict[tuple[str, str], Suppression] = {}
        self._lock = threading.Lock()
        self._now = now

    def add_suppression(self, suppression: Suppression) -> Suppression:
        """Add or replace (same selectors) a suppression; a revoked one with the same selectors is revived."""
        with self._lock:
            self._rows[(suppression.tenant_id, suppression.suppression_id)] = suppression
        return suppression

    def get_suppression(self, tenant_id: str, suppression_id: str) -> Suppression:
        with self._lock:
            found = self._rows.get((tenant_id, suppression_id))
        if found is None:
            raise NotFoundError("no such suppression", tenant=tenant_id, suppression=suppression_id)
        return found

    def list_suppressions(
        self, tenant_id: str, *, include_inactive: bool = False, now: float | None = None
    ) -> list[Suppression]:
        with self._lock:
            items = [s for (t, _), s in self._rows.items() if t == tenant_id]
        return _listed(items, include_inactive, self._now() if now is None else now)

    def revoke_suppression(self, tenant_id: str, suppression_id: str, *, by: str) -> Suppression:
        """Revoke a suppression (kept for the record); revoking a revoked one changes nothing."""
        if not by.strip():
            raise BadInputError("revoking a suppression needs who did it (by)", tenant=tenant_id)
        with self._lock:
            found = self._rows.get((tenant_id, suppression_id))
            if found is None:
                raise NotFoundError("no such suppression", tenant=tenant_id, suppression=suppression_id)
            if found.revoked_at is None:
                found = found.model_copy(update={"revoked_at": self._now(), "revoked_by": by.strip()})
                self._rows[(tenant_id, suppression_id)] = found
            return found


class TableSuppressionStore:
    """Suppressions in ``TABLE_SUPPRESSIONS`` (PartitionKey = tenant ID, RowKey = suppression ID)."""

    def __init__(self, table: TableClient, *, now: Callable[[], float] = time.time) -> None:
        self._table = table
        self._now = now

    @classmethod
    def from_storage(cls, storage: StorageClients, *, now: Callable[[], float] = time.time) -> TableSuppressionStore:
        return cls(storage.table(names.TABLE_SUPPRESSIONS), now=now)

    @staticmethod
    def _entity(s: Suppression) -> dict[str, Any]:
        ent: dict[str, Any] = {"PartitionKey": encode_key(s.tenant_id), "RowKey": s.suppression_id}
        for key, value in s.model_dump().items():
            ent[key] = "" if value is None else value
        ent["asn"] = -1 if s.asn is None else s.asn
        ent["expires_at"] = -1.0 if s.expires_at is None else float(s.expires_at)
        ent["revoked_at"] = -1.0 if s.revoked_at is None else float(s.revoked_at)
        ent["created_at"] = float(s.created_at)
        return ent

    @staticmethod
    def _from(ent: Any) -> Suppression:
        def opt(key: str) -> Any:
            v = ent.get(key)
            return None if v in ("", None) or (isinstance(v, int | float) and v < 0) else v

        return Suppression(
            tenant_id=ent["tenant_id"],
            user=opt("user"),
            ip=opt("ip"),
            asn=opt("asn"),
            detector=opt("detector"),
            reason=ent["reason"],
            created_by=ent["created_by"],
            created_at=float(ent["created_at"]),
            expires_at=opt("expires_at"),
            revoked_at=opt("revoked_at"),
            revoked_by=opt("revoked_by"),
        )

    def add_suppression(self, suppression: Suppression) -> Suppression:
        """Add or replace (same selectors) a suppression; a revoked one with the same selectors is revived."""
        try:
            self._table.upsert_entity(self._entity(suppression), mode=UpdateMode.REPLACE)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="add_suppression", tenant=suppression.tenant_id) from exc
        return suppression

    def get_suppression(self, tenant_id: str, suppression_id: str) -> Suppression:
        try:
            return self._from(self._table.get_entity(encode_key(tenant_id), encode_key(suppression_id)))
        except ResourceNotFoundError as exc:
            raise NotFoundError("no such suppression", tenant=tenant_id, suppression=suppression_id) from exc
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="get_suppression", tenant=tenant_id) from exc

    def list_suppressions(
        self, tenant_id: str, *, include_inactive: bool = False, now: float | None = None
    ) -> list[Suppression]:
        try:
            ents = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(tenant_id)}))
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="list_suppressions", tenant=tenant_id) from exc
        return _listed((self._from(e) for e in ents), include_inactive, self._now() if now is None else now)

    def revoke_suppression(self, tenant_id: str, suppression_id: str, *, by: str) -> Suppression:
        """Revoke a suppression (kept for the record); revoking a revoked one changes nothing."""
        if not by.strip():
            raise BadInputError("revoking a suppression needs who did it (by)", tenant=tenant_id)
        found = self.get_suppression(tenant_id, suppression_id)
        if found.revoked_at is not None:
            return found
        revoked = found.model_copy(update={"revoked_at": self._now(), "revoked_by": by.strip()})
        try:
            self._table.update_entity(self._entity(revoked), mode=UpdateMode.REPLACE)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="revoke_suppression", tenant=tenant_id) from exc
        return revoked


def suppression_from_alert(
    alert: Alert,
    *,
    scope: Iterable[str],
    by: str,
    reason: str,
    now: float,
    ttl: timedelta | None = timedelta(days=30),
) -> Suppression:
    """A suppression copying from an alert the selectors ``scope`` names (``user``, ``ip``, ``asn``, ``detector``)."""
    wanted = {s.strip().lower() for s in scope if s.strip()}
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise BadInputError(f"suppression scope must be some of {', '.join(SCOPES)}", tenant=alert.tenant_id)
    values: dict[str, Any] = {}
    if "user" in wanted:
        values["user"] = alert.user_key or alert.user or None
    if "ip" in wanted:
        values["ip"] = normalize_ip(alert.ip)
    if "asn" in wanted:
        values["asn"] = context_asn(alert.context)
    if "detector" in wanted:
        values["detector"] = alert.detector
    missing = sorted(k for k in wanted if values.get(k) is None)
    if missing:
        raise BadInputError(f"the alert has no {', '.join(missing)} to suppress on", tenant=alert.tenant_id)
    try:
        return Suppression(
            tenant_id=alert.tenant_id,
            reason=reason,
            created_by=by,
            created_at=now,
            expires_at=None if ttl is None else now + ttl.total_seconds(),
            **values,
        )
    except ValueError as exc:
        raise BadInputError(f"invalid suppression: {exc}", tenant=alert.tenant_id) from exc


def dismiss_alert(
    alerts: AlertStore,
    suppressions: SuppressionStore,
    tenant_id: str,
    alert_id: str,
    *,
    by: str,
    reason: str,
    suppress: Iterable[str] = (),
    ttl: timedelta | None = timedelta(days=30),
    now: Callable[[], float] = time.time,
) -> tuple[StoredAlert, Suppression | None]:
    """Dismiss an alert with a reason and, when ``suppress`` names selectors, suppress its look-alikes.

    The suppression is created first: if dismissing then fails, the alert is still ``new`` and the
    command can simply be repeated (adding the same suppression again is idempotent).
    """
    scope = [s for s in suppress if s.strip()]
    created: Suppression | None = None
    if scope:
        alert = alerts.get_alert(tenant_id, alert_id)
        if alert is None:
            raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id)
        created = suppressions.add_suppression(
            suppression_from_alert(alert, scope=scope, by=by, reason=reason, now=now(), ttl=ttl)
        )
    record = alerts.set_status(tenant_id, alert_id, "dismissed", by=by, reason=reason)
    return record, created
