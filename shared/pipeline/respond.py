"""Bodies of the enrichment, detection, delivery and remediation functions, built from `Services`.

Per process the engine, the IP tables and the stores are built once (``Services.cached``);
a message only costs its blob read, the state partition read on first touch, and one
batched state write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.app import Services
from shared.detection.engine import DetectionEngine
from shared.detection.model import Alert
from shared.detection.table_state import TableStateStore
from shared.enrich.identity import IdentityResolver
from shared.pipeline.messages import (
    EnrichedBatchRef,
    IncidentRef,
    RaisedAlertsRef,
    RecordBatchRef,
    is_raised_alerts,
    session_for,
    shard_of,
)
from shared.pipeline.stages import DetectResult, DetectStage, EnrichStage
from shared.platform import names
from shared.platform.bus import OutboundMessage
from shared.platform.errors import BadInputError
from shared.platform.faults import crash_point
from shared.platform.telemetry import telemetry
from shared.tenants import TenantDirectory


def tenants(svc: Services) -> TenantDirectory:
    directory: TenantDirectory = svc.cached("tenants", lambda: TenantDirectory(svc.storage))
    return directory


def alert_store(svc: Services) -> Any:
    """The Table alert store (the engine's sink and the SOC's store)."""

    def build() -> Any:
        from shared.alerts.store import TableAlertStore

        return TableAlertStore.from_storage(svc.storage)

    return svc.cached("alert_store", build)


def incident_book(svc: Services) -> Any:
    def build() -> Any:
        from shared.alerts.incidents import TableIncidentBook

        return TableIncidentBook.from_storage(svc.storage)

    return svc.cached("incident_book", build)


def suppression_store(svc: Services) -> Any:
    def build() -> Any:
        from shared.alerts.suppressions import TableSuppressionStore

        return TableSuppressionStore.from_storage(svc.storage)

    return svc.cached("suppressions", build)


def engine(svc: Services) -> DetectionEngine:
    def build() -> DetectionEngine:
        from detectors import default_registry
        from shared.enrich.factory import IntelFeeds, build_local_enricher, intel_config_from_settings, load_rogue_apps

        feeds: IntelFeeds | None = svc.extras.get("intel_feeds")
        if feeds is None:
            from shared.enrich.feeds import load_intel_feeds

            feeds = load_intel_feeds(svc)
        intel = svc.extras.get("ip_intel")
        if intel is None:  # the app settings' IP data and adapters, plus the stored feeds
            from shared.enrich.ipintel import IpIntelClient

            intel = IpIntelClient.from_config(intel_config_from_settings(svc.settings, feeds))
        directory = tenants(svc)
        return DetectionEngine(
            default_registry(),
            store=TableStateStore(svc.storage.table(names.TABLE_USER_STATE)),
            sink=alert_store(svc),
            enricher=build_local_enricher(feeds, intel=intel),
            tenant_config=directory.config,
            rogue_apps=load_rogue_apps(feeds.rogue_app_feeds),
        )

    built: DetectionEngine = svc.cached("engine", build)
    return built


def graph_or_none(svc: Services, tenant_id: str) -> Any:
    """The tenant's Graph client, or None when Graph is not configured (resolution waits)."""
    from shared.platform.errors import ConfigurationError

    try:
        return svc.graph_client(tenant_id)
    except ConfigurationError:
        return None


def enrich_message(svc: Services, body: bytes) -> EnrichedBatchRef:
    ref = RecordBatchRef.parse(body)
    assert isinstance(ref, RecordBatchRef)
    resolver: IdentityResolver = svc.cached(
        "identity_resolver", lambda: IdentityResolver(svc.storage, lambda t: graph_or_none(svc, t), clock=svc.clock)
    )
    return EnrichStage(svc.storage, svc.bus, resolver).handle(ref)


def correlator(svc: Services) -> Any:
    def build() -> Any:
        from shared.alerts.crosstenant import TableCrossTenantCorrelator

        def partner_of(tenant_id: str) -> str | None:
            rec = tenants(svc).get(tenant_id)
            return rec.partner_id if rec is not None else None

        return TableCrossTenantCorrelator.from_storage(svc.storage, partner_of)

    return svc.cached("correlator", build)


def triage_policy(svc: Services, tenant_id: str) -> Any:
    from shared.alerts.triage import TriagePolicy

    rec = tenants(svc).get(tenant_id)
    return TriagePolicy.model_validate({**(rec.triage if rec is not None else {}), "tenant_id": tenant_id})


def decide_incident(svc: Services, incident: Any, *, policy: Any = None, active: Any = None) -> Any:
    """The triage decision for an incident: the tenant's policy and active suppressions, now.

    Callers deciding many incidents of one tenant pass ``policy`` and ``active`` loaded once.
    """
    from shared.alerts.triage import decide

    if active is None:
        active = suppression_store(svc).list_suppressions(incident.tenant_id)
    if policy is None:
        policy = triage_policy(svc, incident.tenant_id)
    return decide(incident, policy, active, now=svc.clock())


