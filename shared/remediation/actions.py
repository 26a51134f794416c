"""Remediation actions over an injected Graph client, each judged by post-conditions re-read from Graph.

Every action is a function ``(client, ctx) -> ActionResult`` (see :data:`ACTIONS`). ``client`` is the
:class:`GraphPort` (what :class:`shared.graph.client.SyncGraphClient` offers); ``ctx`` carries the target,
the tenant's policy and the row's *checkpoint*, a dict the action fills with what it resolved and what state
it found **before** acting, persisted with ``ctx.save()``. A retry, or a resume after a crash, reads the
checkpoint instead of resolving again and re-reads Graph before acting again, so nothing is done twice in
effect: an account already disabled is not PATCHed again, a rule already gone is "already removed".

Errors are those of :mod:`shared.platform.errors` (the Graph client maps them): transient ones propagate
for the runner to retry; a post-condition not visible yet raises :class:`PostConditionNotMet` (transient).

    isolate_identity           disable the account + revoke sign-in sessions; verify accountEnabled=false
    remove_inbox_rule          list + match (never the audit identity); delete, or disable when delete is
                               refused; read-only/hidden/ambiguous → needs_manual with the Exchange cmdlet
    revoke_oauth_grant         list the client's delegated grants, delete them, list again
    disable_service_principal  accountEnabled=false on the service principal; verify
    clear_mailbox_forwarding   always needs_manual: Graph cannot clear ForwardingSmtpAddress
    enable_identity / restore_inbox_rule / enable_service_principal   the undo actions
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.graph.client import GraphUser, PermissionGrant, ServicePrincipalInfo
from shared.graph.rules import InboxRule, MatchOutcome, RuleMatch, ScoredRule, match_rules, parse_rule_identity
from shared.platform.errors import BadInputError, ServiceUnavailable
from shared.remediation.ledger import ActionKind
from shared.remediation.policy import PROTECTED_REASON, RemediationPolicy

__all__ = [
    "ACTIONS",
    "REQUIRED_PERMISSIONS",
    "ActionContext",
    "ActionFn",
    "ActionOutcome",
    "ActionResult",
    "GraphPort",
    "PostConditionNotMet",
    "clear_mailbox_forwarding",
    "disable_service_principal",
    "enable_identity",
    "enable_service_principal",
    "forwarding_cmdlet",
    "isolate_identity",
    "ps_quote",
    "remove_inbox_rule",
    "restore_inbox_rule",
    "revoke_oauth_grant",
]


class GraphPort(Protocol):
    """The Graph operations the actions use (implemented by :class:`shared.graph.client.SyncGraphClient`)."""

    @property
    def tenant_id(self) -> str:
        """The tenant the client acts in."""
        ...

    def get_user(self, user_id: str) -> GraphUser: ...

    def disable_user(self, user_id: str) -> None: ...

    def enable_user(self, user_id: str) -> None: ...

    def revoke_sessions(self, user_id: str) -> bool: ...

    def list_inbox_rules(self, user_id: str) -> list[InboxRule]: ...

    def delete_inbox_rule(self, user_id: str, rule_id: str) -> bool: ...

    def disable_inbox_rule(self, user_id: str, rule_id: str) -> InboxRule: ...

    def create_inbox_rule(self, user_id: str, rule: InboxRule) -> InboxRule: ...

    def list_permission_grants(self, *, client_id: str) -> list[PermissionGrant]: ...

    def delete_permission_grant(self, grant_id: str) -> bool: ...

    def get_service_principal(self, sp_id: str) -> ServicePrincipalInfo: ...

    def disable_service_principal(self, sp_id: str) -> None: ...

    def enable_service_principal(self, sp_id: str) -> None: ...


REQUIRED_PERMISSIONS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.ISOLATE_IDENTITY: ("User.Read.All", "User.EnableDisableAccount.All", "User.RevokeSessions.All"),
    ActionKind.ENABLE_IDENTITY: ("User.Read.All", "User.EnableDisableAccount.All"),
    ActionKind.REMOVE_INBOX_RULE: ("MailboxSettings.ReadWrite",),
    ActionKind.RESTORE_INBOX_RULE: ("MailboxSettings.ReadWrite",),
    ActionKind.REVOKE_OAUTH_GRANT: ("DelegatedPermissionGrant.ReadWrite.All",),
    ActionKind.DISABLE_SERVICE_PRINCIPAL: ("Application.ReadWrite.All",),
    ActionKind.ENABLE_SERVICE_PRINCIPAL: ("Application.ReadWrite.All",),
    ActionKind.CLEAR_MAILBOX_FORWARDING: (),
}
"""Least-privilege Microsoft Graph application permissions per action (docs/graph-remediation.md §1).

