"""The alert lifecycle: alerts kept by deterministic ID, with an analyst status and its history.

Both stores implement the detection engine's :class:`~shared.detection.engine.AlertSink`
(``get_alert`` / ``upsert_alerts``) and add the SOC verbs: ``list_alerts``, ``get_alert_record``
and ``set_status``.

Table layout (``TABLE_ALERTS``): PartitionKey = the tenant ID, RowKey = the alert ID, one column
per scalar alert field, JSON text columns for lists and the context (split across ``<name>__<n>``
columns when longer than a Table string property allows), and the status columns
``status``/``status_by``/``status_reason``/``status_at``/``history``. ``upsert_alerts`` merges only
the alert columns, so a replay or a merge by the engine never resets what an analyst decided.
Upserts go in entity-group transactions of at most 100 rows of one partition.

Status: ``new`` → ``acknowledged`` → ``confirmed`` or ``dismissed`` (any move is allowed, an
analyst may reopen). Every change records who, why and when; setting the status an alert already
has is a no-op, so a repeated command does not grow the history.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.alert_model import Alert, Category, Severity
from shared.platform import names
from shared.platform.errors import BadInputError, ConcurrencyError, ItdrError, NotFoundError, ServiceUnavailable
from shared.platform.storage import StorageClients, encode_key

MAX_HISTORY = 50
"""Status changes kept per alert (the oldest are dropped first)."""
TRANSACTION_LIMIT = 100
"""Entities per entity-group transaction (a Table Storage limit)."""
JSON_CHUNK = 30_000
"""Characters per JSON text column: a Table string property holds at most 32 Ki UTF-16 characters."""
MAX_JSON_CHUNKS = 15
"""At most this many columns per JSON value (450 000 characters; the whole entity must stay within 1 MiB,
which the service enforces: an entity too large is refused as bad input)."""


class AlertStatus(StrEnum):
    """Where an alert stands in the SOC's workflow."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


REASON_REQUIRED = frozenset({AlertStatus.CONFIRMED, AlertStatus.DISMISSED})
"""Statuses that need a reason (confirming or dismissing is a verdict someone must explain)."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One status change: to what, by whom, why and when (epoch seconds)."""

    status: AlertStatus
    by: str
    reason: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "by": self.by, "reason": self.reason, "at": self.at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusChange:
        return cls(AlertStatus(data["status"]), str(data["by"]), str(data.get("reason", "")), float(data["at"]))


@dataclass(slots=True)
class StoredAlert:
    """An alert with its analyst status and the history of status changes (oldest first)."""

    alert: Alert
    status: AlertStatus = AlertStatus.NEW
    history: list[StatusChange] = field(default_factory=list)

    @property
    def last_change(self) -> StatusChange | None:
        return self.history[-1] if self.history else None

    def to_dict(self) -> dict[str, Any]:
        """The alert's ``to_dict()`` plus ``status`` and ``history`` (times as ISO 8601 text)."""
        from shared.alert_model import iso

        out = self.alert.to_dict()
        out["status"] = self.status.value
        out["history"] = [{**h.to_dict(), "at": iso(h.at)} for h in self.history]
        return out


class AlertStore(Protocol):
    """What the SOC verbs need from an alert store (Table Storage deployed, memory in ``itdr scan``)."""

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...

    def get_alert_record(self, tenant_id: str, alert_id: str) -> StoredAlert: ...

    def list_alerts(
        self, tenant_id: str, *, status: AlertStatus | str | None = None, since: float | datetime | None = None
    ) -> list[StoredAlert]: ...

    def set_status(
        self, tenant_id: str, alert_id: str, status: AlertStatus | str, *, by: str, reason: str = ""
    ) -> StoredAlert: ...


# --------------------------------------------------------------------------- helpers shared by the table stores