def after_alerts(svc: Services, tenant_id: str, alerts: Sequence[Alert]) -> None:
    """New or changed alerts -> incidents; incidents the triage policy publishes -> the alerts queue.

    Idempotent: incident IDs are deterministic and each (incident, revision) is one message ID;
    a replay after a crash sees the incidents unchanged and publishes them again under the same IDs.
    """
    book = incident_book(svc)
    incidents = book.add_alerts(alerts, include_unchanged=True)
    crash_point("detect.after_incidents")
    out: list[OutboundMessage] = []
    policy = triage_policy(svc, tenant_id)
    active = suppression_store(svc).list_suppressions(tenant_id)
    for inc in incidents:
        if not decide_incident(svc, inc, policy=policy, active=active).publish:
            continue
        out.append(IncidentRef.of(inc).message())
    for pinc in correlator(svc).add_alerts(alerts, include_unchanged=True):
        ref = IncidentRef(
            tenant_id=pinc.scope, incident_id=pinc.incident_id, revision=pinc.revision, partner_id=pinc.partner_id
        )
        out.append(ref.message())
    if out:
        svc.bus.send(names.QUEUE_ALERTS, out)
    from shared.pipeline.remediation import plan_and_submit

    plan_and_submit(svc, tenant_id, incidents)


def alert_sink(svc: Services) -> Any:
    """Where alerts raised outside detection are kept: ``svc.extras["alert_sink"]`` when set, else the store."""
    return svc.extras.get("alert_sink") or alert_store(svc)


def raise_alerts(svc: Services, tenant_id: str, alerts: Sequence[Alert], *, source: str) -> int:
    """Send stored alerts raised outside detection to the detect queue, one message per session; returns the count.

    The message ID names the alerts, so raising the same ones again is one message (duplicate detection).
    """
    import hashlib

    shards = svc.settings.tenant_shards
    by_shard: dict[int, list[str]] = {}
    for a in alerts:
        by_shard.setdefault(shard_of(a.user_key, shards), []).append(a.alert_id)
    for shard, ids in sorted(by_shard.items()):
        ids = sorted(set(ids))
        digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
        ref = RaisedAlertsRef(tenant_id=tenant_id, alert_ids=ids, source=source)
        svc.bus.send(
            names.QUEUE_DETECT,
            [
                OutboundMessage(
                    ref.encode(),
                    message_id=f"raised:{tenant_id}:{shard}:{digest}",
                    session_id=session_for(tenant_id, shard, shards),
                )
            ],
        )
    return len(by_shard)


def fold_raised_alerts(svc: Services, ref: RaisedAlertsRef) -> list[Alert]:
    """The detect function's work for a `RaisedAlertsRef`: its alerts into incidents, triage, delivery, remediation."""
    sink = alert_sink(svc)
    found = {aid: sink.get_alert(ref.tenant_id, aid) for aid in ref.alert_ids}
    missing = sorted(aid for aid, a in found.items() if a is None)
    if missing:
        raise BadInputError(
            f"{len(missing)} raised alert(s) not in the alert store (first {missing[0]})",
            reason="alerts_missing",
            tenant=ref.tenant_id,
        )
    alerts = [a for a in found.values() if a is not None]
    after_alerts(svc, ref.tenant_id, alerts)
    count_alerts(ref.tenant_id, alerts)
    return alerts


def count_alerts(tenant_id: str, alerts: Sequence[Alert]) -> None:
    """``itdr.alerts`` per detector, severity and category (what the operations monitors query)."""
    from collections import Counter

    tel = telemetry()
    for (detector, severity, category), n in sorted(
        Counter((a.detector, a.severity.value, a.category.value) for a in alerts).items()
    ):
        tel.metric("itdr.alerts", n, tenant_id=tenant_id, detector_id=detector, severity=severity, category=category)


def detect_message(svc: Services, body: bytes) -> DetectResult | list[Alert]:
    if is_raised_alerts(body):
        raised = RaisedAlertsRef.parse(body)
        assert isinstance(raised, RaisedAlertsRef)
        return fold_raised_alerts(svc, raised)
    ref = EnrichedBatchRef.parse(body)
    assert isinstance(ref, EnrichedBatchRef)
    stage = DetectStage(svc.storage, engine(svc), after_alerts=lambda t, a: after_alerts(svc, t, a))
    result = stage.handle(ref)
    observer = svc.extras.get("on_detected")
    if observer is not None:  # the fault-injection run counts every record that reached detection
        observer(ref, result)
    tel = telemetry()
    tel.metric(
        "itdr.records.detected", result.outcome.processed, tenant_id=ref.tenant_id, content_type=ref.content_type
    )
    count_alerts(ref.tenant_id, result.alerts)
    return result


def deliver_message(svc: Services, body: bytes) -> Any:
    from shared.pipeline.delivery import deliver_or_reschedule

    return deliver_or_reschedule(svc, body)


def remediation_message(svc: Services, body: bytes) -> Any:
    from shared.pipeline.remediation import run_remediation

    return run_remediation(svc, body)


def send_weekly_reports(svc: Services) -> Any:
    from shared.pipeline.delivery import send_weekly_reports as send

    return send(svc)
