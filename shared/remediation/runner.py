"""The remediation runner: one queue message → at most one action attempt, durable and replay safe.

:meth:`RemediationRunner.handle` is the body of the remediation-queue function::

    load or create the ledger row (create-if-absent: a 409 means another instance made it first)
    terminal                     → no-op (a replayed message changes nothing)
    pending_approval             → no-op until approve/reject
    running, lease not expired   → another instance is on it: a re-check is scheduled for the lease's end
    pending, not due yet         → no-op (the scheduled retry message will come)
    the policy, checked again (RemediationPolicy.recheck; not for an undo):
      no longer allowed          → skipped (policy_disabled, policy_off, below_min_severity, never_disable)
      no longer automatic        → pending_approval (a protected identity, or the policy now asks a person)
    claim: attempt+1, running, lease (an ETag write: exactly one instance wins)
    run the action (it re-reads Graph's post-conditions first, so a resumed attempt does nothing twice)
    succeeded / needs_manual / skipped                 → recorded
    ThrottledError, ServiceUnavailable, timeouts, ...  → a NEW scheduled message on the remediation queue
                                                         (Retry-After honoured, else back-off + jitter),
                                                         then the row goes back to pending; failed after
                                                         the last attempt (reason retries_exhausted)
    PermissionError_   → failed, reason missing_permission, plus an integration_health alert naming it
    NotFoundError      → failed, reason target_not_found
    other permanent    → failed with the error's reason

A message is only as good as its ledger row: a message whose row does not exist (every legitimate message is
sent after its row is written: planned, approved, retried or undone) creates a ``pending_approval`` row whatever
its ``approved`` flag claims, so nothing runs without a person.

A crash anywhere leaves the row pending or running. A row left running is taken over once its lease has
expired (Service Bus redelivers the message after its lock, which lasts as long as the lease); the action
then re-checks the post-condition before acting (an account already disabled is not PATCHed again).

:meth:`RemediationRunner.submit` records planned actions (skipped / pending_approval / pending) and sends the
messages of the automatic ones; :func:`approve_action`, :func:`reject_action` and :func:`request_undo` are the
human side (the ``itdr remediate`` CLI). Retry messages are sent before the row records them, so a crash in
between leaves at worst an extra message, which the ledger turns into a no-op.

``on_change`` (optional, :data:`ChangeHook`) is called with the row after every ledger write that changed its
state (planned, claimed, retried, recorded, approved, rejected), and again with the row as read when a replayed
message finds it terminal or awaiting approval, so a crash between the ledger write and the hook is repaired by
the redelivery. The hook must be idempotent; an exception from it propagates (the message is retried and the
ledger turns the retry into a no-op that calls the hook again).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.alert_model import Alert, Finding, build_alert
from shared.platform import names
from shared.platform.bus import MessageBus, OutboundMessage
from shared.platform.errors import (
    BadInputError,
    ConcurrencyError,
    ConfigurationError,
    ItdrError,
    NotFoundError,
    PermanentError,
    PermissionError_,
    TransientError,
)
from shared.platform.faults import crash_point
from shared.remediation.actions import (
    ACTIONS,
    ActionContext,
    ActionOutcome,
    ActionResult,
    GraphPort,
)
from shared.remediation.ledger import (
    ActionKind,
    ActionOwnedError,
    LedgerEntry,
    RemediationLedger,
    RemediationRequest,
    RemediationState,
    error_info,
)
from shared.remediation.policy import PlannedAction, Recheck, RemediationPolicy, RetryPolicy
from shared.system_alerts import REMEDIATION_PERMISSION

__all__ = [
    "PERMISSION_DETECTOR_ID",
    "AlertSink",
    "ChangeHook",
    "GraphFactory",
    "HandleOutcome",
    "HandleResult",
    "LostOwnership",
    "PolicySource",
    "RemediationRunner",
    "approve_action",
    "reject_action",
    "request_undo",
]

_log = logging.getLogger(__name__)

PERMISSION_DETECTOR_ID = REMEDIATION_PERMISSION.id
_RECHECK_MARGIN = timedelta(seconds=1)
_DUE_TOLERANCE = timedelta(seconds=1)

GraphFactory = Callable[[str], AbstractContextManager[GraphPort]]
"""tenant id → a context manager yielding that tenant's Graph client (``SyncGraphClient.create(...)`` is one;
wrap a cached client in ``contextlib.nullcontext``)."""

PolicySource = RemediationPolicy | Callable[[str], RemediationPolicy]
"""One policy for every tenant, or tenant id → the tenant's policy."""

