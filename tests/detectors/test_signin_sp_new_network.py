"""A service principal signing in from a network it has not used (Entra service principal sign-in logs)."""

from __future__ import annotations

from typing import Any

from records import HOSTING_SG, HOSTING_US, MS_SERVICE, OFFICE_DE, TOR_DE, at, ip_info, signin_enricher
from signin_log_records import sp_id_of, sp_signin

from detectors.signin_sp_new_network import SigninSpNewNetwork
from shared.detection.testing import TEST_TENANT, run_detector
from shared.tenant_config import TenantConfig

APP_NET = "20.61.1.5"
APP_NET_2 = "20.61.9.9"
OTHER_NL = "185.107.56.1"
EXTRA = {
    OTHER_NL: ip_info(OTHER_NL, country="NL", asn=43350, asn_org="NForce Entertainment B.V.", is_hosting=True),
    APP_NET: ip_info(APP_NET, country="NL", asn=8075, asn_org="Microsoft Corporation", is_hosting=True),
    APP_NET_2: ip_info(APP_NET_2, country="NL", asn=8075, asn_org="Microsoft Corporation", is_hosting=True),
}


def history(days: int = 8) -> list[dict[str, Any]]:
    return [sp_signin(ip=APP_NET, when=at(days=d)) for d in range(days)]


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        SigninSpNewNetwork,
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=(f"{OFFICE_DE}/32",)),
        enricher=signin_enricher(EXTRA),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_a_learned_app_from_a_new_network() -> None:
    rec = sp_signin(ip=HOSTING_US, when=at(days=9))
    [alert] = run([*history(), rec])
    assert alert["severity"] == "high"  # the country is new for the app too
    assert alert["user_key"] == sp_id_of("Contoso Payroll Sync")
    assert alert["summary"] == (
        f"Service principal Contoso Payroll Sync signed in from {HOSTING_US}, network AS14061 DigitalOcean, LLC (US) "
        "it had not used before (new country)"
    )
    assert alert["context"]["known_networks"] == ["8075"]
    assert alert["evidence_record_ids"] == [rec["Id"]]


def test_same_country_new_network_is_medium_and_tor_is_high() -> None:
    [alert] = run([*history(), sp_signin(ip=OTHER_NL, when=at(days=9))])
    assert alert["severity"] == "medium" and alert["context"]["new_country"] is False
    [alert] = run([*history(), sp_signin(ip=HOSTING_SG, when=at(days=9))])
    assert alert["severity"] == "high"  # SG is new
    got = run([*history(), sp_signin(ip=TOR_DE, when=at(days=9))])
    assert got[0]["severity"] == "high" and got[0]["context"]["anonymizer"] == "tor"


def test_ordinary_sign_ins_do_not_alert() -> None:
    records = [
        *[sp_signin(ip=HOSTING_US, when=at(days=d)) for d in (0, 1)],  # learning: new networks are learned
        sp_signin(ip=APP_NET, when=at(days=3)),
        sp_signin(ip=APP_NET_2, when=at(days=9)),  # another address of a known network
        sp_signin(ip=MS_SERVICE, when=at(days=9, hours=1)),  # Microsoft's own addresses (managed identities)
        sp_signin(ip=OFFICE_DE, when=at(days=9, hours=2)),  # the tenant's trusted range
        sp_signin(ip=TOR_DE, error=7000215, when=at(days=9, hours=3)),  # a failed attempt (wrong secret)
    ]
    assert run(records) == []
