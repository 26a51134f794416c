"""MFA methods added, removed or disabled; raised shortly after a risky sign-in."""

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
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.defense_mfa_method_change import DefenseMfaMethodChange
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
ADMIN = "it.admin@contoso.com"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenseMfaMethodChange],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def user_target(upn: str) -> list[dict[str, Any]]:
    oid = oid_of(upn)
    return [{"ID": f"User_{oid}", "Type": 2}, {"ID": oid, "Type": 2}, {"ID": "User", "Type": 2}, {"ID": upn, "Type": 5}]


def update_user(actor: str, target: str, prop: str, old: Any, new: Any, *, when: str | None = None) -> dict[str, Any]:
    return directory_record(
        "Update user.",
        actor,
        when=when,
        object_id=target,
        target=user_target(target),
        modified=[
            {"Name": prop, "OldValue": orjson.dumps(old).decode(), "NewValue": orjson.dumps(new).decode()},
            {"Name": "Included Updated Properties", "OldValue": "", "NewValue": f'"{prop}"'},
        ],
    )


def security_info(op: str, upn: str = ALICE, *, when: str | None = None) -> dict[str, Any]:
    return directory_record(op, upn, when=when, object_id=upn, target=user_target(upn))


def test_a_new_authenticator_right_after_a_vpn_sign_in_is_high() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rec = security_info("User registered security info", when=at(minutes=12))
    assert run([login, rec]) == [
        expected_alert(
            DefenseMfaMethodChange,
            records=[rec],
            severity="high",
            summary=f"{ALICE} added MFA on their own account: User registered security info after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key=f"{ALICE}|added",
            ip=None,
            context={
                "change": "added",
                "target_user": ALICE,
                "details": ["User registered security info"],
                "operation": "User registered security info",
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


APP_OLD = [{"Id": "a1", "DeviceName": "Alice iPhone", "DeviceToken": "t1"}]
APP_NEW = [*APP_OLD, {"Id": "b2", "DeviceName": "Galaxy S21", "DeviceToken": "t2"}]
METHODS_OLD = [{"MethodType": 6, "Default": True}, {"MethodType": 7, "Default": False}]


@pytest.mark.parametrize(
    ("record", "severity", "summary", "kind", "details"),
    [
        pytest.param(
            update_user(ALICE, ALICE, "StrongAuthenticationPhoneAppDetail", APP_OLD, APP_NEW),
            "low",
            f"{ALICE} added MFA on their own account: authenticator devices added: Galaxy S21",
            "added",
            ["authenticator devices added: Galaxy S21"],
            id="authenticator-device-added",
        ),
        pytest.param(
            update_user(ADMIN, ALICE, "StrongAuthenticationMethod", METHODS_OLD, METHODS_OLD[:1]),
            "medium",
            f"{ADMIN} removed MFA on {ALICE}: method types removed: 7",
            "removed",
            ["method types removed: 7"],
            id="method-removed-by-admin",
        ),
        pytest.param(
            update_user(
                ADMIN,
                ALICE,
                "StrongAuthenticationRequirement",
                [{"RelyingParty": "*", "State": 1, "RememberDevicesNotIssuedBefore": "2024-01-02T10:00:00Z"}],
                [],
            ),
            "high",
            f"{ADMIN} disabled MFA on {ALICE}: per-user MFA requirement removed",
            "disabled",
            ["per-user MFA requirement removed"],
            id="per-user-mfa-removed",
        ),
        pytest.param(
            directory_record("Disable Strong Authentication.", ADMIN, object_id=ALICE, target=user_target(ALICE)),
            "high",
            f"{ADMIN} disabled MFA on {ALICE}: strong authentication disabled",
            "disabled",
            ["strong authentication disabled"],
            id="disable-strong-authentication",
        ),
        pytest.param(
            security_info("User deleted security info"),
            "medium",
            f"{ALICE} removed MFA on their own account: User deleted security info",
            "removed",
            ["User deleted security info"],
            id="security-info-deleted",
        ),
    ],
)
def test_mfa_changes(record: dict[str, Any], severity: str, summary: str, kind: str, details: list[str]) -> None:
    assert run([record]) == [
        expected_alert(
            DefenseMfaMethodChange,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=f"{ALICE}|{kind}",
            ip=None,
            context={
                "change": kind,
                "target_user": ALICE,
                "details": details,
                "operation": record["Operation"],
                "risk": None,
            },
        )
    ]


def test_a_risky_sign_in_seven_hours_earlier_does_not_raise() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rec = security_info("User registered security info", when=at(hours=7))
    assert [a["severity"] for a in run([login, rec])] == ["low"]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(update_user(ADMIN, ALICE, "Department", "Sales", "Finance"), id="other-property"),
        pytest.param(update_user(ALICE, ALICE, "StrongAuthenticationMethod", METHODS_OLD, METHODS_OLD), id="unchanged"),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
