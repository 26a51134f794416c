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

from shared.cli.terminal import safe
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
    tenants = subparsers.add_parser(
        "tenants", help="onboard tenants (consent links, bulk import) and show their status"
    )
    tsub = tenants.add_subparsers(dest="tenants_command", required=True)

    def api(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--api",
            metavar="URL",
            help="the deployed app's base URL (default ITDR_API_URL); you sign in with your own Entra account",
        )

    def fmt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=["table", "json"], default=None, help="output (default: table on a terminal, else json)"
        )

    add = tsub.add_parser("add", help="onboard a tenant (idempotent): register it and start its subscriptions")
    add.add_argument("--tenant", required=True, metavar="TENANT_ID", help="the tenant's Entra id")
    add.add_argument("--name", default="", help="a display name")
    add.add_argument("--partner", default="default", metavar="PARTNER_ID", help="who receives its alerts")
    add.add_argument("--cloud", choices=CLOUDS, default="commercial", help="the tenant's Microsoft 365 cloud")
    add.add_argument("--detection", metavar="FILE", help="JSON file of detection settings (TenantConfig fields)")
    api(add)
    add.set_defaults(handler=_tenants_add)
    imp = tsub.add_parser("import", help="onboard every tenant of a CSV file (idempotent), with a result table")
    imp.add_argument("file", metavar="FILE.csv", help="columns: tenant,name,partner,cloud,internal_domains,...")
    imp.add_argument("--workers", type=int, default=8, help="tenants onboarded at once (default 8)")
    imp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    api(imp)
    fmt(imp)
    imp.set_defaults(handler=_tenants_import)
    lst = tsub.add_parser("list", help="every tenant with its stored status")
    lst.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    lst.add_argument("--partner", action="append", metavar="PARTNER_ID", help="only this partner's (repeatable)")
    api(lst)
    fmt(lst)
    lst.set_defaults(handler=_tenants_list)
    status = tsub.add_parser("status", help="subscriptions and feed checkpoints: every tenant, or --tenant")
    status.add_argument("--tenant", action="append", metavar="TENANT_ID", help="only this tenant (repeatable)")
    status.add_argument("--offline", action="store_true", help="do not call the Management API")
    api(status)
    fmt(status)
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
    api(policy)
    policy.set_defaults(handler=_tenants_policy)
    link = tsub.add_parser("consent-link", help="a single-use admin-consent link per customer (or per CSV row)")
    link.add_argument("--partner", metavar="PARTNER_ID", help="the partner the customer belongs to")
    link.add_argument("--tenant", metavar="TENANT_ID", help="the customer's tenant id, when known")
    link.add_argument("--name", default="", help="the customer's display name")
    link.add_argument("--cloud", choices=CLOUDS, default="commercial", help="the tenant's Microsoft 365 cloud")
    link.add_argument("--ttl-hours", type=float, default=168.0, help="how long the link is valid (default 7 days)")
    link.add_argument("--csv", metavar="FILE", help="one link per row (columns tenant,name,partner,cloud)")
    api(link)
    fmt(link)
    link.set_defaults(handler=_tenants_consent_link)
    cstat = tsub.add_parser("consent-status", help="every consent link with its outcome and what to do")
    api(cstat)
    fmt(cstat)
    cstat.set_defaults(handler=_tenants_consent_status)

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
    dlist = dsub.add_parser("list", help="parked and dead-lettered messages of every tenant (or --tenant)")
    dlist.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's")
    fmt(dlist)
    dlist.set_defaults(handler=_deadletters_list)
    dreplay = dsub.add_parser("replay", help="send dead letters to their queue again")
    dreplay.add_argument("--tenant", metavar="TENANT_ID", help="only this tenant's")
    dreplay.add_argument("--queue", help="only messages dead-lettered from this queue")
    dreplay.add_argument("--reason", action="append", help="only these reasons (repeatable)")
    dreplay.add_argument("--id", dest="ids", action="append", metavar="MESSAGE_ID", help="only these (repeatable)")
    dreplay.add_argument("--all", action="store_true", help="replay everything that matches (no filter needed)")
    dreplay.set_defaults(handler=_deadletters_replay)


def _admin(args: argparse.Namespace) -> Any:
    from shared.cli.admin_client import connect

    return connect(getattr(args, "api", None))