def epoch(value: float | datetime | None) -> float | None:
    """Epoch seconds for a float or a datetime (a naive datetime is taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


def put_json(entity: dict[str, Any], name: str, value: Any) -> None:
    """Store ``value`` as JSON text in ``name`` (and ``name__1``... when long), with ``name__n`` = column count.

    A value too long even for :data:`MAX_JSON_CHUNKS` columns raises BadInputError: callers bound
    their documents before writing (contexts are truncated in :func:`alert_to_entity`).
    """
    text = orjson.dumps(value).decode()
    parts = [text[i : i + JSON_CHUNK] for i in range(0, len(text), JSON_CHUNK)] or [""]
    if len(parts) > MAX_JSON_CHUNKS:
        raise BadInputError(f"JSON column {name} is too large ({len(text)} characters)", reason="entity_too_large")
    entity[name] = parts[0]
    for i, part in enumerate(parts[1:], start=1):
        entity[f"{name}__{i}"] = part
    entity[f"{name}__n"] = len(parts)


def get_json(entity: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The value :func:`put_json` stored (``default`` when the column is absent)."""
    first = entity.get(name)
    if first is None:
        return default
    count = int(entity.get(f"{name}__n", 1) or 1)
    text = str(first) + "".join(str(entity.get(f"{name}__{i}", "")) for i in range(1, count))
    if not text:
        return default
    return orjson.loads(text)


def chunks(items: Sequence[Any], size: int = TRANSACTION_LIMIT) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def storage_error(exc: Exception, *, action: str, **context: str) -> ItdrError:
    """Map a Table Storage failure onto the error tree.

    An ETag or existence conflict is a ConcurrencyError (reload and replay); a 4xx other than
    408/429 (an entity too large, a bad key) is a BadInputError; the rest (5xx, throttling,
    connection failures) is ServiceUnavailable. The bus retries the transient ones.
    """
    status = getattr(exc, "status_code", None)
    code = str(getattr(exc, "error_code", "") or "")
    if isinstance(exc, ResourceModifiedError | ResourceExistsError) or code in _CONFLICT_CODES or status == 412:
        return ConcurrencyError(f"table row changed by another writer during {action}", retry_after=None, **context)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return BadInputError(f"table storage refused {action}: {code or status}", reason="storage_rejected", **context)
    return ServiceUnavailable(
        f"table storage failed during {action}: {type(exc).__name__} {code}".strip(), retry_after=None, **context
    )


_CONFLICT_CODES = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet"})


MAX_CONTEXT_CHARS = 120_000


def alert_to_entity(alert: Alert) -> dict[str, Any]:
    """The alert columns of an alert row (no status columns: those belong to the analyst)."""
    ent: dict[str, Any] = {
        "PartitionKey": encode_key(alert.tenant_id),
        "RowKey": encode_key(alert.alert_id),
        "tenant_id": alert.tenant_id,
        "alert_id": alert.alert_id,
        "detector": alert.detector,
        "title": alert.title,
        "category": alert.category.value,
        "severity": alert.severity.value,
        "user": alert.user,
        "user_key": alert.user_key or "",
        "first_seen": float(alert.first_seen),
        "last_seen": float(alert.last_seen),
        "summary": alert.summary,
        "dedup_key": alert.dedup_key,
        "ip": alert.ip or "",
        "count": int(alert.count),
        "runbook": alert.runbook,
    }
    put_json(ent, "evidence_record_ids", list(alert.evidence_record_ids))
    put_json(ent, "mitre", list(alert.mitre))
    context: Any = dict(alert.context)
    size = len(orjson.dumps(context))
    if size > MAX_CONTEXT_CHARS:
        context = {"_truncated": True, "_bytes": size}
    put_json(ent, "context", context)
    return ent


def alert_from_entity(ent: Mapping[str, Any]) -> Alert:
    """The :class:`Alert` of an alert row."""
    return Alert(
        alert_id=str(ent["alert_id"]),
        detector=str(ent["detector"]),
        title=str(ent["title"]),
        category=Category(ent["category"]),
        severity=Severity(ent["severity"]),
        tenant_id=str(ent["tenant_id"]),
        user=str(ent.get("user", "")),
        user_key=str(ent["user_key"]) if ent.get("user_key") else None,
        first_seen=float(ent["first_seen"]),
        last_seen=float(ent["last_seen"]),
        evidence_record_ids=[str(i) for i in get_json(ent, "evidence_record_ids", [])],
        mitre=tuple(str(t) for t in get_json(ent, "mitre", [])),
        summary=str(ent.get("summary", "")),
        dedup_key=str(ent.get("dedup_key", "")),
        ip=str(ent["ip"]) if ent.get("ip") else None,
        context=dict(get_json(ent, "context", {}) or {}),
        count=int(ent.get("count", 1)),
        runbook=str(ent.get("runbook", "")),
    )


