"""Remediation through Microsoft Graph: planned from alerts, recorded in a durable ledger, retried safely.

    shared.remediation.policy   RemediationPolicy (per tenant), RetryPolicy, plan(alerts, policy, incident_id=...)
    shared.remediation.ledger   RemediationRequest (the queue message), LedgerEntry, Table/InMemory ledgers
    shared.remediation.actions  the actions over a Graph client, judged by post-conditions re-read from Graph
    shared.remediation.runner   RemediationRunner.handle(message) / submit(planned); approve/reject/undo

Import the submodules directly; this package imports nothing so that ``shared.remediation.ledger`` stays
cheap (the actions and the runner load msgraph-sdk through shared.graph.client).
"""

from __future__ import annotations
