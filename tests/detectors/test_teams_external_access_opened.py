"""Teams external, consumer and guest access opened (issue #20, item 13).

Records are SkypeForBusinessCmdlets (RecordType 23, Workload SkypeForBusiness) with Parameters as Name/Value
pairs: the shape Elastic's prebuilt rules "Microsoft 365 Teams External Access Enabled"
(event.action "Set-CsTenantFederationConfiguration", o365.audit.Parameters.AllowFederatedUsers: True) and
"Microsoft 365 Teams Guest Access Enabled" (Set-CsTeamsClientConfiguration, AllowGuestUser: True) read; parameter
names from the Teams PowerShell reference (Set-CsTenantFederationConfiguration).
"""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    epoch,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.teams_external_access_opened import TeamsExternalAccessOpened
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, TeamsExternalAccessOpened],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def teams_cmdlet(
    operation: str, params: dict[str, str], *, when: str | None = None, ip: str = HOME, seq: int = 0
) -> dict[str, Any]:
    rec = exchange_cmdlet(
        operation, {"Identity": "Global", **params}, ADMIN, when=when, ip=ip, object_id="Global", seq=seq
    )
    rec.update(RecordType=23, Workload="SkypeForBusiness")
    return rec


def test_federation_opened_to_everyone_after_a_risky_sign_in_is_high() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = teams_cmdlet(
        "Set-CsTenantFederationConfiguration",
        {"AllowFederatedUsers": "True", "AllowedDomains": "AllowAllKnownDomains"},
        when=at(minutes=10),
        ip=RISKY_IP,
    )
    assert run([login, rec]) == [
        expected_alert(
            TeamsExternalAccessOpened,
            records=[rec],
            severity="high",
            summary=f"{ADMIN} opened Teams to federation with every external organisation after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key="set-cstenantfederationconfiguration|federation with every external organisation",
            user_key=oid_of(ADMIN),
            ip=RISKY_IP,
            context={
                "opened": ["federation with every external organisation"],
                "settings": {"alloweddomains": "AllowAllKnownDomains", "allowfederatedusers": "True"},
                "operation": "Set-CsTenantFederationConfiguration",
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
    ("operation", "params", "severity", "opened"),
    [
        pytest.param(
            "Set-CsTenantFederationConfiguration",
            {"AllowTeamsConsumer": "True", "AllowTeamsConsumerInbound": "True"},
            "medium",
            ["personal (consumer) accounts"],
            id="consumer-accounts",
        ),
        pytest.param(
            "Set-CsTeamsClientConfiguration", {"AllowGuestUser": "True"}, "medium", ["guest access"], id="guest-access"
        ),
        pytest.param(
            "Set-CsTenantFederationConfiguration",
            {"AllowFederatedUsers": "True", "AllowedDomainsAsAList": "fabrikam.com"},
            "low",
            ["federation with fabrikam.com"],
            id="one-partner-domain-is-low",
        ),
    ],
)
def test_access_opened(operation: str, params: dict[str, str], severity: str, opened: list[str]) -> None:
    rec = teams_cmdlet(operation, params)
    assert run([rec]) == [
        expected_alert(
            TeamsExternalAccessOpened,
            records=[rec],
            severity=severity,
            summary=f"{ADMIN} opened Teams to " + " and ".join(opened),
            dedup_key=f"{operation.lower()}|{'|'.join(opened)}",
            user_key=ADMIN,
            ip=HOME,
            context={
                "opened": opened,
                "settings": {k.lower(): v for k, v in sorted(params.items(), key=lambda kv: kv[0].lower())},
                "operation": operation,
                "risk": None,
            },
        )
    ]


def test_closing_access_does_not_alert() -> None:
    off = teams_cmdlet(
        "Set-CsTenantFederationConfiguration", {"AllowFederatedUsers": "False", "AllowTeamsConsumer": "False"}
    )
    guests_off = teams_cmdlet("Set-CsTeamsClientConfiguration", {"AllowGuestUser": "False"}, seq=1)
    assert run([off, guests_off]) == []