def _record_from_entity(ent: Mapping[str, Any]) -> StoredAlert:
    history = [StatusChange.from_dict(h) for h in get_json(ent, "history", [])]
    status = AlertStatus(ent["status"]) if ent.get("status") else AlertStatus.NEW
    return StoredAlert(alert_from_entity(ent), status, history)


def _check_change(status: AlertStatus | str, by: str, reason: str, *, tenant_id: str, alert_id: str) -> AlertStatus:
    try:
        target = AlertStatus(status)
    except ValueError as exc:
        raise BadInputError(f"unknown alert status {status!r}", tenant=tenant_id, alert=alert_id) from exc
    if not by.strip():
        raise BadInputError("a status change needs who made it (by)", tenant=tenant_id, alert=alert_id)
    if target in REASON_REQUIRED and not reason.strip():
        raise BadInputError(f"setting an alert to {target.value} needs a reason", tenant=tenant_id, alert=alert_id)
    return target


def _filter(records: Iterable[StoredAlert], status: AlertStatus | str | None, since: float | None) -> list[StoredAlert]:
    wanted = AlertStatus(status) if status is not None else None
    out = [
        r for r in records if (wanted is None or r.status == wanted) and (since is None or r.alert.last_seen >= since)
    ]
    return sorted(out, key=lambda r: (r.alert.first_seen, r.alert.alert_id))


# --------------------------------------------------------------------------- in memory


class InMemoryAlertStore:
    """Alerts and their statuses in memory, with the Table store's semantics (for ``itdr scan`` and tests).

    Alerts are copied in and out, as a database would: mutating a returned alert changes nothing
    until it is upserted again.
    """

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self._rows: dict[tuple[str, str], StoredAlert] = {}
        self._lock = threading.Lock()
        self._now = now
        self.writes = 0

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._rows.get((tenant_id, alert_id))
            return copy.deepcopy(row.alert) if row is not None else None

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        with self._lock:
            for a in alerts:
                row = self._rows.get((a.tenant_id, a.alert_id))
                if row is None:
                    self._rows[(a.tenant_id, a.alert_id)] = StoredAlert(copy.deepcopy(a))
                else:
                    row.alert = copy.deepcopy(a)
            self.writes += 1 if alerts else 0

    def get_alert_record(self, tenant_id: str, alert_id: str) -> StoredAlert:
        with self._lock:
            row = self._rows.get((tenant_id, alert_id))
            if row is None:
                raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id)
            return copy.deepcopy(row)

    def list_alerts(
        self, tenant_id: str, *, status: AlertStatus | str | None = None, since: float | datetime | None = None
    ) -> list[StoredAlert]:
        with self._lock:
            rows = [copy.deepcopy(r) for (t, _), r in self._rows.items() if t == tenant_id]
        return _filter(rows, status, epoch(since))

    def set_status(
        self, tenant_id: str, alert_id: str, status: AlertStatus | str, *, by: str, reason: str = ""
    ) -> StoredAlert:
        target = _check_change(status, by, reason, tenant_id=tenant_id, alert_id=alert_id)
        with self._lock:
            row = self._rows.get((tenant_id, alert_id))
            if row is None:
                raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id)
            if row.status != target:
                row.status = target
                row.history.append(StatusChange(target, by.strip(), reason.strip(), self._now()))
                del row.history[:-MAX_HISTORY]
            return copy.deepcopy(row)

    def tenants(self) -> set[str]:
        with self._lock:
            return {t for t, _ in self._rows}


# --------------------------------------------------------------------------- Table Storage


