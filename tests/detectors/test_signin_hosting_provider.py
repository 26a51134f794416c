"""signin_hosting_provider: sign-ins from rented servers the user and the tenant do not use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_hosting_provider import SigninHostingProvider
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    AZURE_VPN,
    HOME_DE,
    HOSTING_SG,
    HOSTING_US,
    ICLOUD_RELAY,
    MS_SERVICE,
    VPN_NL,
    at,
    expected_alert,
    history,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninHostingProvider, records, tenant=tenant, enricher=signin_enricher())


def _alert(rec: dict[str, Any], severity: str, *, where: str, provider: str, reasons: list[str], **ctx: Any) -> Any:
    upn = rec["UserId"]
    asn = {HOSTING_US: 14061, HOSTING_SG: 14061, AZURE_VPN: 8075}[rec["ClientIP"]]
    context = {
        "cloud_provider": provider,
        "cloud_service": "AzureCloud" if provider == "azure" else None,
        "user_asn_signins": 0,
        "tenant_asn_users": 0,
        "new_country": False,
        "reasons": reasons,
        **ctx,
    }
    return expected_alert(
        SigninHostingProvider,
        records=[rec],
        severity=severity,
        summary=f"{upn} signed in from {provider} ({rec['ClientIP']}, {where}), "
        "a hosting network this user and tenant do not use",
        dedup_key=f"{oid_of(upn)}|hosting|{asn}",
        context=signin_ctx(rec, **context),
    )


def new_user_on_a_droplet() -> Any:
    rec = signin(ALICE, ip=HOSTING_US)
    return [rec], None, [_alert(rec, "medium", where="US", provider="digitalocean", reasons=["hosting"])]


def learned_user_on_a_droplet_in_a_new_country() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOSTING_SG)
    alert = _alert(
        rec, "high", where="SG", provider="digitalocean", reasons=["hosting", "new_country"], new_country=True
    )
    return [*history(ALICE), rec], None, [alert]


def asn_used_once_before_is_low() -> Any:
    first = signin(ALICE, ip=HOSTING_US)
    again = signin(ALICE, when=at(days=3), ip=HOSTING_SG)
    return (
        [first, again],
        None,
        [
            _alert(first, "medium", where="US", provider="digitalocean", reasons=["hosting"]),
            _alert(
                again,
                "low",
                where="SG",
                provider="digitalocean",
                reasons=["hosting", "asn_used_before"],
                user_asn_signins=1,
            ),
        ],
    )


def habitual_hosting_goes_quiet() -> Any:
    """A developer who works from a cloud machine: alerts until three earlier sign-ins, then quiet."""
    recs = [signin(ALICE, when=at(days=d), ip=HOSTING_US) for d in (0, 2, 4, 6, 8)]
    alerts = [_alert(recs[0], "medium", where="US", provider="digitalocean", reasons=["hosting"])] + [
        _alert(
            r,
            "low",
            where="US",
            provider="digitalocean",
            reasons=["hosting", "asn_used_before"],
            user_asn_signins=n,
        )
        for n, r in ((1, recs[1]), (2, recs[2]))
    ]
    return recs, None, alerts


def company_vpn_on_azure_becomes_shared() -> Any:
    """Five colleagues use the company's Azure-hosted VPN on day one (they alert: the range is not trusted
    yet); a sixth user on day two is quiet because the egress is now shared by the tenant."""
    day_one = [signin(f"user{i}@contoso.com", when=at(hours=i), ip=AZURE_VPN) for i in range(5)]
    late = signin("carol@contoso.com", when=at(days=2), ip=AZURE_VPN)
    alerts = [
        _alert(r, "medium", where="NL", provider="azure", reasons=["hosting"], tenant_asn_users=i)
        for i, r in enumerate(day_one)
    ]
    return [*day_one, late], None, alerts


def campaign_burst_does_not_whitelist_itself() -> Any:
    """Six victims phished through the same VPS within an hour: every one alerts (a shared place needs a day)."""
    recs = [signin(f"victim{i}@contoso.com", when=at(minutes=5 * i), ip=HOSTING_US) for i in range(6)]
    alerts = [
        _alert(r, "medium", where="US", provider="digitalocean", reasons=["hosting"], tenant_asn_users=i)
        for i, r in enumerate(recs)
    ]
    return recs, None, alerts


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "home broadband": lambda: ([signin(ALICE, ip=HOME_DE)], None),
    "microsoft service endpoint": lambda: ([signin(ALICE, ip=MS_SERVICE)], None),
    "apple icloud private relay on akamai": lambda: ([signin(ALICE, ip=ICLOUD_RELAY)], None),
    "vpn on hosting is the anonymiser detector's": lambda: ([signin(ALICE, ip=VPN_NL)], None),
    "trusted range": lambda: (
        [signin(ALICE, ip=AZURE_VPN)],
        TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("20.50.0.0/16",)),
    ),
    "failed sign-in from hosting": lambda: ([signin(ALICE, ip=HOSTING_US, error=50126)], None),
    "mfa interrupt from hosting": lambda: ([signin(ALICE, ip=HOSTING_US, error=50074)], None),
    "no user": lambda: ([signin(ALICE, ip=HOSTING_US, user_id="Not Available", actor=False)], None),
}


@pytest.mark.parametrize(
    "case",
    [
        new_user_on_a_droplet,
        learned_user_on_a_droplet_in_a_new_country,
        asn_used_once_before_is_low,
        habitual_hosting_goes_quiet,
        company_vpn_on_azure_becomes_shared,
        campaign_burst_does_not_whitelist_itself,
    ],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    result = run(records, tenant)
    assert [a.to_dict() for a in result.alerts] == expected


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    assert [a.to_dict() for a in run(records, tenant).alerts] == []
