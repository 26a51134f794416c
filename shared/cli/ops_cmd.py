"""Operator commands: ``itdr tenants add|list|status|policy``, ``itdr replay``, ``itdr deadletters list|replay``.

``itdr tenants policy --tenant T [--remediation FILE] [--triage FILE] [--refresh-protected]`` sets a tenant's
own remediation and triage policies (JSON objects of :class:`~shared.remediation.policy.RemediationPolicy` and
:class:`~shared.alerts.triage.TriagePolicy` fields, validated before they are stored in the tenant record),
re-reads its protected identities from Graph on request, and prints the policies in effect.

They run against the deployed (or local) storage and bus of ``shared.app.services()``, and print JSON
(one object per line) so their output can be piped into ``jq``. ``itdr replay`` writes exactly what
``itdr scan`` writes for the same records.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared.platform.errors import ConfigurationError

CLOUDS = ("commercial", "gcc", "gcc_high", "dod")


def _services() -> Any:
    from shared.app import services

    return services()


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _time_arg(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def register(subparsers: Any) -> None:
    """Add the ``tenants``, ``replay`` and ``deadletters`` commands to the ``itdr`` parser."""
    tenants = subparsers.add_parser("tenants", help="onboard tenants and show their feed status")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True)
    add = tsub.add_parser("add", help="onboard a tenant (idempotent): register it and start its subscriptions")
    add.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant's Entra id")
    add.add_argument("--name", default="", help="a display name")
    add.add_argument("--partner", default="default", metavar="PARTNER_ID", help="who receives its alerts")
    add.add_argument("--cloud", choices=CLOUDS, default="commercial", help="the tenant's Microsoft 365 cloud")
    add.add_argument("--detection", metavar="FILE", help="JSON file of detection settings (TenantConfig fields)")
    add.set_defaults(handler=_tenants_add)
    tsub.add_parser("list", help="every tenant with its stored status").set_defaults(handler=_tenants_list)
    status = tsub.add_parser("status", help="one tenant's subscriptions and feed checkpoints")
    status.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant's Entra id")
    status.add_argument("--offline", action="store_true", help="do not call the Management API")
    status.set_defaults(handler=_tenants_status)
    policy = tsub.add_parser(
        "policy", help="set a tenant's remediation and triage policy; print the policies in effect"
    )
    policy.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant's Entra id")
    policy.add_argument("--remediation", metavar="FILE", help="JSON object of RemediationPolicy fields")
    policy.add_argument("--triage", metavar="FILE", help="JSON object of TriagePolicy fields")
    policy.add_argument(
        "--refresh-protected", action="store_true", help="re-read the protected identities from Graph first"
    )
    policy.set_defaults(handler=_tenants_policy)

    replay = subparsers.add_parser("replay", help="re-run detection over the raw archive of a tenant")
    replay.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant's Entra id")
    replay.add_argument("--since", required=True, type=_time_arg, metavar="ISO", help="start of the range (inclusive)")
    replay.add_argument("--until", required=True, type=_time_arg, metavar="ISO", help="end of the range (exclusive)")
    replay.add_argument(
        "--format", choices=["jsonl", "table", "html", "ocsf"], default=None, help="alert format, as for scan"
    )
    replay.add_argument("--output", metavar="FILE", help="write the alerts to FILE")
    replay.add_argument("--summary", metavar="FILE", help="write the JSON summary to FILE")
    replay.add_argument("--config", metavar="FILE", help="tenant settings, as for scan")
    replay.set_defaults(handler=_replay)

    dead = subparsers.add_parser("deadletters", help="messages that could not be processed")
    dsub = dead.add_subparsers(dest="deadletters_command", required=True)
    dlist = dsub.add_parser("list", help="parked and dead-lettered messages")
    dlist.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's")
    dlist.set_defaults(handler=_deadletters_list)
    dreplay = dsub.add_parser("replay", help="send dead letters to their queue again")
    dreplay.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's")
    dreplay.add_argument("--queue", help="only messages dead-lettered from this queue")
    dreplay.add_argument("--reason", action="append", help="only these reasons (repeatable)")
    dreplay.add_argument("--id", dest="ids", action="append", metavar="MESSAGE_ID", help="only these (repeatable)")
    dreplay.add_argument("--all", action="store_true", help="replay everything that matches (no filter needed)")
    dreplay.set_defaults(handler=_deadletters_replay)


def _tenants_add(args: argparse.Namespace) -> int:
    from shared.ingest.onboarding import onboard_tenant

    detection = None
    if args.detection:
        try:
            detection = orjson.loads(Path(args.detection).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read detection settings {args.detection}: {exc}") from exc
    status = onboard_tenant(
        _services(),
        tenant_id=args.tenant,
        name=args.name,
        partner_id=args.partner,
        cloud=args.cloud,
        detection=detection,
    )
    _print(status.to_dict())
    return 0


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"{what} {path} must be a JSON object")
    return value


def set_tenant_policy(
    tenants: Any,
    tenant_id: str,
    *,
    remediation: dict[str, Any] | None = None,
    triage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate and store a tenant's own remediation and/or triage policy (each replaces the tenant's earlier one);
    returns the policies in effect. ConfigurationError for an unknown tenant or an invalid field."""
    from pydantic import ValidationError

    from shared.alerts.triage import TriagePolicy
    from shared.remediation.policy import RemediationPolicies, RemediationPolicy

    record = tenants.get(tenant_id)
    if record is None:
        raise ConfigurationError("no such tenant: onboard it first (itdr tenants add)", tenant=tenant_id)
    update: dict[str, Any] = {}
    try:
        if remediation is not None:
            RemediationPolicy.model_validate({**remediation, "tenant_id": record.tenant_id})
            update["remediation"] = dict(remediation)
        if triage is not None:
            TriagePolicy.model_validate({**triage, "tenant_id": record.tenant_id})
            update["triage"] = dict(triage)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigurationError(f"invalid policy: {where}: {first['msg']}", tenant=tenant_id) from exc
    if update:
        tenants.upsert(record.model_copy(update=update))
    effective_triage = TriagePolicy.model_validate({**(triage or record.triage), "tenant_id": record.tenant_id})
    return {
        "tenant_id": record.tenant_id,
        "remediation": RemediationPolicies(tenants).for_tenant(record.tenant_id).model_dump(mode="json"),
        "triage": effective_triage.model_dump(mode="json"),
    }


