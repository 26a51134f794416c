"""Members added to privileged Exchange role groups (issue #20, item 10: Add-RoleGroupMember, Organization Management).

ExchangeAdmin records in the documented shape (office-365-management-activity-api-schema, "Exchange Admin
schema"); the cmdlets' parameters are those of the Exchange Online PowerShell reference (Add-RoleGroupMember
-Identity -Member, Update-RoleGroupMember -Members).
"""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.privilege_role_group_member import PrivilegeRoleGroupMember
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, PrivilegeRoleGroupMember],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_organization_management_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = exchange_cmdlet(
        "Add-RoleGroupMember",
        {
            "Identity": "Organization Management",
            "Member": "mallory@contoso.com",
            "BypassSecurityGroupManagerCheck": "True",
        },
        ADMIN,
        when=at(minutes=20),
        ip=RISKY_IP,
        object_id="Organization Management",
    )
    assert run([login, rec]) == [
        expected_alert(
            PrivilegeRoleGroupMember,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} added mallory@contoso.com to Exchange role group 'Organization Management' after a "
            f"risky sign-in (vpn from {RISKY_IP})",
            dedup_key="organization management|mallory@contoso.com",
            user_key=oid_of(ADMIN),
            ip=RISKY_IP,
            context={
                "role_group": "Organization Management",
                "members": ["mallory@contoso.com"],
                "operation": "Add-RoleGroupMember",
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
    ("operation", "params", "severity", "group", "members"),
    [
        pytest.param(
            "Add-RoleGroupMember",
            {
                "Identity": "NAMPR01A001.prod.outlook.com/Microsoft Exchange Hosted Organizations/"
                "contoso.onmicrosoft.com/Organization Management",
                "Member": "mallory",
            },
            "high",
            "Organization Management",
            ["mallory"],
            id="org-management-by-distinguished-path",
        ),
        pytest.param(
            "Update-RoleGroupMember",
            {"Identity": "Discovery Management", "Members": '"bob@contoso.com","mallory@contoso.com"'},
            "high",
            "Discovery Management",
            ["bob@contoso.com", "mallory@contoso.com"],
            id="discovery-management-members-replaced",
        ),
        pytest.param(
            "Add-RoleGroupMember",
            {"Identity": "Hygiene Management", "Member": "mallory@contoso.com"},
            "medium",
            "Hygiene Management",
            ["mallory@contoso.com"],
            id="hygiene-management",
        ),
        pytest.param(
            "Add-RoleGroupMember",
            {"Identity": "Help Desk", "Member": "carol@contoso.com"},
            "low",
            "Help Desk",
            ["carol@contoso.com"],
            id="help-desk-is-low",
        ),
    ],
)
def test_role_group_members(
    operation: str, params: dict[str, str], severity: str, group: str, members: list[str]
) -> None:
    rec = exchange_cmdlet(operation, params, ADMIN, object_id=group)
    assert run([rec]) == [
        expected_alert(
            PrivilegeRoleGroupMember,
            records=[rec],
            severity=severity,
            summary=f"{ADMIN} added {', '.join(members)} to Exchange role group {group!r}",
            dedup_key=f"{group.lower()}|{members[0].lower()}",
            user_key=ADMIN,
            ip=HOME,
            context={"role_group": group, "members": members, "operation": operation, "risk": None},
        )
    ]


def test_read_only_groups_and_empty_member_lists_do_not_alert() -> None:
    view_only = exchange_cmdlet(
        "Add-RoleGroupMember", {"Identity": "View-Only Organization Management", "Member": "auditor@contoso.com"}, ADMIN
    )
    cleared = exchange_cmdlet("Update-RoleGroupMember", {"Identity": "Help Desk", "Members": "$null"}, ADMIN, seq=1)
    assert run([view_only, cleared]) == []
