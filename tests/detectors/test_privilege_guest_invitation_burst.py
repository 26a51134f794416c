"""Bursts of guest invitations (issue #20, item 13).

"Invite external user." directory records (RecordType 8) in the shape of tests/detectors/records.py: the
invited guest is the Target UPN (``<address>#EXT#@<tenant>.onmicrosoft.com``), as in the "Microsoft Entra audit
log activity reference" (UserManagement, "Invite external user") and Sentinel's guest-invitation hunting queries.
"""

from __future__ import annotations

from typing import Any

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

from detectors.privilege_guest_invitation_burst import PrivilegeGuestInvitationBurst
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, PrivilegeGuestInvitationBurst],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def guest(n: int) -> str:
    return f"guest{n}_outlook.com#ext#@contoso.onmicrosoft.com"


def invite(n: int, *, when: str, inviter: str = ALICE) -> dict[str, Any]:
    return directory_record(
        "Invite external user.",
        inviter,
        when=when,
        seq=n,
        object_id=guest(n),
        target=[{"ID": f"User_{n:08d}-0000-4000-8000-000000000000", "Type": 2}, {"ID": guest(n), "Type": 5}],
        modified=[
            {"Name": "UserType", "OldValue": "[]", "NewValue": '["Guest"]'},
            {"Name": "Included Updated Properties", "OldValue": "", "NewValue": "UserType"},
        ],
    )


def test_ten_invitations_in_an_hour_after_a_risky_sign_in_is_high() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    invites = [invite(n, when=at(minutes=5 + 3 * n)) for n in range(10)]
    assert run([login, *invites]) == [
        expected_alert(
            PrivilegeGuestInvitationBurst,
            records=invites,
            severity="high",
            summary=f"{ALICE} invited 10 guests within an hour after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{oid_of(ALICE)}|guest_burst",
            ip=None,
            context={
                "invitations": 10,
                "invitees": [guest(n) for n in range(10)],
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


def test_twenty_five_invitations_raise_one_growing_alert_to_high() -> None:
    invites = [invite(n, when=at(minutes=2 * n)) for n in range(25)]
    got = run(invites)
    assert [(a["severity"], a["count"], len(a["evidence_record_ids"])) for a in got] == [("high", 16, 25)]
    assert got[0]["summary"] == f"{ALICE} invited 25 guests within an hour"


def test_one_guest_or_a_slow_trickle_does_not_alert() -> None:
    assert run([invite(0, when=at())]) == []
    assert run([invite(n, when=at(minutes=9 * n)) for n in range(12)]) == []
