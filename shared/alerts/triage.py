"""SOC triage: publish an incident to the partner at once, or let it wait in the SOC queue for an analyst.

:func:`decide` takes an incident, the tenant's :class:`TriagePolicy` and its suppressions, and
answers with a :class:`Decision`. In order:

1. a dismissed incident is never published;
2. a confirmed incident is published (``publish_confirmed``), suppressions notwithstanding: an
   analyst's verdict on this incident outweighs a standing rule;
3. suppressions remove the alerts they match; when none is left, nothing is published;
4. with ``auto_publish`` off, everything else waits for an analyst;
5. the severity of what is left is recomputed (:func:`shared.alerts.incidents.assess`): in
   ``publish_severities`` (high and critical by default) it is published at once, as it is when one of
   its alerts is in ``publish_categories`` (``integration_health`` by default: a stopped or silent
   feed goes to the partner, who is the one who can fix it) or when the incident was escalated
   (``publish_escalated``: the same attacker seen in another tenant of the partner, recorded by
   :class:`shared.alerts.publisher.IncidentPublisher`); otherwise it waits for an analyst.

Every decision names the incident's place in the SOC queue (:class:`~shared.alerts.incidents.TriageState`):
low and medium incidents are ``awaiting_verdict`` (held back until an analyst confirms or dismisses
them); what is published at once is ``awaiting_confirmation`` (the partner has it, an analyst still
confirms it); a verdict is ``confirmed`` or ``dismissed`` (as is an incident whose every alert is
suppressed). The incident book stores the state on every change (:meth:`Triage.states` is its hook), so
``itdr alerts queue`` lists the queue across tenants.

The decision lists the alert IDs to publish and the suppressed ones with the suppression that hid
each; :func:`shared.alerts.payload.build_payload` leaves the suppressed alerts out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.alert_model import Category, Severity
from shared.alerts.incidents import Incident, IncidentBook, TriageState, assess
from shared.alerts.store import AlertStatus, AlertStore, StoredAlert
from shared.alerts.suppressions import Suppression, first_match
from shared.platform.errors import BadInputError, NotFoundError
from shared.tenants import TenantRecord


class TriagePolicy(BaseModel):
    """One tenant's publishing policy (defaults: publish high and critical at once, integration health and
    escalated incidents too, and anything confirmed; low and medium wait for an analyst's verdict)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = ""
    """The tenant this policy belongs to; empty for a default that any tenant may use."""
    auto_publish: bool = True
    """False: nothing is published without an analyst (confirmed incidents still are)."""
    publish_severities: frozenset[Severity] = Field(default=frozenset({Severity.HIGH, Severity.CRITICAL}))
    publish_confirmed: bool = True
    publish_categories: frozenset[Category] = frozenset({Category.INTEGRATION_HEALTH})
    """Alert categories published whatever their severity (``integration_health``: stopped or silent feeds)."""
    publish_escalated: bool = True
    """Publish at once an incident escalated because its attacker was seen in another tenant of the partner."""
    window: timedelta = timedelta(hours=24)
    """The grouping window used when severity is recomputed without suppressed alerts."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Publish or wait, and why."""

    publish: bool
    reason: str
    severity: Severity
    state: TriageState
    """The incident's place in the SOC queue under this decision."""
    alert_ids: tuple[str, ...] = ()
    """Alerts that go into the payload (all of them unless some were suppressed)."""
    suppressed: tuple[tuple[str, str], ...] = ()
    """(alert ID, suppression ID) of every suppressed alert."""


def _severities(sev: Iterable[Severity]) -> str:
    return ", ".join(s.value for s in sorted(sev, key=lambda s: s.rank)) or "none"


