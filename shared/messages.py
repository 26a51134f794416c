"""Bodies of the messages between functions: small references, never whole records.

A content blob of thousands of records travels as one reference to a batch blob in the raw
archive (the claim-check pattern): Service Bus messages per record stay near 0.001.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.alert_model import Alert
from shared.platform import names
from shared.platform.bus import MessageBus, OutboundMessage
from shared.platform.errors import BadInputError


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def parse(cls, body: bytes) -> _Msg:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise BadInputError(
                f"invalid {cls.__name__} message: {'.'.join(map(str, first['loc']))}: {first['msg']}",
                reason="invalid_message",
            ) from exc

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class ContentRef(_Msg):
    """One content blob to fetch (from the poller or the webhook). MessageId = contentId."""

    tenant_id: str
    content_type: str
    content_id: str
    content_uri: str
    content_created: datetime
    content_expiration: datetime | None = None
    source: Literal["poll", "webhook", "replay"] = "poll"


class RecordBatchRef(_Msg):
    """A batch of unique, parsed-clean records of one tenant, stored as a blob."""

    tenant_id: str
    content_type: str
    content_id: str
    batch_blob: str
    batch_id: str
    records: int = Field(ge=0)
    shard: int = 0
    shards: int = 1


class EnrichedBatchRef(RecordBatchRef):
    """A record batch with the identities the enrichment function resolved."""

    identities: dict[str, str] = Field(default_factory=dict)
    """Object ID -> user principal name, for records that lacked a UPN."""
    unresolved: list[str] = Field(default_factory=list)
    """Object IDs Graph could not resolve now (resolved later; detection goes on)."""
    object_ids: dict[str, str] = Field(default_factory=dict)
    """UPN -> object ID, for records that carried only the UPN (their state joins the user's sign-ins)."""


class RaisedAlertsRef(_Msg):
    """Alerts raised outside detection (feed health, the inbox-rule scan), already in the alert store.

    Sent to the detect queue in the session of their users' shard: the detect function folds them into
    incidents in order with what detection raises for the same users (one consumer per session), so two
    instances never open two incidents for one user at the same moment.
    """

    kind: Literal["raised_alerts"] = "raised_alerts"
    tenant_id: str
    alert_ids: list[str] = Field(min_length=1)
    source: str


def is_raised_alerts(body: bytes) -> bool:
    """True for a `RaisedAlertsRef` body (the detect queue's other message is an `EnrichedBatchRef`)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("kind") == "raised_alerts"


class IncidentRef(_Msg):
    """An incident to publish to the partner (``partner_id`` set: a cross-tenant partner incident)."""

    tenant_id: str
    incident_id: str
    revision: int = 1
    partner_id: str | None = None
    retry: int = Field(default=0, ge=0)
    """How many times the delivery was put off because the partner endpoint was unavailable."""

    @classmethod
    def of(cls, incident: Any) -> IncidentRef:
        """The reference to an incident's current revision."""
        return cls(tenant_id=incident.tenant_id, incident_id=incident.incident_id, revision=incident.revision)

    def message(self) -> OutboundMessage:
        """The alerts-queue message that publishes this revision (one message ID per revision)."""
        kind = "incident" if self.partner_id is None else "partner-incident"
        return OutboundMessage(self.encode(), message_id=f"{kind}:{self.incident_id}:{self.revision}")


def session_for(tenant_id: str, shard: int, shards: int) -> str:
    """The Service Bus session of a tenant (or of one shard of a large tenant's users)."""
    return tenant_id if shards <= 1 else f"{tenant_id}#{shard}"


def shard_of(user_key: str | None, shards: int) -> int:
    """Stable shard of a user (tenant-wide records go to shard 0)."""
    if shards <= 1 or not user_key:
        return 0
    import zlib

    return zlib.crc32(user_key.encode()) % shards


def send_raised_alerts(bus: MessageBus, tenant_id: str, alerts: Sequence[Alert], *, source: str, shards: int) -> int:
    """Send stored alerts raised outside detection to the detect queue, one message per session; returns the count.

    The detect function folds them into incidents in order with what detection raises for the same users
    (one consumer per session). The message ID names the alerts, so raising the same ones again is one
    message (duplicate detection).
    """
    by_shard: dict[int, list[str]] = {}
    for a in alerts:
        by_shard.setdefault(shard_of(a.user_key, shards), []).append(a.alert_id)
    for shard, ids in sorted(by_shard.items()):
        ids = sorted(set(ids))
        digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
        ref = RaisedAlertsRef(tenant_id=tenant_id, alert_ids=ids, source=source)
        bus.send(
            names.QUEUE_DETECT,
            [
                OutboundMessage(
                    ref.encode(),
                    message_id=f"raised:{tenant_id}:{shard}:{digest}",
                    session_id=session_for(tenant_id, shard, shards),
                )
            ],
        )
    return len(by_shard)
