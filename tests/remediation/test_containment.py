"""Containment as promised (#19 item 5): isolate at once for a critical incident, ask on high, nothing below;
protected identities never isolated automatically; the policy checked again when the action executes."""

from __future__ import annotations

from typing import Any

import pytest

from shared.alert_model import Alert, Category, Severity
from shared.remediation.ledger import ActionKind, RemediationRequest, RemediationState
from shared.remediation.policy import RemediationPolicies, RemediationPolicy, plan
from shared.remediation.runner import HandleOutcome, approve_action
from shared.tenants import TenantRecord
from tests.remediation.conftest import TENANT_A

ALICE = "alice@contoso.com"


def signin(*, user: str = ALICE, severity: Severity = Severity.HIGH, alert_id: str = "al-signin") -> Alert:
    """A risky sign-in that succeeded (its detector isolates the identity)."""
    return Alert(
        alert_id=alert_id,
        detector="signin_hosting_provider",
        title="Sign-in from a hosting provider",
        category=Category.UNWANTED_LOGIN,
        severity=severity,
        tenant_id=TENANT_A,
        user=user,
        user_key=user,
        first_seen=1.0,
        last_seen=2.0,
        evidence_record_ids=["r1"],
        mitre=("T1078",),
        summary="s",
        dedup_key=f"d-{alert_id}",
        ip="203.0.113.66",
    )


@pytest.mark.parametrize(
    ("incident", "expected"),
    [
        (Severity.CRITICAL, [(ActionKind.ISOLATE_IDENTITY, {"user": ALICE}, False)]),
        (Severity.HIGH, [(ActionKind.ISOLATE_IDENTITY, {"user": ALICE}, True)]),
        (Severity.MEDIUM, []),
        (Severity.LOW, []),
    ],
)
def test_default_policy_isolates_critical_asks_on_high_never_below(
    incident: Severity, expected: list[tuple[ActionKind, dict[str, str], bool]]
) -> None:
    """Fails on the old code: the default policy never acted without approval, and planned below high."""
    alert = signin(severity=Severity.MEDIUM if incident.rank <= Severity.MEDIUM.rank else Severity.HIGH)
    planned = plan([alert], RemediationPolicy(tenant_id=TENANT_A), incident_id="inc-1", incident_severity=incident)
    assert [(p.request.action, p.request.target, p.requires_approval) for p in planned] == expected


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param({"protected": ["ALICE@contoso.com"]}, id="role-holder-from-graph"),
        pytest.param({"break_glass": [ALICE]}, id="break-glass"),
    ],
)
def test_protected_identities_are_never_isolated_automatically(policy: dict[str, Any]) -> None:
    planned = plan(
        [signin()],
        RemediationPolicy(tenant_id=TENANT_A, **policy),
        incident_id="inc-1",
        incident_severity=Severity.CRITICAL,
    )
    assert [(p.request.action, p.requires_approval, p.blocked_reason, p.note) for p in planned] == [
        (
            ActionKind.ISOLATE_IDENTITY,
            True,
            None,
            "a protected identity (privileged role, break-glass or the app itself): a person decides",
        )
    ]


class Directory:
    def __init__(self, record: TenantRecord) -> None:
        self.record = record

    def get(self, tenant_id: str) -> TenantRecord | None:
        return self.record if tenant_id == self.record.tenant_id else None


def test_protected_identities_of_the_tenant_record_join_the_policy() -> None:
    record = TenantRecord(
        tenant_id=TENANT_A,
        remediation={"protected": ["named@contoso.com"]},
        protected_identities=["a1a1a1a1-0000-4000-8000-000000000001", ALICE],
    )
    policy = RemediationPolicies(Directory(record)).for_tenant(TENANT_A)
    assert policy.protected == frozenset({"named@contoso.com", "a1a1a1a1-0000-4000-8000-000000000001", ALICE})
    assert policy.is_guarded("A1A1A1A1-0000-4000-8000-000000000001")


