"""`itdr report credentials`: the users whose password is known to an attacker, for a period.

From the JSON Lines of `itdr scan` (``--alerts FILE``, offline) or from the deployed alert store
(Table Storage through the settings). Without dates: the last complete week.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import orjson


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="reports for partners")
    kinds = report.add_subparsers(dest="report", required=True)
    cred = kinds.add_parser("credentials", help="compromised-credential report (correct password, failed MFA)")
    cred.add_argument("--tenant", required=True, help="the tenant's Entra id")
    cred.add_argument("--alerts", metavar="FILE", help="JSON Lines of `itdr scan` (default: the alert store)")
    cred.add_argument("--since", help="ISO date or time (default: start of last week)")
    cred.add_argument("--until", help="ISO date or time (default: end of last week)")
    cred.add_argument("--format", choices=["json", "html"], default="json", help="output format")
    cred.set_defaults(handler=run)


def _when(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from shared.platform.errors import ConfigurationError
    from shared.reports.credentials import (
        build_credentials_report,
        credentials_report_json,
        last_week,
        render_credentials_html,
    )

    try:
        start, end = last_week(datetime.now(UTC))
        if args.since:
            start = _when(args.since)
        if args.until:
            end = _when(args.until)
    except ValueError as exc:
        raise ConfigurationError(f"bad date: {exc}") from exc
    alerts: list[Any]
    if args.alerts:
        with open(args.alerts, "rb") as fh:
            alerts = [orjson.loads(line) for line in fh if line.strip()]
    else:
        from shared.alerts.store import TableAlertStore
        from shared.platform.settings import Settings
        from shared.platform.storage import StorageClients

        store = TableAlertStore.from_storage(StorageClients.from_settings(Settings.from_env()))
        alerts = [s.to_dict() for s in store.list_alerts(args.tenant.lower(), since=start.timestamp())]
    try:
        report = build_credentials_report(alerts, tenant_id=args.tenant.lower(), start=start, end=end)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    out = credentials_report_json(report) if args.format == "json" else render_credentials_html(report).encode()
    sys.stdout.buffer.write(out + b"\n")
    return 0