def _format(args: argparse.Namespace) -> str:
    return str(args.format or ("table" if sys.stdout.isatty() else "json"))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], *, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(safe(_cell(row.get(key))) for key, _ in columns))
    width = None if sys.stdout.isatty() else 240  # a pipe or file: no folding at 80 columns
    Console(file=sys.stdout, width=width, markup=False, highlight=False).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _tenants_add(args: argparse.Namespace) -> int:
    detection = None
    if args.detection:
        try:
            detection = orjson.loads(Path(args.detection).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read detection settings {args.detection}: {exc}") from exc
    request = {"tenant_id": args.tenant, "name": args.name, "partner_id": args.partner, "cloud": args.cloud}
    if detection is not None:
        request["detection"] = detection
    _print(_admin(args).onboard(request))
    return 0


def _tenants_import(args: argparse.Namespace) -> int:
    from shared.cli.tenants_import import TenantResolver, run_import
    from shared.platform.settings import OperatorSettings

    if not Path(args.file).is_file():
        raise FileNotFoundError(2, "No such file", args.file)
    admin = _admin(args)
    resolver = TenantResolver(authority=OperatorSettings.from_env().authority)
    results, seconds = run_import(
        admin,
        args.file,
        resolve=resolver,
        workers=args.workers,
        fmt=_format(args),
        out=sys.stdout,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    counts: dict[str, int] = {}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"itdr tenants import: {len(results)} rows in {seconds:.1f} s: {summary}", file=sys.stderr)
    return 1 if any(r.result == "failed" for r in results) else 0


TENANT_COLUMNS = [
    ("tenant_id", "tenant"),
    ("name", "name"),
    ("partner_id", "partner"),
    ("cloud", "cloud"),
    ("state", "state"),
    ("first_content_at", "first content"),
    ("needs_human", "needs a person"),
]


def _selected(items: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    tenants = {t.lower() for t in getattr(args, "tenant", None) or []}
    partners = set(getattr(args, "partner", None) or [])
    return [
        t
        for t in items
        if (not tenants or str(t["tenant_id"]).lower() in tenants) and (not partners or t.get("partner_id") in partners)
    ]


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
    """:func:`shared.functions.admin_api.set_tenant_policy` (the admin API's code)."""
    from shared.functions.admin_api import set_tenant_policy as set_policy

    return set_policy(tenants, tenant_id, remediation=remediation, triage=triage)


def _tenants_policy(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"refresh_protected": bool(args.refresh_protected)}
    if args.remediation:
        body["remediation"] = _read_json(args.remediation, "remediation policy")
    if args.triage:
        body["triage"] = _read_json(args.triage, "triage policy")
    result = _admin(args).policy(args.tenant, body)
    if "protected" in result:
        _print({"protected": result.pop("protected")})
    _print(result)
    return 0


def _tenants_list(args: argparse.Namespace) -> int:
    items = _selected(_admin(args).list_tenants(), args)
    if _format(args) == "json":
        for item in items:
            _print(item)
    else:
        _table(items, TENANT_COLUMNS, title=f"{len(items)} tenants")
    return 0


def _tenants_status(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if args.tenant and not args.offline:
        items = [admin.status(t) for t in args.tenant]
    else:
        items = _selected(admin.list_tenants(), args)
        if not args.offline:
            items = [admin.status(str(t["tenant_id"])) for t in items]
    if _format(args) == "json":
        for item in items:
            _print(item)
        return 0
    rows = []
    for item in items:
        feeds = {f["content_type"].removeprefix("Audit."): f["subscription"] for f in item.get("feeds", [])}
        rows.append({**item, "feeds": "; ".join(f"{k} {v}" for k, v in feeds.items())})
    _table(rows, [*TENANT_COLUMNS[:5], ("feeds", "feeds"), *TENANT_COLUMNS[5:]], title=f"{len(rows)} tenants")
    return 0


def _tenants_consent_link(args: argparse.Namespace) -> int:
    import csv

    requests: list[dict[str, Any]] = []
    if args.csv:
        with open(args.csv, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                cells = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
                requests.append(
                    {
                        "partner_id": cells.get("partner") or args.partner or "default",
                        "tenant": cells.get("tenant") or None,
                        "name": cells.get("name", ""),
                        "cloud": cells.get("cloud") or args.cloud,
                        "ttl_hours": args.ttl_hours,
                    }
                )
    else:
        if not args.partner:
            raise ConfigurationError("give --partner (or --csv FILE)")
        requests.append(
            {
                "partner_id": args.partner,
                "tenant": args.tenant,
                "name": args.name,
                "cloud": args.cloud,
                "ttl_hours": args.ttl_hours,
            }
        )
    admin = _admin(args)
    links = [{**admin.consent_link(r), "name": r["name"]} for r in requests]
    if _format(args) == "json":
        for link in links:
            _print(link)
    else:
        for link in links:
            print(f"{safe(link['name'] or link['tenant_hint'] or link['partner_id'])}: {link['url']}")
    return 0


def _tenants_consent_status(args: argparse.Namespace) -> int:
    items = _admin(args).consent_records()
    if _format(args) == "json":
        for item in items:
            _print(item)
    else:
        columns = [
            ("issued_at", "issued"),
            ("partner_id", "partner"),
            ("name", "name"),
            ("tenant_id", "tenant"),
            ("status", "status"),
            ("action", "what to do"),
        ]
        _table(items, columns, title=f"{len(items)} consent links")
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

    svc = _services()
    names = {r.tenant_id: r.name for r in svc.tenants.list()}
    items = [
        {**i.to_dict(), "tenant_name": names.get(i.tenant_id, "")} for i in list_deadletters(svc, tenant_id=args.tenant)
    ]
    if _format(args) == "json":
        for item in items:
            _print(item)
        return 0
    columns = [
        ("tenant_name", "tenant"),
        ("tenant_id", "tenant id"),
        ("queue", "queue"),
        ("message_id", "message"),
        ("reason", "reason"),
        ("parked_at", "parked"),
        ("description", "description"),
    ]
    _table(items, columns, title=f"{len(items)} dead letters")
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
