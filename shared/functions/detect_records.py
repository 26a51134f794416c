"""Body of ``detect_records``: detection over a batch, then incidents, triage, publishing and remediation.

The detect queue carries two messages: an `EnrichedBatchRef` (a batch to run the detectors over) and a
`RaisedAlertsRef` (alerts raised outside detection, by feed health or the inbox-rule sweep, already in the
alert store). Both end the same way, in :func:`after_alerts`, within the users' session, so two instances
never open two incidents for one user at the same moment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from shared.alert_model import Alert
from shared.app import Services
from shared.detection.stage import DetectResult, DetectStage
from shared.messages import EnrichedBatchRef, RaisedAlertsRef, is_raised_alerts
from shared.platform.errors import BadInputError
from shared.platform.telemetry import telemetry
from shared.remediation.incidents import plan_for_incidents


def handle(svc: Services, body: bytes) -> DetectResult | list[Alert]:
    if is_raised_alerts(body):
        raised = RaisedAlertsRef.parse(body)
        assert isinstance(raised, RaisedAlertsRef)
        return fold_raised_alerts(svc, raised)
    ref = EnrichedBatchRef.parse(body)
    assert isinstance(ref, EnrichedBatchRef)
    result = DetectStage(svc.storage, svc.engine, after_alerts=lambda t, a: after_alerts(svc, t, a)).handle(ref)
    if svc.on_detected is not None:
        svc.on_detected(ref, result)
    telemetry().metric(
        "itdr.records.detected", result.outcome.processed, tenant_id=ref.tenant_id, content_type=ref.content_type
    )
    count_alerts(ref.tenant_id, result.alerts)
    return result


def after_alerts(svc: Services, tenant_id: str, alerts: Sequence[Alert]) -> None:
    """New or changed alerts into incidents, the published ones to the alerts queue, then remediation."""
    incidents = svc.publisher.add_alerts(tenant_id, alerts)
    plan_for_incidents(svc.remediation, svc.remediation_policies.for_tenant(tenant_id), svc.alert_store, incidents)


def fold_raised_alerts(svc: Services, ref: RaisedAlertsRef) -> list[Alert]:
    """Alerts raised outside detection into incidents, triage, delivery and remediation."""
    found = {aid: svc.alert_store.get_alert(ref.tenant_id, aid) for aid in ref.alert_ids}
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
    tel = telemetry()
    for (detector, severity, category), n in sorted(
        Counter((a.detector, a.severity.value, a.category.value) for a in alerts).items()
    ):
        tel.metric("itdr.alerts", n, tenant_id=tenant_id, detector_id=detector, severity=severity, category=category)
