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
from shared.pipeline.messages import EnrichedBatchRef, IncidentRef, RecordBatchRef
from shared.pipeline.stages import DetectResult, DetectStage, EnrichStage
from shared.platform import names
from shared.platform.bus import OutboundMessage
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
        from shared.enrich.factory import IntelFeeds, build_local_enricher, load_rogue_apps

        feeds: IntelFeeds = svc.extras.get("intel_feeds") or IntelFeeds()
        directory = tenants(svc)
        return DetectionEngine(
            default_registry(),
            store=TableStateStore(svc.storage.table(names.TABLE_USER_STATE)),
            sink=alert_store(svc),
            enricher=build_local_enricher(feeds, intel=svc.extras.get("ip_intel")),
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


def after_alerts(svc: Services, tenant_id: str, alerts: Sequence[Alert]) -> None:
    """New or changed alerts -> incidents; incidents the triage policy publishes -> the alerts queue.

    Idempotent: incident IDs are deterministic and each (incident, revision) is one message ID.
    """
    book = incident_book(svc)
    changed = book.add_alerts(alerts)
    crash_point("detect.after_incidents")
    if not changed:
        return
    from shared.alerts.triage import TriagePolicy, decide

    policy = svc.extras.get("triage_policy") or TriagePolicy()
    active = suppression_store(svc).list_suppressions(tenant_id)
    out: list[OutboundMessage] = []
    for inc in changed:
        decision = decide(inc, policy, active, now=svc.clock())
        if not decision.publish:
            continue
        revision = int(getattr(inc, "revision", 1))
        ref = IncidentRef(tenant_id=tenant_id, incident_id=inc.incident_id, revision=revision)
        out.append(OutboundMessage(ref.encode(), message_id=f"incident:{inc.incident_id}:{revision}"))
    if out:
        svc.bus.send(names.QUEUE_ALERTS, out)
    from shared.pipeline.remediation import plan_and_submit

    plan_and_submit(svc, tenant_id, changed)


def detect_message(svc: Services, body: bytes) -> DetectResult:
    ref = EnrichedBatchRef.parse(body)
    assert isinstance(ref, EnrichedBatchRef)
    stage = DetectStage(svc.storage, engine(svc), after_alerts=lambda t, a: after_alerts(svc, t, a))
    result = stage.handle(ref)
    tel = telemetry()
    tel.metric(
        "itdr.records.detected", result.outcome.processed, tenant_id=ref.tenant_id, content_type=ref.content_type
    )
    if result.alerts:
        tel.metric("itdr.alerts", len(result.alerts), tenant_id=ref.tenant_id)
    return result


def deliver_message(svc: Services, body: bytes) -> Any:
    from shared.pipeline.delivery import deliver

    return deliver(svc, body)


def remediation_message(svc: Services, body: bytes) -> Any:
    from shared.pipeline.remediation import run_remediation

    return run_remediation(svc, body)


def send_weekly_reports(svc: Services) -> Any:
    from shared.pipeline.delivery import send_weekly_reports as send

    return send(svc)
