"""The durable remediation ledger: one Table Storage row per action, keyed by an idempotency key.

A remediation action is identified by ``(tenant, action, target, incident)``; :func:`idempotency_key` hashes
that into the RowKey (PartitionKey = the tenant), so planning the same incident twice, replaying a queue
message or approving twice all land on the same row. The row moves::

    pending_approval ──approve──▶ pending ──▶ running ──▶ succeeded | failed | needs_manual
           │                        ▲            │
           └──reject──▶ rejected    └─ retry ────┘            (and skipped: blocked by policy)

Every state change is an ETag-conditional write: :meth:`RemediationLedger.create_entry` is create-if-absent
(a 409 raises :class:`ActionOwnedError`: someone else already has this action) and
:meth:`RemediationLedger.update_entry` is if-match (a 412 raises :class:`~shared.platform.errors.ConcurrencyError`:
someone else changed the row, reload). The row keeps the attempt count, ``next_attempt_at``, a lease for the
running attempt, the last error (class, reason, message — never a token), the action's checkpoint (what it
resolved, e.g. the Graph rule id and the rule's full definition, so a retry never re-resolves and an undo can
restore) and result, and a bounded history.

:class:`TableRemediationLedger` is the deployed ledger (``shared.platform.names.TABLE_REMEDIATIONS``);
:class:`InMemoryRemediationLedger` is its twin with the same semantics for the demo and tests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.platform import names
from shared.platform.errors import BadInputError, ConcurrencyError, ItdrError, ServiceUnavailable
from shared.platform.storage import StorageClients, decode_key, encode_key

__all__ = [
    "MAX_HISTORY",
    "TERMINAL_STATES",
    "ActionKind",
    "ActionOwnedError",
    "ErrorInfo",
    "HistoryEntry",
    "InMemoryRemediationLedger",
    "LedgerEntry",
    "RemediationLedger",
    "RemediationRequest",
    "RemediationState",
    "TableRemediationLedger",
    "error_info",
    "idempotency_key",
    "safe_message",
    "utc_now",
]

MAX_HISTORY = 40
"""History entries kept per row (oldest dropped): keeps the row far below Table Storage's 64 KB per property."""


class ActionKind(StrEnum):
    """Every remediation action, undo actions included."""

    ISOLATE_IDENTITY = "isolate_identity"
    REMOVE_INBOX_RULE = "remove_inbox_rule"
    REVOKE_OAUTH_GRANT = "revoke_oauth_grant"
    DISABLE_SERVICE_PRINCIPAL = "disable_service_principal"
    CLEAR_MAILBOX_FORWARDING = "clear_mailbox_forwarding"
    ENABLE_IDENTITY = "enable_identity"
    """Undo of isolate_identity (sessions stay revoked)."""
    RESTORE_INBOX_RULE = "restore_inbox_rule"
    """Undo of remove_inbox_rule: recreate the rule from its recorded definition."""
    ENABLE_SERVICE_PRINCIPAL = "enable_service_principal"
    """Undo of disable_service_principal."""


class RemediationState(StrEnum):
    """Where a ledger row is."""

    PENDING_APPROVAL = "pending_approval"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEEDS_MANUAL = "needs_manual"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    """Blocked by policy (e.g. a never-disable account); nothing was done."""


TERMINAL_STATES = frozenset(
    {
        RemediationState.SUCCEEDED,
        RemediationState.FAILED,
        RemediationState.NEEDS_MANUAL,
        RemediationState.REJECTED,
        RemediationState.SKIPPED,
    }
)


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def idempotency_key(tenant_id: str, action: ActionKind | str, target: Mapping[str, Any], incident_id: str) -> str:
    """The RowKey of an action: sha256 over (tenant, action, canonical JSON of the target, incident), 40 hex."""
    material = "\x1f".join((tenant_id, str(action), _canonical(target), incident_id))
    return "rm-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


class RemediationRequest(BaseModel):
    """The body of a remediation-queue message (JSON). ``idempotency_key`` is derived when left empty.

    ``approved`` says the action may run now (automatic by policy, or approved by a person); a request that
    is not approved makes a ``pending_approval`` row. ``attempt`` is informational (the row is authoritative).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1)
    incident_id: str = Field(min_length=1)
    action: ActionKind
    target: dict[str, Any]
    requested_by: str = Field(min_length=1)
    approved: bool = False
    attempt: int = Field(default=1, ge=1)
    idempotency_key: str = ""

    @model_validator(mode="after")
    def _key(self) -> RemediationRequest:
        expected = idempotency_key(self.tenant_id, self.action, self.target, self.incident_id)
        if not self.idempotency_key:
            object.__setattr__(self, "idempotency_key", expected)
        elif self.idempotency_key != expected:
            raise ValueError("idempotency_key does not match (tenant_id, action, target, incident_id)")
        return self

    def to_body(self) -> bytes:
        """The message body."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes | str) -> RemediationRequest:
        """Parse a message body; BadInputError when it is not a valid request."""
        try:
            return cls.model_validate_json(body)
        except ValueError as exc:
            raise BadInputError(f"not a remediation request: {exc}", reason="bad_remediation_message") from exc


