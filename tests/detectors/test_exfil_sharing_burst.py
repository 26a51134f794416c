"""Bursts of Anyone links and sharing invitations to outsiders.

Record shapes: RecordType 14 (SharePointSharingOperation) with ``TargetUserOrGroupName``,
``TargetUserOrGroupType`` (Member, Guest, Group, Partner), ``EventData`` and ``UniqueSharingId`` per the
"SharePoint Sharing schema" of the Office 365 Management Activity API schema and Microsoft Purview "Use sharing
auditing in the audit log" (AnonymousLinkCreated, SharingInvitationCreated).
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    expected_alert,
    file_record,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.exfil_sharing_burst import ExfilSharingBurst
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
SITE = "https://contoso.sharepoint.com/sites/finance/"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExfilSharingBurst],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def share(op: str, i: int, *, days: float = 3, minutes: float = 0, target: str = "", kind: str = "") -> dict[str, Any]:
    rec = file_record(op, ALICE, when=at(days=days, minutes=minutes, seconds=20 * i), file_name=f"Q{i}.xlsx", seq=i)
    rec["RecordType"] = 14
    rec["EventData"] = "<Type>View</Type>" if op == "AnonymousLinkCreated" else "<Type>Edit</Type>"
    rec["UniqueSharingId"] = f"0b6c1e2d-3f4a-4b5c-8d6e-7f8091a2b3{i:02d}"
    if target:
        rec["TargetUserOrGroupName"] = target
        rec["TargetUserOrGroupType"] = kind
    return rec


def test_twelve_anyone_links_in_an_hour_are_high() -> None:
    links = [share("AnonymousLinkCreated", i) for i in range(12)]
    assert run(links) == [
        expected_alert(
            ExfilSharingBurst,
            records=links[:10],
            severity="high",
            summary=f"{ALICE} shared 10 items outside the tenant in under an hour (10 Anyone links; no baseline yet)",
            dedup_key=f"{ALICE}|sharing",
            user_key=ALICE,
            ip=HOME_DE,
            last_seen=links[9]["CreationTime"] + "Z",
            context={
                "shares": 10,
                "anonymous_links": 10,
                "recipients": ["anyone"],
                "threshold": 10.0,
                "baseline_per_hour": None,
                "window_start": links[0]["CreationTime"] + "Z",
                "site": SITE,
                "risk": None,
            },
        )
    ]


def test_guest_invitations_after_a_risky_sign_in_alert_from_five() -> None:
    login = signin(ALICE, when=at(days=3, minutes=-15), ip=RISKY_IP)
    invites = [share("SharingInvitationCreated", i, target="drop.box@proton.me", kind="Guest") for i in range(6)]
    got = run([login, *invites])
    assert [
        (
            a["severity"],
            a["context"]["shares"],
            a["context"]["recipients"],
            a["context"]["risk"]["record_id"],
            a["user_key"],
        )
        for a in got
    ] == [("high", 5, ["drop.box@proton.me"], login["Id"], oid_of(ALICE))]
    # the same six invitations without the risky sign-in stay under the floor of 10
    assert run(invites) == []


def test_ordinary_sharing_with_a_partner_and_internal_colleagues_is_silent() -> None:
    partner = [share("SharingInvitationCreated", 0, target="jane@fabrikam.com", kind="Guest")]
    colleagues = [share("SharingInvitationCreated", i, target="bob@contoso.com", kind="Member") for i in range(1, 30)]
    assert run([*partner, *colleagues]) == []


def test_external_address_without_a_type_counts_and_internal_domain_does_not() -> None:
    outside = [share("SharingInvitationCreated", i, target=f"x{i}@gmail.com") for i in range(10)]
    inside = [share("SharingInvitationCreated", i, target=f"y{i}@contoso.com", days=5) for i in range(10)]
    got = run([*outside, *inside])
    assert [(a["severity"], a["context"]["anonymous_links"], len(a["context"]["recipients"])) for a in got] == [
        ("medium", 0, 5)
    ]
