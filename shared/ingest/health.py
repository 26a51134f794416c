"""Feed health: is every tenant's audit feed flowing, and integration-health alerts when it is not.

:func:`check_feeds` (the ``feed_health`` timer) looks at every onboarded tenant and content type:

- the subscription state from ``/subscriptions/list`` (disabled by an admin: possible defence evasion,
  docs/management-activity-api.md §6 AF20023);
- the newest ``contentCreated`` the poller listed (checkpoint row) and the lag behind now; a feed
  silent for longer than its threshold (:data:`SILENCE_THRESHOLDS`; a new tenant gets
  :data:`FIRST_CONTENT_GRACE` first: the first blobs can take 12 h) raises an alert (§12.9, §12.11);
- a watermark more than :data:`WATERMARK_LAG_LIMIT` behind (the 7-day data-loss boundary nears, §12.15).

It repairs what it can through :func:`shared.ingest.onboarding.ensure_feeds` (restart a disabled or
missing subscription, re-register a disabled or missing webhook; 15 min spacing), replays content
messages parked because the subscription was off, records each repair in ``TABLE_FEED_HEALTH``, and
says when a person must act (audit logging off, missing permission). Once a day per tenant
(:data:`PROTECTED_REFRESH`) it re-reads the protected identities from Graph (directory role holders the
remediation never isolates automatically; best effort).

:func:`integration_alert` builds the alerts (category ``integration_health``, detector
:data:`DETECTOR`) with deterministic IDs: one alert per tenant, kind, content type and UTC day. The
poller and the content function use it too; :func:`emit_alerts` writes them to the alert sink
(the alert store) and sends the new ones to the detect function,
which folds them into incidents in the tenant's session, so the partner hears of the coverage gap
through the same triage and delivery as of an attack.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.alert_model import Alert, Finding, Severity, build_alert
from shared.ingest.checkpoints import FEED_CONTENT_TYPES, Checkpoint, CheckpointStore, utcnow
from shared.ingest.client import Subscription
from shared.ingest.context import IngestServices
from shared.ingest.ledger import RECORD_RETENTION_DAYS, ContentLedger, RecordLedger
from shared.ingest.onboarding import HUMAN_ACTIONS, ensure_feeds, refresh_protected_identities
from shared.messages import send_raised_alerts
from shared.platform import names
from shared.platform.errors import ItdrError, TransientError
from shared.platform.storage import encode_key
from shared.system_alerts import FEED_HEALTH
from shared.tenants import TenantRecord

log = logging.getLogger("itdr.ingest")

DETECTOR = FEED_HEALTH.id
SILENCE_THRESHOLDS: Mapping[str, timedelta] = {
    "Audit.AzureActiveDirectory": timedelta(hours=6),
    "Audit.Exchange": timedelta(hours=12),
    "Audit.SharePoint": timedelta(hours=24),
    "Audit.General": timedelta(hours=48),
}
"""Longest silence per content type before an alert (override: ``check_feeds(thresholds=...)`` or
``Services(feed_silence=...)``)."""
FIRST_CONTENT_GRACE = timedelta(hours=12)
WATERMARK_LAG_LIMIT = timedelta(hours=48)
SUBSCRIPTION_REASONS = frozenset({"subscription_disabled", "subscription_not_enabled"})
"""Park reasons of content messages that a subscription restart makes worth replaying."""

_KINDS: Mapping[str, tuple[str, Severity, tuple[str, ...]]] = {
    "subscription_disabled": ("Audit feed subscription disabled", Severity.HIGH, ("T1562.008",)),
    "subscription_missing": ("Audit feed subscription missing", Severity.MEDIUM, ()),
    "audit_log_disabled": ("Unified audit logging is off", Severity.HIGH, ("T1562.008",)),
    "feed_silent": ("Audit feed silent", Severity.MEDIUM, ()),
    "watermark_lag": ("Audit feed polling far behind", Severity.MEDIUM, ()),
    "data_loss_gap": ("Audit data lost: feed more than 7 days behind", Severity.HIGH, ()),
    "content_expired": ("Audit content expired before it was fetched", Severity.MEDIUM, ()),
    "content_missing": ("Audit content listed but missing", Severity.LOW, ()),
    "input_gap": ("Audit records missing: a workload fell silent", Severity.MEDIUM, ("T1562.008",)),
}


# ----------------------------------------------------------------------------- alerts


def integration_alert(
    *,
    tenant_id: str,
    kind: str,
    content_type: str,
    when: datetime,
    summary: str,
    context: Mapping[str, Any] | None = None,
) -> Alert:
    """An integration-health alert; the same tenant, kind, content type and UTC day give the same alert_id.

    ``kind`` is one of the keys of the module's table (``subscription_disabled``, ``feed_silent``,
    ``data_loss_gap``, ``content_expired``, ...) or any error reason (medium severity then).
    """
    title, severity, mitre = _KINDS.get(kind, (f"Audit feed problem: {kind}", Severity.MEDIUM, ()))
    day = when.astimezone(UTC).date().isoformat()
    ts = when.timestamp()
    finding = Finding(
        detector_id=FEED_HEALTH.id,
        tenant_id=tenant_id,
        user_key=None,
        user="",
        severity=severity,
        summary=summary,
        first_seen=ts,
        last_seen=ts,
        evidence_record_ids=(f"feed:{content_type}:{day}",),
        dedup_key=f"{kind}:{content_type}",
        context={"kind": kind, "content_type": content_type, **dict(context or {})},
        title=title,
        mitre=mitre,
    )
    return build_alert(FEED_HEALTH, finding)


def emit_alerts(svc: IngestServices, alerts: Iterable[Alert]) -> int:
    """Write alerts to the alert store, merging into ones already stored, and raise the new ones; returns how many."""
    unique: dict[tuple[str, str], Alert] = {}
    for alert in alerts:
        unique.setdefault((alert.tenant_id, alert.alert_id), alert)
    if not unique:
        return 0
    sink = svc.alert_store
    merged: list[Alert] = []
    new: dict[str, list[Alert]] = {}
    for alert in unique.values():
        old: Alert | None = sink.get_alert(alert.tenant_id, alert.alert_id)
        if old is not None:
            old.last_seen = max(old.last_seen, alert.last_seen)
            old.count += 1
            old.context.update(alert.context)
            alert = old
        else:
            new.setdefault(alert.tenant_id, []).append(alert)
            log.warning(
                "integration health: %s",
                alert.summary,
                extra={
                    "tenant_id": alert.tenant_id,
                    "category": alert.category.value,
                    "detector_id": alert.detector,
                    "kind": alert.context.get("kind"),
                },
            )
        merged.append(alert)
    sink.upsert_alerts(merged)
    # only new alerts: a problem that persists is counted on its alert, not re-sent to the partner
    # every half hour (a new day is a new alert)
    for tenant_id, fresh in new.items():
        send_raised_alerts(svc.bus, tenant_id, fresh, source="feed_health", shards=svc.settings.tenant_shards)
    return len(merged)


# ----------------------------------------------------------------------------- report


@dataclass(slots=True)
class FeedHealth:
    """One feed's state after the check."""

    tenant_id: str
    content_type: str
    subscription: str
    webhook: str | None = None
    last_content_at: datetime | None = None
    lag_s: float | None = None
    watermark: datetime | None = None
    alerts: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        for key in ("last_content_at", "watermark"):
            value = out[key]
            out[key] = value.isoformat() if value else None
        return out


