"""New or changed alerts into incidents, and the incidents triage publishes onto the alerts queue.

Idempotent: incident IDs are deterministic and each (incident, revision) is one message ID
(``incident:<id>:<revision>``); a replay after a crash sees the incidents unchanged and publishes them
again under the same IDs, and the delivery ledger keeps the partner from getting any revision twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.alert_model import Alert
from shared.alerts.crosstenant import CrossTenantCorrelator
from shared.alerts.incidents import Incident, IncidentBook
from shared.alerts.triage import Triage
from shared.messages import IncidentRef
from shared.platform import names
from shared.platform.bus import MessageBus
from shared.platform.faults import crash_point


class IncidentPublisher:
    """Folds alerts into the tenant's incidents and the partner's cross-tenant incidents, and publishes them."""

    def __init__(self, book: IncidentBook, correlator: CrossTenantCorrelator, triage: Triage, bus: MessageBus) -> None:
        self._book = book
        self._correlator = correlator
        self._triage = triage
        self._bus = bus

    def add_alerts(self, tenant_id: str, alerts: Sequence[Alert]) -> list[Incident]:
        """Fold ``alerts`` into incidents and publish what triage lets through; returns the incidents touched."""
        incidents = self._book.add_alerts(alerts, include_unchanged=True)
        crash_point("detect.after_incidents")
        decide = self._triage.deciding(tenant_id)
        out = [IncidentRef.of(inc).message() for inc in incidents if decide(inc).publish]
        for pinc in self._correlator.add_alerts(alerts, include_unchanged=True):
            ref = IncidentRef(
                tenant_id=pinc.scope, incident_id=pinc.incident_id, revision=pinc.revision, partner_id=pinc.partner_id
            )
            out.append(ref.message())
        if out:
            self._bus.send(names.QUEUE_ALERTS, out)
        return incidents

    def publish(self, incident: Incident) -> IncidentRef | None:
        """Send the incident's current revision to the alerts queue when triage publishes it."""
        if not self._triage.decide(incident).publish:
            return None
        ref = IncidentRef.of(incident)
        self._bus.send(names.QUEUE_ALERTS, [ref.message()])
        return ref
