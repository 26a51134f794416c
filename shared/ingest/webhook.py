"""The Management Activity API webhook (an anonymous HTTP function): handshake and notifications.

A notification is a hint: its blobs are enqueued like the poller's (ContentRef ``source="webhook"``,
MessageId = contentId, so the queue drops whichever of poller and webhook comes second) and polling
stays the source of truth (docs/management-activity-api.md §5).

Guards, in order; the first failure refuses the whole request, which is counted in
:class:`WebhookStats` (``svc.webhook_stats``) by reason (the caller is answered the reason, except where
the table says ``unauthorized``):

============================  ======  ==================================================================
check                         status  reason
============================  ======  ==================================================================
body larger than 1 MiB        413     ``too_large``
handshake AuthID unknown      401     ``handshake_unauthorized`` (answered ``unauthorized``)
not a JSON array of items     400     ``invalid_body``
tenant unknown / offboarded   401     ``unknown_tenant`` (answered ``unauthorized``, like a bad AuthID:
                                      no tenant oracle)
AuthID not the tenant's       401     ``bad_auth_id`` (answered ``unauthorized``; constant-time hash
                                      comparison)
content type not subscribed   400     ``unknown_content_type``
contentUri not this blob's    403     ``forbidden_content_uri`` (scheme, host, port, exactly
URI on the tenant's endpoint          ``/api/v1.0/{tenant}/activity/feed/audit/{contentId}`` with the
                                      notification's contentId, whose content type, when the id names
                                      one, is the notification's)
============================  ======  ==================================================================

The validation handshake (``Webhook-ValidationCode`` header or a ``{"validationCode"}`` body) gets 200
when its ``Webhook-AuthID`` matches a registered tenant (onboarding writes the tenant row, status
``onboarding``, before it calls ``/start``). AuthIDs are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from pydantic import TypeAdapter, ValidationError

from shared.ingest.checkpoints import FEED_CONTENT_TYPES
from shared.ingest.client import ContentNotification
from shared.ingest.clouds import content_uri_matches, normalize_tenant_id
from shared.ingest.context import IngestServices
from shared.ingest.onboarding import tenant_endpoint
from shared.ingest.poller import content_message_id
from shared.messages import ContentRef
from shared.platform import names
from shared.platform.bus import OutboundMessage
from shared.platform.errors import ConfigurationError, TransientError

log = logging.getLogger("itdr.ingest")

MAX_BODY = 1024 * 1024
UNAUTHORIZED = "unauthorized"
"""The one answer to an unknown tenant and to a wrong AuthID (the reasons are told apart only in the counts)."""
_NOTIFICATIONS = TypeAdapter(list[ContentNotification])


def _refuse(
    svc: IngestServices, status: int, reason: str, tenant: str | None = None, *, answer: str | None = None
) -> tuple[int, bytes]:
    """Count and log ``reason``; the caller gets ``answer`` (default: the reason) in the body."""
    svc.webhook_stats.count(refused=reason)
    log.warning(
        "webhook request refused: reason=%s tenant=%s",
        reason,
        tenant or "unknown",
        extra={"tenant_id": tenant or "unknown", "reason": reason},
    )
    return status, orjson.dumps({"error": answer or reason})


def _handshake_code(headers: Mapping[str, str], body: bytes) -> str | None:
    code = headers.get("webhook-validationcode")
    if code:
        return code
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("validationCode") if isinstance(obj, dict) else None
    return str(value) if value else None


def handle_webhook(svc: IngestServices, *, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
    """Answer one webhook POST: (HTTP status, JSON body). See the module docstring for the rules."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(body) > MAX_BODY:
        return _refuse(svc, 413, "too_large")
    auth_id = lowered.get("webhook-authid") or ""
    if _handshake_code(lowered, body) is not None:
        return _handshake(svc, auth_id)
    try:
        items = _NOTIFICATIONS.validate_json(body)
    except ValidationError:
        return _refuse(svc, 400, "invalid_body")
    directory = svc.tenants
    refs: list[ContentRef] = []
    for item in items:
        try:
            tenant = normalize_tenant_id(item.tenant_id)
        except ConfigurationError:
            return _refuse(svc, 401, "unknown_tenant", answer=UNAUTHORIZED)
        record = directory.get(tenant)
        if record is None or record.status == "offboarded":
            return _refuse(svc, 401, "unknown_tenant", tenant, answer=UNAUTHORIZED)
        if not record.webhook_auth_matches(auth_id):
            return _refuse(svc, 401, "bad_auth_id", tenant, answer=UNAUTHORIZED)
        if item.content_type not in FEED_CONTENT_TYPES:
            return _refuse(svc, 400, "unknown_content_type", tenant)
        if not content_uri_matches(
            item.content_uri,
            tenant_id=tenant,
            endpoint=tenant_endpoint(svc, record),
            content_id=item.content_id,
            content_type=item.content_type,
        ):
            return _refuse(svc, 403, "forbidden_content_uri", tenant)
        refs.append(
            ContentRef(
                tenant_id=record.tenant_id,
                content_type=item.content_type,
                content_id=item.content_id,
                content_uri=item.content_uri,
                content_created=item.content_created,
                content_expiration=item.content_expiration,
                source="webhook",
            )
        )
    if refs:
        messages = [OutboundMessage(r.encode(), message_id=content_message_id(r.content_id)) for r in refs]
        try:
            svc.bus.send(names.QUEUE_CONTENT, messages)
        except TransientError as exc:
            log.warning("webhook could not enqueue: reason=%s", exc.reason)
            return 503, orjson.dumps({"error": "unavailable"})
    svc.webhook_stats.count(accepted=len(refs))
    return 200, orjson.dumps({"accepted": len(refs)})


def _handshake(svc: IngestServices, auth_id: str) -> tuple[int, bytes]:
    record = svc.tenants.find_by_webhook_auth(auth_id)
    if record is not None:
        svc.webhook_stats.count(handshakes=1)
        log.info("webhook validated: tenant=%s", record.tenant_id, extra={"tenant_id": record.tenant_id})
        return 200, b"{}"
    return _refuse(svc, 401, "handshake_unauthorized", answer=UNAUTHORIZED)
