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


def read_batch_blob(storage: StorageClients, name: str) -> bytes:
    """A batch blob's bytes, from ``CONTAINER_BATCHES`` (or, for one written before batch blobs had their own
    container, from ``CONTAINER_LEGACY_WORK``); ResourceNotFoundError when it is in neither."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return storage.container(names.CONTAINER_BATCHES).download_blob(name).readall()
    except ResourceNotFoundError:
        return storage.container(names.CONTAINER_LEGACY_WORK).download_blob(name).readall()


def write_batch_blob(storage: StorageClients, name: str, payload: bytes) -> None:
    """Write a batch blob (a redelivery that recomputes the batches rewrites it: the batches container is mutable)."""
    storage.container(names.CONTAINER_BATCHES).upload_blob(name, payload, overwrite=True)


def load_batch(storage: StorageClients, ref: RecordBatchRef) -> list[Event]:
    """The events of a batch blob (this shard's users only); a damaged blob is a permanent error."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        data = read_batch_blob(storage, ref.batch_blob)
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
