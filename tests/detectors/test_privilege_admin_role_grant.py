"""Members added to privileged Entra ID roles."""

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

from detectors.privilege_admin_role_grant import PrivilegeAdminRoleGrant
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
MALLORY = "mallory@contoso.com"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, PrivilegeAdminRoleGrant],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def add_member(role: str | None, template: str, *, actor: str = ADMIN, when: str | None = None, **kw: Any) -> Any:
    modified = [
        {"Name": "Role.ObjectID", "OldValue": "", "NewValue": '"3f2e1d0c-9b8a-4766-8554-433221100fed"'},
        {"Name": "Role.TemplateId", "OldValue": "", "NewValue": f'"{template}"'},
        {"Name": "Role.WellKnownObjectName", "OldValue": "", "NewValue": '"TenantAdmins"' if role is None else '""'},
    ]
    if role is not None:
        modified.insert(0, {"Name": "Role.DisplayName", "OldValue": "", "NewValue": f'"{role}"'})
    oid = oid_of(MALLORY)
    return directory_record(
        "Add member to role.",
        actor,
        when=when,
        object_id=MALLORY,
        modified=modified,
        target=[
            {"ID": f"User_{oid}", "Type": 2},
            {"ID": oid, "Type": 2},
            {"ID": "User", "Type": 2},
            {"ID": MALLORY, "Type": 5},
        ],
        **kw,
    )


def test_global_administrator_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = add_member("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", when=at(minutes=4))
    assert run([login, rec]) == [
        expected_alert(
            PrivilegeAdminRoleGrant,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} added {MALLORY} to Global Administrator after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{MALLORY}|global administrator",
            ip=None,
            context={
                "role": "Global Administrator",
                "role_template_id": "62e90394-69f5-4237-9190-012177145e10",
                "member": MALLORY,
                "actor_is_application": False,
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
    ("record", "severity", "role"),
    [
        pytest.param(
            add_member("Exchange Administrator", "29232cdf-9323-42fd-ade2-1d097af3e4de"),
            "high",
            "Exchange Administrator",
            id="exchange-admin",
        ),
        pytest.param(
            add_member("", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"),
            "high",
            "Application Administrator",
            id="template-id-only",
        ),
        pytest.param(
            add_member(None, "62e90394-69f5-4237-9190-012177145e10"),
            "critical",
            "Global Administrator",
            id="well-known-name-only",
        ),
        pytest.param(
            add_member("Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814"),
            "critical",
            "Privileged Role Administrator",
            id="privileged-role-admin",
        ),
    ],
)
def test_privileged_roles(record: dict[str, Any], severity: str, role: str) -> None:
    got = run([record])
    assert [(a["severity"], a["summary"], a["context"]["role"]) for a in got] == [
        (severity, f"{ADMIN} added {MALLORY} to {role}", role)
    ]


def test_an_application_adding_an_admin_is_raised() -> None:
    sp = "7c6b5a4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
    rec = add_member(
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        actor="Provisioning App",
        user_type=5,
    )
    rec["Actor"] = [{"ID": f"ServicePrincipal_{sp}", "Type": 2}, {"ID": sp, "Type": 2}]
    got = run([rec])
    assert [(a["severity"], a["summary"], a["user_key"]) for a in got] == [
        ("critical", f"Provisioning App added {MALLORY} to Exchange Administrator (the actor is an application)", sp)
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(add_member("Reports Reader", "4a5d8f65-41da-4de4-8968-e035b65339cf"), id="read-only-role"),
        pytest.param(
            add_member("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", result="Failure"), id="failed"
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
