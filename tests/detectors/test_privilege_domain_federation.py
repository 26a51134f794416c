"""Domain federation backdoor (issue #20, item 12).

Directory records (RecordType 8) with the unified-audit-log operation names Microsoft's hunting guidance and
incident-response scripts search for ("Add domain to company.", "Verify domain.", "Set domain authentication.",
"Set federation settings on domain."; Microsoft 365 Defender hunting query ADFSDomainTrustMods[Solarigate] reads the
domain as the second activity object, i.e. a Target entry). Property names (DomainName, LiveType / authentication
"Federated", IssuerUri, SigningCertificate, FederatedIdpMfaBehavior) follow the Graph domain and
internalDomainFederation resources.
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
    signin,
)

from detectors.privilege_domain_federation import PrivilegeDomainFederation
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
ROGUE = "contoso-sso.com"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, PrivilegeDomainFederation],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def domain_record(op: str, domain: str, *, when: str, modified: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return directory_record(
        op,
        ADMIN,
        when=when,
        object_id=domain,
        target=[{"ID": "Domain", "Type": 2}, {"ID": domain, "Type": 1}],
        modified=modified or [],
    )


def federate(domain: str, *, when: str) -> dict[str, Any]:
    return domain_record(
        "Set domain authentication.",
        domain,
        when=when,
        modified=[
            {"Name": "LiveType", "OldValue": '["Managed"]', "NewValue": '["Federated"]'},
            {"Name": "Included Updated Properties", "OldValue": "", "NewValue": "LiveType"},
        ],
    )


def test_add_verify_federate_after_a_risky_sign_in() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    add = domain_record("Add domain to company.", ROGUE, when=at(minutes=5))
    verify = domain_record("Verify domain.", ROGUE, when=at(minutes=40))
    fed = federate(ROGUE, when=at(minutes=45))
    risk = {
        "source": "risky_signin",
        "reason": "vpn",
        "ip": RISKY_IP,
        "time": epoch(login["CreationTime"]),
        "record_id": login["Id"],
    }
    note = f" after a risky sign-in (vpn from {RISKY_IP})"
    assert run([login, add, verify, fed]) == [
        expected_alert(
            PrivilegeDomainFederation,
            records=[verify],
            severity="high",
            summary=f"{ADMIN} added and verified the domain {ROGUE}{note}",
            dedup_key=f"{ROGUE}|new_domain_verified",
            ip=None,
            context={
                "domain": ROGUE,
                "change": "new_domain_verified",
                "recently_added": True,
                "changed_properties": [],
                "operation": "Verify domain.",
                "risk": risk,
            },
        ),
        expected_alert(
            PrivilegeDomainFederation,
            records=[fed],
            severity="critical",
            summary=f"{ADMIN} switched the domain {ROGUE} to federated authentication, a domain added this week{note}",
            dedup_key=f"{ROGUE}|federated",
            ip=None,
            context={
                "domain": ROGUE,
                "change": "federated",
                "recently_added": True,
                "changed_properties": ["livetype"],
                "operation": "Set domain authentication.",
                "risk": risk,
            },
        ),
    ]


def test_federation_settings_changed_on_an_existing_domain_is_high() -> None:
    rec = domain_record(
        "Set federation settings on domain.",
        "contoso.com",
        when=at(),
        modified=[
            {
                "Name": "IssuerUri",
                "OldValue": '["http://sts.contoso.com/adfs/services/trust"]',
                "NewValue": '["http://any.sts/B9C2A1"]',
            },
            {"Name": "SigningCertificate", "OldValue": '["MIIC8DCC..."]', "NewValue": '["MIIDBTCC..."]'},
        ],
    )
    assert run([rec]) == [
        expected_alert(
            PrivilegeDomainFederation,
            records=[rec],
            severity="high",
            summary=f"{ADMIN} changed the federation settings of the domain contoso.com",
            dedup_key="contoso.com|federation_settings",
            ip=None,
            context={
                "domain": "contoso.com",
                "change": "federation_settings",
                "recently_added": False,
                "changed_properties": ["issueruri", "signingcertificate"],
                "operation": "Set federation settings on domain.",
                "risk": None,
            },
        )
    ]


def test_ordinary_domain_work_does_not_alert() -> None:
    # a domain added long ago and verified now, a domain set back to managed, a lone addition
    old_add = domain_record("Add domain to company.", "fabrikam.com", when=at(days=0))
    late_verify = domain_record("Verify domain.", "fabrikam.com", when=at(days=10))
    managed = domain_record(
        "Set domain authentication.",
        "contoso.com",
        when=at(days=10, hours=1),
        modified=[{"Name": "LiveType", "OldValue": '["Federated"]', "NewValue": '["Managed"]'}],
    )
    lone = domain_record("Add domain to company.", "new-brand.com", when=at(days=11))
    assert run([old_add, late_verify, managed, lone]) == []