Disabling or enabling a privileged account also needs a high enough Entra role for the app.
clear_mailbox_forwarding needs none: it only produces the manual Exchange step (automating it would need
``Exchange.ManageAsApp`` and an Exchange role)."""


class PostConditionNotMet(ServiceUnavailable):
    """The action ran but Graph does not show its effect yet: retry (and re-check) later."""

    reason = "post_condition_not_met"


class ActionOutcome(StrEnum):
    """How an action ended when it did not raise."""

    SUCCEEDED = "succeeded"
    NEEDS_MANUAL = "needs_manual"
    SKIPPED = "skipped"


class ActionResult(BaseModel):
    """What an action did, for the ledger and the SOC. ``manual_steps`` are exact commands to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: ActionOutcome
    summary: str
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    manual_steps: tuple[str, ...] = ()
    note: str = ""


@dataclass(slots=True)
class ActionContext:
    """What an action gets besides the client. ``save()`` persists ``checkpoint`` (raises when ownership of
    the row was lost: stop at once)."""

    tenant_id: str
    key: str
    action: ActionKind
    target: Mapping[str, Any]
    checkpoint: dict[str, Any]
    policy: RemediationPolicy
    save: Callable[[], None]
    now: Callable[[], datetime]


ActionFn = Callable[[GraphPort, ActionContext], ActionResult]


# --------------------------------------------------------------------------- helpers


_PS_ESCAPE = {"`": "``", '"': '`"', "$": "`$", "\u201c": "`\u201c", "\u201d": "`\u201d", "\u201e": "`\u201e"}
_PS_CONTROL = {"\n": "`n", "\r": "`r", "\t": "`t", "\0": "`0"}


def ps_quote(value: str) -> str:
    """A PowerShell double-quoted string literal of ``value`` (attacker-chosen rule names cannot inject)."""
    out = []
    for ch in value:
        if ch in _PS_ESCAPE:
            out.append(_PS_ESCAPE[ch])
        elif ch in _PS_CONTROL:
            out.append(_PS_CONTROL[ch])
        elif ord(ch) < 0x20:
            out.append(" ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _ps_arg(value: str) -> str:
    """A bare argument when it is plainly safe (a UPN or a GUID), else a quoted literal."""
    if value and all(c.isascii() and (c.isalnum() or c in "@._-") for c in value):
        return value
    return ps_quote(value)


def forwarding_cmdlet(user: str) -> str:
    """The Exchange Online PowerShell step that clears mailbox forwarding."""
    return (
        f"Set-Mailbox -Identity {_ps_arg(user)} -ForwardingSmtpAddress $null -ForwardingAddress $null "
        "-DeliverToMailboxAndForward $false"
    )


def _list_rules_cmdlet(mailbox: str) -> str:
    return (
        f"Get-InboxRule -Mailbox {_ps_arg(mailbox)} -IncludeHidden | Format-List "
        "Name,Identity,RuleIdentity,Enabled,ForwardTo,RedirectTo,ForwardAsAttachmentTo,MoveToFolder,DeleteMessage"
    )


def _remove_rule_cmdlets(mailbox: str, name: str | None, rule_identity: int | None) -> list[str]:
    steps = [_list_rules_cmdlet(mailbox)]
    if name is not None:
        steps.append(f"Remove-InboxRule -Mailbox {_ps_arg(mailbox)} -Identity {ps_quote(name)}")
    if rule_identity is not None:
        steps.append(f"Remove-InboxRule -Mailbox {_ps_arg(mailbox)} -Identity {rule_identity}")
    elif name is not None:
        steps.append(
            "If several rules share that name, remove by the RuleIdentity Get-InboxRule shows: "
            f"Remove-InboxRule -Mailbox {_ps_arg(mailbox)} -Identity <RuleIdentity>"
        )
    return steps


def _on_prem_steps(upn: str) -> list[str]:
    literal = upn.replace("'", "''")
    flt = ps_quote("UserPrincipalName -eq '" + literal + "'")
    return [f"Get-ADUser -Filter {flt} | Disable-ADAccount"]


def _skipped(summary: str, **details: Any) -> ActionResult:
    return ActionResult(outcome=ActionOutcome.SKIPPED, summary=summary, reason=PROTECTED_REASON, details=details)


def _require(target: Mapping[str, Any], name: str) -> str:
    value = target.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"remediation target lacks {name!r}", reason="bad_target")
    return value.strip()


