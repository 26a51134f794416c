"""The retry policy (pure) and plan(): alerts → remediation actions under a tenant's policy."""

from __future__ import annotations

import random
from typing import Any

import pytest

from shared.alert_model import Alert, Category, Severity
from shared.remediation.ledger import ActionKind, RemediationRequest
from shared.remediation.policy import Mode, PlannedAction, RemediationPolicy, RetryPolicy, plan

TENANT = "5f0c1c39-4e0b-4d7e-9b51-1a7d3c2a0a01"
ALICE_ID = "0b7e3f2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b"


def alert(
    detector: str,
    *,
    category: Category = Category.SHADOW_WORKFLOW,
    severity: Severity = Severity.HIGH,
    user: str = "alice@contoso.com",
    user_key: str | None = "alice@contoso.com",
    context: dict[str, Any] | None = None,
    alert_id: str = "al-1",
    tenant: str = TENANT,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        detector=detector,
        title="t",
        category=category,
        severity=severity,
        tenant_id=tenant,
        user=user,
        user_key=user_key,
        first_seen=1.0,
        last_seen=2.0,
        evidence_record_ids=["r1"],
        mitre=("T1078",),
        summary="s",
        dedup_key="d",
        context=context or {},
    )


# --------------------------------------------------------------------------- retry policy


def test_retry_after_is_honoured_as_given() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    assert [policy.delay(n, retry_after=ra, rng=rng) for n, ra in [(1, 120.0), (5, 7.0), (1, 0.2)]] == [120.0, 7.0, 1.0]


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    policy = RetryPolicy(base_s=30, cap_s=3600, jitter=0.5)
    rng, twin = random.Random(5), random.Random(5)
    got = [policy.delay(n, retry_after=None, rng=rng) for n in range(1, 10)]
    full = [min(3600.0, 30.0 * 2 ** (n - 1)) for n in range(1, 10)]
    assert got == [f / 2 + twin.random() * f / 2 for f in full]
    assert full == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert all(f / 2 <= g <= f for g, f in zip(got, full, strict=True))