ChangeHook = Callable[[LedgerEntry], object]
"""Called with a ledger row after its state changed (see the module docstring); must be idempotent."""


class AlertSink(Protocol):
    """Where integration-health alerts go (``shared.detection.engine.AlertSink`` satisfies it)."""

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...


_OUTCOME = {"needs_manual": "manual"}
"""``itdr.remediations`` outcome of a final ledger state (the others keep their name)."""


def count_remediation(tenant_id: str, action: str, state: str) -> None:
    """``itdr.remediations``: one per row written in its final state, or ``dead_lettered`` for a parked message."""
    from shared.platform.telemetry import telemetry

    outcome = _OUTCOME.get(state, state)
    telemetry().metric("itdr.remediations", 1, tenant_id=tenant_id, action=action, outcome=outcome)


def _count_final(entry: LedgerEntry) -> None:
    count_remediation(entry.tenant_id, entry.action.value, entry.state.value)


class HandleOutcome(StrEnum):
    """What one :meth:`RemediationRunner.handle` call did."""

    SUCCEEDED = "succeeded"
    NEEDS_MANUAL = "needs_manual"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    NOOP_TERMINAL = "noop_terminal"
    AWAITING_APPROVAL = "awaiting_approval"
    BUSY = "busy"
    NOT_DUE = "not_due"
    LOST_OWNERSHIP = "lost_ownership"


@dataclass(frozen=True, slots=True)
class HandleResult:
    """The outcome, the row as last written or read, and what was sent or raised on the way."""

    outcome: HandleOutcome
    entry: LedgerEntry
    scheduled: OutboundMessage | None = None
    alert: Alert | None = None


class LostOwnership(ConcurrencyError):
    """Another instance changed the row while this one worked on it; stop without writing."""

    reason = "lost_ownership"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _message(request: RemediationRequest, *, message_id: str, at: datetime | None = None) -> OutboundMessage:
    return OutboundMessage(
        body=request.to_body(),
        message_id=message_id,
        application_properties={
            "tenant_id": request.tenant_id,
            "action": request.action.value,
            "attempt": request.attempt,
            "idempotency_key": request.idempotency_key,
        },
        scheduled_enqueue_time=at,
    )


def _send(
    bus: MessageBus, request: RemediationRequest, *, message_id: str, at: datetime | None = None
) -> OutboundMessage:
    msg = _message(request, message_id=message_id, at=at)
    bus.send(names.QUEUE_REMEDIATION, [msg])
    return msg