# --------------------------------------------------------------------------- identities


_ON_PREM_WARNING = (
    "the account is synchronised from on-premises Active Directory (onPremisesSyncEnabled): directory "
    "synchronisation may re-enable it; disable it on-premises too"
)


def isolate_identity(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Disable the account and revoke its sign-in sessions; verified by re-reading ``accountEnabled``.

    The state found first (``was_enabled``) is checkpointed before the PATCH, so an undo only re-enables an
    account this action disabled, and a resumed attempt that finds the account disabled does not PATCH again.
    """
    cp = ctx.checkpoint
    user = client.get_user(str(cp.get("user_id") or _require(ctx.target, "user")))
    if ctx.policy.is_protected(user.id, user.user_principal_name, ctx.target.get("user")):
        return _skipped(
            f"{user.user_principal_name or user.id} is on the never-disable list: not disabled",
            user_id=user.id,
            user_principal_name=user.user_principal_name,
        )
    if "was_enabled" not in cp:
        cp.update(
            user_id=user.id,
            user_principal_name=user.user_principal_name,
            was_enabled=user.account_enabled is not False,
            on_premises_sync_enabled=bool(user.on_premises_sync_enabled),
        )
        ctx.save()
    if user.account_enabled is not False:
        client.disable_user(user.id)
    if not cp.get("sessions_revoked"):
        client.revoke_sessions(user.id)
        cp["sessions_revoked"] = True
        ctx.save()
    after = client.get_user(user.id)
    if after.account_enabled is not False:
        raise PostConditionNotMet("the account still shows accountEnabled=true", tenant=ctx.tenant_id, key=ctx.key)
    upn = after.user_principal_name or user.user_principal_name or user.id
    warnings: list[str] = ["access tokens already issued stay valid until they expire (up to about an hour)"]
    steps: list[str] = []
    if after.on_premises_sync_enabled or user.on_premises_sync_enabled:
        warnings.insert(0, _ON_PREM_WARNING)
        steps = _on_prem_steps(upn)
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"{upn} disabled and its sign-in sessions revoked",
        details={
            "user_id": user.id,
            "user_principal_name": upn,
            "was_enabled": bool(cp["was_enabled"]),
            "account_enabled": False,
            "sessions_revoked": True,
            "on_premises_sync_enabled": bool(after.on_premises_sync_enabled or user.on_premises_sync_enabled),
        },
        warnings=tuple(warnings),
        manual_steps=tuple(steps),
        note="" if cp["was_enabled"] else "the account was already disabled",
    )


def enable_identity(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Undo of isolate_identity: enable the account again (revoked sessions stay revoked)."""
    user = client.get_user(_require(ctx.target, "user"))
    if user.account_enabled is not True:
        client.enable_user(user.id)
    after = client.get_user(user.id)
    if after.account_enabled is not True:
        raise PostConditionNotMet("the account still shows accountEnabled=false", tenant=ctx.tenant_id, key=ctx.key)
    upn = after.user_principal_name or user.id
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"{upn} enabled again",
        details={"user_id": user.id, "user_principal_name": upn, "account_enabled": True},
        note="" if user.account_enabled is not True else "the account was already enabled",
    )


