"""Every queue, table and blob container name the code uses, in one place.

The Bicep modules declare the same names (checked by tests/test_infra_parity.py).
"""

from __future__ import annotations

from typing import Final

# Service Bus queues --------------------------------------------------------
QUEUE_CONTENT: Final = "content"
"""Content-blob references from the poller and the webhook (MessageId = contentId, duplicate detection on)."""
QUEUE_RECORDS: Final = "records"
"""Record batches (references into the raw archive) for enrichment; sessions keyed by tenant or tenant shard."""
QUEUE_DETECT: Final = "detect"
"""Enriched record batches for detection; sessions keyed by tenant or tenant shard."""
QUEUE_ALERTS: Final = "alerts"
"""Incidents to publish to the partner's Logic App."""
QUEUE_REMEDIATION: Final = "remediation"
"""Remediation actions and their scheduled retries."""

SESSION_QUEUES: Final = frozenset({QUEUE_RECORDS, QUEUE_DETECT})
ALL_QUEUES: Final = (QUEUE_CONTENT, QUEUE_RECORDS, QUEUE_DETECT, QUEUE_ALERTS, QUEUE_REMEDIATION)

# Table Storage tables ------------------------------------------------------
TABLE_TENANTS: Final = "tenants"
TABLE_CHECKPOINTS: Final = "checkpoints"
TABLE_CONTENT_LEDGER: Final = "contentledger"
TABLE_RECORD_LEDGER: Final = "recordledger"
TABLE_USER_STATE: Final = "userstate"
TABLE_ALERTS: Final = "alerts"
TABLE_INCIDENTS: Final = "incidents"
TABLE_SUPPRESSIONS: Final = "suppressions"
TABLE_DELIVERIES: Final = "deliveries"
TABLE_REMEDIATIONS: Final = "remediations"
TABLE_DEADLETTERS: Final = "deadletters"
TABLE_QUARANTINE: Final = "quarantine"
TABLE_IDENTITIES: Final = "identities"
TABLE_FEED_HEALTH: Final = "feedhealth"

ALL_TABLES: Final = (
    TABLE_TENANTS,
    TABLE_CHECKPOINTS,
    TABLE_CONTENT_LEDGER,
    TABLE_RECORD_LEDGER,
    TABLE_USER_STATE,
    TABLE_ALERTS,
    TABLE_INCIDENTS,
    TABLE_SUPPRESSIONS,
    TABLE_DELIVERIES,
    TABLE_REMEDIATIONS,
    TABLE_DEADLETTERS,
    TABLE_QUARANTINE,
    TABLE_IDENTITIES,
    TABLE_FEED_HEALTH,
)

# Blob containers -----------------------------------------------------------
CONTAINER_RAW: Final = "raw"
"""The raw archive: content blobs as downloaded, raw/<tenant>/<content type>/<date>/<content id>. Write-once
(created, never overwritten); immutable in Azure (a time-based retention policy, infra/modules/storage.bicep)."""
CONTAINER_QUARANTINE: Final = "quarantine"
CONTAINER_INTEL: Final = "intel"
CONTAINER_REPORTS: Final = "reports"
CONTAINER_BATCHES: Final = "batches"
"""Batch blobs (the unique records of a content blob, as the records and detect messages reference them), named
after their archive blob: raw/<tenant>/<content type>/<date>/<content id>.batch<n>.json. Rewritten by a redelivery."""
CONTAINER_LEDGER: Final = "ledger"
"""The record ledger's day blobs, ledger/<tenant>/<YYYY-MM-DD> (rewritten under ETag, purged after 10 days)."""
CONTAINER_LEGACY_WORK: Final = CONTAINER_RAW
"""Where batch and ledger blobs were before they had their own containers: read (never written) when a blob is
missing from its own container, so messages and ledger days written before the move still resolve."""

ALL_CONTAINERS: Final = (
    CONTAINER_RAW,
    CONTAINER_QUARANTINE,
    CONTAINER_INTEL,
    CONTAINER_REPORTS,
    CONTAINER_BATCHES,
    CONTAINER_LEDGER,
)
