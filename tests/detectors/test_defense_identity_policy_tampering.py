"""Identity and access policies weakened (issue #20, item 10).

Directory records (RecordType 8) in the unified-audit-log shape of tests/detectors/records.py. Operation names
follow the "Microsoft Entra audit log activity reference" (Policy: "Delete conditional access policy", "Update
conditional access policy", "Add named location"; UserManagement: "Admin registered security info", whose result
reason reads "Admin registered temporary access pass method for user"). The policy JSON in ModifiedProperties
carries the Graph conditionalAccessPolicy / ipNamedLocation properties (displayName, state, ipRanges[].cidrAddress,
isTrusted), as in Sekoia's and Sentinel's parsers of these records; security defaults carry the
identitySecurityDefaultsEnforcementPolicy ``isEnabled`` property.
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
    expected_alert,
    identity_enricher,
    signin,
)

from detectors.defense_identity_policy_tampering import DefenseIdentityPolicyTampering
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
OFFICE = "203.0.113.7"
POLICY_ID = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenseIdentityPolicyTampering],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def ca_json(state: str) -> str:
    return orjson.dumps(
        {
            "id": POLICY_ID,
            "displayName": "Require MFA for all users",
            "state": state,
            "conditions": {"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        }
    ).decode()


def policy_target(name: str) -> list[dict[str, Any]]:
    return [
        {"ID": f"Policy_{POLICY_ID}", "Type": 2},
        {"ID": POLICY_ID, "Type": 2},
        {"ID": "Policy", "Type": 2},
        {"ID": name, "Type": 1},
    ]


def ca_update(old: str, new: str, *, when: str | None = None) -> dict[str, Any]:
    return directory_record(
        "Update conditional access policy.",
        ADMIN,
        when=when,
        object_id=POLICY_ID,
        target=policy_target("Require MFA for all users"),
        modified=[{"Name": "ConditionalAccessPolicy", "OldValue": ca_json(old), "NewValue": ca_json(new)}],
    )


def named_location(cidr: str, *, trusted: bool, ip: str) -> dict[str, Any]:
    value = orjson.dumps(
        {
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": "Head office",
            "isTrusted": trusted,
            "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": cidr}],
        }
    ).decode()
    rec = directory_record(
        "Add named location.",
        ADMIN,
        object_id=POLICY_ID,
        target=policy_target("Head office"),
        modified=[{"Name": "NamedLocation", "OldValue": "", "NewValue": value}],
    )
    rec["ActorIpAddress"] = ip
    return rec


def test_ca_policy_disabled_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = ca_update("enabled", "disabled", when=at(minutes=15))
    assert run([login, rec]) == [
        expected_alert(
            DefenseIdentityPolicyTampering,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} disabled Conditional Access policy 'Require MFA for all users' after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key="ca_disabled|require mfa for all users",
            ip=None,
            context={
                "change": "ca_disabled",
                "target": "Require MFA for all users",
                "operation": "Update conditional access policy.",
                "state_before": "enabled",
                "state_after": "disabled",
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


TAP_TARGET = [{"ID": "User_5b1c", "Type": 2}, {"ID": "bob@contoso.com", "Type": 5}]


@pytest.mark.parametrize(
    ("record", "severity", "summary", "change", "target", "details"),
    [
        pytest.param(
            directory_record(
                "Delete conditional access policy.",
                ADMIN,
                object_id=POLICY_ID,
                target=policy_target("Require MFA for all users"),
                modified=[{"Name": "ConditionalAccessPolicy", "OldValue": ca_json("enabled"), "NewValue": ""}],
            ),
            "high",
            f"{ADMIN} deleted Conditional Access policy 'Require MFA for all users'",
            "ca_deleted",
            "Require MFA for all users",
            {},
            id="ca-deleted",
        ),
        pytest.param(
            ca_update("enabled", "enabledForReportingButNotEnforced"),
            "medium",
            f"{ADMIN} put Conditional Access policy in report-only mode: 'Require MFA for all users'",
            "ca_report_only",
            "Require MFA for all users",
            {"state_before": "enabled", "state_after": "enabledforreportingbutnotenforced"},
            id="ca-report-only",
        ),
        pytest.param(
            directory_record(
                "Update policy.",
                ADMIN,
                object_id="00000000-0000-0000-0000-000000000000",
                target=[{"ID": "SecurityDefaults", "Type": 1}],
                modified=[
                    {
                        "Name": "SecurityDefaultsEnforcementPolicy",
                        "OldValue": '{"isEnabled":true}',
                        "NewValue": '{"isEnabled":false}',
                    }
                ],
            ),
            "high",
            f"{ADMIN} turned off security defaults: 'Security Defaults'",
            "security_defaults_disabled",
            "Security Defaults",
            {},
            id="security-defaults-off",
        ),
        pytest.param(
            named_location("45.140.13.0/24", trusted=True, ip="198.51.100.10"),
            "medium",
            f"{ADMIN} added a trusted named location 'Head office'",
            "trusted_location_added",
            "Head office",
            {"ip_ranges": ["45.140.13.0/24"], "trusted": True},
            id="trusted-location-the-actor-is-not-in",
        ),
        pytest.param(
            directory_record(
                "Admin registered security info",
                ADMIN,
                object_id="bob@contoso.com",
                target=TAP_TARGET,
                extended=[
                    {"Name": "ResultReason", "Value": "Admin registered temporary access pass method for user"},
                    {"Name": "extendedAuditEventCategory", "Value": "User"},
                ],
            ),
            "medium",
            f"{ADMIN} issued a Temporary Access Pass to 'bob@contoso.com'",
            "temporary_access_pass",
            "bob@contoso.com",
            {},
            id="temporary-access-pass",
        ),
    ],
)
def test_policy_weakening(
    record: dict[str, Any], severity: str, summary: str, change: str, target: str, details: dict[str, Any]
) -> None:
    assert run([record]) == [
        expected_alert(
            DefenseIdentityPolicyTampering,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=f"{change}|{target.lower()}",
            ip=record.get("ActorIpAddress"),
            context={"change": change, "target": target, "operation": record["Operation"], **details, "risk": None},
        )
    ]


def test_an_admin_adding_the_office_they_sit_in_is_not_reported() -> None:
    """Tenant-aware: the office the administrator sits in, without a risky sign-in, is the tenant's ordinary work."""
    rec = named_location("203.0.113.0/24", trusted=True, ip=OFFICE)
    assert run([rec]) == []


def test_enabling_a_policy_or_security_defaults_does_not_alert() -> None:
    enable = ca_update("disabled", "enabled")
    sd_on = directory_record(
        "Update policy.",
        ADMIN,
        seq=1,
        target=[{"ID": "SecurityDefaults", "Type": 1}],
        modified=[
            {
                "Name": "SecurityDefaultsEnforcementPolicy",
                "OldValue": '{"isEnabled":false}',
                "NewValue": '{"isEnabled":true}',
            }
        ],
    )
    other_security_info = directory_record(
        "Admin registered security info",
        ADMIN,
        seq=2,
        target=TAP_TARGET,
        extended=[{"Name": "ResultReason", "Value": "Admin registered phone method for user"}],
    )
    assert run([enable, sd_on, other_security_info]) == []