# --------------------------------------------------------------------------- inbox rules

_ACTION_EVIDENCE = frozenset({"forwarding", "delete", "folder", "mark_as_read"})


def _choose(match: RuleMatch) -> list[ScoredRule]:
    """The rules to act on: the single strong match, or — when several are strong — those whose actions
    carry the malicious signature the record describes (forwarding, delete, folder, mark-as-read)."""
    if match.outcome is MatchOutcome.MATCHED and match.best is not None:
        return [match.best]
    if match.outcome is MatchOutcome.AMBIGUOUS:
        return [c for c in match.strong if c.agreeing & _ACTION_EVIDENCE]
    return []


def _rule_identity_of(target: Mapping[str, Any]) -> int | None:
    raw = target.get("rule_identity")
    if raw is None:
        return None
    return parse_rule_identity(str(raw))


def _strings(target: Mapping[str, Any], name: str) -> list[str]:
    v = target.get(name)
    return [str(x) for x in v] if isinstance(v, list | tuple) else []


def _bool_or_none(target: Mapping[str, Any], name: str) -> bool | None:
    v = target.get(name)
    return v if isinstance(v, bool) else None


def _match(target: Mapping[str, Any], rules: Sequence[InboxRule]) -> RuleMatch:
    """match_rules on what the alert says. When the alert lists recipients only as ``forward_to`` (the
    detector merges ForwardTo, RedirectTo and ForwardAsAttachmentTo), each forwarding kind is tried in turn and
    the first single strong match wins; otherwise the best outcome of the tries is returned."""
    name = target.get("rule_name")
    common: dict[str, Any] = {
        "name": name if isinstance(name, str) else None,
        "rule_identity": _rule_identity_of(target),
        "move_to_folder": target.get("move_to_folder") if isinstance(target.get("move_to_folder"), str) else None,
        "delete": _bool_or_none(target, "delete"),
        "mark_as_read": _bool_or_none(target, "mark_as_read"),
        "words": _strings(target, "words"),
    }
    forward = _strings(target, "forward_to")
    redirect = _strings(target, "redirect_to")
    attach = _strings(target, "forward_as_attachment_to")
    tries = [(forward, redirect, attach)]
    if forward and not redirect and not attach:
        tries += [([], forward, []), ([], [], forward)]
    results = [
        match_rules(rules, forward_to=f, redirect_to=r, forward_as_attachment_to=a, **common) for f, r, a in tries
    ]
    rank = {MatchOutcome.MATCHED: 0, MatchOutcome.AMBIGUOUS: 1, MatchOutcome.WEAK: 2, MatchOutcome.NONE: 3}
    return min(results, key=lambda m: rank[m.outcome])


def _candidates_summary(match: RuleMatch) -> list[dict[str, Any]]:
    return [
        {"id": c.rule.id, "display_name": c.rule.display_name, "score": c.score, "reasons": list(c.reasons)}
        for c in match.candidates[:10]
    ]


