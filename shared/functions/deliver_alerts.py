"""Body of ``deliver_alerts``: publish one incident revision (or a proof-of-life notice) to the partner's Logic App."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.alerts.delivery import DeliveryResult
from shared.alerts.store import AlertStatus
from shared.app import Services
from shared.messages import IncidentRef
from shared.platform import names
from shared.platform.bus import OutboundMessage
from shared.platform.errors import BadInputError, PermanentError, TransientError

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (60, 300, 900, 1800, 3600, 3600, 7200, 7200, 14400, 14400, 21600, 21600)
"""Waits before each new try while the partner endpoint is unavailable (after the client's own quick
retries): about 28 hours in all, then the message is parked with reason ``partner_unavailable``."""


class PartnerUnavailableError(PermanentError):
    """The partner endpoint stayed unavailable through every scheduled retry."""

    reason = "partner_unavailable"


def handle(svc: Services, body: bytes) -> DeliveryResult | None:
    """`deliver`; while the partner endpoint is unavailable, the same message again later (and this one done).

    A Logic App outage or throttling thus waits out hours without using up the queue's delivery count; the
    delivery ledger keeps a re-sent message that finds the revision delivered from posting it twice.
    """
    try:
        return deliver(svc, body)
    except TransientError as exc:
        obj = orjson.loads(body)
        retry = int(obj.get("retry") or 0)
        tenant = str(obj.get("tenant_id") or "unknown")
        if retry >= len(RETRY_DELAYS_S):
            raise PartnerUnavailableError(
                f"partner endpoint unavailable through {retry} scheduled retries: {exc}", tenant=tenant
            ) from exc
        delay = max(float(RETRY_DELAYS_S[retry]), exc.retry_after or 0.0)
        first = {k: v for k, v in obj.items() if k != "retry"}
        key = hashlib.sha256(orjson.dumps(first, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]
        again = OutboundMessage(
            orjson.dumps({**first, "retry": retry + 1}),
            message_id=f"delivery:{key}:retry:{retry + 1}",
            scheduled_enqueue_time=datetime.fromtimestamp(svc.clock() + delay, UTC),
        )
        svc.bus.send(names.QUEUE_ALERTS, [again])
        log.warning(
            "partner endpoint unavailable; delivery put off",
            extra={"tenant_id": tenant, "retry": retry + 1, "delay_s": delay, "reason": exc.reason},
        )
        return None


def deliver(svc: Services, body: bytes) -> DeliveryResult | None:
    """Deliver the incident named by the message (or a proof-of-life notice)."""
    try:
        kind = orjson.loads(body).get("kind")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise BadInputError("alerts message is not a JSON object", reason="invalid_message") from exc
    if kind == "proof_of_life":
        notice = orjson.loads(body)
        notice.pop("retry", None)
        return _post_notice(svc, notice)
    ref = IncidentRef.parse(body)
    assert isinstance(ref, IncidentRef)
    if ref.partner_id is not None:
        pinc = svc.correlator.get_partner_incident(ref.partner_id, ref.incident_id)
        if pinc.revision > ref.revision:
            return None
        return svc.delivery.deliver(pinc)
    incident = svc.incident_book.get_incident(ref.tenant_id, ref.incident_id)
    if incident.revision > ref.revision:
        return None  # a later revision has its own message
    decision = svc.triage.decide(incident)
    client = svc.delivery
    if not decision.publish:
        closing = incident.status is AlertStatus.DISMISSED and client.delivered_revision(ref.tenant_id, ref.incident_id)
        if not closing:
            return None  # suppressed, waiting for an analyst, or dismissed before the partner saw it
        # the partner has an earlier revision (a ticket): post the dismissal so it can be closed
        decision = dataclasses.replace(decision, publish=True)
    return client.deliver(incident, decision=decision)


def _post_notice(svc: Services, notice: dict[str, Any]) -> DeliveryResult:
    return svc.delivery.deliver_notice(notice)
