"""Body of ``enrich_records``: resolve the identities a batch lacks, then hand it to detection."""

from __future__ import annotations

from shared.app import Services
from shared.enrich.stage import EnrichStage
from shared.messages import EnrichedBatchRef, RecordBatchRef


def handle(svc: Services, body: bytes) -> EnrichedBatchRef:
    ref = RecordBatchRef.parse(body)
    assert isinstance(ref, RecordBatchRef)
    return EnrichStage(svc.storage, svc.bus, svc.identity_resolver).handle(ref)
