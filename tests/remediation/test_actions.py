"""Each remediation action through the runner, the real SyncGraphClient, the Graph emulator and Azurite."""

from __future__ import annotations

from typing import Any

import pytest

from shared.emulators.graph import Fault, GraphEmulator
from shared.graph.rules import rule_identity_to_graph_id
from shared.remediation.actions import ps_quote
from shared.remediation.ledger import ActionKind, RemediationRequest, RemediationState
from shared.remediation.policy import RemediationPolicy
from shared.remediation.runner import HandleOutcome

FORWARD = {"forwardTo": [{"emailAddress": {"address": "exfil@evil-mail.example"}}]}
NEWSLETTER = {"moveToFolder": "AAMkAGNewsletters", "markAsRead": True}
RULE_IDENTITY = 16752869479666417665


def request(rig: Any, action: ActionKind, target: dict[str, Any], *, incident: str = "inc-1") -> RemediationRequest:
    return rig.record(
        RemediationRequest(
            tenant_id=rig.tenant, incident_id=incident, action=action, target=target, requested_by="soc", approved=True
        )
    )


def rule_target(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mailbox": "alice@contoso.com",
        "rule_name": ".",
        "forward_to": ["exfil@evil-mail.example"],
        "redirect_to": [],
        "forward_as_attachment_to": [],
        "move_to_folder": None,
        "delete": None,
        "mark_as_read": None,
        "words": [],
        "rule_identity": None,
    }
    return base | overrides


def graph_calls(emu: GraphEmulator, method: str, prefix: str = "") -> list[str]:
    return [c.path.removeprefix("/v1.0") for c in emu.calls_to(prefix, method=method)]


# --------------------------------------------------------------------------- isolate_identity


