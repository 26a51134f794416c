"""New secrets or certificates on applications and service principals."""

from __future__ import annotations

from typing import Any

import pytest
from records import TEST_TENANT, directory_record, expected_alert, identity_enricher

from detectors.app_credential_added import AppCredentialAdded
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
SP = "5f0c2e1d-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
APP_OBJ = "6a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
APP_ID = "8b7c6d5e-4f3a-4b2c-9d1e-0f9e8d7c6b5a"
KEY1 = "0d4c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
KEY2 = "1e5d3c2b-0f9a-4b8c-9d7e-6f5a4b3c2d1e"
AUTOMATION = "7c6b5a4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"


def key(kid: str, kind: str = "Password", name: str = "backup") -> str:
    return f"[KeyIdentifier={kid}, KeyType={kind}, KeyUsage=Verify, DisplayName={name}]"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tenant = TenantConfig(tenant_id=TEST_TENANT)
    got = run_detector(AppCredentialAdded, records, tenant=tenant, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def sp_target(sp: str = SP) -> list[dict[str, Any]]:
    return [
        {"ID": f"ServicePrincipal_{sp}", "Type": 2},
        {"ID": sp, "Type": 2},
        {"ID": "ServicePrincipal", "Type": 2},
        {"ID": "Payroll Sync", "Type": 1},
        {"ID": APP_ID, "Type": 2},
    ]


def test_a_secret_added_to_a_service_principal_is_medium() -> None:
    rec = directory_record(
        "Add service principal credentials.",
        ADMIN,
        object_id=SP,
        target=sp_target(),
        modified=[
            {"Name": "KeyDescription", "OldValue": "[]", "NewValue": f'["{key(KEY1)}"]'},
            {"Name": "Included Updated Properties", "OldValue": "", "NewValue": "KeyDescription"},
        ],
    )
    assert run([rec]) == [
        expected_alert(
            AppCredentialAdded,
            records=[rec],
            severity="medium",
            summary=f"{ADMIN} added a Password credential to 'Payroll Sync'",
            dedup_key=APP_ID,
            ip=None,
            context={
                "app_display_name": "Payroll Sync",
                "app_id": APP_ID,
                "service_principal_id": SP,
                "operation": "Add service principal credentials.",
                "added_keys": [{"key_id": KEY1, "type": "Password", "display_name": "backup"}],
                "actor_is_application": False,
                "first_party_app": False,
                "risk": None,
            },
        )
    ]


def test_a_certificate_added_by_an_application_is_high() -> None:
    rec = directory_record(
        "Update application – Certificates and secrets management ",
        "Automation App",
        object_id=APP_OBJ,
        user_type=5,
        actor=[
            {"ID": f"ServicePrincipal_{AUTOMATION}", "Type": 2},
            {"ID": AUTOMATION, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
        ],
        target=[
            {"ID": f"Application_{APP_OBJ}", "Type": 2},
            {"ID": APP_OBJ, "Type": 2},
            {"ID": "Application", "Type": 2},
            {"ID": "Payroll Sync", "Type": 1},
            {"ID": APP_ID, "Type": 2},
        ],
        modified=[
            {
                "Name": "KeyDescription",
                "OldValue": f'["{key(KEY1)}"]',
                "NewValue": f'["{key(KEY1)}","{key(KEY2, "AsymmetricX509Cert", "CN=sync")}"]',
            }
        ],
    )
    assert run([rec]) == [
        expected_alert(
            AppCredentialAdded,
            records=[rec],
            severity="high",
            summary="Automation App added a AsymmetricX509Cert credential to 'Payroll Sync' (the actor is an application)",
            dedup_key=APP_ID,
            user=AUTOMATION,
            user_key=AUTOMATION,
            ip=None,
            context={
                "app_display_name": "Payroll Sync",
                "app_id": APP_ID,
                "service_principal_id": APP_OBJ,
                "operation": "Update application – Certificates and secrets management ",
                "added_keys": [{"key_id": KEY2, "type": "AsymmetricX509Cert", "display_name": "CN=sync"}],
                "actor_is_application": True,
                "first_party_app": False,
                "risk": None,
            },
        )
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            directory_record(
                "Update application – Certificates and secrets management ",
                ADMIN,
                target=sp_target(),
                modified=[
                    {
                        "Name": "KeyDescription",
                        "OldValue": f'["{key(KEY1)}","{key(KEY2)}"]',
                        "NewValue": f'["{key(KEY2)}"]',
                    }
                ],
            ),
            id="secret-removed",
        ),
        pytest.param(
            directory_record(
                "Add service principal credentials.",
                ADMIN,
                target=sp_target(),
                result="Failure",
                modified=[{"Name": "KeyDescription", "OldValue": "[]", "NewValue": f'["{key(KEY1)}"]'}],
            ),
            id="failed",
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []


EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"  # Office 365 Exchange Online, a Microsoft first-party app


def test_a_certificate_on_microsofts_exchange_online_service_principal_is_critical() -> None:
    """Issue #20 item 9: keys on first-party service principals (Midnight Blizzard guidance: "Add service principal
    credentials." on Office 365 Exchange Online to use its full_access_as_app role)."""
    rec = directory_record(
        "Add service principal credentials.",
        ADMIN,
        object_id=SP,
        target=[
            {"ID": f"ServicePrincipal_{SP}", "Type": 2},
            {"ID": SP, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
            {"ID": "Office 365 Exchange Online", "Type": 1},
            {"ID": EXCHANGE_APP, "Type": 2},
        ],
        modified=[
            {"Name": "KeyDescription", "OldValue": "[]", "NewValue": f'["{key(KEY1, "AsymmetricX509Cert", "CN=x")}"]'}
        ],
    )
    assert run([rec]) == [
        expected_alert(
            AppCredentialAdded,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} added a AsymmetricX509Cert credential to 'Office 365 Exchange Online', a Microsoft "
            "first-party application",
            dedup_key=EXCHANGE_APP,
            ip=None,
            context={
                "app_display_name": "Office 365 Exchange Online",
                "app_id": EXCHANGE_APP,
                "service_principal_id": SP,
                "operation": "Add service principal credentials.",
                "added_keys": [{"key_id": KEY1, "type": "AsymmetricX509Cert", "display_name": "CN=x"}],
                "actor_is_application": False,
                "first_party_app": True,
                "risk": None,
            },
        )
    ]
