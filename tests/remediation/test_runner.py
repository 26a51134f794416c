"""The runner: retries through scheduled messages, permanent failures, crashes, leases, approval and undo."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import pytest

from shared.alert_model import Alert, Category, Severity
from shared.emulators.graph import Fault
from shared.graph.client import SyncGraphClient
from shared.platform import names
from shared.platform.errors import BadInputError
from shared.remediation.ledger import (
    ActionKind,
    LedgerEntry,
    RemediationLedger,
    RemediationRequest,
    RemediationState,
)
from shared.remediation.policy import Mode, RemediationPolicy, RetryPolicy, plan
from shared.remediation.runner import (
    HandleOutcome,
    RemediationRunner,
    approve_action,
    reject_action,
    request_undo,
)

FORWARD = {"forwardTo": [{"emailAddress": {"address": "exfil@evil-mail.example"}}]}


class SimulatedCrash(BaseException):
    """The process dies (a BaseException: nothing in the runner may swallow it)."""


class CrashingLedger:
    """A RemediationLedger that dies once, on the first update for which ``when(entry)`` is true."""

    def __init__(self, inner: RemediationLedger, when: Callable[[LedgerEntry], bool]) -> None:
        self.inner = inner
        self.when = when
        self.crashed = False

    def get_entry(self, tenant_id: str, key: str) -> LedgerEntry | None:
        return self.inner.get_entry(tenant_id, key)

    def create_entry(self, entry: LedgerEntry) -> LedgerEntry:
        return self.inner.create_entry(entry)

    def update_entry(self, entry: LedgerEntry) -> LedgerEntry:
        if not self.crashed and self.when(entry):
            self.crashed = True
            raise SimulatedCrash(f"crash before writing {entry.state.value}")
        return self.inner.update_entry(entry)

    def list_entries(self, tenant_id: str, *, states: Any = None, incident_id: str | None = None) -> list[LedgerEntry]:
        return self.inner.list_entries(tenant_id, states=states, incident_id=incident_id)


def isolate(rig: Any, user: str = "alice@contoso.com", *, approved: bool = True) -> RemediationRequest:
    """An isolation a person approved (its ledger row recorded), or one awaiting approval (no row)."""
    req = RemediationRequest(
        tenant_id=rig.tenant,
        incident_id="inc-1",
        action=ActionKind.ISOLATE_IDENTITY,
        target={"user": user},
        requested_by="itdr",
        approved=approved,
    )
    return rig.record(req) if approved else req


def patches(rig: Any) -> list[tuple[str, int, str | None]]:
    return [(c.path.removeprefix("/v1.0"), c.status, c.fault) for c in rig.emu.calls_to("/users", method="PATCH")]


# --------------------------------------------------------------------------- transient errors


def test_429_schedules_a_new_message_after_retry_after_then_succeeds(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.inject(Fault(429, retry_after=120, method="PATCH"))
    runner = rig.runner()
    req = isolate(rig)
    res = runner.handle(req.to_body())
    assert res.outcome is HandleOutcome.RETRY_SCHEDULED
    msg = res.scheduled
    assert msg is not None
    assert msg.scheduled_enqueue_time == rig.clock.now + timedelta(seconds=120)
    assert msg.message_id == f"{req.idempotency_key}:2"
    assert msg.application_properties == {
        "tenant_id": rig.tenant,
        "action": "isolate_identity",
        "attempt": 2,
        "idempotency_key": req.idempotency_key,
    }
    assert RemediationRequest.from_body(msg.body) == req.model_copy(update={"attempt": 2})
    row = res.entry
    assert (row.state, row.attempt, row.next_attempt_at) == (
        RemediationState.PENDING,
        1,
        rig.clock.now + timedelta(seconds=120),
    )
    assert row.last_error is not None
    assert (row.last_error.error_class, row.last_error.reason, row.last_error.status, row.last_error.retry_after) == (
        "ThrottledError",
        "throttled",
        429,
        120.0,
    )
    assert rig.receive() == []  # scheduled, not visible yet
    rig.clock.advance(seconds=119)
    assert rig.receive() == []
    rig.clock.advance(seconds=1)
    (delivered,) = rig.receive()
    assert delivered.body == msg.body
    done = runner.handle(delivered.body)
    assert (done.outcome, done.entry.attempt) == (HandleOutcome.SUCCEEDED, 2)
    assert patches(rig) == [(f"/users/{uid}", 429, "429"), (f"/users/{uid}", 204, None)]
    assert done.entry.last_error == row.last_error  # kept for the record


def test_503_backs_off_exponentially_with_jitter_until_the_bound(rig: Any) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.inject(Fault(503, count=None, method="GET"))
    retry = RetryPolicy(base_s=30, cap_s=3600, max_attempts=4, jitter=0.5)
    runner = rig.runner(RemediationPolicy(tenant_id=rig.tenant, retry=retry), seed=3)
    twin = random.Random(3)
    first = runner.handle(isolate(rig).to_body())
    results = [first, *rig.drain(runner)]
    assert [r.outcome for r in results] == [HandleOutcome.RETRY_SCHEDULED] * 3 + [HandleOutcome.FAILED]
    final = results[-1].entry
    assert (final.state, final.reason, final.attempt) == (RemediationState.FAILED, "retries_exhausted", 4)
    assert final.last_error is not None and final.last_error.error_class == "ServiceUnavailable"
    expected = [f / 2 + twin.random() * f / 2 for f in (30.0, 60.0, 120.0)]
    scheduled = [r.scheduled for r in results[:3]]
    claims = [h.at for h in final.history if h.state is RemediationState.RUNNING]
    got = [(m.scheduled_enqueue_time - at).total_seconds() for m, at in zip(scheduled, claims, strict=False) if m]
    assert [round(g, 3) for g in got] == [round(e, 3) for e in expected]
    assert [lo <= g <= hi for g, (lo, hi) in zip(got, [(15, 30), (30, 60), (60, 120)], strict=True)] == [True] * 3
    assert rig.emu.state.effect_count("user.disabled", tenant_id=rig.tenant) == 0


def test_a_timeout_whose_patch_still_lands_is_not_repeated(rig: Any) -> None:
    """The PATCH outlives the client's timeout and takes effect; the retry re-reads and does not PATCH again."""
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.client_timeout = 0.2
    hold = rig.emu.hold(method="PATCH", path_prefix="/users/")
    runner = rig.runner()
    res = runner.handle(isolate(rig).to_body())
    assert res.outcome is HandleOutcome.RETRY_SCHEDULED
    assert res.entry.last_error is not None
    assert (res.entry.last_error.error_class, res.entry.last_error.message[:36]) == (
        "ServiceUnavailable",
        "Graph disable_user timed out: ReadTi",
    )
    hold.release()
    landed = threading.Event()
    for _ in range(100):
        if rig.emu.state.effect_count("user.disabled", tenant_id=rig.tenant) == 1:
            landed.set()
            break
        threading.Event().wait(0.02)
    assert landed.is_set()
    rig.client_timeout = 5.0
    results = rig.drain(runner)
    assert [r.outcome for r in results] == [HandleOutcome.SUCCEEDED]
    assert rig.emu.state.effect_count("user.disabled", tenant_id=rig.tenant) == 1
    assert [p[0] for p in patches(rig)] == [f"/users/{uid}"]


