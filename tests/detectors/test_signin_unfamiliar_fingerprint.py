"""signin_unfamiliar_fingerprint: a new network together with a new device, against the learned baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_unfamiliar_fingerprint import SigninUnfamiliarFingerprint
from shared.detection.baseline import browser_family, os_family
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    HOME_FR,
    ICLOUD_RELAY,
    OFFICE_DE,
    at,
    expected_alert,
    history,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
MAC: dict[str, Any] = {"os": "MacOs", "browser": "Safari", "user_agent": SAFARI_MAC}
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]
KNOWN = {"country": ["DE"], "asn": ["3320"], "os": ["windows"], "browser": ["edge"], "client": ["office"]}


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninUnfamiliarFingerprint, records, tenant=tenant, enricher=signin_enricher())


def _alert(rec: dict[str, Any], severity: str, score: int, new: list[str], fingerprint: dict[str, Any]) -> Any:
    shown = ", ".join(f"{a} {fingerprint[a]}" for a in new)
    return expected_alert(
        SigninUnfamiliarFingerprint,
        records=[rec],
        severity=severity,
        summary=f"{ALICE} signed in with an unfamiliar fingerprint: new {shown}",
        dedup_key=f"{oid_of(ALICE)}|fingerprint",
        context=signin_ctx(
            rec,
            score=score,
            new_attributes=new,
            fingerprint=fingerprint,
            known={a: KNOWN[a] for a in new},
            signins_before=15,
        ),
    )


def new_network_and_new_mac() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=OFFICE_DE, **MAC)
    fp = {"country": "DE", "asn": "3209", "os": "macos", "browser": "safari", "client": "office"}
    return [*history(ALICE), rec], None, [_alert(rec, "medium", 3, ["asn", "os", "browser"], fp)]


def new_country_with_azure_cli_from_a_mac() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR, app=AZURE_CLI, **MAC)
    fp = {"country": "FR", "asn": "3215", "os": "macos", "browser": "safari", "client": "azure_cli"}
    alert = _alert(rec, "high", 5, ["country", "asn", "os", "browser", "client"], fp)
    return [*history(ALICE), rec], None, [alert]


def new_country_and_new_os() -> Any:
    rec = signin(ALICE, when=at(days=16), ip=HOME_FR, os="Linux")
    fp = {"country": "FR", "asn": "3215", "os": "linux", "browser": "edge", "client": "office"}
    return [*history(ALICE), rec], None, [_alert(rec, "medium", 3, ["country", "asn", "os"], fp)]


def _later(**kw: Any) -> list[dict[str, Any]]:
    return [*history(ALICE), signin(ALICE, when=at(days=16), **kw)]


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "new country alone (signin_new_location's)": lambda: (_later(ip=HOME_FR), None),
    "new network and new browser only": lambda: (_later(ip=OFFICE_DE, browser="Chrome"), None),
    "a new laptop at home": lambda: (_later(ip=HOME_DE, app=AZURE_CLI, **MAC), None),
    "windows 10 to windows 11 on a new network": lambda: (_later(ip=OFFICE_DE, os="Windows 11"), None),
    "user in their first week": lambda: (
        [*history(ALICE, days=5), signin(ALICE, when=at(days=6), ip=HOME_FR, app=AZURE_CLI, **MAC)],
        None,
    ),
    "trusted range with a new device": lambda: (
        _later(ip=OFFICE_DE, **MAC),
        TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("203.0.113.0/24",)),
    ),
    "iphone through icloud private relay": lambda: (
        _later(ip=ICLOUD_RELAY, os="iOS", browser="Safari", user_agent=SAFARI_IPHONE),
        None,
    ),
    "failed sign-in with everything new": lambda: (_later(ip=HOME_FR, app=AZURE_CLI, error=50126, **MAC), None),
    "mfa interrupt with everything new": lambda: (_later(ip=HOME_FR, app=AZURE_CLI, error=50076, **MAC), None),
}


@pytest.mark.parametrize(
    "case",
    [new_network_and_new_mac, new_country_with_azure_cli_from_a_mac, new_country_and_new_os],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    assert [a.to_dict() for a in run(records, tenant).alerts] == expected


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    assert [a.to_dict() for a in run(records, tenant).alerts] == []


@pytest.mark.parametrize(
    ("raw", "family"),
    [("Windows 10", "windows"), ("Windows11", "windows"), ("MacOs", "macos"), ("iOS", "ios"), ("", None)],
)
def test_os_family(raw: str, family: str | None) -> None:
    assert os_family(raw) == family


@pytest.mark.parametrize(
    ("raw", "family"),
    [("Edge 124.0.2478", "edge"), ("Chrome", "chrome"), ("Rich Client", "rich client"), ("Unknown", None)],
)
def test_browser_family(raw: str, family: str | None) -> None:
    assert browser_family(raw) == family
