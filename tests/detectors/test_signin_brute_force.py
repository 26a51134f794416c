"""signin_brute_force: ten wrong passwords for one user in ten minutes, and the success after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_brute_force import SigninBruteForce
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    HOME_DE_2,
    NY_US,
    TOR_DE,
    at,
    expected_alert,
    history,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

ALICE = "alice@contoso.com"
UNKNOWN_IP = "192.0.2.200"
Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninBruteForce, records, tenant=tenant, enricher=signin_enricher())


def fails(
    n: int, *, ip: str = UNKNOWN_IP, error: int = 50126, start_day: float = 0, every_s: float = 50, **kw: Any
) -> Any:
    return [
        signin(ALICE, when=at(days=start_day, seconds=every_s * i), ip=ip, error=error, seq=i, **kw) for i in range(n)
    ]


def _brute(recs: list[dict[str, Any]], severity: str, *, risky: str | None = None) -> Any:
    first, last = recs[0], recs[-1]
    ip = first["ClientIP"].split(":")[0] if first["ClientIP"].count(":") == 1 else first["ClientIP"]
    ctx = signin_ctx(
        {**last, "ClientIP": ip},
        failures=10,
        window_minutes=10,
        failure_ips=[ip],
        anonymizer_or_hosting=risky,
        followed_by_success=False,
    )
    return expected_alert(
        SigninBruteForce,
        records=[first, last],
        severity=severity,
        summary=f"10 failed sign-ins for {ALICE} within 10 minutes from {ip}",
        dedup_key=f"{oid_of(ALICE)}|brute_force",
        context=ctx,
        ip=ip,
    )


def ten_wrong_passwords() -> Any:
    recs = fails(10)
    return recs, None, [_brute(recs, "medium")]


def lockouts_count_too() -> Any:
    locked = [signin(ALICE, when=at(seconds=300 + 20 * i), ip=UNKNOWN_IP, error=50053, seq=100 + i) for i in range(4)]
    recs = fails(6) + locked
    return recs, None, [_brute(recs, "medium")]


def from_tor_is_high() -> Any:
    recs = fails(10, ip=TOR_DE)
    return recs, None, [_brute(recs, "high", risky="tor")]


def not_available_user_id_with_a_port() -> Any:
    recs = fails(10, ip=f"{UNKNOWN_IP}:50123", user_id="Not Available")
    return recs, None, [_brute(recs, "medium")]


def guessed_then_success_from_an_unfamiliar_network() -> Any:
    hist = history(ALICE)
    recs = fails(10, ip=NY_US, start_day=16)
    win = signin(ALICE, when=at(days=16, minutes=12), ip=NY_US)
    success = expected_alert(
        SigninBruteForce,
        records=[recs[0], win],
        first_seen="2024-05-17T08:07:30Z",
        severity="high",
        summary=f"{ALICE} signed in from {NY_US} after a brute-force attempt at 2024-05-17T08:07:30Z "
        "(unfamiliar network)",
        dedup_key=f"{oid_of(ALICE)}|brute_force_success",
        context=signin_ctx(win, failure_ips=[NY_US], anonymizer_or_hosting=None, followed_by_success=True),
    )
    return [*hist, *recs, win], None, [_brute(recs, "medium"), success]


def stale_phone_then_success_from_home_is_not_upgraded() -> Any:
    """A phone retrying an old password alerts (MEDIUM) but the user's own success at home changes nothing."""
    hist = history(ALICE)
    recs = fails(10, ip=HOME_DE_2, start_day=16)
    win = signin(ALICE, when=at(days=16, minutes=15), ip=HOME_DE)
    return [*hist, *recs, win], None, [_brute(recs, "medium")]


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "nine failures": lambda: (fails(9), None),
    "ten failures over half an hour": lambda: (fails(10, every_s=180), None),
    "mfa interrupts 50074": lambda: (fails(12, error=50074), None),
    "mfa interrupts 50076": lambda: (fails(12, error=50076), None),
    "mfa failures 500121": lambda: (fails(12, error=500121), None),
    "disabled account 50057": lambda: (fails(12, error=50057), None),
    "failures without any user are not one fake user": lambda: (
        [
            signin(f"u{i}@contoso.com", when=at(seconds=10 * i), error=50126, user_id="Not Available", actor=False)
            for i in range(12)
        ],
        None,
    ),
    "ten different users once each": lambda: (
        [signin(f"u{i}@contoso.com", when=at(seconds=10 * i), ip=UNKNOWN_IP, error=50126) for i in range(12)],
        None,
    ),
    "success without failures": lambda: ([signin(ALICE, ip=NY_US)], None),
}


@pytest.mark.parametrize(
    "case",
    [
        ten_wrong_passwords,
        lockouts_count_too,
        from_tor_is_high,
        not_available_user_id_with_a_port,
        guessed_then_success_from_an_unfamiliar_network,
        stale_phone_then_success_from_home_is_not_upgraded,
    ],
    ids=lambda c: c.__name__,
)
def test_alerts(case: Case) -> None:
    records, tenant, expected = case()
    assert [a.to_dict() for a in run(records, tenant).alerts] == expected


@pytest.mark.parametrize("name", list(NEGATIVE))
def test_no_alert(name: str) -> None:
    records, tenant = NEGATIVE[name]()
    assert [a.to_dict() for a in run(records, tenant).alerts] == []


def test_success_marks_the_session_risky() -> None:
    win = signin(ALICE, when=at(minutes=12), ip=NY_US)
    result = run([*fails(10, ip=NY_US), win])
    state = result.store.load(TEST_TENANT, [oid_of(ALICE)])[oid_of(ALICE)]
    assert state.data[RISK_SECTION]["marks"] == [[result.alerts[-1].last_seen, NY_US, "brute_force_success", win["Id"]]]