def test_isolate_identity_disables_revokes_and_verifies(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    req = request(rig, ActionKind.ISOLATE_IDENTITY, {"user": "alice@contoso.com"})
    res = rig.runner().handle(req.to_body())
    assert res.outcome is HandleOutcome.SUCCEEDED
    assert res.entry.state is RemediationState.SUCCEEDED
    assert res.entry.result == {
        "outcome": "succeeded",
        "summary": "alice@contoso.com disabled and its sign-in sessions revoked",
        "reason": None,
        "details": {
            "user_id": uid,
            "user_principal_name": "alice@contoso.com",
            "was_enabled": True,
            "account_enabled": False,
            "sessions_revoked": True,
            "on_premises_sync_enabled": False,
        },
        "warnings": ["access tokens already issued stay valid until they expire (up to about an hour)"],
        "manual_steps": [],
        "note": "",
    }
    assert res.entry.checkpoint == {
        "user_id": uid,
        "user_principal_name": "alice@contoso.com",
        "was_enabled": True,
        "on_premises_sync_enabled": False,
        "sessions_revoked": True,
    }
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is False
    assert rig.emu.state.sign_in_revocations(rig.tenant, uid) == 1
    assert [(c.method, c.path.removeprefix("/v1.0"), c.status) for c in rig.emu.calls] == [
        ("GET", "/users/alice@contoso.com", 200),
        ("PATCH", f"/users/{uid}", 204),
        ("POST", f"/users/{uid}/revokeSignInSessions", 200),
        ("GET", f"/users/{uid}", 200),
    ]
    assert [(h.state, h.attempt) for h in res.entry.history] == [
        (RemediationState.PENDING, 0),
        (RemediationState.RUNNING, 1),
        (RemediationState.SUCCEEDED, 1),
    ]


def test_isolate_identity_warns_about_on_premises_sync(rig: Any) -> None:
    rig.emu.add_user(rig.tenant, user_principal_name="o'neil@contoso.com", on_premises_sync_enabled=True)
    res = rig.runner().handle(request(rig, ActionKind.ISOLATE_IDENTITY, {"user": "o'neil@contoso.com"}).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert res.entry.result["warnings"] == [
        "the account is synchronised from on-premises Active Directory (onPremisesSyncEnabled): directory "
        "synchronisation may re-enable it; disable it on-premises too",
        "access tokens already issued stay valid until they expire (up to about an hour)",
    ]
    assert res.entry.result["manual_steps"] == [
        "Get-ADUser -Filter \"UserPrincipalName -eq 'o''neil@contoso.com'\" | Disable-ADAccount"
    ]
    assert res.entry.result["details"]["on_premises_sync_enabled"] is True


@pytest.mark.parametrize("protected_by", ["upn", "object_id"])
def test_isolate_identity_never_disables_protected_accounts(rig: Any, protected_by: str) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="breakglass@contoso.com")
    entry = "BreakGlass@Contoso.com" if protected_by == "upn" else uid.upper()
    policy = RemediationPolicy(tenant_id=rig.tenant, never_disable=[entry])
    # The target names the account the other way round, so the check must use what Graph resolved.
    target_user = uid if protected_by == "upn" else "breakglass@contoso.com"
    res = rig.runner(policy).handle(request(rig, ActionKind.ISOLATE_IDENTITY, {"user": target_user}).to_body())
    assert res.outcome is HandleOutcome.SKIPPED
    assert (res.entry.state, res.entry.reason) == (RemediationState.SKIPPED, "never_disable")
    assert res.entry.result["summary"] == "breakglass@contoso.com is on the never-disable list: not disabled"
    assert graph_calls(rig.emu, "PATCH") == [] and graph_calls(rig.emu, "POST") == []
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True


def test_isolate_identity_of_an_already_disabled_account_does_not_patch(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="gone@contoso.com", account_enabled=False)
    res = rig.runner().handle(request(rig, ActionKind.ISOLATE_IDENTITY, {"user": uid}).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert (res.entry.result["note"], res.entry.checkpoint["was_enabled"]) == (
        "the account was already disabled",
        False,
    )
    assert graph_calls(rig.emu, "PATCH") == []
    assert rig.emu.state.sign_in_revocations(rig.tenant, uid) == 1


# --------------------------------------------------------------------------- remove_inbox_rule


def _rules(rig: Any, uid: str) -> list[tuple[str, str, bool]]:
    return [(r["id"], r["displayName"], r["isEnabled"]) for r in rig.emu.state.inbox_rules(rig.tenant, uid)]


@pytest.mark.parametrize("with_rule_identity", [False, True])
def test_remove_inbox_rule_resolves_by_matching_never_by_the_audit_identity(rig: Any, with_rule_identity: bool) -> None:
    """Two rules are named "."; the audit record says `alice\\.`; only the forwarding one goes."""
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    benign = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=NEWSLETTER)
    evil = rig.emu.add_inbox_rule(
        rig.tenant,
        uid,
        display_name=".",
        actions=FORWARD | {"stopProcessingRules": True},
        conditions={"subjectContains": ["invoice"]},
        rule_identity=RULE_IDENTITY,
    )
    assert evil == rule_identity_to_graph_id(RULE_IDENTITY) == "AQAAAAgmfug="
    target = rule_target(rule_identity=f"alice\\{RULE_IDENTITY}" if with_rule_identity else None, words=["invoice"])
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, target).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert _rules(rig, uid) == [(benign, ".", True)]
    assert graph_calls(rig.emu, "DELETE") == [f"/users/alice@contoso.com/mailFolders/inbox/messageRules/{evil}"]
    details = res.entry.result["details"]
    assert details == {
        "mailbox": "alice@contoso.com",
        "match": "matched",
        "rules": [{"id": evil, "rule_identity": RULE_IDENTITY, "display_name": ".", "effect": "removed"}],
    }
    (recorded,) = res.entry.checkpoint["rules"]
    assert recorded["definition"] == {
        "id": evil,
        "display_name": ".",
        "sequence": 2,
        "is_enabled": True,
        "is_read_only": False,
        "has_error": False,
        "conditions": {
            "subject_contains": ["invoice"],
            "body_contains": [],
            "body_or_subject_contains": [],
            "sender_contains": [],
            "recipient_contains": [],
            "header_contains": [],
            "from_addresses": [],
            "sent_to_addresses": [],
            "has_attachments": None,
        },
        "exceptions": recorded["definition"]["exceptions"],
        "actions": recorded["definition"]["actions"] | {"forward_to": ["exfil@evil-mail.example"]},
    }
    assert recorded["definition"]["actions"]["stop_processing_rules"] is True
    # listed, deleted, listed again to verify
    assert len(graph_calls(rig.emu, "GET", "/users/alice@contoso.com/mailFolders")) == 2


