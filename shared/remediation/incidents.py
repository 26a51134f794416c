"""Remediation outcomes into their incident, and the new incident revision to the partner.

The remediation runner calls :meth:`RemediationRecorder.record` (its ``on_change``) after every
change of a ledger row. A row awaiting approval or in a final state (succeeded, failed, needs_manual,
skipped, rejected) becomes a :class:`~shared.alerts.incidents.RemediationEntry` of the row's incident;
the incident's revision is raised, and when triage publishes the incident the revision goes to the
alerts queue as an :class:`~shared.messages.IncidentRef` with the message ID
``incident:<id>:<revision>``, exactly as :class:`shared.alerts.publisher.IncidentPublisher` sends it.

Replay safe: the same row state gives an equal entry, which changes nothing (no new revision). When
the entry is already recorded and the incident's latest revision is the one that recorded it, the
revision's message is sent again under the same message ID (a crash between the incident write and
the send loses nothing; the delivery ledger keeps the partner from getting it twice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shared.alert_model import Alert
from shared.alerts.incidents import Incident, IncidentBook, RemediationEntry
from shared.alerts.publisher import IncidentPublisher
from shared.alerts.store import AlertStatus
from shared.messages import IncidentRef
from shared.platform.errors import NotFoundError
from shared.platform.faults import crash_point
from shared.remediation.ledger import TERMINAL_STATES, LedgerEntry, RemediationState
from shared.remediation.policy import RemediationPolicy, plan
from shared.remediation.runner import RemediationRunner

__all__ = [
    "SHOWN_STATES",
    "RemediationRecorder",
    "plan_for_incidents",
    "remediation_entry",
    "target_text",
]

log = logging.getLogger(__name__)

SHOWN_STATES = TERMINAL_STATES | {RemediationState.PENDING_APPROVAL}
"""Ledger states an incident shows (pending and running rows are work in progress, not outcomes)."""

_DEFAULT_SUMMARY = {
    RemediationState.PENDING_APPROVAL: "awaiting approval",
    RemediationState.SUCCEEDED: "done",
    RemediationState.FAILED: "failed",
    RemediationState.NEEDS_MANUAL: "needs a manual step",
    RemediationState.SKIPPED: "skipped",
    RemediationState.REJECTED: "rejected",
}


def target_text(target: Mapping[str, Any]) -> str:
    """A short text naming what an action acts on: the user, mailbox (and rule), or service principal (and app)."""
    user = target.get("user")
    if user:
        return f"user {user}"
    mailbox = target.get("mailbox")
    if mailbox:
        text = f"mailbox {mailbox}"
        if target.get("rule_name") is not None:
            text += f" rule {target['rule_name']!r}"
        elif isinstance(target.get("rules"), list):
            text += f" ({len(target['rules'])} rule(s))"
        return text
    sp = target.get("service_principal_id")
    if sp:
        app = target.get("app_id")
        return f"service principal {sp}" + (f" (app {app})" if app else "")
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items()) if v not in (None, "", [], {})) or "-"


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if str(v).strip())
    return ()


def remediation_entry(entry: LedgerEntry) -> RemediationEntry | None:
    """The incident's view of a ledger row; None for a row in a state incidents do not show."""
    if entry.state not in SHOWN_STATES:
        return None
    result = entry.result or {}
    summary = str(result.get("summary") or "") or _DEFAULT_SUMMARY[entry.state]
    if entry.state is RemediationState.PENDING_APPROVAL and not result.get("summary"):
        summary = (
            f"awaiting approval: itdr remediate approve (or reject) --tenant {entry.tenant_id} {entry.key} --by NAME"
        )
    return RemediationEntry(
        idempotency_key=entry.key,
        action=entry.action.value,
        target=target_text(entry.target),
        state=entry.state.value,
        updated_at=entry.updated_at.timestamp(),
        reason=entry.reason,
        summary=summary,
        manual_steps=_texts(result.get("manual_steps")),
        warnings=_texts(result.get("warnings")),
        undo_of=entry.undo_of,
    )


class RemediationRecorder:
    """The runner's ``on_change``: each ledger row into its incident, and the new revision to the partner.

    Rows in states incidents do not show, and rows whose incident does not exist (an action requested by
    hand for another ID), change nothing.
    """

    def __init__(self, book: IncidentBook, publisher: IncidentPublisher) -> None:
        self._book = book
        self._publisher = publisher

    def record(self, entry: LedgerEntry) -> IncidentRef | None:
        """Record a ledger row in its incident and publish the new revision; returns the message sent, if any."""
        view = remediation_entry(entry)
        if view is None:
            return None
        try:
            incident, changed = self._book.record_remediation(entry.tenant_id, entry.incident_id, view)
        except NotFoundError:
            log.info(
                "remediation of an unknown incident not recorded",
                extra={"tenant_id": entry.tenant_id, "incident": entry.incident_id, "key": entry.key},
            )
            return None
        crash_point("remediation.after_incident")
        if not changed:
            recorded = next((r for r in incident.remediation if r.idempotency_key == view.idempotency_key), None)
            if recorded is None or recorded.revision != incident.revision:
                return None  # a later change of the incident has its own message
        ref = self._publisher.publish(incident)
        if changed:
            log.info(
                "remediation recorded in incident",
                extra={
                    "tenant_id": entry.tenant_id,
                    "incident": entry.incident_id,
                    "revision": incident.revision,
                    "action": entry.action.value,
                    "state": entry.state.value,
                    "published": ref is not None,
                },
            )
        return ref


class AlertLookup(Protocol):
    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...


def plan_for_incidents(
    runner: RemediationRunner,
    policy: RemediationPolicy,
    alerts: AlertLookup,
    incidents: Sequence[Incident],
) -> int:
    """Plan the remediation of changed incidents under the tenant's policy and submit the actions (replay-safe).

    Each alert counts at its incident's severity when that is higher (by default: a critical incident isolates
    at once, a high one asks, nothing below acts); a dismissed incident plans nothing."""
    if not policy.enabled:
        return 0
    submitted = 0
    for inc in incidents:
        if inc.status is AlertStatus.DISMISSED:
            continue
        found = [a for a in (alerts.get_alert(inc.tenant_id, aid) for aid in inc.alert_ids) if a is not None]
        planned = plan(found, policy, incident_id=inc.incident_id, incident_severity=inc.severity)
        if planned:
            submitted += len(runner.submit(planned))
    return submitted
