"""The detection stage behind the ``detect_records`` function: the engine over one enriched batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.alert_model import Alert
from shared.detection.engine import BatchOutcome, DetectionEngine
from shared.messages import EnrichedBatchRef
from shared.platform.storage import StorageClients
from shared.records.batches import load_batch


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
            elif ev.upn and not ev.object_id:
                oid = ref.object_ids.get(ev.upn)
                if oid:  # the same per-user state and incident as the user's sign-ins
                    ev.object_id = oid
                    ev.user_key = oid
        outcome = self._engine.process(
            ref.tenant_id, events, batch_id=f"{ref.batch_id}:{ref.shard}", after_alerts=self._after
        )
        return DetectResult(outcome, outcome.alerts, [e.record_id for e in events])