class ErrorInfo(BaseModel):
    """The last error of an attempt: class, reason and a sanitised message, plus Graph's diagnostics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_class: str
    reason: str
    message: str
    status: int | None = None
    graph_code: str | None = None
    request_id: str | None = None
    permission: str | None = None
    retry_after: float | None = None


class HistoryEntry(BaseModel):
    """One state change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    state: RemediationState
    attempt: int
    note: str = ""


class LedgerEntry(BaseModel):
    """One row of the ledger. ``etag`` is the storage ETag of the version read (not stored in the row)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tenant_id: str
    key: str
    incident_id: str
    action: ActionKind
    target: dict[str, Any]
    requested_by: str
    state: RemediationState
    attempt: int = 0
    requires_approval: bool = False
    approved_by: str | None = None
    decided_at: datetime | None = None
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    reason: str | None = None
    """Short machine-readable reason of a failed / needs_manual / skipped / rejected row."""
    last_error: ErrorInfo | None = None
    checkpoint: dict[str, Any] = Field(default_factory=dict)
    """What the action resolved and did so far (persisted before acting; read by retries and undo)."""
    result: dict[str, Any] = Field(default_factory=dict)
    undo_of: str | None = None
    undone_by: str | None = None
    source_alert_ids: list[str] = Field(default_factory=list)
    basis: dict[str, Any] = Field(default_factory=dict)
    """What it was planned for (``detectors``, ``severity``): the runner re-checks the policy against it when the
    action executes. Empty for an action requested by hand."""
    history: list[HistoryEntry] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    etag: str | None = Field(default=None, exclude=True)

    @property
    def terminal(self) -> bool:
        """True when nothing more will happen to this row."""
        return self.state in TERMINAL_STATES

    def request(self, *, attempt: int | None = None) -> RemediationRequest:
        """The queue message that (re)runs this row."""
        return RemediationRequest(
            tenant_id=self.tenant_id,
            incident_id=self.incident_id,
            action=self.action,
            target=self.target,
            requested_by=self.requested_by,
            approved=not self.requires_approval or self.approved_by is not None,
            attempt=attempt if attempt is not None else max(1, self.attempt + 1),
            idempotency_key=self.key,
        )

    def transition(self, state: RemediationState, *, at: datetime, note: str = "") -> None:
        """Move to ``state`` and append to the (bounded) history."""
        self.state = state
        self.updated_at = at
        self.history = [*self.history, HistoryEntry(at=at, state=state, attempt=self.attempt, note=note[:300])][
            -MAX_HISTORY:
        ]

    @classmethod
    def new(
        cls,
        request: RemediationRequest,
        *,
        state: RemediationState,
        at: datetime,
        requires_approval: bool | None = None,
        reason: str | None = None,
        note: str = "",
        source_alert_ids: Iterable[str] = (),
        result: Mapping[str, Any] | None = None,
        basis: Mapping[str, Any] | None = None,
    ) -> LedgerEntry:
        """A fresh row for ``request``."""
        entry = cls(
            tenant_id=request.tenant_id,
            key=request.idempotency_key,
            incident_id=request.incident_id,
            action=request.action,
            target=dict(request.target),
            requested_by=request.requested_by,
            state=state,
            requires_approval=(not request.approved) if requires_approval is None else requires_approval,
            reason=reason,
            undo_of=str(request.target["undo_of"]) if request.target.get("undo_of") else None,
            source_alert_ids=list(source_alert_ids),
            result=dict(result or {}),
            basis=dict(basis or {}),
            created_at=at,
            updated_at=at,
        )
        entry.history = [HistoryEntry(at=at, state=state, attempt=0, note=note[:300])]
        return entry


class ActionOwnedError(ConcurrencyError):
    """create_entry found the row already there (409): another instance owns this action."""

    reason = "action_owned"


_SECRETISH = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=:-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\b(sig|code|client_secret|access_token|refresh_token|password)=[^&\s]+"),
    re.compile(r"fake-token:\S+"),
)


def safe_message(text: str, *, limit: int = 500) -> str:
    """An error message fit for the ledger: tokens, signatures and secrets redacted, length bounded."""
    out = text
    for pattern in _SECRETISH:
        out = pattern.sub("[redacted]", out)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def error_info(exc: BaseException) -> ErrorInfo:
    """The ledger's record of ``exc``."""
    ctx: Mapping[str, object] = exc.context if isinstance(exc, ItdrError) else {}
    reason = exc.reason if isinstance(exc, ItdrError) else "unexpected"
    status = ctx.get("status")
    retry_after = getattr(exc, "retry_after", None)

    def _s(name: str) -> str | None:
        v = ctx.get(name)
        return str(v) if v is not None else None

    return ErrorInfo(
        error_class=type(exc).__name__,
        reason=reason,
        message=safe_message(str(exc)),
        status=status if isinstance(status, int) else None,
        graph_code=_s("graph_code"),
        request_id=_s("request_id"),
        permission=_s("permission"),
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


class RemediationLedger(Protocol):
    """The ledger port."""

    def get_entry(self, tenant_id: str, key: str) -> LedgerEntry | None:
        """The row, with its ETag, or None."""
        ...

    def create_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """Create-if-absent; returns the row with its ETag. ActionOwnedError when it already exists."""
        ...

    def update_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """If-match write of a row read earlier; ConcurrencyError when it changed since."""
        ...

    def list_entries(
        self,
        tenant_id: str,
        *,
        states: Iterable[RemediationState] | None = None,
        incident_id: str | None = None,
    ) -> list[LedgerEntry]:
        """The tenant's rows (filtered), oldest first; empty when none."""
        ...


def _sort(entries: Iterable[LedgerEntry]) -> list[LedgerEntry]:
    return sorted(entries, key=lambda e: (e.created_at, e.key))


def _matches(entry: LedgerEntry, states: frozenset[RemediationState] | None, incident_id: str | None) -> bool:
    return (states is None or entry.state in states) and (incident_id is None or entry.incident_id == incident_id)


class InMemoryRemediationLedger:
    """The ledger in a dict, with the same create-if-absent and ETag semantics as the table."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.writes = 0

    def _load(self, raw: str, etag: str) -> LedgerEntry:
        entry = LedgerEntry.model_validate_json(raw)
        entry.etag = etag
        return entry

    def get_entry(self, tenant_id: str, key: str) -> LedgerEntry | None:
        """See :meth:`RemediationLedger.get_entry`."""
        with self._lock:
            row = self._rows.get((tenant_id, key))
        return self._load(*row) if row else None

    def create_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """See :meth:`RemediationLedger.create_entry`."""
        raw = entry.model_dump_json()
        with self._lock:
            k = (entry.tenant_id, entry.key)
            if k in self._rows:
                raise ActionOwnedError("remediation row already exists", tenant=entry.tenant_id, key=entry.key)
            etag = f'W/"{next(self._etags)}"'
            self._rows[k] = (raw, etag)
            self.writes += 1
        return self._load(raw, etag)

    def update_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """See :meth:`RemediationLedger.update_entry`."""
        raw = entry.model_dump_json()
        with self._lock:
            k = (entry.tenant_id, entry.key)
            current = self._rows.get(k)
            if current is None or entry.etag is None or current[1] != entry.etag:
                raise ConcurrencyError(
                    "remediation row changed since it was read", tenant=entry.tenant_id, key=entry.key
                )
            etag = f'W/"{next(self._etags)}"'
            self._rows[k] = (raw, etag)
            self.writes += 1
        return self._load(raw, etag)

    def list_entries(
        self,
        tenant_id: str,
        *,
        states: Iterable[RemediationState] | None = None,
        incident_id: str | None = None,
    ) -> list[LedgerEntry]:
        """See :meth:`RemediationLedger.list_entries`."""
        wanted = frozenset(states) if states is not None else None
        with self._lock:
            rows = [(raw, etag) for (t, _), (raw, etag) in self._rows.items() if t == tenant_id]
        return _sort(e for e in (self._load(*r) for r in rows) if _matches(e, wanted, incident_id))


# Columns of the table row. The JSON columns stay small: checkpoint and result hold ids and one rule
# definition, history is capped at MAX_HISTORY.
_JSON_COLUMNS = {
    "Target": "target",
    "Checkpoint": "checkpoint",
    "Result": "result",
    "History": "history",
    "Basis": "basis",
}
_PLAIN_COLUMNS = {
    "IncidentId": "incident_id",
    "Action": "action",
    "RequestedBy": "requested_by",
    "State": "state",
    "Attempt": "attempt",
    "RequiresApproval": "requires_approval",
    "ApprovedBy": "approved_by",
    "DecidedAt": "decided_at",
    "NextAttemptAt": "next_attempt_at",
    "LeaseUntil": "lease_until",
    "Reason": "reason",
    "UndoOf": "undo_of",
    "UndoneBy": "undone_by",
    "CreatedAt": "created_at",
    "UpdatedAt": "updated_at",
}
_MAX_JSON_CHARS = 30000


def _to_entity(entry: LedgerEntry) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    entity: dict[str, Any] = {"PartitionKey": encode_key(entry.tenant_id), "RowKey": encode_key(entry.key)}
    for column, fld in _PLAIN_COLUMNS.items():
        if data[fld] is not None:
            entity[column] = data[fld]
    for column, fld in _JSON_COLUMNS.items():
        text = json.dumps(data[fld], separators=(",", ":"), ensure_ascii=False)
        if len(text) > _MAX_JSON_CHARS:
            raise BadInputError(f"remediation row column {column} too large", tenant=entry.tenant_id, key=entry.key)
        entity[column] = text
    entity["LastError"] = json.dumps(data["last_error"]) if data["last_error"] is not None else ""
    entity["SourceAlertIds"] = json.dumps(data["source_alert_ids"])
    return entity


def _from_entity(entity: Mapping[str, Any]) -> LedgerEntry:
    data: dict[str, Any] = {
        "tenant_id": decode_key(str(entity["PartitionKey"])),
        "key": decode_key(str(entity["RowKey"])),
    }
    for column, fld in _PLAIN_COLUMNS.items():
        if column in entity and entity[column] is not None:
            data[fld] = entity[column]
    for column, fld in _JSON_COLUMNS.items():
        data[fld] = json.loads(entity.get(column) or ("[]" if fld == "history" else "{}"))
    last = entity.get("LastError") or ""
    data["last_error"] = json.loads(last) if last else None
    data["source_alert_ids"] = json.loads(entity.get("SourceAlertIds") or "[]")
    entry = LedgerEntry.model_validate(data)
    metadata = getattr(entity, "metadata", None)
    entry.etag = str(metadata.get("etag")) if isinstance(metadata, Mapping) and metadata.get("etag") else None
    return entry


def _storage_error(exc: HttpResponseError, what: str, *, tenant: str, key: str | None = None) -> ItdrError:
    status = exc.status_code or 0
    if status == 429 or status >= 500 or status == 0:
        return ServiceUnavailable(f"table storage {what} failed ({status})", tenant=tenant, key=key)
    message = safe_message(str(exc.message))
    return BadInputError(f"table storage {what} failed ({status}): {message}", tenant=tenant, key=key)


class TableRemediationLedger:
    """The ledger in Table Storage (``TABLE_REMEDIATIONS``): PartitionKey = tenant, RowKey = idempotency key."""

    def __init__(self, storage: StorageClients) -> None:
        self._table = storage.table(names.TABLE_REMEDIATIONS)

    def get_entry(self, tenant_id: str, key: str) -> LedgerEntry | None:
        """See :meth:`RemediationLedger.get_entry`."""
        try:
            entity = self._table.get_entity(encode_key(tenant_id), encode_key(key))
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise _storage_error(exc, "read", tenant=tenant_id, key=key) from exc
        return _from_entity(entity)

    def create_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """See :meth:`RemediationLedger.create_entry`."""
        entity = _to_entity(entry)
        try:
            meta = self._table.create_entity(entity)
        except ResourceExistsError as exc:
            raise ActionOwnedError("remediation row already exists", tenant=entry.tenant_id, key=entry.key) from exc
        except HttpResponseError as exc:
            raise _storage_error(exc, "create", tenant=entry.tenant_id, key=entry.key) from exc
        out = entry.model_copy(deep=True)
        out.etag = str(meta.get("etag")) if meta.get("etag") else None
        return out

    def update_entry(self, entry: LedgerEntry) -> LedgerEntry:
        """See :meth:`RemediationLedger.update_entry`."""
        if entry.etag is None:
            raise ConcurrencyError("update of a remediation row without an ETag", tenant=entry.tenant_id, key=entry.key)
        entity = _to_entity(entry)
        try:
            meta = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=entry.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(
                "remediation row changed since it was read", tenant=entry.tenant_id, key=entry.key
            ) from exc
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise ConcurrencyError(
                    "remediation row changed since it was read", tenant=entry.tenant_id, key=entry.key
                ) from exc
            raise _storage_error(exc, "update", tenant=entry.tenant_id, key=entry.key) from exc
        out = entry.model_copy(deep=True)
        out.etag = str(meta.get("etag")) if meta.get("etag") else None
        return out

    def list_entries(
        self,
        tenant_id: str,
        *,
        states: Iterable[RemediationState] | None = None,
        incident_id: str | None = None,
    ) -> list[LedgerEntry]:
        """See :meth:`RemediationLedger.list_entries`."""
        wanted = frozenset(states) if states is not None else None
        params: dict[str, Any] = {"pk": encode_key(tenant_id)}
        flt = "PartitionKey eq @pk"
        if incident_id is not None:
            flt += " and IncidentId eq @inc"
            params["inc"] = incident_id
        try:
            entities = list(self._table.query_entities(flt, parameters=params))
        except HttpResponseError as exc:
            raise _storage_error(exc, "query", tenant=tenant_id) from exc
        return _sort(e for e in (_from_entity(x) for x in entities) if _matches(e, wanted, None))


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)