def decide(
    incident: Incident,
    policy: TriagePolicy,
    suppressions: Iterable[Suppression] = (),
    *,
    now: float | None = None,
) -> Decision:
    """Whether to publish ``incident`` now, with the reason (see the module docstring for the rules)."""
    if policy.tenant_id and policy.tenant_id != incident.tenant_id:
        raise BadInputError(
            "triage policy of another tenant", tenant=incident.tenant_id, policy_tenant=policy.tenant_id
        )
    at = time.time() if now is None else now
    all_ids = tuple(incident.alert_ids)
    last = incident.history[-1] if incident.history else None
    if incident.status is AlertStatus.DISMISSED:
        who = f" by {last.by}: {last.reason}" if last else ""
        return Decision(False, f"dismissed{who}", incident.severity, TriageState.DISMISSED, all_ids)
    if incident.status is AlertStatus.CONFIRMED:
        who = f" by {last.by}: {last.reason}" if last else ""
        if policy.publish_confirmed:
            return Decision(True, f"confirmed{who}", incident.severity, TriageState.CONFIRMED, all_ids)

    own = [s for s in suppressions if s.tenant_id == incident.tenant_id]
    kept = []
    hidden: list[tuple[str, str]] = []
    for entry in incident.entries:
        match = first_match(own, incident.tenant_id, incident.user_key, entry, now=at)
        if match is None:
            kept.append(entry)
        else:
            hidden.append((entry.alert_id, match.suppression_id))
    suppressed = tuple(hidden)
    kept_ids = tuple(e.alert_id for e in kept)
    if not kept:
        ids = ", ".join(sorted({s for _, s in hidden}))
        return Decision(
            False,
            f"all {len(hidden)} alerts suppressed ({ids})",
            incident.severity,
            TriageState.DISMISSED,
            (),
            suppressed,
        )

    severity, _ = assess(kept, window=policy.window)
    note = f"; {len(hidden)} suppressed alert{'s' if len(hidden) != 1 else ''} left out" if hidden else ""
    confirmed = incident.status is AlertStatus.CONFIRMED  # confirmed while publish_confirmed is off
    held = TriageState.CONFIRMED if confirmed else TriageState.AWAITING_VERDICT
    at_once = TriageState.CONFIRMED if confirmed else TriageState.AWAITING_CONFIRMATION
    if not policy.auto_publish:
        return Decision(
            False, f"waiting for an analyst: automatic publishing is off{note}", severity, held, kept_ids, suppressed
        )
    if severity in policy.publish_severities:
        reason = f"severity {severity.value} is published at once ({_severities(policy.publish_severities)}){note}"
        return Decision(True, reason, severity, at_once, kept_ids, suppressed)
    cats = sorted({e.category.value for e in kept} & {c.value for c in policy.publish_categories})
    if cats:
        reason = f"category {', '.join(cats)} is published at once{note}"
        return Decision(True, reason, severity, at_once, kept_ids, suppressed)
    if incident.escalations and policy.publish_escalated:
        reason = f"escalated: {incident.escalations[-1]}{note}"
        return Decision(True, reason, severity, at_once, kept_ids, suppressed)
    reason = (
        f"waiting for an analyst: severity {severity.value} is below the publish threshold "
        f"({_severities(policy.publish_severities)}){note}"
    )
    return Decision(False, reason, severity, held, kept_ids, suppressed)


