"""The onboarded tenants: who they are, which cloud, the partner, and detection settings.

Rows of the ``tenants`` table (PartitionKey "tenant", RowKey the tenant ID). The webhook
AuthID is stored only as a SHA-256 hash; the detection part becomes a `TenantConfig`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from azure.core.exceptions import ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field

from shared.platform import names
from shared.platform.storage import StorageClients
from shared.tenant_config import TenantConfig

PARTITION = "tenant"

PROTECTED_ROLE_TEMPLATES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
}
"""Entra built-in role template ids whose holders are never isolated automatically (the ids are the same in
every tenant: learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference)."""


class TenantRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    name: str = ""
    partner_id: str = "default"
    cloud: str = "commercial"
    status: str = "onboarding"
    webhook_auth_hash: str | None = None
    onboarded_at: datetime | None = None
    first_content_at: datetime | None = None
    detection: dict[str, Any] = Field(default_factory=dict)
    """TenantConfig fields (internal_domains, allowed_countries, trusted_ip_ranges, ...)."""
    remediation: dict[str, Any] = Field(default_factory=dict)
    """RemediationPolicy fields (modes per detector, never-disable accounts, ...)."""
    triage: dict[str, Any] = Field(default_factory=dict)
    """TriagePolicy fields (what is published to the partner at once)."""
    protected_identities: list[str] = Field(default_factory=list)
    """Object ids and UPNs never isolated automatically, read from Graph: holders of the protected directory
    roles and the app's own service principal (:func:`shared.ingest.onboarding.refresh_protected_identities`)."""
    protected_refreshed_at: datetime | None = None
    signin_logs: str = "unknown"
    """Whether the Entra sign-in logs can be read through Graph (Entra ID P1 or higher): ``available``,
    ``unavailable`` (no licence: the sign-in poller skips the tenant) or ``unknown`` (not checked, or the app may
    not read the tenant's licences); set at onboarding and by the sign-in poller."""

    def config(self) -> TenantConfig:
        return TenantConfig.model_validate(
            {**self.detection, "tenant_id": self.tenant_id, "name": self.name, "partner_id": self.partner_id}
        )

    def webhook_auth_matches(self, auth_id: str | None) -> bool:
        """Constant-time comparison of a notification's Webhook-AuthID with the stored hash."""
        if not auth_id or not self.webhook_auth_hash:
            return False
        return hmac.compare_digest(hash_secret(auth_id), self.webhook_auth_hash)


def settings_digest(value: Mapping[str, Any] | None) -> str:
    """A short digest of a settings object (``home_countries``, which onboarding seeds from Graph, left out):
    ``itdr tenants import`` compares it with the wanted settings so that a run changes nothing already right."""
    kept = {k: v for k, v in (value or {}).items() if k != "home_countries"}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


AUTH_INDEX_PARTITION = "webhook-auth"
"""Rows (PartitionKey ``webhook-auth``, RowKey the AuthID's SHA-256) naming the tenant that holds the AuthID:
a validation handshake (which carries no tenant id) costs one point read, not a scan of every tenant."""
MAX_CACHED_TENANTS = 4096
"""Entries of the per-process tenant cache; least recently used go first (unknown ids are cached too)."""


class TenantDirectory:
    """Tenants in Table Storage, cached for a short while per process (an LRU of bounded size)."""

    def __init__(
        self,
        storage: StorageClients,
        *,
        cache_s: float = 60.0,
        clock: Any = None,
        max_entries: int = MAX_CACHED_TENANTS,
    ) -> None:
        import time

        self._table = storage.table(names.TABLE_TENANTS)
        self._cache: OrderedDict[str, tuple[float, TenantRecord | None]] = OrderedDict()
        self._cache_s = cache_s
        self._clock = clock or time.monotonic
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._listed: tuple[float, tuple[TenantRecord, ...]] | None = None

    def get(self, tenant_id: str) -> TenantRecord | None:
        tid = tenant_id.lower()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(tid)
            if hit is not None and now - hit[0] < self._cache_s:
                self._cache.move_to_end(tid)
                return hit[1]
        return self._read(tid, now)

    def _read(self, tid: str, now: float) -> TenantRecord | None:
        """The tenant row from the table (into the cache)."""
        try:
            ent = self._table.get_entity(PARTITION, tid)
            rec: TenantRecord | None = TenantRecord.model_validate_json(ent["body"])
        except ResourceNotFoundError:
            rec = None
        with self._lock:
            self._cache[tid] = (now, rec)
            self._cache.move_to_end(tid)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return rec

    def cached_entries(self) -> int:
        """How many tenant ids the cache holds (bounded by ``max_entries``)."""
        with self._lock:
            return len(self._cache)

    def config(self, tenant_id: str) -> TenantConfig:
        rec = self.get(tenant_id)
        return rec.config() if rec is not None else TenantConfig(tenant_id=tenant_id)

    def list(self) -> list[TenantRecord]:
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
        return sorted((TenantRecord.model_validate_json(r["body"]) for r in rows), key=lambda t: t.tenant_id)

    def find_by_webhook_auth(self, auth_id: str) -> TenantRecord | None:
        """The tenant (not offboarded) whose webhook AuthID is ``auth_id``, or None.

        One point read of the AuthID index; rows written before the index existed are found in the tenant
        list, read at most once per ``cache_s`` (an anonymous caller cannot make this scan the table).
        """
        if not auth_id:
            return None
        candidates: tuple[TenantRecord, ...]
        try:
            ent = self._table.get_entity(AUTH_INDEX_PARTITION, hash_secret(auth_id))
        except ResourceNotFoundError:
            candidates = self._cached_list()
        else:
            # read the row itself, not the cache: another instance may have just rotated the AuthID (onboarding)
            found = self._read(str(ent.get("tenant_id") or "").lower(), self._clock())
            candidates = (found,) if found is not None else ()
        for record in candidates:
            if record.status != "offboarded" and record.webhook_auth_matches(auth_id):
                return record
        return None

    def _cached_list(self) -> tuple[TenantRecord, ...]:
        now = self._clock()
        with self._lock:
            if self._listed is not None and now - self._listed[0] < self._cache_s:
                return self._listed[1]
        listed = tuple(self.list())
        with self._lock:
            self._listed = (now, listed)
        return listed

    def upsert(self, record: TenantRecord) -> None:
        if record.webhook_auth_hash:
            self._table.upsert_entity(
                {
                    "PartitionKey": AUTH_INDEX_PARTITION,
                    "RowKey": record.webhook_auth_hash,
                    "tenant_id": record.tenant_id.lower(),
                }
            )
        self._table.upsert_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": record.tenant_id.lower(),
                "body": orjson.dumps(record.model_dump(mode="json")).decode(),
            }
        )
        with self._lock:
            self._cache.pop(record.tenant_id.lower(), None)
            self._listed = None