class RemediationRunner:
    """Handles remediation-queue messages. See the module docstring for the state machine.

    ``ledger`` is the durable ledger, ``graph_factory`` gives a tenant's Graph client, ``bus`` sends retry
    messages to ``names.QUEUE_REMEDIATION``, ``policy`` is one :class:`RemediationPolicy` or a per-tenant
    lookup, ``clock`` returns aware UTC datetimes, ``rng`` draws the back-off jitter, ``alert_sink`` receives
    integration-health alerts (missing permissions), ``on_change`` is told of every state change (see the module
    docstring).
    """

    def __init__(
        self,
        ledger: RemediationLedger,
        graph_factory: GraphFactory,
        bus: MessageBus,
        *,
        policy: PolicySource,
        clock: Callable[[], datetime],
        rng: random.Random,
        alert_sink: AlertSink | None = None,
        actions: Mapping[ActionKind, Callable[[GraphPort, ActionContext], ActionResult]] | None = None,
        on_change: ChangeHook | None = None,
    ) -> None:
        self._ledger = ledger
        self._graph_factory = graph_factory
        self._bus = bus
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._alerts = alert_sink
        self._actions = dict(actions or ACTIONS)
        self._on_change = on_change

    # -- public -------------------------------------------------------------------------------------
    def policy_for(self, tenant_id: str) -> RemediationPolicy:
        """The tenant's policy."""
        if isinstance(self._policy, RemediationPolicy):
            return self._policy
        return self._policy(tenant_id)

    def now(self) -> datetime:
        """The runner's clock."""
        return _aware(self._clock())

    def submit(self, planned: Iterable[PlannedAction]) -> list[LedgerEntry]:
        """Record planned actions and send the messages of those that may run now.

        Blocked actions become ``skipped`` rows, actions needing approval ``pending_approval`` rows, the rest
        ``pending`` rows with a message. Replay safe: an existing row is kept; a ``pending`` row that never
        ran gets its message again (covers a crash between the row and the send). A row still awaiting
        approval that is now planned as automatic (its incident became critical) goes ahead: ``pending`` and
        its message.
        """
        out: list[LedgerEntry] = []
        for p in planned:
            now = self.now()
            if p.blocked_reason is not None:
                state = RemediationState.SKIPPED
            elif p.requires_approval:
                state = RemediationState.PENDING_APPROVAL
            else:
                state = RemediationState.PENDING
            fresh = LedgerEntry.new(
                p.request,
                state=state,
                at=now,
                requires_approval=p.requires_approval,
                reason=p.blocked_reason,
                note=p.note or f"planned by {p.request.requested_by}",
                source_alert_ids=p.source_alert_ids,
                result={"summary": p.note} if p.blocked_reason else None,
                basis=p.basis,
            )
            try:
                entry = self._ledger.create_entry(fresh)
            except ActionOwnedError:
                existing = self._ledger.get_entry(fresh.tenant_id, fresh.key)
                if existing is None:
                    raise
                entry = self._promote(existing, p, now)
            else:
                if entry.terminal:  # skipped by policy
                    _count_final(entry)
            if entry.state is RemediationState.PENDING and entry.attempt == 0:
                _send(self._bus, entry.request(attempt=1), message_id=f"{entry.key}:1")
            self._notify(entry)
            out.append(entry)
        return out

    def _promote(self, entry: LedgerEntry, p: PlannedAction, now: datetime) -> LedgerEntry:
        """An awaiting-approval row that the plan now makes automatic (its incident's severity rose): pending."""
        if entry.state is not RemediationState.PENDING_APPROVAL or p.requires_approval or p.blocked_reason:
            return entry
        entry.requires_approval = False
        entry.basis = p.basis
        entry.source_alert_ids = sorted({*entry.source_alert_ids, *p.source_alert_ids})
        severity = p.severity.value if p.severity else "higher"
        entry.transition(RemediationState.PENDING, at=now, note=f"automatic under the policy now (severity {severity})")
        try:
            return self._ledger.update_entry(entry)
        except ConcurrencyError:
            return self._ledger.get_entry(entry.tenant_id, entry.key) or entry

    def _recheck(self, entry: LedgerEntry, policy: RemediationPolicy, now: datetime) -> HandleResult | None:
        """The policy checked again as the action is about to run; None when it may run."""
        if entry.undo_of is not None:
            return None  # an undo is a person's request and puts things back
        verdict, reason = policy.recheck(
            entry.action, entry.target, entry.basis, approved=entry.approved_by is not None
        )
        if verdict is Recheck.RUN:
            return None
        entry.lease_until = None
        entry.next_attempt_at = None
        if verdict is Recheck.SKIP:
            entry.reason = reason
            entry.result = {"summary": f"not run: the tenant's remediation policy no longer allows it ({reason})"}
            entry.transition(RemediationState.SKIPPED, at=now, note=f"policy re-checked at execution: {reason}")
            outcome = HandleOutcome.SKIPPED
        else:
            entry.requires_approval = True
            entry.approved_by = None
            entry.transition(
                RemediationState.PENDING_APPROVAL, at=now, note=f"policy re-checked at execution: {reason}"
            )
            outcome = HandleOutcome.AWAITING_APPROVAL
        try:
            written = self._ledger.update_entry(entry)
        except ConcurrencyError:
            latest = self._ledger.get_entry(entry.tenant_id, entry.key) or entry
            return HandleResult(HandleOutcome.LOST_OWNERSHIP, latest)
        if written.terminal:
            _count_final(written)
        self._notify(written)
        return HandleResult(outcome, written)

    def handle(self, message: bytes | str | RemediationRequest) -> HandleResult:
        """Handle one remediation-queue message (its body, or the parsed request). Never raises for an
        action's failure (that is recorded); raises BadInputError for a body that is not a request and the
        ledger's ServiceUnavailable when storage is down (the message is retried by the bus)."""
        request = message if isinstance(message, RemediationRequest) else RemediationRequest.from_body(message)
        now = self.now()
        entry = self._load_or_create(request, now)
        if entry.terminal:
            self._notify(entry)
            return HandleResult(HandleOutcome.NOOP_TERMINAL, entry)
        if entry.state is RemediationState.PENDING_APPROVAL:
            self._notify(entry)
            return HandleResult(HandleOutcome.AWAITING_APPROVAL, entry)
        if (
            entry.state is RemediationState.RUNNING
            and entry.lease_until is not None
            and _aware(entry.lease_until) > now
        ):
            at = _aware(entry.lease_until) + _RECHECK_MARGIN
            msg = _send(
                self._bus,
                entry.request(attempt=max(1, entry.attempt)),
                message_id=f"{entry.key}:recheck:{int(at.timestamp())}",
                at=at,
            )
            return HandleResult(HandleOutcome.BUSY, entry, scheduled=msg)
        if (
            entry.state is RemediationState.PENDING
            and entry.next_attempt_at is not None
            and now + _DUE_TOLERANCE < _aware(entry.next_attempt_at)
        ):
            return HandleResult(HandleOutcome.NOT_DUE, entry)
        policy = self.policy_for(entry.tenant_id)
        rechecked = self._recheck(entry, policy, now)
        if rechecked is not None:
            return rechecked
        resumed = entry.state is RemediationState.RUNNING
        entry.attempt += 1
        entry.lease_until = now + timedelta(seconds=policy.lease_s)
        entry.next_attempt_at = None
        entry.transition(
            RemediationState.RUNNING,
            at=now,
            note=f"attempt {entry.attempt}" + (" (resuming after an interrupted attempt)" if resumed else ""),
        )
        try:
            entry = self._ledger.update_entry(entry)
        except ConcurrencyError:
            latest = self._ledger.get_entry(entry.tenant_id, entry.key) or entry
            return HandleResult(HandleOutcome.LOST_OWNERSHIP, latest)
        self._notify(entry)
        result = self._attempt(entry, policy)
        if result.outcome is not HandleOutcome.LOST_OWNERSHIP:
            if result.entry.terminal:
                _count_final(result.entry)
            self._notify(result.entry)
        return result

    # -- internals ----------------------------------------------------------------------------------
    def _notify(self, entry: LedgerEntry) -> None:
        if self._on_change is not None:
            self._on_change(entry)

    def _load_or_create(self, request: RemediationRequest, now: datetime) -> LedgerEntry:
        entry = self._ledger.get_entry(request.tenant_id, request.idempotency_key)
        if entry is not None:
            return entry
        note = f"requested by {request.requested_by}"
        if request.approved:
            note += "; the message claims approval but the ledger has no row: refused, a person decides"
        fresh = LedgerEntry.new(
            request, state=RemediationState.PENDING_APPROVAL, at=now, requires_approval=True, note=note
        )
        try:
            return self._ledger.create_entry(fresh)
        except ActionOwnedError:
            existing = self._ledger.get_entry(request.tenant_id, request.idempotency_key)
            if existing is None:
                raise
            return existing

    def _attempt(self, entry: LedgerEntry, policy: RemediationPolicy) -> HandleResult:
        action = self._actions.get(entry.action)
        if action is None:
            return self._fail(entry, BadInputError(f"no action {entry.action}", reason="unknown_action"))
        holder = {"entry": entry}

        def save() -> None:
            current = holder["entry"]
            current.checkpoint = dict(ctx.checkpoint)
            current.updated_at = self.now()
            try:
                holder["entry"] = self._ledger.update_entry(current)
            except ConcurrencyError as exc:
                raise LostOwnership("the remediation row changed during the attempt", key=current.key) from exc

        ctx = ActionContext(
            tenant_id=entry.tenant_id,
            key=entry.key,
            action=entry.action,
            target=dict(entry.target),
            checkpoint=dict(entry.checkpoint),
            policy=policy,
            save=save,
            now=self.now,
        )
        try:
            with self._graph_factory(entry.tenant_id) as client:
                if client.tenant_id != entry.tenant_id:
                    raise ConfigurationError(
                        "the Graph client acts in another tenant",
                        tenant=entry.tenant_id,
                        client_tenant=client.tenant_id,
                    )
                result = action(client, ctx)
                crash_point("remediation.after_graph")
        except LostOwnership:
            latest = self._ledger.get_entry(entry.tenant_id, entry.key) or holder["entry"]
            return HandleResult(HandleOutcome.LOST_OWNERSHIP, latest)
        except TransientError as exc:
            return self._retry(holder["entry"], ctx, exc, policy.retry)
        except PermissionError_ as exc:
            return self._fail(holder["entry"], exc, ctx=ctx, permission=True)
        except NotFoundError as exc:
            return self._fail(holder["entry"], exc, ctx=ctx, reason="target_not_found")
        except PermanentError as exc:
            return self._fail(holder["entry"], exc, ctx=ctx)
        except Exception as exc:  # a bug or an unmapped failure: retried within the bound, recorded
            _log.exception("remediation action raised", extra={"tenant_id": entry.tenant_id, "key": entry.key})
            return self._retry(holder["entry"], ctx, exc, policy.retry)
        return self._record(holder["entry"], ctx, result)

    def _lost(self, entry: LedgerEntry, *, scheduled: OutboundMessage | None = None) -> HandleResult:
        latest = self._ledger.get_entry(entry.tenant_id, entry.key) or entry
        return HandleResult(HandleOutcome.LOST_OWNERSHIP, latest, scheduled=scheduled)

    def _write_final(self, entry: LedgerEntry) -> LedgerEntry | None:
        try:
            return self._ledger.update_entry(entry)
        except ConcurrencyError:
            return None

    def _record(self, entry: LedgerEntry, ctx: ActionContext, result: ActionResult) -> HandleResult:
        now = self.now()
        state = {
            ActionOutcome.SUCCEEDED: RemediationState.SUCCEEDED,
            ActionOutcome.NEEDS_MANUAL: RemediationState.NEEDS_MANUAL,
            ActionOutcome.SKIPPED: RemediationState.SKIPPED,
        }[result.outcome]
        entry.checkpoint = dict(ctx.checkpoint)
        entry.result = result.model_dump(mode="json")
        entry.reason = result.reason
        entry.lease_until = None
        entry.transition(state, at=now, note=(result.note or result.summary))
        written = self._write_final(entry)
        if written is None:
            return self._lost(entry)
        _log.info(
            "remediation %s",
            state.value,
            extra={"tenant_id": entry.tenant_id, "key": entry.key, "action": entry.action},
        )
        return HandleResult(HandleOutcome(state.value), written)

    def _retry(self, entry: LedgerEntry, ctx: ActionContext, exc: BaseException, retry: RetryPolicy) -> HandleResult:
        now = self.now()
        info = error_info(exc)
        entry.checkpoint = dict(ctx.checkpoint)
        entry.last_error = info
        if retry.exhausted(entry.attempt):
            entry.reason = "retries_exhausted"
            entry.lease_until = None
            entry.result = {"summary": f"gave up after {entry.attempt} attempts: {info.reason}"}
            entry.transition(
                RemediationState.FAILED, at=now, note=f"{info.error_class}: {info.reason}; retries exhausted"
            )
            written = self._write_final(entry)
            if written is None:
                return self._lost(entry)
            return HandleResult(HandleOutcome.FAILED, written)
        retry_after = getattr(exc, "retry_after", None)
        delay = retry.delay(
            entry.attempt,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            rng=self._rng,
        )
        at = now + timedelta(seconds=delay)
        next_attempt = entry.attempt + 1
        msg = _send(self._bus, entry.request(attempt=next_attempt), message_id=f"{entry.key}:{next_attempt}", at=at)
        entry.next_attempt_at = at
        entry.lease_until = None
        entry.transition(
            RemediationState.PENDING,
            at=now,
            note=f"{info.error_class}: {info.reason}; attempt {next_attempt} in {delay:.0f} s",
        )
        written = self._write_final(entry)
        if written is None:
            return self._lost(entry, scheduled=msg)
        return HandleResult(HandleOutcome.RETRY_SCHEDULED, written, scheduled=msg)

    def _fail(
        self,
        entry: LedgerEntry,
        exc: ItdrError,
        *,
        ctx: ActionContext | None = None,
        reason: str | None = None,
        permission: bool = False,
    ) -> HandleResult:
        now = self.now()
        info = error_info(exc)
        if ctx is not None:
            entry.checkpoint = dict(ctx.checkpoint)
        entry.last_error = info
        entry.reason = reason or info.reason
        entry.lease_until = None
        summary = {
            "target_not_found": "target not found",
            "missing_permission": f"missing Graph permission {info.permission or '(unknown)'}",
        }.get(entry.reason, info.message)
        entry.result = {"summary": summary, "permission": info.permission} if permission else {"summary": summary}
        entry.transition(RemediationState.FAILED, at=now, note=f"{info.error_class}: {entry.reason}")
        alert = self._permission_alert(entry, info.permission, info.message, now) if permission else None
        written = self._write_final(entry)
        if written is None:
            return self._lost(entry)
        if alert is not None and self._alerts is not None:
            self._alerts.upsert_alerts([alert])
        return HandleResult(HandleOutcome.FAILED, written, alert=alert)

    def _permission_alert(self, entry: LedgerEntry, permission: str | None, message: str, now: datetime) -> Alert:
        perm = permission or "unknown"
        dedup = f"missing_permission|{perm}"
        t = entry.target
        user = str(t.get("user") or t.get("mailbox") or t.get("service_principal_id") or "")
        ts = now.timestamp()
        finding = Finding(
            detector_id=REMEDIATION_PERMISSION.id,
            tenant_id=entry.tenant_id,
            user_key=None,
            user=user,
            severity=REMEDIATION_PERMISSION.severity,
            summary=(
                f"{entry.action.value} for incident {entry.incident_id} failed: the m365-itdr app needs the "
                f"Microsoft Graph application permission {perm} (admin consent) in this tenant"
                if permission
                else f"{entry.action.value} for incident {entry.incident_id} failed: Microsoft Graph refused the "
                "m365-itdr app in this tenant (no token or no consent)"
            ),
            first_seen=ts,
            last_seen=ts,
            evidence_record_ids=(entry.key,),
            dedup_key=dedup,
            context={
                "permission": perm,
                "action": entry.action.value,
                "idempotency_key": entry.key,
                "incident_id": entry.incident_id,
                "error": message,
            },
        )
        return build_alert(REMEDIATION_PERMISSION, finding)


