"""`itdr remediate list|approve|reject|undo` over Table Storage (Azurite) and the in-process bus."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from shared.cli.main import build_parser
from shared.cli.remediate_cmd import cmd_approve, cmd_list, cmd_reject, cmd_undo, resolve_key, run
from shared.platform.errors import BadInputError, ConfigurationError, NotFoundError
from shared.remediation.ledger import (
    ActionKind,
    InMemoryRemediationLedger,
    LedgerEntry,
    RemediationRequest,
    RemediationState,
)


def _row(rig: Any, user: str, state: RemediationState, *, incident: str = "inc-1", seconds: int = 0) -> LedgerEntry:
    req = RemediationRequest(
        tenant_id=rig.tenant,
        incident_id=incident,
        action=ActionKind.ISOLATE_IDENTITY,
        target={"user": user},
        requested_by="itdr",
        approved=state is not RemediationState.PENDING_APPROVAL,
    )
    rig.clock.advance(seconds=seconds)
    created: LedgerEntry = rig.ledger.create_entry(LedgerEntry.new(req, state=state, at=rig.clock.now))
    return created


def test_list_prints_one_line_per_row_and_json_on_request(rig: Any, storage: Any) -> None:
    a = _row(rig, "a@contoso.com", RemediationState.PENDING_APPROVAL)
    b = _row(rig, "b@contoso.com", RemediationState.PENDING, incident="inc-2", seconds=5)
    out = io.StringIO()
    assert cmd_list(storage, tenant_id=rig.tenant, out=out) == 0
    assert out.getvalue().splitlines() == [
        f"{a.key}  pending_approval  isolate_identity  a@contoso.com  incident=inc-1  attempt=0  2025-03-10T15:00:00Z",
        f"{b.key}  pending  isolate_identity  b@contoso.com  incident=inc-2  attempt=0  2025-03-10T15:00:05Z",
        "2 remediation(s)",
    ]
    out = io.StringIO()
    cmd_list(storage, tenant_id=rig.tenant, states=["pending"], as_json=True, out=out)
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["key"] == b.key
    out = io.StringIO()
    cmd_list(storage, tenant_id=rig.other_tenant, out=out)
    assert out.getvalue() == "0 remediation(s)\n"
    with pytest.raises(BadInputError, match="unknown state"):
        cmd_list(storage, tenant_id=rig.tenant, states=["bogus"], out=io.StringIO())


def test_approve_and_reject_by_key_prefix(rig: Any, storage: Any) -> None:
    a = _row(rig, "a@contoso.com", RemediationState.PENDING_APPROVAL)
    b = _row(rig, "b@contoso.com", RemediationState.PENDING_APPROVAL)
    out = io.StringIO()
    assert (
        cmd_approve(storage, rig.bus, tenant_id=rig.tenant, key=a.key[:12], by="soc-lead", clock=rig.clock, out=out)
        == 0
    )
    assert out.getvalue() == f"approved {a.key}: isolate_identity queued\n"
    (msg,) = rig.receive()
    assert msg.message_id == f"{a.key}:1"
    out = io.StringIO()
    assert (
        cmd_reject(
            storage, tenant_id=rig.tenant, key=b.key, by="soc-lead", reason="known travel", clock=rig.clock, out=out
        )
        == 0
    )
    assert out.getvalue() == f"rejected {b.key}: isolate_identity\n"
    out = io.StringIO()
    assert cmd_approve(storage, rig.bus, tenant_id=rig.tenant, key=b.key, by="x", clock=rig.clock, out=out) == 1
    assert out.getvalue() == f"{b.key} is rejected: not approved\n"
    assert rig.states() == {a.key: RemediationState.PENDING, b.key: RemediationState.REJECTED}
    assert rig.row(a.key).approved_by == "soc-lead"


def test_undo_queues_the_undo_action(rig: Any, storage: Any) -> None:
    uid = rig.emu.add_user(rig.tenant, user_principal_name="alice@contoso.com")
    req = rig.record(
        RemediationRequest(
            tenant_id=rig.tenant,
            incident_id="inc-1",
            action=ActionKind.ISOLATE_IDENTITY,
            target={"user": "alice@contoso.com"},
            requested_by="itdr",
            approved=True,
        )
    )
    runner = rig.runner()
    runner.handle(req.to_body())
    out = io.StringIO()
    assert (
        cmd_undo(
            storage, rig.bus, tenant_id=rig.tenant, key=req.idempotency_key, by="soc-lead", clock=rig.clock, out=out
        )
        == 0
    )
    undo_key = rig.row(req.idempotency_key).undone_by
    assert out.getvalue() == f"undo of {req.idempotency_key} queued as {undo_key}: enable_identity (pending)\n"
    rig.drain(runner)
    assert rig.emu.state.user(rig.tenant, uid)["accountEnabled"] is True


def test_key_resolution_errors(rig: Any) -> None:
    a = _row(rig, "a@contoso.com", RemediationState.PENDING)
    assert resolve_key(rig.ledger, rig.tenant, a.key) == a.key
    with pytest.raises(NotFoundError, match="at least 8"):
        resolve_key(rig.ledger, rig.tenant, "rm-1")
    with pytest.raises(NotFoundError, match="no remediation"):
        resolve_key(rig.ledger, rig.tenant, "rm-ffffffffffff")
    with pytest.raises(NotFoundError):
        resolve_key(rig.ledger, rig.other_tenant, a.key)
    memory = InMemoryRemediationLedger()
    for suffix in ("1", "2"):
        twin = a.model_copy(update={"key": "rm-abcdefgh" + suffix})
        memory.create_entry(twin)
    with pytest.raises(BadInputError, match="matches 2"):
        resolve_key(memory, rig.tenant, "rm-abcdefgh")
    assert resolve_key(memory, rig.tenant, "rm-abcdefgh2") == "rm-abcdefgh2"


def test_the_subcommands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["remediate", "approve", "--tenant", "t1", "rm-abcdef12", "--by", "soc"])
    assert (args.handler, args.remediate_command, args.tenant, args.key, args.by) == (
        run,
        "approve",
        "t1",
        "rm-abcdef12",
        "soc",
    )
    args = parser.parse_args(
        ["remediate", "list", "--tenant", "t1", "--state", "failed", "--state", "pending", "--json"]
    )
    assert (args.state, args.json, args.incident) == (["failed", "pending"], True, None)
    args = parser.parse_args(["remediate", "reject", "--tenant", "t1", "k", "--by", "soc", "--reason", "fp"])
    assert args.reason == "fp"
    assert args.api is None
    # without --api, --by is required (with it, the decision is recorded as the operator's sign-in)
    with pytest.raises(ConfigurationError, match="give --by"):
        run(parser.parse_args(["remediate", "undo", "--tenant", "t1", "k"]))


def test_list_strips_escape_sequences_from_users_rule_names_and_reasons(rig: Any, storage: Any) -> None:
    req = RemediationRequest(
        tenant_id=rig.tenant,
        incident_id="inc-1",
        action=ActionKind.REMOVE_INBOX_RULE,
        target={"mailbox": "megan\x1b[2J@contoso.com", "rule_name": "\x1b]0;pwned\x07.\u202e"},
        requested_by="itdr",
        approved=False,
    )
    entry = rig.ledger.create_entry(
        LedgerEntry.new(req, state=RemediationState.PENDING_APPROVAL, at=rig.clock.now).model_copy(
            update={"reason": "analyst\r\x1b[31mnote\x9b0m"}
        )
    )
    out = io.StringIO()
    assert cmd_list(storage, tenant_id=rig.tenant, out=out) == 0
    assert out.getvalue().splitlines() == [
        # the rule name is printed with repr(), which already shows its control characters as escapes
        f"{entry.key}  pending_approval  remove_inbox_rule  megan@contoso.com rule '\\x1b]0;pwned\\x07.\\u202e'  "
        "incident=inc-1  attempt=0  "
        "2025-03-10T15:00:00Z  reason=analystnote",
        "1 remediation(s)",
    ]


def test_list_spans_every_tenant_with_names(rig: Any, storage: Any) -> None:
    a = _row(rig, "a@contoso.com", RemediationState.PENDING_APPROVAL)
    names = {rig.tenant: "Contoso", rig.other_tenant: "Fabrikam"}
    out = io.StringIO()
    assert cmd_list(storage, names=names, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"Contoso  {a.key}  pending_approval")
    assert lines[-1] == "1 remediation(s) in 2 tenant(s)"
    out = io.StringIO()
    cmd_list(storage, names=names, as_json=True, out=out)
    (line,) = out.getvalue().splitlines()
    assert (json.loads(line)["key"], json.loads(line)["tenant_name"]) == (a.key, "Contoso")
