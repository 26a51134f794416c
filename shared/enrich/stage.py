"""The enrichment stage behind the ``enrich_records`` function: identities resolved, the batch on to detection."""

from __future__ import annotations

from shared.enrich.identity import IdentityResolver
from shared.messages import EnrichedBatchRef, RecordBatchRef, session_for
from shared.platform import names
from shared.platform.bus import MessageBus, OutboundMessage
from shared.platform.storage import StorageClients
from shared.records.batches import load_batch
from shared.records.event import is_guid


class EnrichStage:
    """Resolves missing identities through Graph and forwards the batch to detection."""

    def __init__(self, storage: StorageClients, bus: MessageBus, resolver: IdentityResolver) -> None:
        self._storage = storage
        self._bus = bus
        self._resolver = resolver

    def handle(self, ref: RecordBatchRef) -> EnrichedBatchRef:
        events = load_batch(self._storage, ref)
        self._resolver.learn(ref.tenant_id, {(e.object_id, e.upn) for e in events if e.object_id and e.upn})
        missing = {e.object_id for e in events if e.object_id and not e.upn and is_guid(e.object_id)}
        res = self._resolver.resolve(ref.tenant_id, missing)
        upns = self._resolver.resolve_upns(ref.tenant_id, {e.upn for e in events if e.upn and not e.object_id})
        out = EnrichedBatchRef(
            **ref.model_dump(),
            identities=res.resolved,
            unresolved=sorted(res.unresolved + upns.unresolved),
            object_ids=upns.resolved,
        )
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
