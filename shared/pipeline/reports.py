"""The weekly per-tenant report: users whose password is known to an attacker, plus incidents.

Built by the ``weekly_report`` timer (stored in the reports container for the partner's portal
and Logic App to pick up) and by `itdr report credentials` (from Table Storage, or offline from
the JSON Lines of `itdr scan`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.app import Services
from shared.platform import names


def weekly_reports(svc: Services, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write last week's report of every onboarded tenant; returns a summary per tenant."""
    from shared.pipeline.respond import alert_store, incident_book, tenants
    from shared.reports.credentials import (
        build_credentials_report,
        credentials_report_json,
        last_week,
        render_credentials_html,
    )

    when = now or datetime.fromtimestamp(svc.clock(), UTC)
    start, end = last_week(when)
    container = svc.storage.container(names.CONTAINER_REPORTS)
    out: list[dict[str, Any]] = []
    from shared.ingest.historical_rules import scan_tenant_rules
    from shared.platform.errors import ItdrError

    for rec in tenants(svc).list():
        tid = rec.tenant_id
        try:  # rules that predate onboarding, or were made where the audit log did not see them
            scan_tenant_rules(svc, tid)
        except ItdrError as exc:
            out.append({"tenant_id": tid, "historical_rules_error": exc.reason})
        stored = alert_store(svc).list_alerts(tid, since=start.timestamp())
        report = build_credentials_report(
            [s.to_dict() for s in stored], tenant_id=tid, start=start, end=end, generated_at=when
        )
        incidents = incident_book(svc).list_incidents(tid, since=start.timestamp())
        base = f"weekly/{tid}/{end.strftime('%Y-%m-%d')}"
        container.upload_blob(f"{base}-credentials.json", credentials_report_json(report), overwrite=True)
        container.upload_blob(f"{base}-credentials.html", render_credentials_html(report).encode(), overwrite=True)
        out.append({"tenant_id": tid, "users": len(report.users), "incidents": len(incidents), "blob": base})
    return out
