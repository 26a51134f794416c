"""Sign-ins from networks known for harbouring adversary workloads (issue #20, item 15).

Sign-ins are RecordType 15 records (tests/detectors/records.py); the IP context is what the enrichment gives
(ASN from the ASN data), here for addresses of AS44477 (Stark Industries Solutions, on the curated list with its
KrebsOnSecurity source) and of AS14061 (DigitalOcean: plain hosting, not on the list).
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
    HOSTING_US,
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    epoch,
    expected_alert,
    ip_info,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

from detectors.signin_adversary_infrastructure import SigninAdversaryInfrastructure
from detectors.signin_hosting_provider import SigninHostingProvider
from shared.detection.adversary_infra import adversary_asns
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
STARK_IP = "45.80.208.9"
STARK = ip_info(
    STARK_IP,
    country="NL",
    city="Amsterdam",
    latitude=52.37,
    longitude=4.90,
    asn=44477,
    asn_org="STARK INDUSTRIES SOLUTIONS LTD",
    is_hosting=True,
)
SOURCE = (
    "KrebsOnSecurity, 'Stark Industries Solutions: An Iron Hammer in the Cloud' (2024-05-23); also listed in "
    "X4BNet lists_vpn input/datacenter/ASN.txt"
)
SOURCE_URL = "https://krebsonsecurity.com/2024/05/stark-industries-solutions-an-iron-hammer-in-the-cloud/"


def run(
    records: list[dict[str, Any]], *, tenant: TenantConfig | None = None, hosting: bool = False
) -> list[dict[str, Any]]:
    detectors: list[Any] = [RiskySigninMarker, SigninAdversaryInfrastructure]
    if hosting:
        detectors.append(SigninHostingProvider)
    got = run_detector(
        detectors,
        records,
        tenant=tenant or TenantConfig(tenant_id=TEST_TENANT),
        enricher=signin_enricher({STARK_IP: STARK}),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_a_sign_in_from_a_listed_network_is_high_and_above_plain_hosting() -> None:
    rec = signin(ALICE, when=at(minutes=5), ip=STARK_IP)
    got = run([rec], hosting=True)
    by_detector = {a["detector"]: a for a in got}
    assert by_detector["signin_hosting_provider"]["severity"] == "medium"
    assert by_detector["signin_adversary_infrastructure"] == expected_alert(
        SigninAdversaryInfrastructure,
        records=[rec],
        severity="high",
        summary=f"{ALICE} signed in from Stark Industries Solutions Ltd (AS44477, {STARK_IP}), bulletproof hosting",
        dedup_key=f"{oid_of(ALICE)}|adversary_asn|44477",
        context={
            **signin_ctx(
                rec,
                country="NL",
                city="Amsterdam",
                asn=44477,
                asn_org="STARK INDUSTRIES SOLUTIONS LTD",
                geo_provider="dbip",
            ),
            "provider": "Stark Industries Solutions Ltd",
            "kind": "bulletproof_hosting",
            "source": SOURCE,
            "source_url": SOURCE_URL,
            "risk": None,
        },
    )


def test_after_an_earlier_risky_sign_in_it_is_critical() -> None:
    first = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rec = signin(ALICE, when=at(minutes=30), ip=STARK_IP)
    got = run([first, rec])
    assert [(a["severity"], a["context"]["risk"]) for a in got] == [
        (
            "critical",
            {
                "source": "risky_signin",
                "reason": "vpn",
                "ip": RISKY_IP,
                "time": epoch(first["CreationTime"]),
                "record_id": first["Id"],
            },
        )
    ]


def test_plain_hosting_home_and_trusted_ranges_do_not_alert() -> None:
    trusted = TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=["45.80.208.0/24"])
    assert run([signin(ALICE, ip=HOSTING_US), signin(ALICE, ip=HOME_DE, seq=1)]) == []
    assert run([signin(ALICE, ip=STARK_IP)], tenant=trusted) == []


def test_every_list_entry_names_its_provider_and_an_https_source() -> None:
    entries = adversary_asns()
    assert 44477 in entries
    for asn, entry in entries.items():
        assert entry.asn == asn > 0
        assert entry.provider.strip() and entry.source.strip()
        assert entry.url.startswith("https://")
