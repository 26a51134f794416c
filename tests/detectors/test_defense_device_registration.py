"""Devices registered for a user, raised after a risky sign-in.

Record shapes: the Device Registration Service as actor (``{"ID": "Device Registration Service", "Type": 1}`` and
its service principal GUIDs), ``TargetId.DeviceOSType`` / ``TargetId.DeviceTrustType`` modified properties and the
``additionalDetails`` JSON follow Sekoia's public sample SEKOIA-IO/intake-formats
"Office 365/o365/tests/update_device.json"; the user in ``Target`` (``User_<oid>``, object id, ``User``, UPN) follows
the Target encoding of "Office 365/o365/tests/add_member_to_role.json" (that the owner record lists the owner
this way is inferred from Entra's audit view, which shows the device and the user as its targets; no public UAL
sample of it was found). Operation names from Microsoft's "Audit
log activities" (user administration: "Add device.", "Add registered owner to device.", "Add registered users to
device."); "Register device." from the Entra audit activity reference.
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
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

from detectors.defense_device_registration import DefenseDeviceRegistration
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
DRS_SP = "77e1c1f0-8f1c-4b0e-9a53-3b0f1c2d4e5f"
DEVICE_OID = "66a8d7e2-1c3b-4f5a-8e9d-0b1c2d3e4f50"
DEVICE_ID = "11b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
DRS_ACTOR = [
    {"ID": "Device Registration Service", "Type": 1},
    {"ID": DRS_SP, "Type": 2},
    {"ID": "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9", "Type": 2},
    {"ID": "ServicePrincipal", "Type": 2},
]
DEVICE_TARGET = [
    {"ID": f"Device_{DEVICE_OID}", "Type": 2},
    {"ID": DEVICE_OID, "Type": 2},
    {"ID": "Device", "Type": 2},
    {"ID": "DESKTOP-7F3K2Q", "Type": 1},
]


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenseDeviceRegistration],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def drs_record(operation: str, *, when: str, target: list[dict[str, Any]], seq: int = 0) -> dict[str, Any]:
    rec = directory_record(
        operation,
        "drs@contoso.com",
        when=when,
        object_id=f"Device_{DEVICE_OID}",
        actor=DRS_ACTOR,
        target=target,
        user_type=4,
        seq=seq,
        extended=[
            {
                "Name": "additionalDetails",
                "Value": f'{{"DeviceId":"{DEVICE_ID}","DeviceOSType":"Windows","DeviceTrustType":"AzureAd",'
                '"User-Agent":"Dsreg/10.0 (Windows 10.0.19045.3803)"}',
            },
            {"Name": "extendedAuditEventCategory", "Value": "Device"},
        ],
        modified=[
            {"Name": "TargetId.DeviceId", "NewValue": DEVICE_ID, "OldValue": ""},
            {"Name": "TargetId.DeviceOSType", "NewValue": "Windows", "OldValue": ""},
            {"Name": "TargetId.DeviceTrustType", "NewValue": "AzureAd", "OldValue": ""},
            {"Name": "Included Updated Properties", "NewValue": "", "OldValue": ""},
        ],
    )
    rec["UserId"] = "Device Registration Service"
    rec["UserKey"] = "Not Available"
    return rec


def owner_target(upn: str) -> list[dict[str, Any]]:
    oid = oid_of(upn)
    return [
        *DEVICE_TARGET,
        {"ID": f"User_{oid}", "Type": 2},
        {"ID": oid, "Type": 2},
        {"ID": "User", "Type": 2},
        {"ID": upn, "Type": 5},
    ]


OTHER_DE = "203.0.113.7"
"""A German network Alice never signed in from."""


def registration(minutes: float) -> tuple[dict[str, Any], dict[str, Any]]:
    register = drs_record("Register device.", when=at(minutes=minutes), target=DEVICE_TARGET)
    owner = drs_record(
        "Add registered owner to device.", when=at(minutes=minutes, seconds=2), target=owner_target(ALICE)
    )
    return register, owner


def expected(register: dict[str, Any], owner: dict[str, Any], severity: str, summary: str, risk: Any) -> dict[str, Any]:
    return expected_alert(
        DefenseDeviceRegistration,
        records=[register, owner],
        severity=severity,
        summary=summary,
        dedup_key=f"{oid_of(ALICE)}|{DEVICE_OID}",
        user=ALICE,
        user_key=oid_of(ALICE),
        ip=None,
        first_seen=owner["CreationTime"] + "Z",
        context={
            "device_object_id": DEVICE_OID,
            "device_id": DEVICE_ID,
            "device_name": "DESKTOP-7F3K2Q",
            "os": "Windows",
            "trust_type": "AzureAd",
            "operation": "Add registered owner to device.",
            "risk": risk,
        },
    )


def test_a_device_registered_half_an_hour_after_a_tor_sign_in_is_high() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    register, owner = registration(30)
    assert run([login, register, owner]) == [
        expected(
            register,
            owner,
            "high",
            f"Device DESKTOP-7F3K2Q (Windows, AzureAd) registered for {ALICE} after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            {"source": "risky_signin", "reason": "vpn", "ip": RISKY_IP, "time": 1714550400.0, "record_id": login["Id"]},
        )
    ]


def test_ordinary_new_laptop_registered_from_home_is_not_reported() -> None:
    """Tenant-aware: no risky sign-in before and no unfamiliar address on the record (the registration service
    logs none): a new laptop is the tenant's ordinary work."""
    login = signin(ALICE, when=at(minutes=0), ip=HOME_DE)
    register, owner = registration(30)
    assert run([login, register, owner]) == []


def test_a_registration_from_an_address_the_user_never_signed_in_from_is_low() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=HOME_DE)
    register, owner = registration(30)
    owner["ActorIpAddress"] = OTHER_DE
    got = run([login, register, owner])
    assert [(a["severity"], a["ip"]) for a in got] == [("low", OTHER_DE)]


def test_a_registration_a_day_after_the_risky_sign_in_and_the_register_record_alone_are_silent() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    register, owner = registration(24 * 60)
    assert run([login, register, owner]) == []
    assert run([login, register]) == []


def test_the_owner_record_is_keyed_on_the_user_it_names() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    _register, owner = registration(5)
    got = run([login, owner])
    assert [(a["user"], a["user_key"], a["evidence_record_ids"]) for a in got] == [
        (ALICE, oid_of(ALICE), [owner["Id"]])
    ]
