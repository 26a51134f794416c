"""Body of ``weekly_report``: the weekly per-tenant report: users whose password is known to an attacker, plus incidents.

Built by the ``weekly_report`` timer and by `itdr report credentials` (from Table Storage, or offline
from the JSON Lines of `itdr scan`). The timer stores each tenant's report in the reports container
(JSON and HTML, for the partner's portal) and then delivers it like alerts: a ``weekly_report`` payload
POSTed to the partner's Logic App, once per tenant and ISO week (the delivery ledger and the
idempotency key ``wr-…-r1`` derived from tenant and week make a second run of the timer a no-op).
A failed delivery is recorded in the delivery ledger and logged; the stored report stays, and the
other tenants' reports are still delivered.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from shared.app import Services
from shared.platform import names

log = logging.getLogger(__name__)


def run(svc: Services, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write and deliver last week's report of every onboarded tenant; returns a summary per tenant.

    Each summary holds ``tenant_id``, ``users``, ``incidents``, ``blob`` and ``delivery``: the delivery
    outcome (``delivered``, ``already_delivered``), ``failed:<reason>`` or ``not_configured`` (no partner
    endpoint); plus ``historical_rules_error`` when the inbox-rule scan failed.
    """
    from shared.platform.errors import ItdrError
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
    deliver = bool(svc.settings.partner_endpoint)
    if not deliver:
        log.warning("weekly reports stored but not delivered: no partner endpoint (ITDR_PARTNER_ENDPOINT)")

    for rec in svc.tenants.list():
        if rec.status == "offboarded":
            continue  # no scan of its mailboxes, no report: the customer left
        tid = rec.tenant_id
        summary: dict[str, Any] = {"tenant_id": tid}
        try:  # rules that predate onboarding, or were made where the audit log did not see them
            svc.inbox_rule_sweep.scan(tid)
        except ItdrError as exc:
            summary["historical_rules_error"] = exc.reason
        stored = svc.alert_store.list_alerts(tid, since=start.timestamp())
        report = build_credentials_report(
            [s.to_dict() for s in stored], tenant_id=tid, start=start, end=end, generated_at=when
        )
        incidents = [
            i for i in svc.incident_book.list_incidents(tid, since=start.timestamp()) if i.first_seen < end.timestamp()
        ]
        base = f"weekly/{tid}/{end.strftime('%Y-%m-%d')}"
        container.upload_blob(f"{base}-credentials.json", credentials_report_json(report), overwrite=True)
        container.upload_blob(f"{base}-credentials.html", render_credentials_html(report).encode(), overwrite=True)
        summary.update({"users": len(report.users), "incidents": len(incidents), "blob": base})
        if not deliver:
            summary["delivery"] = "not_configured"
        else:
            try:
                summary["delivery"] = svc.delivery.deliver_weekly_report(report, incidents).outcome
            except ItdrError as exc:
                summary["delivery"] = f"failed:{exc.reason}"
                log.warning(
                    "weekly report not delivered; it stays in the reports container",
                    extra={"tenant_id": tid, "reason": exc.reason, "blob": base},
                )
        out.append(summary)
    return out