def test_no_jitter_gives_the_plain_backoff_and_attempts_are_bounded() -> None:
    policy = RetryPolicy(base_s=10, cap_s=50, jitter=0, max_attempts=3)
    assert [policy.delay(n, retry_after=None, rng=random.Random(0)) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


# --------------------------------------------------------------------------- policy


def test_never_disable_matches_upn_and_object_id_case_insensitively() -> None:
    policy = RemediationPolicy(never_disable=["BreakGlass@Contoso.com", ALICE_ID.upper()])
    assert policy.never_disable == frozenset({"breakglass@contoso.com", ALICE_ID})
    assert policy.is_protected("breakglass@CONTOSO.com")
    assert policy.is_protected(None, ALICE_ID)
    assert not policy.is_protected("bob@contoso.com", None)


@pytest.mark.parametrize(
    ("policy", "severity", "action", "approval"),
    [
        # the defaults: a critical incident acts at once, a high one asks
        (RemediationPolicy(), Severity.CRITICAL, ActionKind.REMOVE_INBOX_RULE, False),
        (RemediationPolicy(), Severity.HIGH, ActionKind.REMOVE_INBOX_RULE, True),
        (RemediationPolicy(default_mode=Mode.APPROVAL), Severity.CRITICAL, ActionKind.REMOVE_INBOX_RULE, True),
        (RemediationPolicy(auto_min_severity=Severity.HIGH), Severity.HIGH, ActionKind.REMOVE_INBOX_RULE, False),
        (RemediationPolicy(auto_min_severity=Severity.HIGH), Severity.MEDIUM, ActionKind.REMOVE_INBOX_RULE, True),
        (
            RemediationPolicy(
                default_mode=Mode.APPROVAL,
                detector_modes={"exchange_suspicious_inbox_rule": Mode.AUTO},
                auto_min_severity=Severity.HIGH,
            ),
            Severity.HIGH,
            ActionKind.REMOVE_INBOX_RULE,
            False,
        ),
        (RemediationPolicy(default_mode=Mode.AUTO), Severity.CRITICAL, ActionKind.DISABLE_SERVICE_PRINCIPAL, True),
        (
            RemediationPolicy(default_mode=Mode.AUTO, approval_actions=frozenset()),
            Severity.CRITICAL,
            ActionKind.DISABLE_SERVICE_PRINCIPAL,
            False,
        ),
    ],
)
def test_needs_approval(policy: RemediationPolicy, severity: Severity, action: ActionKind, approval: bool) -> None:
    assert policy.needs_approval(alert("exchange_suspicious_inbox_rule", severity=severity), action) is approval


# --------------------------------------------------------------------------- plan

RULE_CONTEXT = {
    "rule_name": ".",
    "mailbox": "alice@contoso.com",
    "forward_to": ["Exfil@Evil-Mail.example"],
    "move_to_folder": "RSS Feeds",
    "delete": False,
    "mark_as_read": True,
    "rule_identity": None,
}
AUTO = RemediationPolicy(tenant_id=TENANT, default_mode=Mode.AUTO, auto_min_severity=Severity.HIGH)


def _req(action: ActionKind, target: dict[str, Any], *, approved: bool, incident: str = "inc-1") -> RemediationRequest:
    return RemediationRequest(
        tenant_id=TENANT, incident_id=incident, action=action, target=target, requested_by="itdr", approved=approved
    )


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        pytest.param(
            [alert("exchange_suspicious_inbox_rule", context=RULE_CONTEXT)],
            [
                PlannedAction(
                    request=_req(
                        ActionKind.REMOVE_INBOX_RULE,
                        {
                            "mailbox": "alice@contoso.com",
                            "rule_name": ".",
                            "forward_to": ["exfil@evil-mail.example"],
                            "redirect_to": [],
                            "forward_as_attachment_to": [],
                            "move_to_folder": "RSS Feeds",
                            "delete": None,
                            "mark_as_read": True,
                            "words": [],
                            "rule_identity": None,
                        },
                        approved=True,
                    ),
                    requires_approval=False,
                    source_alert_ids=["al-1"],
                )
            ],
            id="inbox-rule",
        ),
        pytest.param(
            [
                alert(
                    "signin_anonymizer", category=Category.UNWANTED_LOGIN, severity=Severity.CRITICAL, user_key=ALICE_ID
                )
            ],
            [
                PlannedAction(
                    request=_req(ActionKind.ISOLATE_IDENTITY, {"user": ALICE_ID}, approved=True),
                    requires_approval=False,
                    source_alert_ids=["al-1"],
                )
            ],
            id="risky-signin",
        ),
        pytest.param(
            [
                alert(
                    "app_risky_consent",
                    category=Category.ROGUE_APP,
                    context={"service_principal_id": "sp-1", "app_id": "app-1"},
                )
            ],
            [
                PlannedAction(
                    request=_req(
                        ActionKind.REVOKE_OAUTH_GRANT,
                        {"service_principal_id": "sp-1", "app_id": "app-1"},
                        approved=True,
                    ),
                    requires_approval=False,
                    source_alert_ids=["al-1"],
                ),
                PlannedAction(
                    request=_req(
                        ActionKind.DISABLE_SERVICE_PRINCIPAL,
                        {"service_principal_id": "sp-1", "app_id": "app-1"},
                        approved=False,
                    ),
                    requires_approval=True,
                    source_alert_ids=["al-1"],
                ),
            ],
            id="consent",
        ),
        pytest.param(
            [
                alert(
                    "exchange_mailbox_forwarding",
                    context={"mailbox": "Alice Example", "destinations": ["X@evil-mail.example"]},
                )
            ],
            [
                PlannedAction(
                    request=_req(
                        ActionKind.CLEAR_MAILBOX_FORWARDING,
                        {"mailbox": "Alice Example", "forwarding_addresses": ["x@evil-mail.example"]},
                        approved=True,
                    ),
                    requires_approval=False,
                    source_alert_ids=["al-1"],
                )
            ],
            id="forwarding",
        ),
        pytest.param(
            [alert("app_risky_consent", category=Category.ROGUE_APP, context={"app_id": "app-1"})],
            [
                PlannedAction(
                    request=_req(ActionKind.REVOKE_OAUTH_GRANT, {"alert_id": "al-1"}, approved=True),
                    requires_approval=False,
                    source_alert_ids=["al-1"],
                    blocked_reason="target_unknown",
                    note="alert al-1 does not name the revoke_oauth_grant target",
                ),
                PlannedAction(
                    request=_req(ActionKind.DISABLE_SERVICE_PRINCIPAL, {"alert_id": "al-1"}, approved=False),
                    requires_approval=True,
                    source_alert_ids=["al-1"],
                    blocked_reason="target_unknown",
                    note="alert al-1 does not name the disable_service_principal target",
                ),
            ],
            id="consent-without-sp-id",
        ),
        pytest.param([alert("exchange_unknown_detector", category=Category.DATA_EXFILTRATION)], [], id="no-mapping"),
    ],
)
def test_plan_maps_alerts_to_actions(alerts: list[Alert], expected: list[PlannedAction]) -> None:
    assert plan(alerts, AUTO, incident_id="inc-1") == expected