def test_remove_inbox_rule_read_only_needs_manual_with_the_exchange_cmdlet(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    ro = rig.emu.add_inbox_rule(rig.tenant, uid, display_name='Fwd "all"', read_only=True, rule_identity=RULE_IDENTITY)
    target = rule_target(rule_name='Fwd "all"', rule_identity=str(RULE_IDENTITY))
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, target).to_body())
    assert res.outcome is HandleOutcome.NEEDS_MANUAL
    assert (res.entry.state, res.entry.reason) == (RemediationState.NEEDS_MANUAL, "rule_read_only")
    assert res.entry.result["manual_steps"] == [
        "Get-InboxRule -Mailbox alice@contoso.com -IncludeHidden | Format-List "
        "Name,Identity,RuleIdentity,Enabled,ForwardTo,RedirectTo,ForwardAsAttachmentTo,MoveToFolder,DeleteMessage",
        'Remove-InboxRule -Mailbox alice@contoso.com -Identity "Fwd `"all`""',
        f"Remove-InboxRule -Mailbox alice@contoso.com -Identity {RULE_IDENTITY}",
    ]
    assert res.entry.result["details"]["rules"] == [
        {"id": ro, "rule_identity": RULE_IDENTITY, "display_name": 'Fwd "all"', "effect": "needs_manual"}
    ]
    assert graph_calls(rig.emu, "DELETE") == [] and graph_calls(rig.emu, "PATCH") == []


@pytest.mark.parametrize(
    ("setup", "reason", "match"),
    [
        ("hidden", "rule_match_none", "none"),
        ("name_only", "rule_match_weak", "weak"),
        ("twins", "rule_match_ambiguous", "ambiguous"),
    ],
)
def test_remove_inbox_rule_unclear_matches_go_to_a_person(rig: Any, setup: str, reason: str, match: str) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    target = rule_target()
    if setup == "hidden":
        rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD, hidden=True)
    elif setup == "name_only":
        rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions={"delete": True})
        target = rule_target(forward_to=[])
    else:
        rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", conditions={"subjectContains": ["a"]})
        rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", conditions={"subjectContains": ["a"]})
        target = rule_target(forward_to=[], words=["a"])
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, target).to_body())
    assert (res.entry.state, res.entry.reason, res.entry.result["details"]["match"]) == (
        RemediationState.NEEDS_MANUAL,
        reason,
        match,
    )
    assert res.entry.result["manual_steps"][:2] == [
        "Get-InboxRule -Mailbox alice@contoso.com -IncludeHidden | Format-List "
        "Name,Identity,RuleIdentity,Enabled,ForwardTo,RedirectTo,ForwardAsAttachmentTo,MoveToFolder,DeleteMessage",
        'Remove-InboxRule -Mailbox alice@contoso.com -Identity "."',
    ]
    assert "rules" not in res.entry.checkpoint
    assert graph_calls(rig.emu, "DELETE") == []


