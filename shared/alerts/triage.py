"""SOC triage: publish an incident to the partner at once, or let it wait for an analyst.

:func:`decide` takes an incident, the tenant's :class:`TriagePolicy` and its suppressions, and
answers with a :class:`Decision`. In order:

1. a dismissed incident is never published;
2. a confirmed incident is published (``publish_confirmed``), suppressions notwithstanding: an
   analyst's verdict on this incident outweighs a standing rule;
3. suppressions remove the alerts they match; when none is left, nothing is published;
4. with ``auto_publish`` off, everything else waits for an analyst;
5. the severity of what is left is recomputed (:func:`shared.alerts.incidents.assess`): in
   ``publish_severities`` (high and critical by default) it is published, as it is when one of
   its alerts is in ``publish_categories``; otherwise it waits for an analyst.

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
from shared.alerts.incidents import Incident, IncidentBook, assess
from shared.alerts.store import AlertStatus, AlertStore, StoredAlert
from shared.alerts.suppressions import Suppression, first_match
from shared.platform.errors import BadInputError, NotFoundError
from shared.tenants import TenantRecord


class TriagePolicy(BaseModel):
    """One tenant's publishing policy (defaults: publish high and critical, and anything confirmed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = ""
    """The tenant this policy belongs to; empty for a default that any tenant may use."""
    auto_publish: bool = True
    """False: nothing is published without an analyst (confirmed incidents still are)."""
    publish_severities: frozenset[Severity] = Field(default=frozenset({Severity.HIGH, Severity.CRITICAL}))
    publish_confirmed: bool = True
    publish_categories: frozenset[Category] = frozenset()
    """Alert categories published whatever their severity (e.g. ``integration_health``)."""
    window: timedelta = timedelta(hours=24)
    """The grouping window used when severity is recomputed without suppressed alerts."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Publish or wait, and why."""

    publish: bool
    reason: str
    severity: Severity
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
        return Decision(False, f"dismissed{who}", incident.severity, all_ids)
    if incident.status is AlertStatus.CONFIRMED and policy.publish_confirmed:
        who = f" by {last.by}: {last.reason}" if last else ""
        return Decision(True, f"confirmed{who}", incident.severity, all_ids)

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
        return Decision(False, f"all {len(hidden)} alerts suppressed ({ids})", incident.severity, (), suppressed)

    severity, _ = assess(kept, window=policy.window)
    note = f"; {len(hidden)} suppressed alert{'s' if len(hidden) != 1 else ''} left out" if hidden else ""
    if not policy.auto_publish:
        return Decision(
            False, f"waiting for an analyst: automatic publishing is off{note}", severity, kept_ids, suppressed
        )
    if severity in policy.publish_severities:
        reason = f"severity {severity.value} is published at once ({_severities(policy.publish_severities)}){note}"
        return Decision(True, reason, severity, kept_ids, suppressed)
    cats = sorted({e.category.value for e in kept} & {c.value for c in policy.publish_categories})
    if cats:
        return Decision(True, f"category {', '.join(cats)} is published at once{note}", severity, kept_ids, suppressed)
    reason = (
        f"waiting for an analyst: severity {severity.value} is below the publish threshold "
        f"({_severities(policy.publish_severities)}){note}"
    )
    return Decision(False, reason, severity, kept_ids, suppressed)


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
