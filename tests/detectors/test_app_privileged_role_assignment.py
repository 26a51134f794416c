"""Privileged Graph application permissions and tenant-wide delegated grants."""

from __future__ import annotations

from typing import Any

import pytest
from records import TEST_TENANT, directory_record, expected_alert, identity_enricher, oid_of

from detectors.app_privileged_role_assignment import AppPrivilegedRoleAssignment
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
GRAPH_SP = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
CLIENT_SP = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
CLIENT_APP = "4d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a"
GRAPH_TARGET = [
    {"ID": f"ServicePrincipal_{GRAPH_SP}", "Type": 2},
    {"ID": GRAPH_SP, "Type": 2},
    {"ID": "ServicePrincipal", "Type": 2},
    {"ID": "Microsoft Graph", "Type": 1},
]


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        AppPrivilegedRoleAssignment, records, tenant=TenantConfig(tenant_id=TEST_TENANT), enricher=identity_enricher()
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def app_role(value: str | None, role_id: str = "00000000-0000-0000-0000-000000000000") -> dict[str, Any]:
    modified = [
        {"Name": "AppRole.Id", "OldValue": "", "NewValue": f'"{role_id}"'},
        {"Name": "ServicePrincipal.ObjectID", "OldValue": "", "NewValue": f'"{CLIENT_SP}"'},
        {"Name": "ServicePrincipal.DisplayName", "OldValue": "", "NewValue": '"Mail Sync"'},
        {"Name": "ServicePrincipal.AppId", "OldValue": "", "NewValue": f'"{CLIENT_APP}"'},
    ]
    if value is not None:
        modified.append({"Name": "AppRole.Value", "OldValue": "", "NewValue": f'"{value}"'})
    return directory_record(
        "Add app role assignment to service principal.",
        ADMIN,
        object_id=GRAPH_SP,
        target=GRAPH_TARGET,
        modified=modified,
    )


@pytest.mark.parametrize(
    ("record", "severity", "role", "role_id", "cats"),
    [
        pytest.param(
            app_role("RoleManagement.ReadWrite.Directory", "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"),
            "critical",
            "RoleManagement.ReadWrite.Directory",
            "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
            ["role_management"],
            id="role-management",
        ),
        pytest.param(
            app_role(None, "dc890d15-9560-4a4c-9b7f-a736ec74ec40"),
            "critical",
            "full_access_as_app",
            "dc890d15-9560-4a4c-9b7f-a736ec74ec40",
            ["exchange_app"],
            id="full-access-as-app-by-role-id-only",
        ),
        pytest.param(
            app_role("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
            "high",
            "Mail.Read",
            "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
            ["mail"],
            id="mail-read-every-mailbox",
        ),
    ],
)
def test_privileged_app_roles(record: dict[str, Any], severity: str, role: str, role_id: str, cats: list[str]) -> None:
    assert run([record]) == [
        expected_alert(
            AppPrivilegedRoleAssignment,
            records=[record],
            severity=severity,
            summary=f"{ADMIN} granted 'Mail Sync' the application permission {role} on Microsoft Graph",
            dedup_key=f"{CLIENT_APP}|{role.lower()}",
            ip=None,
            context={
                "kind": "app_role",
                "permission": role,
                "app_role_id": role_id,
                "app_display_name": "Mail Sync",
                "app_id": CLIENT_APP,
                "resource": "Microsoft Graph",
                "scope_categories": cats,
                "risk": None,
            },
        )
    ]


def delegated(scope: str, consent_type: str = "AllPrincipals", old: str = "") -> dict[str, Any]:
    return directory_record(
        "Add delegated permission grant.",
        ADMIN,
        object_id=GRAPH_SP,
        target=[
            {"ID": f"ServicePrincipal_{GRAPH_SP}", "Type": 2},
            {"ID": GRAPH_SP, "Type": 2},
            {"ID": "Microsoft Graph", "Type": 1},
        ],
        modified=[
            {"Name": "DelegatedPermissionGrant.Scope", "OldValue": old, "NewValue": f" {scope}"},
            {"Name": "DelegatedPermissionGrant.ConsentType", "OldValue": "", "NewValue": consent_type},
            {"Name": "ServicePrincipal.ObjectID", "OldValue": "", "NewValue": CLIENT_SP},
        ],
    )


def test_tenant_wide_delegated_mail_grant_is_high() -> None:
    rec = delegated("Mail.Read offline_access User.Read")
    assert run([rec]) == [
        expected_alert(
            AppPrivilegedRoleAssignment,
            records=[rec],
            severity="high",
            summary=f"{ADMIN} granted 'Microsoft Graph' delegated Mail.Read offline_access for all users",
            dedup_key=f"{GRAPH_SP}|delegated",
            ip=None,
            context={
                "kind": "delegated_all_principals",
                "permission": "Mail.Read offline_access User.Read",
                "risky_scopes": ["Mail.Read"],
                "app_display_name": "Microsoft Graph",
                "app_id": None,
                "service_principal_id": GRAPH_SP,
                "scope_categories": ["mail"],
                "risk": None,
            },
        )
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(app_role("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"), id="user-read-all"),
        pytest.param(delegated("Mail.Read", consent_type="Principal"), id="per-user-grant-left-to-consent"),
        pytest.param(delegated("User.Read openid profile"), id="tenant-wide-benign"),
        pytest.param(delegated("Mail.Read User.Read", old=" Mail.Read"), id="mail-read-already-granted"),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []


def test_state_key_is_the_admins() -> None:
    got = run([app_role("Application.ReadWrite.All", "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9")])
    assert [(a["user_key"], a["severity"], a["context"]["scope_categories"]) for a in got] == [
        (oid_of(ADMIN), "critical", ["app_management"])
    ]