# --------------------------------------------------------------------------- permanent errors


def test_404_on_a_rule_relists_and_records_already_removed(rig: Any) -> None:
    """The DELETE went through but its response was lost to a 404 (as a retried DELETE sees)."""
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    evil = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    rig.emu.inject(Fault(404, code="ErrorItemNotFound", method="DELETE", after=True))
    target = {"mailbox": "alice@contoso.com", "rule_name": ".", "forward_to": ["exfil@evil-mail.example"]}
    req = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant,
            incident_id="inc-1",
            action=ActionKind.REMOVE_INBOX_RULE,
            target=target,
            requested_by="itdr",
            approved=True,
        )
    )
    res = rig.runner().handle(req.to_body())
    assert (res.entry.state, res.entry.result["note"]) == (RemediationState.SUCCEEDED, "already removed")
    assert res.entry.result["details"]["rules"][0] | {"rule_identity": None} == {
        "id": evil,
        "rule_identity": None,
        "display_name": ".",
        "effect": "already_removed",
    }
    assert [(c.method, c.status) for c in rig.emu.calls_to("/users/alice@contoso.com/mailFolders")] == [
        ("GET", 200),
        ("DELETE", 404),
        ("GET", 200),
    ]


@pytest.mark.parametrize(
    ("action", "target"),
    [
        (ActionKind.ISOLATE_IDENTITY, {"user": "nobody@contoso.com"}),
        (ActionKind.REMOVE_INBOX_RULE, {"mailbox": "nobody@contoso.com", "rule_name": "."}),
        (ActionKind.DISABLE_SERVICE_PRINCIPAL, {"service_principal_id": "5d7b1c3e-0000-4000-8000-000000000000"}),
    ],
)
def test_404_on_a_user_or_object_fails_target_not_found(rig: Any, action: ActionKind, target: dict[str, Any]) -> None:
    req = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant, incident_id="inc-1", action=action, target=target, requested_by="itdr", approved=True
        )
    )
    res = rig.runner().handle(req.to_body())
    assert (res.outcome, res.entry.state, res.entry.reason, res.entry.result) == (
        HandleOutcome.FAILED,
        RemediationState.FAILED,
        "target_not_found",
        {"summary": "target not found"},
    )
    assert res.entry.last_error is not None and res.entry.last_error.error_class == "NotFoundError"
    assert rig.receive() == []