def test_remove_inbox_rule_matches_a_redirect_when_the_alert_merges_recipients(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    keep = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=NEWSLETTER)
    evil = rig.emu.add_inbox_rule(
        rig.tenant, uid, display_name=".", actions={"redirectTo": FORWARD["forwardTo"], "delete": True}
    )
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, rule_target()).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert [(r["id"], r["effect"]) for r in res.entry.result["details"]["rules"]] == [(evil, "removed")]
    assert _rules(rig, uid) == [(keep, ".", True)]


def test_remove_inbox_rule_acts_on_every_malicious_twin(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    a = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    b = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    keep = rig.emu.add_inbox_rule(rig.tenant, uid, display_name="Newsletters", actions=NEWSLETTER)
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, rule_target()).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert sorted(r["id"] for r in res.entry.result["details"]["rules"]) == sorted([a, b])
    assert _rules(rig, uid) == [(keep, "Newsletters", True)]


def test_remove_inbox_rule_disables_when_graph_refuses_the_delete(rig: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    evil = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD)
    rig.emu.inject(Fault(400, code="ErrorInvalidRequest", method="DELETE", path_prefix="/users/alice@contoso.com/"))
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, rule_target()).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert res.entry.result["details"]["rules"] == [
        {
            "id": evil,
            "rule_identity": res.entry.checkpoint["rules"][0]["rule_identity"],
            "display_name": ".",
            "effect": "disabled",
        }
    ]
    assert res.entry.result["note"] == "Graph refused the delete; the rule is disabled, remove it with Exchange"
    assert res.entry.result["manual_steps"] == ['Remove-InboxRule -Mailbox alice@contoso.com -Identity "."']
    assert _rules(rig, uid) == [(evil, ".", False)]