def remove_inbox_rule(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Remove the audited inbox rule, resolved by list-and-match, never by the audit record's identity.

    First attempt: list the mailbox's rules, :func:`match_rules` on name, recipients, folder, flags and
    words; checkpoint the resolved Graph ids with each rule's full definition (a retry never re-resolves and
    can never remove a benign rule made later with the same name; an undo recreates from the definition).
    Then delete each, or disable it when Graph refuses the delete; list again to verify. Read-only rules,
    rules Graph does not list (hidden) and unclear matches become needs_manual with the Exchange cmdlets.
    """
    cp = ctx.checkpoint
    mailbox = str(cp.get("mailbox") or _require(ctx.target, "mailbox"))
    name = ctx.target.get("rule_name") if isinstance(ctx.target.get("rule_name"), str) else None
    rule_identity = _rule_identity_of(ctx.target)
    listing = client.list_inbox_rules(mailbox)
    if "rules" not in cp:
        match = _match(ctx.target, listing)
        chosen = _choose(match)
        if not chosen:
            why = {
                MatchOutcome.NONE: "no listed rule matches: it may be hidden, renamed or already removed",
                MatchOutcome.WEAK: "no listed rule matches strongly enough to act on",
                MatchOutcome.AMBIGUOUS: "several rules match and none carries the malicious actions",
                MatchOutcome.MATCHED: "no rule chosen",
            }[match.outcome]
            return ActionResult(
                outcome=ActionOutcome.NEEDS_MANUAL,
                summary=f"inbox rule {name!r} on {mailbox} not removed: {why}",
                reason=f"rule_match_{match.outcome.value}",
                details={"mailbox": mailbox, "match": match.outcome.value, "candidates": _candidates_summary(match)},
                manual_steps=tuple(_remove_rule_cmdlets(mailbox, name, rule_identity)),
            )
        cp.update(
            mailbox=mailbox,
            match=match.outcome.value,
            rules=[
                {
                    "id": c.rule.id,
                    "rule_identity": c.rule.rule_identity,
                    "definition": c.rule.model_dump(mode="json"),
                    "reasons": list(c.reasons),
                }
                for c in chosen
            ],
        )
        ctx.save()
    by_id = {r.id: r for r in listing}
    effects: dict[str, str] = {}
    manual: list[str] = []
    for rec in cp["rules"]:
        rid = str(rec["id"])
        current = by_id.get(rid)
        if current is None:
            # Gone before this attempt acted: removed by an earlier attempt of ours, or by someone else.
            effects[rid] = "removed" if rid in cp.get("attempted", []) else "already_removed"
            continue
        if current.is_read_only:
            effects[rid] = "needs_manual"
            manual.extend(_remove_rule_cmdlets(mailbox, current.display_name, current.rule_identity))
            continue
        if rid not in cp.setdefault("attempted", []):
            cp["attempted"].append(rid)
            ctx.save()
        try:
            deleted = client.delete_inbox_rule(mailbox, rid)
            effects[rid] = "removed" if deleted else "delete_not_found"
        except BadInputError:
            try:
                client.disable_inbox_rule(mailbox, rid)
                effects[rid] = "disabled"
            except BadInputError:
                effects[rid] = "needs_manual"
                manual.extend(_remove_rule_cmdlets(mailbox, current.display_name, current.rule_identity))
    after = {r.id: r for r in client.list_inbox_rules(mailbox)}
    for rid, effect in list(effects.items()):
        current = after.get(rid)
        if effect == "needs_manual":
            continue
        if current is None:
            effects[rid] = "already_removed" if effect in ("delete_not_found", "already_removed") else "removed"
            continue
        if not current.is_enabled and effect in ("disabled", "delete_not_found"):
            # Graph refused the delete (e.g. 404 for a disabled rule): it stays, switched off.
            effects[rid] = "disabled"
            continue
        if effect == "delete_not_found":
            client.disable_inbox_rule(mailbox, rid)
            effects[rid] = "disabled"
            continue
        raise PostConditionNotMet("the inbox rule is still listed after removal", tenant=ctx.tenant_id, key=ctx.key)
    cp["effects"] = effects
    rules_out = [
        {
            "id": rec["id"],
            "rule_identity": rec.get("rule_identity"),
            "display_name": rec["definition"]["display_name"],
            "effect": effects[str(rec["id"])],
        }
        for rec in cp["rules"]
    ]
    details = {"mailbox": mailbox, "match": cp.get("match"), "rules": rules_out}
    shown = ", ".join(f"{r['display_name']!r} {r['effect'].replace('_', ' ')}" for r in rules_out)
    if manual:
        return ActionResult(
            outcome=ActionOutcome.NEEDS_MANUAL,
            summary=f"inbox rules on {mailbox}: {shown}; Graph cannot change read-only rules",
            reason="rule_read_only",
            details=details,
            manual_steps=tuple(dict.fromkeys(manual)),
        )
    disabled = [r for r in rules_out if r["effect"] == "disabled"]
    steps: list[str] = []
    for r in disabled:
        steps.extend(_remove_rule_cmdlets(mailbox, str(r["display_name"]), r["rule_identity"])[1:2])
    notes = []
    if all(r["effect"] == "already_removed" for r in rules_out):
        notes.append("already removed")
    if disabled:
        notes.append("Graph refused the delete; the rule is disabled, remove it with Exchange")
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"inbox rules on {mailbox}: {shown}",
        details=details,
        manual_steps=tuple(steps),
        note="; ".join(notes),
    )


def _same_definition(rule: InboxRule, definition: InboxRule) -> bool:
    return (
        rule.display_name == definition.display_name
        and rule.conditions == definition.conditions
        and rule.exceptions == definition.exceptions
        and rule.actions == definition.actions
    )


def restore_inbox_rule(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Undo of remove_inbox_rule: recreate each removed rule from the definition recorded at removal.

    Create is not idempotent, so the ids listed before creating are checkpointed first; a resumed attempt
    adopts a rule it finds that was not there before and has the recorded definition instead of creating a
    second one.
    """
    cp = ctx.checkpoint
    mailbox = _require(ctx.target, "mailbox")
    raw_rules = ctx.target.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise BadInputError("restore_inbox_rule needs the recorded rule definitions", reason="bad_target")
    definitions = [InboxRule.model_validate(r) for r in raw_rules]
    listing = client.list_inbox_rules(mailbox)
    if "before_ids" not in cp:
        cp["before_ids"] = sorted(r.id for r in listing)
        cp["created"] = {}
        ctx.save()
    before = set(cp["before_ids"])
    created: dict[str, str] = cp["created"]
    for d in definitions:
        if d.id in created:
            continue
        twin = next((r for r in listing if r.id not in before and _same_definition(r, d)), None)
        if twin is None:
            twin = client.create_inbox_rule(mailbox, d.model_copy(update={"id": ""}))
        created[d.id] = twin.id
        ctx.save()
    after = {r.id for r in client.list_inbox_rules(mailbox)}
    missing = [new for new in created.values() if new not in after]
    if missing:
        raise PostConditionNotMet("a restored inbox rule is not listed yet", tenant=ctx.tenant_id, key=ctx.key)
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"{len(created)} inbox rule(s) restored on {mailbox}",
        details={
            "mailbox": mailbox,
            "rules": [{"original_id": d.id, "id": created[d.id], "display_name": d.display_name} for d in definitions],
        },
        note="restored rules have new Graph ids",
    )


