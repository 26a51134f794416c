"""ApplicationImpersonation role assignments, including failed attempts."""

from __future__ import annotations

from typing import Any

import pytest
from records import TEST_TENANT, exchange_cmdlet, expected_alert, identity_enricher

from detectors.exchange_application_impersonation import ExchangeApplicationImpersonation
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        ExchangeApplicationImpersonation,
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


@pytest.mark.parametrize(
    ("result", "severity", "verb", "ok"),
    [("True", "high", "assigned", True), ("False", "medium", "tried to assign (failed)", False)],
)
def test_impersonation_assignment(result: str, severity: str, verb: str, ok: bool) -> None:
    rec = exchange_cmdlet(
        "New-ManagementRoleAssignment",
        {"Name": "EWS-Sync", "Role": "ApplicationImpersonation", "User": "svc-sync@contoso.com"},
        ADMIN,
        result=result,
        params_as_string=True,
    )
    assert run([rec]) == [
        expected_alert(
            ExchangeApplicationImpersonation,
            records=[rec],
            severity=severity,
            summary=f"{ADMIN} {verb} ApplicationImpersonation to svc-sync@contoso.com",
            dedup_key=f"svc-sync@contoso.com|{'ok' if ok else 'failed'}",
            user_key=ADMIN,
            ip=HOME,
            context={
                "assignee": "svc-sync@contoso.com",
                "assignment_name": "EWS-Sync",
                "scope": None,
                "succeeded": ok,
                "result_status": result,
                "risk": None,
            },
        )
    ]


def test_other_roles_are_not_reported() -> None:
    rec = exchange_cmdlet(
        "New-ManagementRoleAssignment", {"Role": "Mail Recipients", "User": "helpdesk@contoso.com"}, ADMIN
    )
    assert run([rec]) == []