def test_a_client_of_another_tenant_is_refused(rig: Any) -> None:
    rig.emu.add_user(rig.other_tenant, user_principal_name="alice@contoso.com")

    def wrong(_tenant: str) -> Any:
        return SyncGraphClient.create(
            rig.other_tenant, credential=rig.emu.credential(rig.other_tenant), base_url=rig.emu.base_url
        )

    runner = RemediationRunner(
        rig.ledger, wrong, rig.bus, policy=RemediationPolicy(), clock=rig.clock, rng=random.Random(1)
    )
    res = runner.handle(isolate(rig).to_body())
    assert (res.entry.state, res.entry.reason) == (RemediationState.FAILED, "configuration")
    assert rig.emu.calls == []


# --------------------------------------------------------------------------- replay, crash, lease


def test_a_replayed_message_of_a_finished_action_is_a_no_op(rig: Any) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    body = isolate(rig).to_body()
    first = rig.runner().handle(body)
    calls = len(rig.emu.calls)
    second = rig.runner().handle(body)
    assert (first.outcome, second.outcome) == (HandleOutcome.SUCCEEDED, HandleOutcome.NOOP_TERMINAL)
    assert second.entry.model_dump() == first.entry.model_dump()
    assert len(rig.emu.calls) == calls


@pytest.mark.parametrize(
    "crash_at",
    [
        pytest.param(lambda e: e.checkpoint.get("sessions_revoked") is True, id="after-patch-and-revoke"),
        pytest.param(lambda e: e.state is RemediationState.SUCCEEDED, id="before-recording-success"),
    ],
)
def test_a_crash_after_the_graph_call_resumes_without_a_second_patch(
    rig: Any, crash_at: Callable[[LedgerEntry], bool]
) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    body = isolate(rig).to_body()
    crashing = CrashingLedger(rig.ledger, crash_at)
    with pytest.raises(SimulatedCrash):
        rig.runner(ledger=crashing).handle(body)
    key = isolate(rig).idempotency_key
    assert rig.row(key).state is RemediationState.RUNNING
    assert patches(rig) == [(f"/users/{uid}", 204, None)]

    # Redelivered while the dead attempt's lease still runs: nothing is done, a re-check is scheduled.
    restarted = rig.runner()
    busy = restarted.handle(body)
    assert busy.outcome is HandleOutcome.BUSY
    lease_end = rig.row(key).lease_until
    assert lease_end == rig.clock.now + timedelta(seconds=300)
    assert busy.scheduled is not None and busy.scheduled.scheduled_enqueue_time == lease_end + timedelta(seconds=1)

    # Service Bus redelivers after the lock (= the lease): the new attempt re-reads Graph first.
    rig.clock.advance(seconds=301)
    resumed = restarted.handle(body)
    assert resumed.outcome is HandleOutcome.SUCCEEDED
    assert (resumed.entry.attempt, resumed.entry.result["details"]["was_enabled"]) == (2, True)
    assert resumed.entry.history[-2].note == "attempt 2 (resuming after an interrupted attempt)"
    assert patches(rig) == [(f"/users/{uid}", 204, None)]
    assert rig.emu.state.effect_count("user.disabled", tenant_id=rig.tenant) == 1
    # the scheduled re-check arrives later and changes nothing
    assert [r.outcome for r in rig.drain(restarted)] == [HandleOutcome.NOOP_TERMINAL]