# --------------------------------------------------------------------------- applications

_MAX_GRANT_ROUNDS = 3


def revoke_oauth_grant(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Delete every delegated permission grant of the client (its service principal id), then list again."""
    cp = ctx.checkpoint
    sp_id = _require(ctx.target, "service_principal_id")
    grants = client.list_permission_grants(client_id=sp_id)
    if "grants" not in cp:
        cp["grants"] = [g.model_dump(mode="json") for g in grants]
        ctx.save()
    deleted: list[str] = []
    for _ in range(_MAX_GRANT_ROUNDS):
        if not grants:
            break
        for g in grants:
            if client.delete_permission_grant(g.id):
                deleted.append(g.id)
        grants = client.list_permission_grants(client_id=sp_id)
    if grants:
        raise PostConditionNotMet("permission grants are still listed", tenant=ctx.tenant_id, key=ctx.key)
    recorded = cp["grants"]
    scopes = sorted({s for g in recorded for s in str(g.get("scope") or "").split()})
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"{len(recorded)} delegated grant(s) of service principal {sp_id} revoked",
        details={
            "service_principal_id": sp_id,
            "grants": [g["id"] for g in recorded],
            "deleted_now": deleted,
            "scopes": scopes,
        },
        warnings=("access tokens already issued to the app stay valid until they expire",),
        note="" if recorded else "already removed",
    )


def _set_sp(client: GraphPort, ctx: ActionContext, *, enabled: bool) -> ActionResult:
    cp = ctx.checkpoint
    sp_id = _require(ctx.target, "service_principal_id")
    sp = client.get_service_principal(sp_id)
    app_id = ctx.target.get("app_id")
    if isinstance(app_id, str) and app_id and sp.app_id and sp.app_id.casefold() != app_id.casefold():
        raise BadInputError(
            "the service principal's appId differs from the alert's app id",
            reason="target_mismatch",
            tenant=ctx.tenant_id,
            service_principal_id=sp_id,
        )
    if not enabled and ctx.policy.is_protected(sp.id, sp.app_id):
        return _skipped(f"service principal {sp.display_name or sp.id} is on the never-disable list", sp_id=sp.id)
    if "was_enabled" not in cp:
        cp.update(service_principal_id=sp.id, app_id=sp.app_id, was_enabled=sp.account_enabled is not False)
        ctx.save()
    if sp.account_enabled is not enabled:
        if enabled:
            client.enable_service_principal(sp.id)
        else:
            client.disable_service_principal(sp.id)
    after = client.get_service_principal(sp.id)
    if after.account_enabled is not enabled:
        raise PostConditionNotMet("the service principal's accountEnabled did not change", tenant=ctx.tenant_id)
    verb = "enabled" if enabled else "disabled"
    already = sp.account_enabled is enabled
    return ActionResult(
        outcome=ActionOutcome.SUCCEEDED,
        summary=f"service principal {sp.display_name or sp.id} ({sp.app_id}) {verb}",
        details={
            "service_principal_id": sp.id,
            "app_id": sp.app_id,
            "display_name": sp.display_name,
            "was_enabled": bool(cp["was_enabled"]),
            "account_enabled": enabled,
        },
        note=f"already {verb}" if already else "",
    )


def disable_service_principal(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """accountEnabled=false on the service principal (no new tokens for the app in this tenant); verified."""
    return _set_sp(client, ctx, enabled=False)


def enable_service_principal(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Undo of disable_service_principal."""
    return _set_sp(client, ctx, enabled=True)


# --------------------------------------------------------------------------- forwarding


def clear_mailbox_forwarding(client: GraphPort, ctx: ActionContext) -> ActionResult:
    """Always needs_manual: Graph's mailboxSettings has no forwarding properties, so Graph cannot clear
    ForwardingSmtpAddress / ForwardingAddress. The result carries the exact Exchange Online step."""
    mailbox = _require(ctx.target, "mailbox")
    to = ", ".join(_strings(ctx.target, "forwarding_addresses"))
    return ActionResult(
        outcome=ActionOutcome.NEEDS_MANUAL,
        summary=f"clear the mailbox forwarding of {mailbox}" + (f" (to {to})" if to else "") + " in Exchange Online",
        reason="graph_cannot_clear_forwarding",
        details={"mailbox": mailbox, "forwarding_addresses": _strings(ctx.target, "forwarding_addresses")},
        manual_steps=(forwarding_cmdlet(mailbox),),
        note=(
            "Microsoft Graph cannot clear ForwardingSmtpAddress or ForwardingAddress (mailboxSettings has no "
            "forwarding properties); run the step in Exchange Online PowerShell (automating it needs the "
            "Exchange.ManageAsApp permission and an Exchange role). Check inbox rules and transport rules too."
        ),
    )


ACTIONS: dict[ActionKind, ActionFn] = {
    ActionKind.ISOLATE_IDENTITY: isolate_identity,
    ActionKind.REMOVE_INBOX_RULE: remove_inbox_rule,
    ActionKind.REVOKE_OAUTH_GRANT: revoke_oauth_grant,
    ActionKind.DISABLE_SERVICE_PRINCIPAL: disable_service_principal,
    ActionKind.CLEAR_MAILBOX_FORWARDING: clear_mailbox_forwarding,
    ActionKind.ENABLE_IDENTITY: enable_identity,
    ActionKind.RESTORE_INBOX_RULE: restore_inbox_rule,
    ActionKind.ENABLE_SERVICE_PRINCIPAL: enable_service_principal,
}
"""Every action by kind."""
