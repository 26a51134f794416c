"""Privileged roles assigned through PIM (issue #20, item 10).

Directory records (RecordType 8) in the unified-audit-log shape of tests/detectors/records.py. The operation
names and where the role sits follow Microsoft's "Microsoft Entra audit log activity reference" (RoleManagement:
"Add eligible member to role in PIM completed (permanent|timebound)") and Elastic's prebuilt rule "Azure Global
Administrator Role Addition to PIM User" (elastic/detection-rules, the role is a target resource's display
name); in the unified audit log the target resources are ``Target`` entries (the role's display name as
Type 1, as in the consent records of records.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    directory_record,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.privilege_pim_role_assignment import PrivilegePimRoleAssignment
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
MALLORY = "mallory@contoso.com"
GA_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, PrivilegePimRoleAssignment],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def pim_record(op: str, role: str, *, when: str | None = None, with_modified: bool = True) -> dict[str, Any]:
    oid = oid_of(MALLORY)
    modified = (
        [
            {"Name": "Role.DisplayName", "OldValue": "", "NewValue": role},
            {
                "Name": "Role.TemplateId",
                "OldValue": "",
                "NewValue": GA_TEMPLATE if role == "Global Administrator" else "",
            },
        ]
        if with_modified
        else []
    )
    return directory_record(
        op,
        ADMIN,
        when=when,
        object_id=MALLORY,
        modified=modified,
        target=[
            {"ID": role, "Type": 1},
            {"ID": f"User_{oid}", "Type": 2},
            {"ID": oid, "Type": 2},
            {"ID": MALLORY, "Type": 5},
        ],
    )


def test_global_admin_eligible_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = pim_record(
        "Add eligible member to role in PIM completed (permanent)", "Global Administrator", when=at(minutes=30)
    )
    assert run([login, rec]) == [
        expected_alert(
            PrivilegePimRoleAssignment,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} made {MALLORY} eligible for Global Administrator permanently after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key=f"{MALLORY}|global administrator|eligible",
            ip=None,
            context={
                "role": "Global Administrator",
                "role_template_id": GA_TEMPLATE,
                "member": MALLORY,
                "assignment": "eligible",
                "permanent": True,
                "operation": "Add eligible member to role in PIM completed (permanent)",
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            },
        )
    ]


@pytest.mark.parametrize(
    ("op", "role", "with_modified", "severity", "kind", "permanent"),
    [
        pytest.param(
            "Add eligible member to role in PIM completed (timebound)",
            "Global Administrator",
            False,
            "high",
            "eligible",
            False,
            id="ga-eligible-role-from-target-only",
        ),
        pytest.param(
            "Add member to role in PIM completed (permanent)",
            "Privileged Role Administrator",
            True,
            "critical",
            "active",
            True,
            id="pra-active-permanent",
        ),
        pytest.param(
            "Add eligible member to role.", "Exchange Administrator", True, "medium", "eligible", False, id="core-dir"
        ),
    ],
)
def test_pim_assignments(op: str, role: str, with_modified: bool, severity: str, kind: str, permanent: bool) -> None:
    rec = pim_record(op, role, with_modified=with_modified)
    template = GA_TEMPLATE if with_modified and role == "Global Administrator" else None
    summary = f"{ADMIN} made {MALLORY} {kind} for {role}" + (" permanently" if permanent else "")
    assert run([rec]) == [
        expected_alert(
            PrivilegePimRoleAssignment,
            records=[rec],
            severity=severity,
            summary=summary,
            dedup_key=f"{MALLORY}|{role.lower()}|{kind}",
            ip=None,
            context={
                "role": role,
                "role_template_id": template,
                "member": MALLORY,
                "assignment": kind,
                "permanent": permanent,
                "operation": op,
                "risk": None,
            },
        )
    ]


def test_a_reader_role_made_eligible_does_not_alert() -> None:
    assert run([pim_record("Add eligible member to role in PIM completed (timebound)", "Global Reader")]) == []
