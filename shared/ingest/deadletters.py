"""Parked and dead-lettered messages: what `itdr deadletters` lists and replays, and the feed check re-sends.

Rows of ``TABLE_DEADLETTERS`` (parked by the function bodies, :mod:`shared.functions.fate`) and, on an
in-process bus, its dead-letter queues. A replay re-sends the body to its queue with the message ID suffixed
``:replay:<n>`` (duplicate detection would drop the original ID), then deletes the row.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from shared.ingest.context import IngestServices
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage
from shared.platform.storage import decode_key, encode_key

log = logging.getLogger("itdr.ingest")


# ----------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetterItem:
    """A parked or dead-lettered message."""

    source: str
    """``table`` (parked by the app) or ``bus`` (the in-process bus's dead-letter queue)."""
    tenant_id: str
    queue: str
    message_id: str
    reason: str
    description: str
    parked_at: str
    session_id: str | None = None
    body: bytes = b""
    key: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the body)."""
        out = asdict(self)
        out.pop("body")
        out.pop("key")
        return out


def _tenant_of(body: bytes) -> str:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unknown"
    tid = obj.get("tenant_id") if isinstance(obj, dict) else None
    return str(tid).lower() if tid else "unknown"


def list_deadletters(svc: IngestServices, *, tenant_id: str | None = None) -> list[DeadLetterItem]:
    """Parked messages (all tenants, or one), then the in-process bus's dead letters, oldest first."""
    table = svc.storage.table(names.TABLE_DEADLETTERS)
    if tenant_id is None:
        rows = table.list_entities()
    else:
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(tenant_id.lower())})
    items = [
        DeadLetterItem(
            source="table",
            tenant_id=decode_key(str(r["PartitionKey"])),
            queue=str(r.get("queue") or ""),
            message_id=str(r.get("message_id") or ""),
            reason=str(r.get("reason") or ""),
            description=str(r.get("description") or ""),
            parked_at=str(r.get("parked_at") or ""),
            session_id=r.get("session_id") or None,
            body=str(r.get("body") or "").encode(),
            key=(str(r["PartitionKey"]), str(r["RowKey"])),
        )
        for r in rows
    ]
    if isinstance(svc.bus, InProcessBus):
        for d in svc.bus.dead_letters():
            tenant = _tenant_of(d.message.body)
            if tenant_id is None or tenant == tenant_id.lower():
                items.append(
                    DeadLetterItem(
                        "bus",
                        tenant,
                        d.queue,
                        d.message.message_id,
                        d.reason,
                        d.description,
                        d.dead_lettered_at.isoformat(),
                        d.message.session_id,
                        d.message.body,
                    )
                )
    return sorted(items, key=lambda i: (i.parked_at, i.queue, i.message_id))


def replay_message_id(message_id: str) -> str:
    """``<id>:replay:<n+1>`` for ``<id>:replay:<n>``, else ``<id>:replay:1`` (hashed beyond 128 chars)."""
    base, marker, n = message_id.rpartition(":replay:")
    new = f"{base}:replay:{int(n) + 1}" if marker and n.isdigit() else f"{message_id}:replay:1"
    if len(new) <= 128:
        return new
    return f"sha256:{hashlib.sha256(message_id.encode()).hexdigest()}:replay:1"


def replay_deadletters(
    svc: IngestServices,
    *,
    tenant_id: str | None = None,
    queue: str | None = None,
    reasons: Collection[str] | None = None,
    message_ids: Collection[str] | None = None,
) -> list[DeadLetterItem]:
    """Re-send matching dead letters to their queues, then forget them; returns what was replayed."""
    done: list[DeadLetterItem] = []
    for item in list_deadletters(svc, tenant_id=tenant_id):
        if queue is not None and item.queue != queue:
            continue
        if reasons is not None and item.reason not in reasons:
            continue
        if message_ids is not None and item.message_id not in message_ids:
            continue
        if item.queue not in names.ALL_QUEUES or not item.body:
            log.warning("dead letter cannot be replayed: queue=%s message_id=%s", item.queue, item.message_id)
            continue
        message = OutboundMessage(item.body, message_id=replay_message_id(item.message_id), session_id=item.session_id)
        svc.bus.send(item.queue, [message])
        _forget(svc, item)
        done.append(item)
        log.info("dead letter replayed: tenant=%s queue=%s message_id=%s", item.tenant_id, item.queue, item.message_id)
    return done


def _forget(svc: IngestServices, item: DeadLetterItem) -> None:
    if item.source == "table" and item.key is not None:
        svc.storage.table(names.TABLE_DEADLETTERS).delete_entity(*item.key)
    elif isinstance(svc.bus, InProcessBus):
        for d in svc.bus.dead_letters(item.queue):
            if d.message.message_id == item.message_id:
                svc.bus.remove_dead_letter(d)
                break
