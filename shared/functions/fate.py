"""A Service Bus message's fate, decided by the error tree (shared.platform.errors).

* success: the function returns, the host completes the message;
* `PermanentError`: the message is parked in the dead-letter table with its reason and completed
  (``itdr deadletters list | replay``); retrying cannot help;
* anything else (`TransientError`, unexpected bugs): the exception propagates, the host abandons the
  message, Service Bus redelivers it and dead-letters it after ``maxDeliveryCount`` with
  ``MaxDeliveryCountExceeded``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import orjson

from shared.app import Services
from shared.platform import names
from shared.platform.errors import PermanentError
from shared.platform.storage import encode_key
from shared.platform.telemetry import telemetry

log = logging.getLogger("itdr")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received Service Bus message, independent of the Functions binding types."""

    queue: str
    body: bytes
    message_id: str
    session_id: str | None = None
    delivery_count: int = 1


def _field_of(body: bytes, name: str) -> str | None:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = obj.get(name) if isinstance(obj, dict) else None
    return str(value) if value else None


def _tenant_of(body: bytes) -> str:
    tid = _field_of(body, "tenant_id")
    return tid.lower() if tid else "unknown"


def park(svc: Services, msg: Inbound, *, reason: str, description: str) -> None:
    """Record a message that cannot be processed, with its reason, for `itdr deadletters`."""
    tenant = _tenant_of(msg.body)
    svc.storage.table(names.TABLE_DEADLETTERS).upsert_entity(
        {
            "PartitionKey": encode_key(tenant),
            "RowKey": encode_key(f"{msg.queue}:{msg.message_id}"),
            "queue": msg.queue,
            "message_id": msg.message_id,
            "session_id": msg.session_id or "",
            "reason": reason,
            "description": description[:2000],
            "body": msg.body.decode("utf-8", errors="replace")[:60000],
            "delivery_count": msg.delivery_count,
            "parked_at": datetime.now(UTC).isoformat(),
        }
    )
    telemetry().metric("itdr.deadletters", 1, tenant_id=tenant, queue=msg.queue, reason=reason)
    if msg.queue == names.QUEUE_REMEDIATION:
        from shared.remediation.ledger import ActionKind
        from shared.remediation.runner import count_remediation

        action = _field_of(msg.body, "action")
        known = action if action in {k.value for k in ActionKind} else None  # no free text in telemetry
        count_remediation(tenant, known or "unknown", "dead_lettered")
    log.warning(
        "message parked",
        extra={"tenant_id": tenant, "queue": msg.queue, "message_id": msg.message_id, "reason": reason},
    )


def run_message(svc: Services, msg: Inbound, handler: Callable[[Services, bytes], T]) -> T | None:
    """Run a message handler with the fate rules of the module docstring."""
    try:
        return handler(svc, msg.body)
    except PermanentError as exc:
        park(svc, msg, reason=exc.reason, description=str(exc))
        return None