def test_a_crash_between_restore_create_and_its_checkpoint_adopts_the_created_rule(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD, conditions={"subjectContains": ["x"]})
    runner = rig.runner()
    target = {"mailbox": "alice@contoso.com", "rule_name": ".", "forward_to": ["exfil@evil-mail.example"]}
    removal = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant,
            incident_id="inc-1",
            action=ActionKind.REMOVE_INBOX_RULE,
            target=target,
            requested_by="itdr",
            approved=True,
        )
    )
    assert runner.handle(removal.to_body()).entry.state is RemediationState.SUCCEEDED
    undo = request_undo(rig.ledger, rig.bus, rig.tenant, removal.idempotency_key, by="soc-lead", clock=rig.clock)
    (msg,) = rig.receive()
    crashing = CrashingLedger(rig.ledger, lambda e: bool(e.checkpoint.get("created")))
    with pytest.raises(SimulatedCrash):
        rig.runner(ledger=crashing).handle(msg.body)
    rig.clock.advance(seconds=301)
    res = rig.runner().handle(msg.body)
    assert (res.entry.key, res.entry.state) == (undo.key, RemediationState.SUCCEEDED)
    assert rig.emu.state.effect_count("rule.created", tenant_id=rig.tenant) == 1
    (restored,) = rig.emu.state.inbox_rules(rig.tenant, uid)
    assert (restored["displayName"], restored["actions"], restored["conditions"]) == (
        ".",
        FORWARD,
        {"subjectContains": ["x"]},
    )


def test_two_instances_cannot_both_own_an_action(rig: Any) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    req = isolate(rig)  # its row recorded as pending (approved)
    first = rig.runner()
    # Instance B read the row as pending, then A claimed it: B's claim loses on the ETag.
    stale = rig.ledger.get_entry(rig.tenant, req.idempotency_key)
    assert stale is not None

    class StaleReadLedger(CrashingLedger):
        def get_entry(self, tenant_id: str, key: str) -> LedgerEntry | None:
            return stale.model_copy(deep=True) if not self.crashed else self.inner.get_entry(tenant_id, key)

    assert first.handle(req.to_body()).outcome is HandleOutcome.SUCCEEDED
    late = StaleReadLedger(rig.ledger, lambda e: False)
    res = rig.runner(ledger=late).handle(req.to_body())
    assert res.outcome is HandleOutcome.LOST_OWNERSHIP
    assert rig.emu.state.effect_count("user.disabled", tenant_id=rig.tenant) == 1


