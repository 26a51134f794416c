"""The alerts the system raises about itself, declared like detectors (metadata, runbook, test): the registry
test in tests/detectors/test_registry.py holds them to the same invariants as the detectors.

- ``integration_feed_health``: a tenant's audit feed stopped, lags, lost content or went silent (the feed-health
  timer, the poller, the content function, and ``itdr scan`` for gaps in an export);
- ``integration_remediation_permission``: a remediation was refused because the app lacks a Graph permission.
"""

from __future__ import annotations

from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Severity

FEED_HEALTH = DetectorMeta(
    id="integration_feed_health",
    title="Audit feed problem",
    description=(
        "A tenant's unified audit log stopped reaching the product: a subscription disabled or missing, audit "
        "logging off, polling far behind, content expired or missing, or a silence far longer than the feed's own."
    ),
    category=Category.INTEGRATION_HEALTH,
    severity=Severity.MEDIUM,
    mitre=("T1562.008",),
    dedup_window=timedelta(days=1),
    operations=frozenset(),
    runbook=(
        "Check the tenant's feed with `itdr tenants status --tenant <id>`; the feed-health function restarts "
        "disabled subscriptions and webhooks itself. If audit logging is off or consent is missing, an admin of "
        "the tenant must act (docs/onboarding.md). Content older than 7 days cannot be fetched again: backfill "
        "from Purview audit search."
    ),
    reference="https://learn.microsoft.com/en-us/office/office-365-management-api/troubleshooting-the-office-365-management-activity-api",
    false_positives=("a small tenant with no activity for a long holiday",),
)

REMEDIATION_PERMISSION = DetectorMeta(
    id="integration_remediation_permission",
    title="Remediation blocked: the app lacks a Microsoft Graph permission",
    description="Microsoft Graph refused a remediation action because the app lacks a permission or admin consent.",
    category=Category.INTEGRATION_HEALTH,
    severity=Severity.HIGH,
    mitre=("T1562",),
    dedup_window=timedelta(days=1),
    operations=frozenset(),
    runbook=(
        "1. In Entra ID > Enterprise applications > m365-itdr > Permissions, grant admin consent for the "
        "permission the alert names (an application permission of Microsoft Graph). 2. For a privileged target, "
        "give the app a high enough Entra role. 3. Re-run the remediation: itdr remediate undo/approve, or "
        "remediate by hand."
    ),
    reference="https://learn.microsoft.com/en-us/graph/permissions-reference",
    false_positives=("consent withdrawn on purpose by the customer's administrator",),
)

SYSTEM_ALERTS: tuple[DetectorMeta, ...] = (FEED_HEALTH, REMEDIATION_PERMISSION)
"""Every alert source that is not a detector (the registry test requires a test file named after each)."""
