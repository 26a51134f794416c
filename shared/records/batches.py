"""Batch blobs: the unique, parsed-clean records of one tenant that the content function writes.

The enrichment and detection functions both read them (a message carries only the reference, so it is a
few hundred bytes whatever the batch size).
"""

from __future__ import annotations

from shared.messages import RecordBatchRef, shard_of
from shared.platform import names
from shared.platform.errors import BadInputError
from shared.platform.storage import StorageClients
from shared.records.event import Event, parse_blob


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
