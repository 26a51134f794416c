"""Body of the ``deliver_alerts`` function: publish one incident revision to the partner's Logic App.

Also the delivery of the weekly reports (:func:`deliver_weekly_report`, called by the ``weekly_report``
timer body in :mod:`shared.pipeline.reports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shared.app import Services
from shared.pipeline.messages import IncidentRef
from shared.platform.errors import BadInputError, ConfigurationError


def delivery_client(svc: Services) -> Any:
    """The partner delivery client (ledger in Table Storage), built once per process."""

    def build() -> Any:
        import httpx

        from shared.alerts.delivery import PartnerDeliveryClient, TableDeliveryLedger

        endpoint = svc.settings.partner_endpoint
        if not endpoint:
            raise ConfigurationError("ITDR_PARTNER_ENDPOINT is not set")
        local = svc.extras.get("partner_allow_insecure", False)
        return PartnerDeliveryClient(
            endpoint,
            http=httpx.Client(),
            ledger=TableDeliveryLedger.from_storage(svc.storage),
            format=svc.settings.partner_format,
            sleep=svc.extras.get("sleep") or __import__("time").sleep,
            allowed_hosts=("127.0.0.1", "localhost") if local else _default_hosts(),
            allow_insecure=bool(local),
        )

    return svc.cached("delivery_client", build)


def _default_hosts() -> Any:
    from shared.alerts.delivery import DEFAULT_ALLOWED_HOSTS

    return DEFAULT_ALLOWED_HOSTS


def deliver(svc: Services, body: bytes) -> Any:
    """Deliver the incident named by the message (or a proof-of-life notice)."""
    try:
        kind = orjson.loads(body).get("kind")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise BadInputError("alerts message is not a JSON object", reason="invalid_message") from exc
    if kind == "proof_of_life":
        return _post_notice(svc, orjson.loads(body))
    ref = IncidentRef.parse(body)
    assert isinstance(ref, IncidentRef)
    from shared.pipeline.respond import correlator, decide_incident, incident_book

    if ref.partner_id is not None:
        pinc = correlator(svc).get_partner_incident(ref.partner_id, ref.incident_id)
        if pinc.revision > ref.revision:
            return None
        return delivery_client(svc).deliver(pinc)
    incident = incident_book(svc).get_incident(ref.tenant_id, ref.incident_id)
    if incident.revision > ref.revision:
        return None  # a later revision has its own message
    decision = decide_incident(svc, incident)
    if not decision.publish:
        return None  # dismissed or suppressed since it was queued
    return delivery_client(svc).deliver(incident, decision=decision)


def _post_notice(svc: Services, notice: dict[str, Any]) -> Any:
    client = delivery_client(svc)
    post = getattr(client, "deliver_notice", None)
    if post is None:
        raise ConfigurationError("this delivery client cannot send notices")
    return post(notice)


def deliver_weekly_report(svc: Services, report: Any, incidents: Sequence[Any]) -> Any:
    """Post one tenant's weekly report (once per tenant and week; see PartnerDeliveryClient.deliver_weekly_report).

    Raises ConfigurationError when no partner endpoint is set, and the client's errors when the post fails
    (the failure is recorded in the delivery ledger first).
    """
    return delivery_client(svc).deliver_weekly_report(report, incidents)


def send_weekly_reports(svc: Services) -> Any:
    from shared.pipeline.reports import weekly_reports

    return weekly_reports(svc)