def _queued_isolation(rig: Any, runner: Any) -> Any:
    (row,) = runner.submit(
        plan([signin()], runner.policy_for(TENANT_A), incident_id="inc-1", incident_severity=Severity.CRITICAL)
    )
    assert (row.state, row.requires_approval, row.basis) == (
        RemediationState.PENDING,
        False,
        {"detectors": ["signin_hosting_provider"], "severity": "critical"},
    )
    (msg,) = rig.receive()
    return row, msg


def test_a_queued_isolation_is_skipped_when_the_policy_was_disabled_since(rig: Any) -> None:
    """Fails on the old code: with the policy disabled after queueing, the queued isolation still disabled the user.
    (Written with the API the old code has too, so it fails there on the behaviour, not on a signature.)"""
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    acting = RemediationPolicy(tenant_id=TENANT_A, default_mode="auto", auto_min_severity="high")
    policies = {TENANT_A: acting}
    runner = rig.runner(lambda tenant: policies[tenant])  # the tenant's policy as the directory gives it now
    (row,) = runner.submit(plan([signin(severity=Severity.CRITICAL)], acting, incident_id="inc-1"))
    assert row.state is RemediationState.PENDING
    (msg,) = rig.receive()
    policies[TENANT_A] = RemediationPolicy(tenant_id=TENANT_A, enabled=False)
    res = runner.handle(msg.body)
    assert (res.outcome, res.entry.state, res.entry.reason) == (
        HandleOutcome.SKIPPED,
        RemediationState.SKIPPED,
        "policy_disabled",
    )
    assert res.entry.history[-1].note == "policy re-checked at execution: policy_disabled"
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True
    assert rig.emu.calls_to("/users", method="PATCH") == []


