"""Remediation wiring: plan actions for changed incidents, and the body of the ``remediate`` function.

The runner tells :mod:`shared.pipeline.incident_actions` of every ledger change, so each outcome (and each
action awaiting approval) is recorded in its incident and the new revision is published to the partner.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from shared.app import Services


def policy_for(svc: Services, tenant_id: str) -> Any:
    """The tenant's remediation policy (from its tenant record; approval by default)."""
    from shared.pipeline.respond import tenants
    from shared.remediation.policy import RemediationPolicy

    rec = tenants(svc).get(tenant_id)
    body = dict(rec.remediation) if rec is not None else {}
    override = svc.extras.get("remediation_policy")
    if override is not None:
        body = {**override, **body}
    return RemediationPolicy.model_validate({**body, "tenant_id": tenant_id})


def runner(svc: Services) -> Any:
    def build() -> Any:
        from shared.pipeline.incident_actions import remediation_hook
        from shared.pipeline.respond import alert_store
        from shared.remediation.ledger import TableRemediationLedger
        from shared.remediation.runner import RemediationRunner

        return RemediationRunner(
            TableRemediationLedger(svc.storage),
            lambda tenant: nullcontext(svc.graph_client(tenant)),
            svc.bus,
            policy=lambda tenant: policy_for(svc, tenant),
            clock=lambda: datetime.fromtimestamp(svc.clock(), UTC),
            rng=svc.extras.get("rng") or random.Random(),
            alert_sink=alert_store(svc),
            on_change=remediation_hook(svc),
        )

    return svc.cached("remediation_runner", build)


def plan_and_submit(svc: Services, tenant_id: str, incidents: Sequence[Any]) -> int:
    """Plan the remediation of changed incidents and submit the actions (replay-safe)."""
    from shared.pipeline.respond import alert_store
    from shared.remediation.policy import plan

    policy = policy_for(svc, tenant_id)
    if not policy.enabled:
        return 0
    store = alert_store(svc)
    submitted = 0
    for inc in incidents:
        alerts = [a for a in (store.get_alert(tenant_id, aid) for aid in inc.alert_ids) if a is not None]
        planned = plan(alerts, policy, incident_id=inc.incident_id)
        if planned:
            submitted += len(runner(svc).submit(planned))
    return submitted


def run_remediation(svc: Services, body: bytes) -> Any:
    """Handle one remediation-queue message (outcomes reach the incident through the runner's hook)."""
    return runner(svc).handle(body)


def approve_remediation(svc: Services, tenant_id: str, key: str, *, by: str) -> Any:
    """Approve an action awaiting approval (its message is sent); the incident is told through the hook."""
    from shared.pipeline.incident_actions import remediation_hook
    from shared.remediation.ledger import TableRemediationLedger
    from shared.remediation.runner import approve_action

    return approve_action(
        TableRemediationLedger(svc.storage),
        svc.bus,
        tenant_id,
        key,
        by=by,
        clock=lambda: datetime.fromtimestamp(svc.clock(), UTC),
        on_change=remediation_hook(svc),
    )


def reject_remediation(svc: Services, tenant_id: str, key: str, *, by: str, reason: str = "") -> Any:
    """Reject an action awaiting approval; the rejection is recorded in its incident and published."""
    from shared.pipeline.incident_actions import remediation_hook
    from shared.remediation.ledger import TableRemediationLedger
    from shared.remediation.runner import reject_action

    return reject_action(
        TableRemediationLedger(svc.storage),
        tenant_id,
        key,
        by=by,
        clock=lambda: datetime.fromtimestamp(svc.clock(), UTC),
        reason=reason,
        on_change=remediation_hook(svc),
    )