@dataclass(frozen=True, slots=True)
class HumanAction:
    """Something only a person can fix."""

    tenant_id: str
    reason: str
    message: str


@dataclass(slots=True)
class HealthReport:
    """Every feed checked, the alerts raised, what needs a person, tenants that could not be checked."""

    feeds: list[FeedHealth] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    needs_human: list[HumanAction] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    replayed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "feeds": [f.to_dict() for f in self.feeds],
            "alerts": [a.to_dict() for a in self.alerts],
            "needs_human": [asdict(h) for h in self.needs_human],
            "errors": dict(self.errors),
            "replayed": self.replayed,
        }


# ----------------------------------------------------------------------------- the check


PROTECTED_REFRESH = timedelta(hours=24)
"""How often the feed check re-reads a tenant's protected identities from Graph."""


def check_feeds(
    svc: IngestServices, *, thresholds: Mapping[str, timedelta] | None = None, repair: bool = True
) -> HealthReport:
    """Check every onboarded tenant's feeds, raise integration alerts, repair what can be repaired."""
    limits = {**SILENCE_THRESHOLDS, **(svc.feed_silence), **(thresholds or {})}
    report = HealthReport()
    for record in svc.tenants.list():
        if record.status == "offboarded":
            continue
        try:
            _check_tenant(svc, record, limits, repair, report)
        except Exception as exc:  # one tenant's failure (API, storage, a bug) never stops the others
            reason = exc.reason if isinstance(exc, ItdrError) else type(exc).__name__
            report.errors[record.tenant_id] = reason
            log.warning("feed check failed: tenant=%s reason=%s", record.tenant_id, reason, exc_info=True)
    emit_alerts(svc, report.alerts)
    return report