def _tenants_policy(args: argparse.Namespace) -> int:
    svc = _services()
    if args.refresh_protected:
        from shared.ingest.onboarding import refresh_protected_identities

        record = svc.tenants.get(args.tenant)
        if record is None:
            raise ConfigurationError("no such tenant: onboard it first (itdr tenants add)", tenant=args.tenant)
        _, report = refresh_protected_identities(svc, record)
        _print({"protected": report})
    remediation = _read_json(args.remediation, "remediation policy") if args.remediation else None
    triage = _read_json(args.triage, "triage policy") if args.triage else None
    _print(set_tenant_policy(svc.tenants, args.tenant, remediation=remediation, triage=triage))
    return 0


def _tenants_list(args: argparse.Namespace) -> int:
    from shared.ingest.onboarding import list_tenant_statuses

    for item in list_tenant_statuses(_services()):
        _print(item)
    return 0


def _tenants_status(args: argparse.Namespace) -> int:
    from shared.ingest.onboarding import tenant_status

    _print(tenant_status(_services(), args.tenant, live=not args.offline).to_dict())
    return 0


def _replay(args: argparse.Namespace) -> int:
    from shared.cli.replay import replay

    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    svc = _services()
    kwargs: dict[str, Any] = {
        "tenant_id": args.tenant,
        "since": args.since,
        "until": args.until,
        "fmt": fmt,
        "summary_path": args.summary,
        "config_path": args.config,
    }
    if args.output:
        with open(args.output, "wb") as fh:
            replay(svc, output=fh, **kwargs)
    else:
        replay(svc, output=sys.stdout.buffer, **kwargs)
        sys.stdout.flush()
    return 0


def _deadletters_list(args: argparse.Namespace) -> int:
    from shared.ingest.deadletters import list_deadletters

    for item in list_deadletters(_services(), tenant_id=args.tenant):
        _print(item.to_dict())
    return 0


def _deadletters_replay(args: argparse.Namespace) -> int:
    from shared.ingest.deadletters import replay_deadletters

    if not (args.all or args.tenant or args.queue or args.reason or args.ids):
        print("itdr deadletters replay: give a filter (--tenant, --queue, --reason, --id) or --all", file=sys.stderr)
        return 2
    replayed = replay_deadletters(
        _services(),
        tenant_id=args.tenant,
        queue=args.queue,
        reasons=set(args.reason) if args.reason else None,
        message_ids=set(args.ids) if args.ids else None,
    )
    for item in replayed:
        _print({"replayed": True, **item.to_dict()})
    return 0