def test_remove_a_disabled_rule_that_graph_answers_404_for(rig: Any) -> None:
    """The EWS quirk: deleting a disabled rule says ErrorItemNotFound; the re-list shows it still there."""
    rig.emu.disabled_rule_delete_404 = True
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    evil = rig.emu.add_inbox_rule(rig.tenant, uid, display_name=".", actions=FORWARD, is_enabled=False)
    res = rig.runner().handle(request(rig, ActionKind.REMOVE_INBOX_RULE, rule_target()).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert [r["effect"] for r in res.entry.result["details"]["rules"]] == ["disabled"]
    assert _rules(rig, uid) == [(evil, ".", False)]


def test_ps_quote_defuses_attacker_chosen_rule_names() -> None:
    assert ps_quote('a"; Remove-Mailbox x; "') == '"a`"; Remove-Mailbox x; `""'
    assert ps_quote("$(Invoke-Evil)`") == '"`$(Invoke-Evil)``"'
    assert ps_quote("\u201cx\u201d\nnext") == '"`\u201cx`\u201d`nnext"'


# --------------------------------------------------------------------------- applications


def test_revoke_oauth_grant_deletes_every_grant_of_the_client_only(rig: Any) -> None:
    sp = rig.emu.add_service_principal(rig.tenant, app_id="app-evil", display_name="Evil Mail Sync")
    g1 = rig.emu.add_permission_grant(
        rig.tenant, client_id=sp, resource_id="graph-sp", scope="Mail.Read offline_access"
    )
    g2 = rig.emu.add_permission_grant(
        rig.tenant, client_id=sp, resource_id="graph-sp", scope="Mail.Send", consent_type="Principal", principal_id="u1"
    )
    other = rig.emu.add_permission_grant(rig.tenant, client_id="sp-good", resource_id="graph-sp", scope="User.Read")
    target = {"service_principal_id": sp, "app_id": "app-evil"}
    res = rig.runner().handle(request(rig, ActionKind.REVOKE_OAUTH_GRANT, target).to_body())
    assert res.entry.state is RemediationState.SUCCEEDED
    assert res.entry.result["details"] == {
        "service_principal_id": sp,
        "grants": [g1, g2],
        "deleted_now": [g1, g2],
        "scopes": ["Mail.Read", "Mail.Send", "offline_access"],
    }
    assert [g["id"] for g in rig.emu.state.permission_grants(rig.tenant)] == [other]
    assert [g["scope"] for g in res.entry.checkpoint["grants"]] == ["Mail.Read offline_access", "Mail.Send"]


def test_revoke_oauth_grant_with_nothing_left_is_already_removed(rig: Any) -> None:
    sp = rig.emu.add_service_principal(rig.tenant, app_id="app-evil", display_name="Evil")
    res = rig.runner().handle(request(rig, ActionKind.REVOKE_OAUTH_GRANT, {"service_principal_id": sp}).to_body())
    assert (res.entry.state, res.entry.result["note"]) == (RemediationState.SUCCEEDED, "already removed")


def test_disable_service_principal_verifies_and_checks_the_app_id(rig: Any) -> None:
    sp = rig.emu.add_service_principal(rig.tenant, app_id="app-evil", display_name="Evil Mail Sync")
    res = rig.runner().handle(
        request(rig, ActionKind.DISABLE_SERVICE_PRINCIPAL, {"service_principal_id": sp, "app_id": "APP-EVIL"}).to_body()
    )
    assert res.entry.state is RemediationState.SUCCEEDED
    assert res.entry.result["details"] == {
        "service_principal_id": sp,
        "app_id": "app-evil",
        "display_name": "Evil Mail Sync",
        "was_enabled": True,
        "account_enabled": False,
    }
    assert rig.emu.state.service_principal(rig.tenant, sp)["accountEnabled"] is False

    other = rig.emu.add_service_principal(rig.tenant, app_id="app-payroll", display_name="Payroll")
    res = rig.runner().handle(
        request(
            rig, ActionKind.DISABLE_SERVICE_PRINCIPAL, {"service_principal_id": other, "app_id": "app-evil"}
        ).to_body()
    )
    assert (res.entry.state, res.entry.reason) == (RemediationState.FAILED, "target_mismatch")
    assert rig.emu.state.service_principal(rig.tenant, other)["accountEnabled"] is True


def test_disable_service_principal_never_disables_a_protected_app(rig: Any) -> None:
    sp = rig.emu.add_service_principal(rig.tenant, app_id="itdr-app-id", display_name="m365-itdr")
    policy = RemediationPolicy(tenant_id=rig.tenant, never_disable=["ITDR-APP-ID"])
    res = rig.runner(policy).handle(
        request(rig, ActionKind.DISABLE_SERVICE_PRINCIPAL, {"service_principal_id": sp}).to_body()
    )
    assert (res.entry.state, res.entry.reason) == (RemediationState.SKIPPED, "never_disable")
    assert graph_calls(rig.emu, "PATCH") == []


# --------------------------------------------------------------------------- forwarding


def test_clear_mailbox_forwarding_is_always_manual_with_the_exact_step(rig: Any) -> None:
    target = {"mailbox": "alice@contoso.com", "forwarding_addresses": ["x@evil-mail.example"]}
    res = rig.runner().handle(request(rig, ActionKind.CLEAR_MAILBOX_FORWARDING, target).to_body())
    assert res.outcome is HandleOutcome.NEEDS_MANUAL
    assert (res.entry.state, res.entry.reason) == (RemediationState.NEEDS_MANUAL, "graph_cannot_clear_forwarding")
    assert res.entry.result["summary"] == (
        "clear the mailbox forwarding of alice@contoso.com (to x@evil-mail.example) in Exchange Online"
    )
    assert res.entry.result["manual_steps"] == [
        "Set-Mailbox -Identity alice@contoso.com -ForwardingSmtpAddress $null -ForwardingAddress $null "
        "-DeliverToMailboxAndForward $false"
    ]
    assert res.entry.result["note"].startswith(
        "Microsoft Graph cannot clear ForwardingSmtpAddress or ForwardingAddress (mailboxSettings has no forwarding"
    )
    assert rig.emu.calls == []
