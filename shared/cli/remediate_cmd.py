"""`itdr remediate list|approve|reject|undo`: the human side of the remediation ledger.

    itdr remediate list    --tenant T [--state S]... [--incident I] [--json]
    itdr remediate approve --tenant T KEY --by NAME
    itdr remediate reject  --tenant T KEY --by NAME [--reason TEXT]
    itdr remediate undo    --tenant T KEY --by NAME

KEY is a row's idempotency key (``rm-…``) or a unique prefix of it (at least 8 characters). The rows live in
Table Storage (``remediations``); approve and undo send the action's message to the remediation queue.
The ``cmd_*`` functions take explicit storage clients, bus and clock (tests call them directly); the
argparse handler builds them from the settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import IO, Any

import orjson

from shared.cli.terminal import safe
from shared.platform.bus import MessageBus
from shared.platform.errors import BadInputError, ConfigurationError, NotFoundError
from shared.platform.storage import StorageClients
from shared.remediation.ledger import (
    LedgerEntry,
    RemediationLedger,
    RemediationState,
    TableRemediationLedger,
    utc_now,
)

__all__ = ["cmd_approve", "cmd_list", "cmd_reject", "cmd_undo", "register", "resolve_key", "run"]

_MIN_PREFIX = 8


def _ledger(storage: StorageClients | RemediationLedger) -> RemediationLedger:
    return TableRemediationLedger(storage) if isinstance(storage, StorageClients) else storage


def resolve_key(ledger: RemediationLedger, tenant_id: str, key: str) -> str:
    """The full key of a row given its key or a unique prefix; NotFoundError / BadInputError otherwise."""
    key = key.strip()
    if ledger.get_entry(tenant_id, key) is not None:
        return key
    if len(key) < _MIN_PREFIX:
        raise NotFoundError(f"no remediation {key!r} (a key prefix needs at least {_MIN_PREFIX} characters)")
    hits = [e.key for e in ledger.list_entries(tenant_id) if e.key.startswith(key)]
    if not hits:
        raise NotFoundError(f"no remediation {key!r} in tenant {tenant_id}")
    if len(hits) > 1:
        raise BadInputError(f"{key!r} matches {len(hits)} remediations: give more of the key")
    return hits[0]


def _target_text(entry: LedgerEntry) -> str:
    t = entry.target
    for field in ("user", "mailbox", "service_principal_id", "alert_id"):
        if t.get(field):
            text = str(t[field])
            if t.get("rule_name") is not None:
                text += f" rule {t['rule_name']!r}"
            return text
    return "-"


def _line(entry: LedgerEntry) -> str:
    summary = str(entry.result.get("summary") or "")
    parts = [
        entry.key,
        entry.state.value,
        entry.action.value,
        _target_text(entry),
        f"incident={entry.incident_id}",
        f"attempt={entry.attempt}",
        entry.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    if entry.reason:
        parts.append(f"reason={entry.reason}")
    if summary:
        parts.append(summary)
    return "  ".join(parts)


def cmd_list(
    storage: StorageClients | RemediationLedger,
    *,
    tenant_id: str | None = None,
    tenant_ids: Sequence[str] = (),
    states: Sequence[str] | None = None,
    incident_id: str | None = None,
    as_json: bool = False,
    out: IO[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> int:
    """Print remediations (one line each, or JSON lines with ``as_json``). Returns 0.

    ``tenant_id`` lists one tenant as before; otherwise ``tenant_ids`` (every tenant of ``names`` when empty),
    each line starting with the tenant's name, and ``tenant_name`` in JSON."""
    stream = out or sys.stdout
    try:
        wanted = [RemediationState(s) for s in states] if states else None
    except ValueError as exc:
        raise BadInputError(f"unknown state: {exc}") from exc
    labels = dict(names or {})
    across = tenant_id is None
    tenants = [tenant_id] if tenant_id is not None else (list(tenant_ids) or sorted(labels))
    ledger = _ledger(storage)
    entries = [e for t in tenants for e in ledger.list_entries(t, states=wanted, incident_id=incident_id)]
    for e in entries:
        if as_json:
            line = e.model_dump_json()
            if across:
                line = orjson.dumps({**orjson.loads(line), "tenant_name": labels.get(e.tenant_id, "")}).decode()
            stream.write(line + "\n")
        else:
            prefix = f"{labels.get(e.tenant_id) or e.tenant_id}  " if across else ""
            stream.write(safe(prefix + _line(e)) + "\n")
    if not as_json:
        stream.write(
            safe(f"{len(entries)} remediation(s)" + (f" in {len(tenants)} tenant(s)" if across else "")) + "\n"
        )
    return 0


def cmd_approve(
    storage: StorageClients | RemediationLedger,
    bus: MessageBus,
    *,
    tenant_id: str,
    key: str,
    by: str,
    clock: Callable[[], datetime] = utc_now,
    out: IO[str] | None = None,
    on_change: Callable[[Any], object] | None = None,
) -> int:
    """Approve a pending_approval action (its message is sent). 0 when it is now queued, 1 otherwise.

    ``on_change`` records the decision in the action's incident (the partner sees it).
    """
    from shared.remediation.runner import approve_action

    stream = out or sys.stdout
    ledger = _ledger(storage)
    full = resolve_key(ledger, tenant_id, key)
    entry = approve_action(ledger, bus, tenant_id, full, by=by, clock=clock, on_change=on_change)
    if entry.state is RemediationState.PENDING:
        stream.write(safe(f"approved {entry.key}: {entry.action.value} queued") + "\n")
        return 0
    stream.write(safe(f"{entry.key} is {entry.state.value}: not approved") + "\n")
    return 1


