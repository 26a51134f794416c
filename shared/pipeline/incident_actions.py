"""Remediation outcomes into their incident, and the new incident revision to the partner.

The remediation runner calls :func:`record_remediation` (through :func:`remediation_hook`) after every
change of a ledger row. A row awaiting approval or in a final state (succeeded, failed, needs_manual,
skipped, rejected) becomes a :class:`~shared.alerts.incidents.RemediationEntry` of the row's incident;
the incident's revision is raised, and when triage publishes the incident the revision goes to the
alerts queue as an :class:`~shared.pipeline.messages.IncidentRef` with the message ID
``incident:<id>:<revision>``, exactly as :func:`shared.pipeline.respond.after_alerts` sends it.

Replay safe: the same row state gives an equal entry, which changes nothing (no new revision). When
the entry is already recorded and the incident's latest revision is the one that recorded it, the
revision's message is sent again under the same message ID (a crash between the incident write and
the send loses nothing; the delivery ledger keeps the partner from getting it twice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.alerts.incidents import Incident, RemediationEntry
from shared.app import Services
from shared.pipeline.messages import IncidentRef
from shared.platform import names
from shared.platform.errors import NotFoundError
from shared.platform.faults import crash_point
from shared.remediation.ledger import TERMINAL_STATES, LedgerEntry, RemediationState
from shared.remediation.runner import ChangeHook

__all__ = [
    "SHOWN_STATES",
    "record_remediation",
    "remediation_entry",
    "remediation_hook",
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


def _publish(svc: Services, incident: Incident) -> IncidentRef | None:
    from shared.pipeline.respond import decide_incident

    if not decide_incident(svc, incident).publish:
        return None
    ref = IncidentRef.of(incident)
    svc.bus.send(names.QUEUE_ALERTS, [ref.message()])
    return ref


def record_remediation(svc: Services, entry: LedgerEntry) -> IncidentRef | None:
    """Record a ledger row in its incident and publish the new revision; returns the message sent, if any.

    Rows in states incidents do not show, and rows whose incident does not exist (an action requested by
    hand for another ID), change nothing.
    """
    view = remediation_entry(entry)
    if view is None:
        return None
    from shared.pipeline.respond import incident_book

    try:
        incident, changed = incident_book(svc).record_remediation(entry.tenant_id, entry.incident_id, view)
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
    ref = _publish(svc, incident)
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


def remediation_hook(svc: Services) -> ChangeHook:
    """The runner's ``on_change``: :func:`record_remediation` on the services of this process."""

    def on_change(entry: LedgerEntry) -> None:
        record_remediation(svc, entry)

    return on_change