# --------------------------------------------------------------------------- the human side


def _decide(
    ledger: RemediationLedger,
    tenant_id: str,
    key: str,
    *,
    by: str,
    clock: Callable[[], datetime],
    approve: bool,
    reason: str = "",
    on_change: ChangeHook | None = None,
) -> LedgerEntry:
    entry = ledger.get_entry(tenant_id, key)
    if entry is None:
        raise NotFoundError("no such remediation", tenant=tenant_id, key=key)
    if entry.state is not RemediationState.PENDING_APPROVAL:
        if on_change is not None and entry.terminal:
            on_change(entry)  # a repeated reject repairs a hook that did not run
        return entry
    now = _aware(clock())
    entry.decided_at = now
    if approve:
        entry.approved_by = by
        entry.transition(RemediationState.PENDING, at=now, note=f"approved by {by}")
    else:
        entry.reason = "rejected"
        entry.result = {"summary": f"rejected by {by}", **({"rejection": reason[:300]} if reason else {})}
        entry.transition(RemediationState.REJECTED, at=now, note=f"rejected by {by}")
    written = ledger.update_entry(entry)
    if written.terminal:
        _count_final(written)
    if on_change is not None:
        on_change(written)
    return written


def approve_action(
    ledger: RemediationLedger,
    bus: MessageBus,
    tenant_id: str,
    key: str,
    *,
    by: str,
    clock: Callable[[], datetime],
    on_change: ChangeHook | None = None,
) -> LedgerEntry:
    """Approve a pending_approval action and send its message. Re-runnable: approving a row that is already
    approved but never ran sends the message again; other states are returned unchanged. ``on_change`` is
    called with the row after the approval is written."""
    if not by.strip():
        raise BadInputError("approve needs the approver's name", reason="bad_input")
    entry = _decide(ledger, tenant_id, key, by=by, clock=clock, approve=True, on_change=on_change)
    if entry.state is RemediationState.PENDING and entry.attempt == 0:
        _send(bus, entry.request(attempt=1), message_id=f"{entry.key}:1")
    return entry