def _check_tenant(
    svc: IngestServices, record: TenantRecord, limits: Mapping[str, timedelta], repair: bool, report: HealthReport
) -> None:
    tid = record.tenant_id
    now = utcnow(svc.clock)
    client = svc.management_client(tid)
    subs: list[Subscription] | None = None
    try:
        subs = client.list_subscriptions()
    except TransientError as exc:
        report.errors[tid] = exc.reason
    except ItdrError as exc:
        message = HUMAN_ACTIONS.get(exc.reason, f"{exc.reason}: {exc}")
        report.needs_human.append(HumanAction(tid, exc.reason, message))
        report.alerts.append(
            integration_alert(tenant_id=tid, kind=exc.reason, content_type="*", when=now, summary=message)
        )
    by_type = {s.content_type: s for s in subs or []}
    checkpoints = {c.content_type: c for c in CheckpointStore(svc.storage).list_checkpoints(tid)}
    feeds: dict[str, FeedHealth] = {}
    for ct in FEED_CONTENT_TYPES:
        feeds[ct] = _assess(record, ct, by_type.get(ct), checkpoints.get(ct), subs is not None, limits, now, report)
    if repair and subs is not None:
        _repair(svc, client, record, subs, feeds, now, report)
    refreshed = record.protected_refreshed_at
    if repair and (refreshed is None or now - refreshed >= PROTECTED_REFRESH):
        latest = svc.tenants.get(tid)  # as the repair may have left it (a rotated webhook AuthID)
        if latest is not None:
            refresh_protected_identities(svc, latest)  # best effort: reports, never raises for Graph
    for feed in feeds.values():
        _write_status(svc, feed, now)
    report.feeds.extend(feeds.values())
    ContentLedger(svc.storage).purge_expired(tid, now=now)
    ledger: RecordLedger = svc.record_ledger
    ledger.purge(tid, before=(now - timedelta(days=RECORD_RETENTION_DAYS)).date())


