"""Alerts after detection: lifecycle, incidents, triage, suppressions, partner delivery and formats.

The path of an alert::

    engine → AlertStore.upsert_alerts      (store.py: rows by deterministic alert ID, analyst status)
           → IncidentBook.add_alerts        (incidents.py: one user's alerts as one story, severity raised)
           → CrossTenantCorrelator          (crosstenant.py: one indicator in several tenants of a partner)
           → decide(incident, policy, suppressions)   (triage.py, suppressions.py)
           → PartnerDeliveryClient.deliver  (delivery.py: payload.py or ocsf.py, ledger, retries)
"""

from __future__ import annotations

from shared.alerts.crosstenant import (
    CrossTenantCorrelator,
    IndicatorKind,
    InMemoryCrossTenantCorrelator,
    PartnerIncident,
    TableCrossTenantCorrelator,
    partner_scope,
)
from shared.alerts.delivery import (
    DeliveryFormat,
    DeliveryLedger,
    DeliveryRecord,
    DeliveryResult,
    InMemoryDeliveryLedger,
    PartnerDeliveryClient,
    RetryPolicy,
    TableDeliveryLedger,
)
from shared.alerts.incidents import (
    Incident,
    IncidentBook,
    InMemoryIncidentBook,
    Stage,
    TableIncidentBook,
    TimelineEntry,
    assess,
    incident_id_for,
)
from shared.alerts.ocsf import incident_to_ocsf, partner_incident_to_ocsf, to_ocsf
from shared.alerts.payload import (
    SCHEMA_VERSION,
    build_notice_payload,
    build_partner_payload,
    build_payload,
    idempotency_key,
    load_schema,
)
from shared.alerts.store import AlertStatus, AlertStore, InMemoryAlertStore, StatusChange, StoredAlert, TableAlertStore
from shared.alerts.suppressions import (
    InMemorySuppressionStore,
    Suppression,
    SuppressionStore,
    TableSuppressionStore,
    dismiss_alert,
    suppression_from_alert,
)
from shared.alerts.triage import Decision, TriagePolicy, apply_alert_verdict, decide

__all__ = [
    "SCHEMA_VERSION",
    "AlertStatus",
    "AlertStore",
    "CrossTenantCorrelator",
    "Decision",
    "DeliveryFormat",
    "DeliveryLedger",
    "DeliveryRecord",
    "DeliveryResult",
    "InMemoryAlertStore",
    "InMemoryCrossTenantCorrelator",
    "InMemoryDeliveryLedger",
    "InMemoryIncidentBook",
    "InMemorySuppressionStore",
    "Incident",
    "IncidentBook",
    "IndicatorKind",
    "PartnerDeliveryClient",
    "PartnerIncident",
    "RetryPolicy",
    "Stage",
    "StatusChange",
    "StoredAlert",
    "Suppression",
    "SuppressionStore",
    "TableAlertStore",
    "TableCrossTenantCorrelator",
    "TableDeliveryLedger",
    "TableIncidentBook",
    "TableSuppressionStore",
    "TimelineEntry",
    "TriagePolicy",
    "apply_alert_verdict",
    "assess",
    "build_notice_payload",
    "build_partner_payload",
    "build_payload",
    "decide",
    "dismiss_alert",
    "idempotency_key",
    "incident_id_for",
    "incident_to_ocsf",
    "load_schema",
    "partner_incident_to_ocsf",
    "partner_scope",
    "suppression_from_alert",
    "to_ocsf",
]