def reject_action(
    ledger: RemediationLedger,
    tenant_id: str,
    key: str,
    *,
    by: str,
    clock: Callable[[], datetime],
    reason: str = "",
    on_change: ChangeHook | None = None,
) -> LedgerEntry:
    """Reject a pending_approval action (terminal). Other states are returned unchanged. ``on_change`` is called
    with the rejected row (also when it was rejected before: the hook is idempotent)."""
    if not by.strip():
        raise BadInputError("reject needs the name of who rejects", reason="bad_input")
    return _decide(ledger, tenant_id, key, by=by, clock=clock, approve=False, reason=reason, on_change=on_change)


def _undo_target(entry: LedgerEntry) -> tuple[ActionKind, dict[str, Any]]:
    cp = entry.checkpoint
    details = entry.result.get("details") or {}
    if entry.action is ActionKind.ISOLATE_IDENTITY:
        if cp.get("was_enabled") is False:
            raise BadInputError("the account was already disabled before the remediation: nothing to undo")
        return ActionKind.ENABLE_IDENTITY, {"user": cp.get("user_id") or entry.target["user"], "undo_of": entry.key}
    if entry.action is ActionKind.DISABLE_SERVICE_PRINCIPAL:
        if cp.get("was_enabled") is False:
            raise BadInputError("the service principal was already disabled before the remediation: nothing to undo")
        sp = cp.get("service_principal_id") or entry.target["service_principal_id"]
        return ActionKind.ENABLE_SERVICE_PRINCIPAL, {"service_principal_id": sp, "undo_of": entry.key}
    if entry.action is ActionKind.REMOVE_INBOX_RULE:
        removed = {r["id"] for r in details.get("rules", []) if r.get("effect") == "removed"}
        definitions = [r["definition"] for r in cp.get("rules", []) if r["id"] in removed]
        if not definitions:
            raise BadInputError("no rule was removed by this remediation: nothing to restore")
        return ActionKind.RESTORE_INBOX_RULE, {
            "mailbox": cp.get("mailbox") or entry.target["mailbox"],
            "rules": definitions,
            "undo_of": entry.key,
        }
    raise BadInputError(f"{entry.action.value} cannot be undone", reason="no_undo")