def apply_alert_verdict(
    alerts: AlertStore,
    book: IncidentBook | None,
    tenant_id: str,
    alert_id: str,
    status: AlertStatus | str,
    *,
    by: str,
    reason: str = "",
) -> tuple[StoredAlert, Incident | None]:
    """Set an alert's status and carry the verdict to its incident.

    Confirming an alert confirms its incident (so triage publishes it); dismissing the last alert
    of an incident that is not dismissed yet dismisses the incident; acknowledging an alert
    acknowledges a ``new`` incident. Returns the alert and the incident when its status changed.
    """
    record = alerts.set_status(tenant_id, alert_id, status, by=by, reason=reason)
    if book is None:
        return record, None
    incident = book.find_incident_for_alert(tenant_id, alert_id)
    if incident is None:
        return record, None
    target: AlertStatus | None = None
    if record.status is AlertStatus.CONFIRMED and incident.status is not AlertStatus.CONFIRMED:
        target = AlertStatus.CONFIRMED
    elif record.status is AlertStatus.ACKNOWLEDGED and incident.status is AlertStatus.NEW:
        target = AlertStatus.ACKNOWLEDGED
    elif (
        record.status is AlertStatus.DISMISSED
        and incident.status is not AlertStatus.DISMISSED
        and all(_status_of(alerts, tenant_id, a) is AlertStatus.DISMISSED for a in incident.alert_ids if a != alert_id)
    ):
        target = AlertStatus.DISMISSED
    if target is None:
        return record, None
    why = f"alert {alert_id} {record.status.value}" + (f": {reason.strip()}" if reason.strip() else "")
    return record, book.set_status(tenant_id, incident.incident_id, target, by=by, reason=why)


def apply_incident_verdict(
    alerts: AlertStore,
    book: IncidentBook,
    tenant_id: str,
    incident_id: str,
    status: AlertStatus | str,
    *,
    by: str,
    reason: str = "",
) -> Incident:
    """An analyst's verdict on a whole incident (from the SOC queue): the incident and each of its alerts.

    The incident's triage state follows (confirmed, dismissed; acknowledging keeps it in the queue);
    alerts no longer in the alert store are left alone. Returns the incident as written.
    """
    target = AlertStatus(status)
    incident = book.get_incident(tenant_id, incident_id)
    why = reason.strip() or f"incident {incident_id} {target.value}"
    for alert_id in incident.alert_ids:
        current = _status_of(alerts, tenant_id, alert_id)
        if current is not None and current is not target:
            alerts.set_status(tenant_id, alert_id, target, by=by, reason=why)
    return book.set_status(tenant_id, incident_id, target, by=by, reason=reason)


def _status_of(alerts: AlertStore, tenant_id: str, alert_id: str) -> AlertStatus | None:
    try:
        return alerts.get_alert_record(tenant_id, alert_id).status
    except NotFoundError:
        return None


class TenantPolicies(Protocol):
    """Where a tenant's triage fields live (the tenant directory)."""

    def get(self, tenant_id: str) -> TenantRecord | None: ...


class SuppressionSource(Protocol):
    def list_suppressions(self, tenant_id: str) -> list[Suppression]: ...


class Triage:
    """The triage decision for incidents: each tenant's policy and its active suppressions, at the clock's now."""

    def __init__(
        self, tenants: TenantPolicies, suppressions: SuppressionSource, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._tenants = tenants
        self._suppressions = suppressions
        self._clock = clock

    def policy(self, tenant_id: str) -> TriagePolicy:
        """The tenant's triage policy (its tenant record's ``triage`` fields over the defaults)."""
        rec = self._tenants.get(tenant_id)
        return TriagePolicy.model_validate({**(rec.triage if rec is not None else {}), "tenant_id": tenant_id})

    def decide(self, incident: Incident) -> Decision:
        """Whether to publish one incident now."""
        return decide(
            incident,
            self.policy(incident.tenant_id),
            self._suppressions.list_suppressions(incident.tenant_id),
            now=self._clock(),
        )

    def deciding(self, tenant_id: str) -> Callable[[Incident], Decision]:
        """A decision function for many incidents of one tenant, with its policy and suppressions read once."""
        policy = self.policy(tenant_id)
        active = self._suppressions.list_suppressions(tenant_id)
        now = self._clock()
        return lambda incident: decide(incident, policy, active, now=now)

    def states(self, tenant_id: str) -> Callable[[Incident], TriageState]:
        """The incident book's triage hook: an incident's place in the SOC queue under the tenant's policy."""
        deciding = self.deciding(tenant_id)
        return lambda incident: deciding(incident).state