def cmd_reject(
    storage: StorageClients | RemediationLedger,
    *,
    tenant_id: str,
    key: str,
    by: str,
    reason: str = "",
    clock: Callable[[], datetime] = utc_now,
    out: IO[str] | None = None,
    on_change: Callable[[Any], object] | None = None,
) -> int:
    """Reject a pending_approval action. 0 when rejected, 1 when the row is in another state."""
    from shared.remediation.runner import reject_action

    stream = out or sys.stdout
    ledger = _ledger(storage)
    full = resolve_key(ledger, tenant_id, key)
    entry = reject_action(ledger, tenant_id, full, by=by, clock=clock, reason=reason, on_change=on_change)
    if entry.state is RemediationState.REJECTED:
        stream.write(safe(f"rejected {entry.key}: {entry.action.value}") + "\n")
        return 0
    stream.write(safe(f"{entry.key} is {entry.state.value}: not rejected") + "\n")
    return 1


def cmd_undo(
    storage: StorageClients | RemediationLedger,
    bus: MessageBus,
    *,
    tenant_id: str,
    key: str,
    by: str,
    clock: Callable[[], datetime] = utc_now,
    out: IO[str] | None = None,
) -> int:
    """Queue the undo of a succeeded action (recorded as its own row). Returns 0."""
    from shared.remediation.runner import request_undo

    stream = out or sys.stdout
    ledger = _ledger(storage)
    full = resolve_key(ledger, tenant_id, key)
    undo = request_undo(ledger, bus, tenant_id, full, by=by, clock=clock)
    stream.write(safe(f"undo of {full} queued as {undo.key}: {undo.action.value} ({undo.state.value})") + "\n")
    return 0


def _bus_from_settings() -> Any:
    from shared.platform.servicebus import ServiceBusSender
    from shared.platform.settings import Settings

    settings = Settings.from_env()
    if not settings.servicebus_namespace:
        raise ConfigurationError("set ServiceBusConnection__fullyQualifiedNamespace to send remediation messages")
    return ServiceBusSender.from_namespace(settings.servicebus_namespace, client_id=settings.managed_identity_client_id)


def run(args: argparse.Namespace) -> int:
    """The argparse handler: storage and bus from the settings."""
    from shared.platform.settings import Settings

    op = args.remediate_command
    if op != "list":
        from shared.platform.settings import OperatorSettings

        if args.api or OperatorSettings.from_env().api_url:
            from shared.cli.admin_client import connect

            admin = connect(args.api)
            result = admin.decide(args.tenant, args.key, op, reason=getattr(args, "reason", None) or "")
            sys.stdout.write(safe(f"{op} {result.get('key')}: {result.get('state')} (by {result.get('by')})") + "\n")
            return 0
        if not args.by:
            raise ConfigurationError("give --by NAME (or --api URL: the decision is recorded as your sign-in)")
    storage = StorageClients.from_settings(Settings.from_env())
    if op == "list":
        from shared.tenants import TenantDirectory

        tenants = list(args.tenant or [])
        return cmd_list(
            storage,
            tenant_id=tenants[0] if len(tenants) == 1 else None,
            tenant_ids=tenants,
            states=args.state,
            incident_id=args.incident,
            as_json=args.json or args.format == "json",
            names={r.tenant_id: r.name for r in TenantDirectory(storage).list()},
        )
    bus = _bus_from_settings()
    from shared.app import Services

    hook = Services(Settings.from_env(), storage=storage, bus=bus).remediation_recorder.record
    try:
        if op == "reject":
            reason = args.reason or ""
            return cmd_reject(storage, tenant_id=args.tenant, key=args.key, by=args.by, reason=reason, on_change=hook)
        if op == "approve":
            return cmd_approve(storage, bus, tenant_id=args.tenant, key=args.key, by=args.by, on_change=hook)
        return cmd_undo(storage, bus, tenant_id=args.tenant, key=args.key, by=args.by)
    finally:
        bus.close()


def register(subparsers: Any) -> None:
    """Add ``remediate list|approve|reject|undo`` to the ``itdr`` parser."""
    rem = subparsers.add_parser("remediate", help="list, approve, reject or undo remediation actions")
    sub = rem.add_subparsers(dest="remediate_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant (directory) id")

    lst = sub.add_parser("list", help="remediation actions of every tenant (or --tenant), with tenant names")
    lst.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    lst.add_argument("--format", choices=["table", "json"], default="table", help="json: JSON lines (as --json)")
    lst.add_argument(
        "--state", action="append", choices=[s.value for s in RemediationState], help="only these states (repeat)"
    )
    lst.add_argument("--incident", metavar="INCIDENT_ID", help="only this incident's actions")
    lst.add_argument("--json", action="store_true", help="JSON lines instead of text")
    for name, text in (
        ("approve", "approve a pending_approval action"),
        ("reject", "reject a pending_approval action"),
        ("undo", "undo a succeeded action"),
    ):
        p = sub.add_parser(name, help=text)
        common(p)
        p.add_argument("key", metavar="KEY", help="the action's key (rm-…) or a unique prefix")
        p.add_argument(
            "--by", metavar="NAME", help="who decides (recorded; required without --api, which records your sign-in)"
        )
        p.add_argument(
            "--api",
            metavar="URL",
            help="the deployed app's base URL (default ITDR_API_URL): decide through its admin API, signed in as you",
        )
        if name == "reject":
            p.add_argument("--reason", metavar="TEXT", help="why (kept in the ledger)")
    rem.set_defaults(handler=run)
