"""The remediation runner's own alert: a Graph permission the app lacks (the system alert
``integration_remediation_permission``, declared in shared/system_alerts.py with its runbook)."""

from __future__ import annotations

import hashlib
from typing import Any

from shared.alert_model import Alert, Category, Severity
from shared.remediation.ledger import ActionKind, RemediationRequest, RemediationState
from shared.remediation.runner import HandleOutcome
from shared.system_alerts import REMEDIATION_PERMISSION

FORWARD = {"forwardTo": [{"emailAddress": {"address": "exfil@evil-mail.example"}}]}


def isolate(rig: Any, user: str = "alice@contoso.com") -> RemediationRequest:
    """An isolation a person approved (its ledger row recorded: a message claiming approval has one)."""
    req = RemediationRequest(
        tenant_id=rig.tenant,
        incident_id="inc-1",
        action=ActionKind.ISOLATE_IDENTITY,
        target={"user": user},
        requested_by="itdr",
        approved=True,
    )
    return rig.record(req)  # type: ignore[no-any-return]


def test_403_fails_with_missing_permission_and_an_integration_health_alert(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.set_permissions(rig.tenant, ["User.Read.All", "User.RevokeSessions.All"])
    req = isolate(rig)
    res = rig.runner().handle(req.to_body())
    assert res.outcome is HandleOutcome.FAILED
    row = res.entry
    assert (row.state, row.reason, row.result) == (
        RemediationState.FAILED,
        "missing_permission",
        {
            "summary": "missing Graph permission User.EnableDisableAccount.All",
            "permission": "User.EnableDisableAccount.All",
        },
    )
    assert row.last_error is not None and row.last_error.graph_code == "Authorization_RequestDenied"
    alert = res.alert
    assert isinstance(alert, Alert)
    # the ID is the documented digest of tenant, source, dedup key and evidence, computed here without the code
    digest = hashlib.sha256(
        f"{rig.tenant}|integration_remediation_permission|missing_permission|User.EnableDisableAccount.All|"
        f"{req.idempotency_key}".encode()
    ).hexdigest()
    assert alert.alert_id == f"al-{digest[:24]}"
    assert (alert.detector, alert.category, alert.severity, alert.tenant_id, alert.user) == (
        "integration_remediation_permission",
        Category.INTEGRATION_HEALTH,
        Severity.HIGH,
        rig.tenant,
        "alice@contoso.com",
    )
    assert alert.context["permission"] == "User.EnableDisableAccount.All"
    assert (alert.title, alert.runbook) == (REMEDIATION_PERMISSION.title, REMEDIATION_PERMISSION.runbook)
    assert "User.EnableDisableAccount.All" in alert.summary
    assert rig.sink.list_alerts(rig.tenant) == [alert]
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True
    assert rig.receive() == []  # no retry
    again = rig.runner().handle(req.to_body())
    assert again.outcome is HandleOutcome.NOOP_TERMINAL


def test_mailbox_403_names_the_mailbox_permission(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    rig.emu.set_permissions(rig.tenant, ["MailboxSettings.Read"])
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
    assert (res.entry.reason, res.entry.result["permission"]) == ("missing_permission", "MailboxSettings.ReadWrite")
    assert res.alert is not None and res.alert.context["permission"] == "MailboxSettings.ReadWrite"