def request_undo(
    ledger: RemediationLedger, bus: MessageBus, tenant_id: str, key: str, *, by: str, clock: Callable[[], datetime]
) -> LedgerEntry:
    """Record the undo of a succeeded action as a new (approved) action and send its message.

    isolate_identity → enable_identity, remove_inbox_rule → restore_inbox_rule (from the recorded
    definitions of the rules it removed), disable_service_principal → enable_service_principal. Refused with
    BadInputError for other actions, rows not succeeded, and changes that were already in place before.
    Re-runnable: returns the existing undo row (re-sending its message if it never ran).
    """
    if not by.strip():
        raise BadInputError("undo needs the name of who asks", reason="bad_input")
    original = ledger.get_entry(tenant_id, key)
    if original is None:
        raise NotFoundError("no such remediation", tenant=tenant_id, key=key)
    if original.state is not RemediationState.SUCCEEDED:
        raise BadInputError(f"only a succeeded action can be undone (this one is {original.state.value})")
    action, target = _undo_target(original)
    request = RemediationRequest(
        tenant_id=tenant_id,
        incident_id=original.incident_id,
        action=action,
        target=target,
        requested_by=by,
        approved=True,
    )
    now = _aware(clock())
    fresh = LedgerEntry.new(request, state=RemediationState.PENDING, at=now, note=f"undo of {key} requested by {by}")
    try:
        undo = ledger.create_entry(fresh)
    except ActionOwnedError:
        existing = ledger.get_entry(tenant_id, request.idempotency_key)
        if existing is None:
            raise
        undo = existing
    if undo.state is RemediationState.PENDING and undo.attempt == 0:
        _send(bus, undo.request(attempt=1), message_id=f"{undo.key}:1")
    if original.undone_by != undo.key:
        original.undone_by = undo.key
        original.updated_at = now
        try:
            ledger.update_entry(original)
        except ConcurrencyError:
            pass  # informational link only; the undo row names the original in undo_of
    return undo