# --------------------------------------------------------------------------- approval and policy


def _rule_alert(rig: Any, severity: Severity = Severity.HIGH) -> Alert:
    return Alert(
        alert_id="al-rule",
        detector="exchange_suspicious_inbox_rule",
        title="Suspicious inbox rule",
        category=Category.SHADOW_WORKFLOW,
        severity=severity,
        tenant_id=rig.tenant,
        user="alice@contoso.com",
        user_key="alice@contoso.com",
        first_seen=1.0,
        last_seen=1.0,
        evidence_record_ids=["r1"],
        mitre=("T1564.008",),
        summary="s",
        dedup_key="d",
        context={"rule_name": ".", "mailbox": "alice@contoso.com", "forward_to": ["exfil@evil-mail.example"]},
    )


def test_approval_flow(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    runner = rig.runner()  # default policy: a high incident's actions wait for approval
    (planned,) = plan([_rule_alert(rig)], runner.policy_for(rig.tenant), incident_id="inc-7")
    (row,) = runner.submit([planned])
    assert (row.state, row.requires_approval) == (RemediationState.PENDING_APPROVAL, True)
    assert rig.receive() == []
    # a message for it (even one claiming approval) does not run it: the row decides
    forged = planned.request.model_copy(update={"approved": True})
    assert runner.handle(forged.to_body()).outcome is HandleOutcome.AWAITING_APPROVAL
    assert runner.submit([planned])[0].state is RemediationState.PENDING_APPROVAL  # replay keeps the row
    assert rig.emu.calls == []

    approved = approve_action(rig.ledger, rig.bus, rig.tenant, row.key, by="soc-lead", clock=rig.clock)
    assert (approved.state, approved.approved_by, approved.decided_at) == (
        RemediationState.PENDING,
        "soc-lead",
        rig.clock.now,
    )
    (msg,) = rig.receive()
    assert msg.message_id == f"{row.key}:1"
    assert RemediationRequest.from_body(msg.body).approved is True
    done = runner.handle(msg.body)
    assert done.entry.state is RemediationState.SUCCEEDED
    assert rig.emu.state.inbox_rules(rig.tenant, uid) == []
    assert [h.note for h in done.entry.history] == [
        "planned by itdr",
        "approved by soc-lead",
        "attempt 1",
        "inbox rules on alice@contoso.com: '.' removed",
    ]
    # approving again changes nothing and sends nothing
    assert approve_action(rig.ledger, rig.bus, rig.tenant, row.key, by="x", clock=rig.clock).state is (
        RemediationState.SUCCEEDED
    )
    assert rig.receive() == []


def test_rejected_actions_never_run(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    runner = rig.runner()
    (row,) = runner.submit(plan([_rule_alert(rig)], runner.policy_for(rig.tenant), incident_id="inc-7"))
    rejected = reject_action(rig.ledger, rig.tenant, row.key, by="soc-lead", clock=rig.clock, reason="user's own")
    assert (rejected.state, rejected.reason, rejected.result) == (
        RemediationState.REJECTED,
        "rejected",
        {"summary": "rejected by soc-lead", "rejection": "user's own"},
    )
    assert approve_action(rig.ledger, rig.bus, rig.tenant, row.key, by="x", clock=rig.clock).state is (
        RemediationState.REJECTED
    )
    assert runner.handle(row.request().to_body()).outcome is HandleOutcome.NOOP_TERMINAL
    assert rig.receive() == [] and rig.emu.calls == []


def test_automatic_actions_and_blocked_ones_through_submit(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.add_user(rig.tenant, user_principal_name="breakglass@contoso.com")
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    policy = RemediationPolicy(
        tenant_id=rig.tenant,
        default_mode=Mode.APPROVAL,
        detector_modes={"exchange_suspicious_inbox_rule": Mode.AUTO, "signin_impossible_travel": Mode.AUTO},
        auto_min_severity=Severity.HIGH,
        never_disable=["breakglass@contoso.com"],
    )
    takeover = _rule_alert(rig)
    takeover.detector, takeover.category, takeover.alert_id = (
        "signin_impossible_travel",
        Category.UNWANTED_LOGIN,
        "al-2",
    )
    takeover.user_key = takeover.user = "breakglass@contoso.com"
    runner = rig.runner(policy)
    rows = runner.submit(plan([_rule_alert(rig), takeover], policy, incident_id="inc-8"))
    assert [(r.action, r.state, r.reason) for r in rows] == [
        (ActionKind.REMOVE_INBOX_RULE, RemediationState.PENDING, None),
        (ActionKind.ISOLATE_IDENTITY, RemediationState.SKIPPED, "never_disable"),
    ]
    results = rig.drain(runner)
    assert [r.outcome for r in results] == [HandleOutcome.SUCCEEDED]
    assert rig.states() == {rows[0].key: RemediationState.SUCCEEDED, rows[1].key: RemediationState.SKIPPED}
    assert rig.emu.calls_to("/users", method="PATCH") == []


# --------------------------------------------------------------------------- undo


def test_undo_isolate_identity_enables_the_account(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    runner = rig.runner()
    original = runner.handle(isolate(rig).to_body()).entry
    undo = request_undo(rig.ledger, rig.bus, rig.tenant, original.key, by="soc-lead", clock=rig.clock)
    assert (undo.action, undo.target, undo.undo_of, undo.requested_by, undo.state) == (
        ActionKind.ENABLE_IDENTITY,
        {"user": uid, "undo_of": original.key},
        original.key,
        "soc-lead",
        RemediationState.PENDING,
    )
    assert rig.row(original.key).undone_by == undo.key
    (res,) = rig.drain(runner)
    assert (res.entry.key, res.entry.state, res.entry.result["summary"]) == (
        undo.key,
        RemediationState.SUCCEEDED,
        "alice@contoso.com enabled again",
    )
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True
    # asking again returns the same undo row and sends nothing
    assert request_undo(rig.ledger, rig.bus, rig.tenant, original.key, by="x", clock=rig.clock).key == undo.key
    assert rig.receive() == []


def test_undo_remove_inbox_rule_restores_the_recorded_definition(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    actions = FORWARD | {"markAsRead": True, "stopProcessingRules": True}
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=actions, conditions={"bodyContains": ["wire"]})
    before = rig.emu.state.inbox_rules(rig.tenant, uid)
    runner = rig.runner()
    target = {"mailbox": "alice@contoso.com", "rule_name": ".", "forward_to": ["exfil@evil-mail.example"]}
    removal = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant,
            incident_id="inc-1",
            action=ActionKind.REMOVE_INBOX_RULE,
            target=target,
            requested_by="itdr",
            approved=True,
        )
    )
    runner.handle(removal.to_body())
    assert rig.emu.state.inbox_rules(rig.tenant, uid) == []
    undo = request_undo(rig.ledger, rig.bus, rig.tenant, removal.idempotency_key, by="soc-lead", clock=rig.clock)
    assert undo.action is ActionKind.RESTORE_INBOX_RULE
    (res,) = rig.drain(runner)
    assert res.entry.state is RemediationState.SUCCEEDED
    (after,) = rig.emu.state.inbox_rules(rig.tenant, uid)
    strip = {"id"}
    assert {k: v for k, v in after.items() if k not in strip} == {k: v for k, v in before[0].items() if k not in strip}
    assert res.entry.result["details"]["rules"] == [
        {"original_id": before[0]["id"], "id": after["id"], "display_name": "."}
    ]


def test_undo_disable_service_principal(rig: Any) -> None:
    sp = rig.emu.add_service_principal(rig.tenant, app_id="app-1", display_name="App")
    runner = rig.runner()
    req = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant,
            incident_id="inc-1",
            action=ActionKind.DISABLE_SERVICE_PRINCIPAL,
            target={"service_principal_id": sp},
            requested_by="itdr",
            approved=True,
        )
    )
    runner.handle(req.to_body())
    request_undo(rig.ledger, rig.bus, rig.tenant, req.idempotency_key, by="soc-lead", clock=rig.clock)
    (res,) = rig.drain(runner)
    assert (res.entry.action, res.entry.state) == (ActionKind.ENABLE_SERVICE_PRINCIPAL, RemediationState.SUCCEEDED)
    assert rig.emu.state.service_principal(rig.tenant, sp)["accountEnabled"] is True


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("already_disabled", "the account was already disabled before the remediation"),
        ("failed", "only a succeeded action can be undone (this one is failed)"),
        ("forwarding", "clear_mailbox_forwarding cannot be undone"),
    ],
)
def test_undo_is_refused_when_there_is_nothing_to_undo(rig: Any, setup: str, message: str) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com", account_enabled=setup != "already_disabled")
    if setup == "failed":
        rig.emu.set_permissions(rig.tenant, ["User.Read.All"])
    req = isolate(rig)
    if setup == "forwarding":
        req = rig.record(
            RemediationRequest(
                tenant_id=rig.tenant,
                incident_id="inc-1",
                action=ActionKind.CLEAR_MAILBOX_FORWARDING,
                target={"mailbox": "alice@contoso.com"},
                requested_by="itdr",
                approved=True,
            )
        )
        rig.runner().handle(req.to_body())
        entry = rig.row(req.idempotency_key)
        entry.transition(RemediationState.SUCCEEDED, at=rig.clock.now)  # as if a person closed it
        rig.ledger.update_entry(entry)
    else:
        rig.runner().handle(req.to_body())
    with pytest.raises(BadInputError, match=re.escape(message)):
        request_undo(rig.ledger, rig.bus, rig.tenant, req.idempotency_key, by="soc-lead", clock=rig.clock)
    assert rig.receive() == []