def _assess(
    record: TenantRecord,
    content_type: str,
    sub: Subscription | None,
    cp: Checkpoint | None,
    listed: bool,
    limits: Mapping[str, timedelta],
    now: datetime,
    report: HealthReport,
) -> FeedHealth:
    tid = record.tenant_id
    state = "unknown" if not listed else "missing" if sub is None else (sub.status or "unknown").lower()
    feed = FeedHealth(tid, content_type, state, sub.webhook.status if sub and sub.webhook else None)
    feed.last_content_at = cp.newest_content_at if cp else None
    feed.watermark = cp.watermark if cp else None
    if feed.last_content_at is not None:
        feed.lag_s = (now - feed.last_content_at).total_seconds()

    def raise_alert(kind: str, summary: str, **context: Any) -> None:
        feed.alerts.append(kind)
        report.alerts.append(
            integration_alert(
                tenant_id=tid, kind=kind, content_type=content_type, when=now, summary=summary, context=context
            )
        )

    if state == "disabled":
        raise_alert("subscription_disabled", f"The {content_type} subscription of tenant {tid} is disabled.")
    elif state == "missing":
        raise_alert("subscription_missing", f"Tenant {tid} has no {content_type} subscription.")
    silent_since = feed.last_content_at
    if silent_since is None and record.onboarded_at is not None:
        silent_since = record.onboarded_at + FIRST_CONTENT_GRACE
    limit = limits.get(content_type, timedelta(hours=48))
    if silent_since is not None and now - silent_since > limit:
        hours = round((now - silent_since).total_seconds() / 3600, 1)
        raise_alert(
            "feed_silent",
            f"No {content_type} content for tenant {tid} for {hours} h (threshold {limit}).",
            silent_hours=hours,
        )
    if feed.watermark is not None and now - feed.watermark > WATERMARK_LAG_LIMIT:
        hours = round((now - feed.watermark).total_seconds() / 3600, 1)
        raise_alert(
            "watermark_lag", f"Polling of {content_type} for tenant {tid} is {hours} h behind.", lag_hours=hours
        )
    return feed


def _repair(
    svc: IngestServices,
    client: Any,
    record: TenantRecord,
    subs: list[Subscription],
    feeds: dict[str, FeedHealth],
    now: datetime,
    report: HealthReport,
) -> None:
    tid = record.tenant_id
    _, outcomes = ensure_feeds(svc, client, record, subscriptions=subs)
    restarted = False
    for outcome in outcomes:
        feed = feeds[outcome.content_type]
        if outcome.action == "ok":
            continue
        before = (feed.subscription, feed.webhook)
        feed.repairs.append(f"{outcome.action}:{outcome.error}" if outcome.error else outcome.action)
        if outcome.action == "started":
            restarted = restarted or before[0] != "enabled"
            feed.subscription, feed.webhook = outcome.subscription, outcome.webhook
        if outcome.error in HUMAN_ACTIONS:
            report.needs_human.append(HumanAction(tid, outcome.error, HUMAN_ACTIONS[outcome.error]))
        _write_repair(svc, tid, outcome.content_type, now, before=before, outcome=outcome.to_dict())
    if restarted:
        from shared.ingest.deadletters import replay_deadletters

        replayed = replay_deadletters(svc, tenant_id=tid, queue=names.QUEUE_CONTENT, reasons=SUBSCRIPTION_REASONS)
        report.replayed += len(replayed)


def _write_status(svc: IngestServices, feed: FeedHealth, now: datetime) -> None:
    svc.storage.table(names.TABLE_FEED_HEALTH).upsert_entity(
        {
            "PartitionKey": encode_key(feed.tenant_id),
            "RowKey": encode_key(feed.content_type),
            "checked_at": now.isoformat(),
            "subscription": feed.subscription,
            "webhook": feed.webhook or "",
            "last_content_at": feed.last_content_at.isoformat() if feed.last_content_at else "",
            "lag_s": feed.lag_s if feed.lag_s is not None else -1.0,
            "alerts": ",".join(feed.alerts),
            "repairs": ",".join(feed.repairs),
        }
    )


def _write_repair(
    svc: IngestServices,
    tenant_id: str,
    content_type: str,
    now: datetime,
    *,
    before: tuple[str, str | None],
    outcome: Any,
) -> None:
    log.info(
        "feed repair: tenant=%s content_type=%s action=%s",
        tenant_id,
        content_type,
        outcome["action"],
        extra={"tenant_id": tenant_id, "content_type": content_type},
    )
    svc.storage.table(names.TABLE_FEED_HEALTH).upsert_entity(
        {
            "PartitionKey": encode_key(tenant_id),
            "RowKey": encode_key(f"repair|{content_type}|{now.isoformat()}"),
            "content_type": content_type,
            "repaired_at": now.isoformat(),
            "subscription_before": before[0],
            "webhook_before": before[1] or "",
            "outcome": orjson.dumps(outcome).decode(),
        }
    )