class TableAlertStore:
    """Alerts in Azure Table Storage (Azurite locally): one partition per tenant, one row per alert ID."""

    STATUS_RETRIES = 3

    def __init__(self, table: TableClient, *, now: Callable[[], float] = time.time) -> None:
        self._table = table
        self._now = now
        self.transactions = 0

    @classmethod
    def from_storage(cls, storage: StorageClients, *, now: Callable[[], float] = time.time) -> TableAlertStore:
        """The store on ``TABLE_ALERTS`` of a storage account."""
        return cls(storage.table(names.TABLE_ALERTS), now=now)

    def _get_entity(self, tenant_id: str, alert_id: str) -> Any:
        try:
            return self._table.get_entity(encode_key(tenant_id), encode_key(alert_id))
        except ResourceNotFoundError:
            return None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="get_alert", tenant=tenant_id, alert=alert_id) from exc

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None:
        ent = self._get_entity(tenant_id, alert_id)
        return alert_from_entity(ent) if ent is not None else None

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        """Write alerts by ID (a replay rewrites the same rows); statuses are left as they are."""
        by_tenant: dict[str, dict[str, Alert]] = {}
        for a in alerts:
            by_tenant.setdefault(a.tenant_id, {})[a.alert_id] = a  # one op per row per transaction
        for tenant_id, rows in by_tenant.items():
            for chunk in chunks(list(rows.values())):
                ops: list[Any] = [("upsert", alert_to_entity(a), {"mode": UpdateMode.MERGE}) for a in chunk]
                try:
                    self._table.submit_transaction(ops)
                except (HttpResponseError, ServiceRequestError) as exc:
                    raise storage_error(exc, action="upsert_alerts", tenant=tenant_id) from exc
                self.transactions += 1

    def get_alert_record(self, tenant_id: str, alert_id: str) -> StoredAlert:
        ent = self._get_entity(tenant_id, alert_id)
        if ent is None:
            raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id)
        return _record_from_entity(ent)

    def list_alerts(
        self, tenant_id: str, *, status: AlertStatus | str | None = None, since: float | datetime | None = None
    ) -> list[StoredAlert]:
        """The tenant's alerts (oldest first), optionally only one status and those seen since a time."""
        since_ts = epoch(since)
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": encode_key(tenant_id)}
        if since_ts is not None:
            query += " and last_seen ge @since"
            params["since"] = float(since_ts)
        try:
            rows = [_record_from_entity(e) for e in self._table.query_entities(query, parameters=params)]
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="list_alerts", tenant=tenant_id) from exc
        return _filter(rows, status, since_ts)

    def set_status(
        self, tenant_id: str, alert_id: str, status: AlertStatus | str, *, by: str, reason: str = ""
    ) -> StoredAlert:
        """Move an alert to ``status``, recording who and why; optimistic concurrency on the row's ETag."""
        target = _check_change(status, by, reason, tenant_id=tenant_id, alert_id=alert_id)
        for _ in range(self.STATUS_RETRIES):
            ent = self._get_entity(tenant_id, alert_id)
            if ent is None:
                raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id)
            record = _record_from_entity(ent)
            if record.status == target:
                return record
            change = StatusChange(target, by.strip(), reason.strip(), self._now())
            record.status = target
            record.history = [*record.history, change][-MAX_HISTORY:]
            patch: dict[str, Any] = {
                "PartitionKey": ent["PartitionKey"],
                "RowKey": ent["RowKey"],
                "status": target.value,
                "status_by": change.by,
                "status_reason": change.reason,
                "status_at": change.at,
            }
            put_json(patch, "history", [h.to_dict() for h in record.history])
            try:
                self._table.update_entity(
                    patch,
                    mode=UpdateMode.MERGE,
                    etag=ent.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                continue
            except ResourceNotFoundError as exc:
                raise NotFoundError("no such alert", tenant=tenant_id, alert=alert_id) from exc
            except (HttpResponseError, ServiceRequestError) as exc:
                raise storage_error(exc, action="set_status", tenant=tenant_id, alert=alert_id) from exc
            return record
        raise ConcurrencyError("alert changed while its status was being set", tenant=tenant_id, alert=alert_id)
