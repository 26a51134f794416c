"""Table and Blob storage clients, built from settings.

Production reaches the storage account through the managed identity (no keys). Development
and tests pass an explicit connection string to Azurite. Table keys may not contain
``/ \\ # ?`` or control characters: :func:`encode_key` escapes them reversibly.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline import PipelineRequest
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.platform import names
from shared.platform.errors import ConfigurationError
from shared.platform.settings import Settings

_FORBIDDEN = set("/\\#?%") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
"""Characters a Table key may not hold (``/ \\ # ?``, C0 and C1 control characters), and ``%`` (the escape)."""
MAX_KEY_BYTES = 255
"""Longest encoded key (UTF-8 bytes) stored as is; Azure allows 1 KiB, Azurite refuses less. Longer keys are
hashed: :data:`HASH_MARK`, which no escaped key contains, then the SHA-256 of the key."""
HASH_MARK = "%~"
_HASH_PREFIX_BYTES = 120


def encode_key(value: str) -> str:
    """A Table PartitionKey/RowKey for any string.

    Forbidden characters are percent-escaped (reversible with :func:`decode_key`); an escaped key longer
    than :data:`MAX_KEY_BYTES` becomes ``<escaped prefix>%~<sha256 hex>`` (one-way: callers that must
    get such a key back store it in a property, see :func:`is_hashed_key`). Distinct strings never share a
    key: an escaped key has a ``%`` only before two hex digits, so it never contains :data:`HASH_MARK`.
    """
    encoded = (
        value
        if not any(ch in _FORBIDDEN for ch in value)
        else "".join(quote(ch, safe="") if ch in _FORBIDDEN else ch for ch in value)
    )
    if len(encoded.encode("utf-8")) <= MAX_KEY_BYTES:
        return encoded
    prefix = encoded.encode("utf-8")[:_HASH_PREFIX_BYTES].decode("utf-8", "ignore")
    return f"{prefix}{HASH_MARK}{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def is_hashed_key(value: str) -> bool:
    """True when :func:`encode_key` hashed the key (:func:`decode_key` cannot give the string back)."""
    return HASH_MARK in value


def decode_key(value: str) -> str:
    """The string an escaped (not hashed) key was made from."""
    return unquote(value) if "%" in value else value


class OperationCounter:
    """Counts storage requests per service (the benchmark's remote operations per record)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"table": 0, "blob": 0}
        self._lock = threading.Lock()

    def hook(self, service: str) -> Callable[[PipelineRequest[Any]], None]:
        """A ``raw_request_hook`` that counts every request the client sends (retries included)."""

        def count(request: PipelineRequest[Any]) -> None:
            with self._lock:
                self.counts[service] += 1

        return count


@dataclass
class StorageClients:
    """One storage account's Table and Blob service clients, with created tables and containers cached."""

    tables: TableServiceClient
    blobs: BlobServiceClient
    namespace: str = ""
    """Prefix of every table and container name (tests and chaos runs isolate themselves with it)."""
    _tables: dict[str, TableClient] = field(default_factory=dict)
    _containers: dict[str, ContainerClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_connection_string(
        cls, conn: str, *, namespace: str = "", counter: OperationCounter | None = None
    ) -> StorageClients:
        table_kw: dict[str, Any] = {}
        blob_kw: dict[str, Any] = {}
        if counter is not None:
            table_kw["raw_request_hook"] = counter.hook("table")
            blob_kw["raw_request_hook"] = counter.hook("blob")
        return cls(
            TableServiceClient.from_connection_string(conn, **table_kw),
            BlobServiceClient.from_connection_string(conn, **blob_kw),
            namespace,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageClients:
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string)
        if not settings.storage_account_name:
            raise ConfigurationError("set ITDR_STORAGE_ACCOUNT_NAME (or ITDR_STORAGE_CONNECTION_STRING for Azurite)")
        from azure.identity import DefaultAzureCredential

        cred = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        account = settings.storage_account_name
        return cls(
            TableServiceClient(endpoint=f"https://{account}.table.core.windows.net", credential=cred),
            BlobServiceClient(account_url=f"https://{account}.blob.core.windows.net", credential=cred),
        )

    def table(self, name: str) -> TableClient:
        """The client of a table, created on first use."""
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                client = self.tables.get_table_client(f"{self.namespace}{name}")
                try:
                    client.create_table()
                except ResourceExistsError:
                    pass
                self._tables[name] = client
            return client

    def container(self, name: str) -> ContainerClient:
        """The client of a blob container, created on first use."""
        with self._lock:
            client = self._containers.get(name)
            if client is None:
                client = self.blobs.get_container_client(f"{self.namespace}-{name}" if self.namespace else name)
                try:
                    client.create_container()
                except ResourceExistsError:
                    pass
                self._containers[name] = client
            return client

    def ensure_all(self) -> None:
        for t in names.ALL_TABLES:
            self.table(t)
        for c in names.ALL_CONTAINERS:
            self.container(c)
