"""The enrichment and detection stages behind the ``enrich_records`` and ``detect_records`` functions.

Both read a batch blob written by the content function (a JSON array of unique records of
one tenant), so a message is a few hundred bytes whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.detection.engine import BatchOutcome, DetectionEngine
from shared.detection.model import Alert
from shared.enrich.identity import IdentityResolver
from shared.pipeline.messages import EnrichedBatchRef, RecordBatchRef, session_for, shard_of
from shared.platform import names
from shared.platform.bus import MessageBus, OutboundMessage
from shared.platform.errors import BadInputError
from shared.platform.storage import StorageClients
from shared.records.event import Event, is_guid, parse_blob


def load_batch(storage: StorageClients, ref: RecordBatchRef) -> list[Event]:
    """The events of a batch blob (this shard's users only); a damaged blob is a permanent error."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        data = storage.container(names.CONTAINER_RAW).download_blob(ref.batch_blob).readall()
    except ResourceNotFoundError as exc:
        raise BadInputError(f"batch blob {ref.batch_blob} is missing", reason="batch_missing") from exc
    parsed = parse_blob(data, expected_tenant=ref.tenant_id)
    if parsed.quarantined:
        raise BadInputError(
            f"batch blob {ref.batch_blob} holds {len(parsed.quarantined)} unparseable records",
            reason="batch_corrupt",
            tenant=ref.tenant_id,
        )
    if ref.shards <= 1:
        return parsed.events
    return [e for e in parsed.events if shard_of(e.user_key, ref.shards) == ref.shard]


class EnrichStage:
    """Resolves missing identities through Graph and forwards the batch to detection."""

    def __init__(self, storage: StorageClients, bus: MessageBus, resolver: IdentityResolver) -> None:
        self._storage = storage
        self._bus = bus
        self._resolver = resolver

    def handle(self, ref: RecordBatchRef) -> EnrichedBatchRef:
        events = load_batch(self._storage, ref)
        missing = {e.object_id for e in events if e.object_id and not e.upn and is_guid(e.object_id)}
        res = self._resolver.resolve(ref.tenant_id, missing)
        out = EnrichedBatchRef(**ref.model_dump(), identities=res.resolved, unresolved=sorted(res.unresolved))
        self._bus.send(
            names.QUEUE_DETECT,
            [
                OutboundMessage(
                    out.encode(),
                    message_id=f"detect:{ref.batch_id}:{ref.shard}",
                    session_id=session_for(ref.tenant_id, ref.shard, ref.shards),
                )
            ],
        )
        return out


@dataclass(slots=True)
class DetectResult:
    outcome: BatchOutcome
    alerts: Sequence[Alert]
    record_ids: Sequence[str] = ()


class DetectStage:
    """Runs the engine over a batch; ``after_alerts`` turns new alerts into incidents and actions."""

    def __init__(
        self,
        storage: StorageClients,
        engine: DetectionEngine,
        *,
        after_alerts: Callable[[str, Sequence[Alert]], None] | None = None,
    ) -> None:
        self._storage = storage
        self._engine = engine
        self._after = after_alerts

    def handle(self, ref: EnrichedBatchRef) -> DetectResult:
        events = load_batch(self._storage, ref)
        for ev in events:
            if ev.object_id and not ev.upn:
                upn = ref.identities.get(ev.object_id)
                if upn:
                    ev.upn = upn
        outcome = self._engine.process(
            ref.tenant_id, events, batch_id=f"{ref.batch_id}:{ref.shard}", after_alerts=self._after
        )
        return DetectResult(outcome, outcome.alerts, [e.record_id for e in events])