def test_a_person_approved_isolation_is_skipped_too_when_the_policy_was_disabled_since(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    policies = {TENANT_A: RemediationPolicy(tenant_id=TENANT_A)}
    runner = rig.runner(lambda tenant: policies[tenant])
    (row,) = runner.submit(plan([signin()], policies[TENANT_A], incident_id="inc-1", incident_severity=Severity.HIGH))
    assert row.state is RemediationState.PENDING_APPROVAL
    approve_action(rig.ledger, rig.bus, TENANT_A, row.key, by="soc-lead", clock=rig.clock)
    policies[TENANT_A] = RemediationPolicy(tenant_id=TENANT_A, enabled=False)
    (msg,) = rig.receive()
    assert runner.handle(msg.body).entry.reason == "policy_disabled"
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True


@pytest.mark.parametrize(
    ("changed", "state", "reason_note"),
    [
        pytest.param(
            {"default_mode": "approval"},
            RemediationState.PENDING_APPROVAL,
            "policy re-checked at execution: policy_requires_approval",
            id="now-approval",
        ),
        pytest.param(
            {"protected": [ALICE]},
            RemediationState.PENDING_APPROVAL,
            "policy re-checked at execution: protected_identity",
            id="now-protected",
        ),
        pytest.param(
            {"detector_modes": {"signin_hosting_provider": "off"}},
            RemediationState.SKIPPED,
            "policy re-checked at execution: policy_off",
            id="detector-off",
        ),
        pytest.param(
            {"never_disable": [ALICE]},
            RemediationState.SKIPPED,
            "policy re-checked at execution: never_disable",
            id="never-disable",
        ),
    ],
)
def test_a_queued_isolation_follows_the_policy_changed_since(
    rig: Any, changed: dict[str, Any], state: RemediationState, reason_note: str
) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    policies = {TENANT_A: RemediationPolicy(tenant_id=TENANT_A)}
    runner = rig.runner(lambda tenant: policies[tenant])
    row, msg = _queued_isolation(rig, runner)
    policies[TENANT_A] = RemediationPolicy.model_validate({"tenant_id": TENANT_A, **changed})
    res = runner.handle(msg.body)
    assert (res.entry.state, res.entry.history[-1].note) == (state, reason_note)
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True
    if state is RemediationState.PENDING_APPROVAL:  # a person may still decide: then it runs
        approve_action(rig.ledger, rig.bus, TENANT_A, row.key, by="soc-lead", clock=rig.clock)
        (again,) = rig.receive()
        assert runner.handle(again.body).entry.state is RemediationState.SUCCEEDED
        assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is False


def test_an_unchanged_policy_runs_the_queued_isolation(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    runner = rig.runner()
    _, msg = _queued_isolation(rig, runner)
    assert runner.handle(msg.body).entry.state is RemediationState.SUCCEEDED
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is False


def test_a_message_claiming_approval_without_a_ledger_row_is_refused(rig: Any) -> None:
    """Fails on the old code: a message with approved=true and no ledger row ran under an approval-only policy."""
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    runner = rig.runner(RemediationPolicy(tenant_id=TENANT_A, default_mode="approval"))
    forged = RemediationRequest(
        tenant_id=TENANT_A,
        incident_id="inc-x",
        action=ActionKind.ISOLATE_IDENTITY,
        target={"user": ALICE},
        requested_by="itdr",
        approved=True,
    )
    res = runner.handle(forged.to_body())
    assert (res.outcome, res.entry.state, res.entry.requires_approval, res.entry.approved_by) == (
        HandleOutcome.AWAITING_APPROVAL,
        RemediationState.PENDING_APPROVAL,
        True,
        None,
    )
    assert res.entry.history[-1].note == (
        "requested by itdr; the message claims approval but the ledger has no row: refused, a person decides"
    )
    assert runner.handle(forged.to_body()).outcome is HandleOutcome.AWAITING_APPROVAL  # and stays refused
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True
    assert rig.emu.calls == []


def test_an_isolation_awaiting_approval_goes_ahead_when_the_incident_becomes_critical(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    runner = rig.runner()
    policy = runner.policy_for(TENANT_A)
    (waiting,) = runner.submit(plan([signin()], policy, incident_id="inc-1", incident_severity=Severity.HIGH))
    assert waiting.state is RemediationState.PENDING_APPROVAL and rig.receive() == []
    (now,) = runner.submit(plan([signin()], policy, incident_id="inc-1", incident_severity=Severity.CRITICAL))
    assert (now.key, now.state, now.history[-1].note) == (
        waiting.key,
        RemediationState.PENDING,
        "automatic under the policy now (severity critical)",
    )
    (msg,) = rig.receive()
    assert runner.handle(msg.body).entry.state is RemediationState.SUCCEEDED
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is False


def test_plan_for_incidents_uses_the_incident_severity_and_skips_dismissed_incidents(rig: Any) -> None:
    from shared.alerts.incidents import InMemoryIncidentBook
    from shared.remediation.incidents import plan_for_incidents

    rig.emu.add_user(rig.tenant, user_principal_name=ALICE)
    high_alert = signin()
    book = InMemoryIncidentBook(now=lambda: 10.0)
    (incident,) = book.add_alerts([high_alert])

    class Lookup:
        def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None:
            return high_alert if alert_id == high_alert.alert_id else None

    runner = rig.runner()
    policy = runner.policy_for(TENANT_A)
    dismissed = book.set_status(TENANT_A, incident.incident_id, "dismissed", by="ana", reason="pen test")
    assert plan_for_incidents(runner, policy, Lookup(), [dismissed]) == 0
    assert rig.ledger.list_entries(TENANT_A) == []
    assert incident.severity is Severity.HIGH
    assert plan_for_incidents(runner, policy, Lookup(), [incident]) == 1
    (row,) = rig.ledger.list_entries(TENANT_A)
    assert (row.action, row.state, row.basis) == (
        ActionKind.ISOLATE_IDENTITY,
        RemediationState.PENDING_APPROVAL,
        {"detectors": ["signin_hosting_provider"], "severity": "high"},
    )
