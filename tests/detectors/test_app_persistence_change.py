"""Applications created, owners added, redirect URIs added (issue #20, item 9).

Directory records (RecordType 8) in the unified-audit-log shape of tests/detectors/records.py. "Add owner to
application." carries the app in ModifiedProperties (Application.ObjectID / Application.DisplayName /
Application.AppId) and the new owner in Target; "Update application." carries reply URLs in
ModifiedProperties.AppAddress as a JSON list of {AddressType, Address, ReplyAddressClientType, ReplyAddressIndex,
IsReplyAddressDefault} (the shape Microsoft Sentinel's "Application Redirect URL Update" analytics rule and
Sekoia's Entra ID samples read).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    directory_record,
    epoch,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.app_persistence_change import AppPersistenceChange
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
ALICE = "alice@contoso.com"
APP_OBJ = "6a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
APP_ID = "8b7c6d5e-4f3a-4b2c-9d1e-0f9e8d7c6b5a"
GRAPH_APP = "00000003-0000-0000-c000-000000000000"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, AppPersistenceChange],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def app_target() -> list[dict[str, Any]]:
    return [
        {"ID": f"Application_{APP_OBJ}", "Type": 2},
        {"ID": APP_OBJ, "Type": 2},
        {"ID": "Application", "Type": 2},
        {"ID": "Payroll Sync", "Type": 1},
        {"ID": APP_ID, "Type": 4},
    ]


def addresses(*uris: str) -> str:
    return orjson.dumps(
        [
            {
                "AddressType": 0,
                "Address": u,
                "ReplyAddressClientType": 1,
                "ReplyAddressIndex": None,
                "IsReplyAddressDefault": False,
            }
            for u in uris
        ]
    ).decode()


def reply_urls(
    old: list[str], new: list[str], *, actor: str = ADMIN, when: str | None = None, op: str = "Update application."
) -> dict[str, Any]:
    return directory_record(
        op,
        actor,
        when=when,
        object_id=APP_OBJ,
        target=app_target(),
        modified=[
            {"Name": "AppAddress", "OldValue": addresses(*old), "NewValue": addresses(*new)},
            {"Name": "Included Updated Properties", "OldValue": "", "NewValue": "AppAddress"},
        ],
    )


def owner_added(app_name: str, app_id: str, owner: str, *, op: str = "Add owner to application.") -> dict[str, Any]:
    prefix = "Application" if "application" in op else "ServicePrincipal"
    return directory_record(
        op,
        ADMIN,
        object_id=owner,
        target=[{"ID": f"User_{oid_of(owner)}", "Type": 2}, {"ID": oid_of(owner), "Type": 2}, {"ID": owner, "Type": 5}],
        modified=[
            {"Name": f"{prefix}.ObjectID", "OldValue": "", "NewValue": APP_OBJ},
            {"Name": f"{prefix}.DisplayName", "OldValue": "", "NewValue": app_name},
            {"Name": f"{prefix}.AppId", "OldValue": "", "NewValue": app_id},
        ],
    )


def test_a_new_app_registered_from_a_risky_session_is_high() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rec = directory_record("Add application.", ALICE, when=at(minutes=3), object_id=APP_OBJ, target=app_target())
    assert run([login, rec]) == [
        expected_alert(
            AppPersistenceChange,
            records=[rec],
            severity="high",
            summary=f"{ALICE} registered the application 'Payroll Sync' after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"app_added|{APP_ID}",
            ip=None,
            context={
                "change": "app_added",
                "app_display_name": "Payroll Sync",
                "app_id": APP_ID,
                "first_party_app": False,
                "operation": "Add application.",
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": epoch(login["CreationTime"]),
                    "record_id": login["Id"],
                },
            },
        )
    ]


@pytest.mark.parametrize(
    ("record", "severity", "summary", "change", "name", "app_id", "details"),
    [
        pytest.param(
            owner_added("Payroll Sync", APP_ID, "mallory@contoso.com"),
            "medium",
            f"{ADMIN} added mallory@contoso.com as an owner of 'Payroll Sync'",
            "owner_added",
            "Payroll Sync",
            APP_ID,
            {"owner": "mallory@contoso.com"},
            id="owner-added-to-app",
        ),
        pytest.param(
            owner_added("Microsoft Graph", GRAPH_APP, "mallory@contoso.com", op="Add owner to service principal."),
            "high",
            f"{ADMIN} added mallory@contoso.com as an owner of 'Microsoft Graph'",
            "owner_added",
            "Microsoft Graph",
            GRAPH_APP,
            {"owner": "mallory@contoso.com"},
            id="owner-added-to-first-party-service-principal",
        ),
        pytest.param(
            reply_urls(
                ["https://payroll.contoso.com/auth"],
                ["https://payroll.contoso.com/auth", "https://login.payro11-sync.com/cb"],
            ),
            "medium",
            f"{ADMIN} added redirect URI https://login.payro11-sync.com/cb to 'Payroll Sync'",
            "redirect_uri_added",
            "Payroll Sync",
            APP_ID,
            {"added_uris": ["https://login.payro11-sync.com/cb"]},
            id="redirect-uri-added",
        ),
        pytest.param(
            reply_urls(
                ["https://payroll.contoso.com/auth"], ["https://payroll.contoso.com/auth", "http://45.140.13.7/cb"]
            ),
            "high",
            f"{ADMIN} added redirect URI http://45.140.13.7/cb to 'Payroll Sync'",
            "redirect_uri_added",
            "Payroll Sync",
            APP_ID,
            {"added_uris": ["http://45.140.13.7/cb"]},
            id="redirect-uri-by-ip-over-http",
        ),
        pytest.param(
            reply_urls(
                ["https://payroll.contoso.com/auth"], ["https://evil.example/cb"], op="Update service principal."
            ),
            "medium",
            f"{ADMIN} added redirect URI https://evil.example/cb to 'Payroll Sync'",
            "redirect_uri_added",
            "Payroll Sync",
            APP_ID,
            {"added_uris": ["https://evil.example/cb"]},
            id="service-principal-reply-url",
        ),
    ],
)
def test_app_persistence(
    record: dict[str, Any],
    severity: str,
    summary: str,
    change: str,
    name: str,
    app_id: str,
    details: dict[str, Any],
) -> None:
    assert run([record]) == [
        expected_alert(
            AppPersistenceChange,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=f"{change}|{app_id}",
            ip=None,
            context={
                "change": change,
                "app_display_name": name,
                "app_id": app_id,
                "first_party_app": app_id == GRAPH_APP,
                "operation": record["Operation"],
                **details,
                "risk": None,
            },
        )
    ]


def test_ordinary_app_work_stays_below_medium() -> None:
    new_app = directory_record("Add application.", ADMIN, object_id=APP_OBJ, target=app_target())
    removed_uri = reply_urls(["https://a.contoso.com/cb", "http://localhost:5000/cb"], ["https://a.contoso.com/cb"])
    localhost = reply_urls(
        ["https://a.contoso.com/cb"], ["https://a.contoso.com/cb", "http://localhost:5000/cb"], when=at(minutes=5)
    )
    got = run([new_app, removed_uri, localhost])
    assert sorted((a["context"]["change"], a["severity"]) for a in got) == [
        ("app_added", "low"),
        ("redirect_uri_added", "low"),
    ]