def test_plan_blocks_never_disable_accounts_and_merges_alerts_of_one_action() -> None:
    policy = RemediationPolicy(
        tenant_id=TENANT, auto_min_severity=Severity.HIGH, never_disable=["BREAKGLASS@contoso.com"]
    )
    alerts = [
        alert(
            "signin_anonymizer", category=Category.UNWANTED_LOGIN, user_key="breakglass@contoso.com", alert_id="al-1"
        ),
        alert(
            "signin_impossible_travel",
            category=Category.CREDENTIAL_COMPROMISE,
            user_key="bob@contoso.com",
            alert_id="al-2",
            severity=Severity.LOW,
        ),
        alert("signin_new_location", category=Category.UNWANTED_LOGIN, user_key="bob@contoso.com", alert_id="al-3"),
    ]
    # the low alert counts at its incident's severity (high), so it merges into bob's isolation
    assert plan(alerts, policy, incident_id="inc-9", incident_severity=Severity.HIGH) == [
        PlannedAction(
            request=_req(
                ActionKind.ISOLATE_IDENTITY, {"user": "breakglass@contoso.com"}, approved=True, incident="inc-9"
            ),
            requires_approval=False,
            source_alert_ids=["al-1"],
            blocked_reason="never_disable",
            note="the target is on the tenant's never-disable list",
        ),
        PlannedAction(
            request=_req(ActionKind.ISOLATE_IDENTITY, {"user": "bob@contoso.com"}, approved=True, incident="inc-9"),
            requires_approval=False,
            source_alert_ids=["al-2", "al-3"],
        ),
    ]


def test_plan_respects_off_overrides_and_refuses_other_tenants() -> None:
    policy = RemediationPolicy(
        tenant_id=TENANT,
        detector_modes={"exchange_suspicious_inbox_rule": Mode.OFF},
        detector_actions={"custom_detector": (ActionKind.ISOLATE_IDENTITY,)},
    )
    assert plan([alert("exchange_suspicious_inbox_rule", context=RULE_CONTEXT)], policy, incident_id="i") == []
    planned = plan([alert("custom_detector", category=Category.DATA_EXFILTRATION)], policy, incident_id="i")
    assert [(p.request.action, p.request.target, p.requires_approval) for p in planned] == [
        (ActionKind.ISOLATE_IDENTITY, {"user": "alice@contoso.com"}, True)
    ]
    with pytest.raises(ValueError, match="tenant"):
        plan([alert("custom_detector", tenant="other-tenant")], policy, incident_id="i")


def test_plan_without_a_directory_key_blocks_the_action() -> None:
    planned = plan(
        [alert("signin_hosting_provider", category=Category.UNWANTED_LOGIN, user="Alice Example", user_key=None)],
        AUTO,
        incident_id="i",
    )
    assert [(p.request.target, p.blocked_reason) for p in planned] == [({"alert_id": "al-1"}, "target_unknown")]


@pytest.mark.parametrize(
    ("detector", "context", "user_key", "planned"),
    [
        ("signin_brute_force", {"followed_by_success": False}, "alice@contoso.com", False),
        ("signin_brute_force", {"followed_by_success": True}, "alice@contoso.com", True),
        ("signin_password_spray", {"source": "203.0.113.9", "users_failed": 40}, None, False),
        (
            "signin_password_spray",
            {"source": "203.0.113.9", "spray_flagged_at": "2025-03-10T14:00:00Z"},
            "alice@contoso.com",
            True,
        ),
        ("signin_mfa_failure", {"report_only": True}, "alice@contoso.com", False),
        ("signin_mfa_failure", {"report_only": False}, "alice@contoso.com", True),
    ],
)
def test_failed_attempts_alone_never_isolate(
    detector: str, context: dict[str, Any], user_key: str | None, planned: bool
) -> None:
    got = plan(
        [alert(detector, category=Category.CREDENTIAL_COMPROMISE, context=context, user_key=user_key)],
        AUTO,
        incident_id="i",
    )
    assert [(p.request.action, p.request.target) for p in got] == (
        [(ActionKind.ISOLATE_IDENTITY, {"user": "alice@contoso.com"})] if planned else []
    )