def test_approval_sends_exactly_one_message_to_the_remediation_queue(rig: Any) -> None:
    runner = rig.runner()
    waiting = runner.handle(isolate(rig, approved=False).to_body())
    assert (waiting.outcome, rig.bus.pending()) == (HandleOutcome.AWAITING_APPROVAL, 0)
    approve_action(rig.ledger, rig.bus, rig.tenant, waiting.entry.key, by="soc", clock=rig.clock)
    assert {q: rig.bus.pending(q) for q in rig.bus.queues} == {
        q: int(q == names.QUEUE_REMEDIATION) for q in names.ALL_QUEUES
    }


def test_the_ledger_can_be_the_in_memory_twin(rig: Any) -> None:
    from shared.remediation.ledger import InMemoryRemediationLedger

    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    ledger = InMemoryRemediationLedger()
    runner = RemediationRunner(
        ledger, rig.graph, rig.bus, policy=RemediationPolicy(), clock=rig.clock, rng=random.Random(0)
    )
    req = rig.record(isolate(rig, approved=False).model_copy(update={"approved": True}), ledger=ledger)
    res = runner.handle(req.to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert ledger.list_entries(rig.tenant) == [res.entry]
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is False


def test_a_cached_client_can_be_shared_through_nullcontext(rig: Any) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    with SyncGraphClient.create(rig.tenant, credential=rig.emu.credential(rig.tenant), base_url=rig.emu.base_url) as c:
        runner = RemediationRunner(
            rig.ledger,
            lambda _t: nullcontext(c),
            rig.bus,
            policy=RemediationPolicy(),
            clock=rig.clock,
            rng=random.Random(0),
        )
        first = runner.handle(isolate(rig, "alice@contoso.com").to_body())
        assert first.entry.state is RemediationState.SUCCEEDED
        assert c.get_user("alice@contoso.com").account_enabled is False  # still open after handle
