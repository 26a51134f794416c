"""New or changed alerts into incidents, and the incidents triage publishes onto the alerts queue.

The same attacker in several tenants is a higher risk: when a raised cross-tenant incident links an IP
address or an OAuth application of this batch's alerts to another tenant of the partner, the tenant's
incident holding the alert is escalated (:meth:`~shared.alerts.incidents.IncidentBook.escalate`), and
triage then publishes it at once whatever its severity (a medium sign-in of an attacker already seen at
another customer does not wait for an analyst).

Idempotent: incident IDs are deterministic and each (incident, revision) is one message ID
(``incident:<id>:<revision>``); a replay after a crash sees the incidents unchanged and publishes them
again under the same IDs, and the delivery ledger keeps the partner from getting any revision twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.alert_model import Alert
from shared.alerts.crosstenant import CrossTenantCorrelator, IndicatorKind, PartnerIncident
from shared.alerts.incidents import Incident, IncidentBook
from shared.alerts.triage import Triage
from shared.messages import IncidentRef
from shared.platform import names
from shared.platform.bus import MessageBus
from shared.platform.faults import crash_point

_ESCALATING = frozenset({IndicatorKind.IP, IndicatorKind.APP})
"""Indicators that name one attacker (an ASN is shared by many, so it links but does not escalate)."""


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
        partner = self._correlator.add_alerts(alerts, include_unchanged=True)
        incidents = self._escalate(tenant_id, incidents, partner)
        decide = self._triage.deciding(tenant_id)
        out = [IncidentRef.of(inc).message() for inc in incidents if decide(inc).publish]
        for pinc in partner:
            ref = IncidentRef(
                tenant_id=pinc.scope, incident_id=pinc.incident_id, revision=pinc.revision, partner_id=pinc.partner_id
            )
            out.append(ref.message())
        if out:
            self._bus.send(names.QUEUE_ALERTS, out)
        return incidents

    def _escalate(
        self, tenant_id: str, incidents: list[Incident], partner: Sequence[PartnerIncident]
    ) -> list[Incident]:
        """Escalate the tenant's incidents whose alerts a raised cross-tenant incident links to other tenants."""
        reasons: dict[str, list[str]] = {}
        for pinc in partner:
            if pinc.kind not in _ESCALATING or len(pinc.tenant_ids) < 2:
                continue
            others = [t for t in pinc.tenant_ids if t != tenant_id]
            if not others:
                continue
            label = "IP address" if pinc.kind is IndicatorKind.IP else "OAuth application"
            why = (
                f"{label} {pinc.indicator} also seen in {len(others)} other tenant{'s' if len(others) > 1 else ''} "
                f"of the partner (cross-tenant incident {pinc.incident_id})"
            )
            for s in pinc.sightings:
                if s.tenant_id == tenant_id:
                    reasons.setdefault(s.alert_id, []).append(why)
        if not reasons:
            return incidents
        out: list[Incident] = []
        for inc in incidents:
            for why in dict.fromkeys(w for aid in inc.alert_ids for w in reasons.get(aid, ())):
                if why not in inc.escalations:
                    inc, _ = self._book.escalate(tenant_id, inc.incident_id, why)
            out.append(inc)
        return out

    def publish(self, incident: Incident) -> IncidentRef | None:
        """Send the incident's current revision to the alerts queue when triage publishes it."""
        if not self._triage.decide(incident).publish:
            return None
        ref = IncidentRef.of(incident)
        self._bus.send(names.QUEUE_ALERTS, [ref.message()])
        return ref
