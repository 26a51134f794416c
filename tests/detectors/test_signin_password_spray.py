"""signin_password_spray: many users failing from one source, and the success that follows."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from detectors.signin_password_spray import (
    MAX_SOURCES,
    WINDOW_S,
    SigninPasswordSpray,
    _prune_sources,
    _prune_sources_when_due,
)
from shared.detection.base import DetectionContext
from shared.detection.signals import RISK_SECTION
from shared.detection.testing import TEST_TENANT, DetectorRun, run_detector
from shared.tenant_config import TenantConfig
from tests.detectors.records import (
    HOME_DE,
    SPRAY_ASN_IPS,
    SPRAY_IP,
    at,
    expected_alert,
    ip_info,
    oid_of,
    signin,
    signin_ctx,
    signin_enricher,
)

Case = Callable[[], tuple[list[dict[str, Any]], TenantConfig | None, list[dict[str, Any]]]]
CONSUMER_IPS = tuple(f"198.51.100.{i}" for i in range(100, 112))
EXTRA = {
    ip: ip_info(
        ip, country="DE", city="Berlin", latitude=52.52, longitude=13.4, asn=3320, asn_org="Deutsche Telekom AG"
    )
    for ip in CONSUMER_IPS
}


def run(records: list[dict[str, Any]], tenant: TenantConfig | None = None) -> DetectorRun:
    return run_detector(SigninPasswordSpray, records, tenant=tenant, enricher=signin_enricher(EXTRA))


def user(i: int) -> str:
    return f"user{i}@contoso.com"


def failures(n: int, *, ip: str = SPRAY_IP, error: int = 50126, every_min: float = 2, start: int = 0) -> list[Any]:
    return [signin(user(start + i), when=at(minutes=every_min * (start + i)), ip=ip, error=error) for i in range(n)]


def _spray_alert(first: Any, last: Any, users: int, *, source: str, extra_ids: tuple[str, ...] = (), **ctx: Any) -> Any:
    kind, _, value = source.partition(":")
    what = "hosting network AS" + value if kind == "asn" else value
    context = {
        "source": source,
        "source_kind": kind if kind == "asn" else "ip",
        "ip": last["ClientIP"],
        "asn": 204601 if kind == "ip" else 204602,
        "asn_org": "Zomro B.V." if kind == "ip" else "Spray Hosting LLC",
        "country": "RU",
        "users_failed": users,
        "sample_users": [user(0), user(1)],
        "window_minutes": 60,
        "trusted_range": False,
        "shared_network": False,
        "successes": [],
        **ctx,
    }
    summary = f"Password spray from {what}: {users} users failed to sign in within 60 minutes"
    if context["successes"]:
        summary += "; successful sign-in of " + ", ".join(s["user"] for s in context["successes"])
    alert = expected_alert(
        SigninPasswordSpray,
        records=[first, last],
        severity="critical" if context["successes"] else "medium",
        summary=summary,
        dedup_key=f"spray|{source}",
        context=context,
        user=f"{users} users",
        user_key=None,
        ip=last["ClientIP"],
    )
    alert["evidence_record_ids"] = [first["Id"], *extra_ids, last["Id"]]
    return alert


def ten_users_from_one_vps() -> Any:
    fails = failures(10)
    return fails, None, [_spray_alert(fails[0], fails[-1], 10, source=f"ip:{SPRAY_IP}")]


def lockouts_expired_and_disabled_accounts_count() -> Any:
    fails = [*failures(4), *failures(2, error=50053, start=4), *failures(2, error=50055, start=6)]
    fails += failures(2, error=50057, start=8)
    return fails, None, [_spray_alert(fails[0], fails[-1], 10, source=f"ip:{SPRAY_IP}")]


def not_available_user_id_with_an_actor_is_still_a_user() -> Any:
    fails = [signin(user(i), when=at(minutes=i), ip=SPRAY_IP, error=50126, user_id="Not Available") for i in range(10)]
    return fails, None, [_spray_alert(fails[0], fails[-1], 10, source=f"ip:{SPRAY_IP}")]


def success_after_the_spray_is_critical() -> Any:
    fails = failures(10)
    victim = signin(user(3), when=at(minutes=40), ip=SPRAY_IP)
    hit = expected_alert(
        SigninPasswordSpray,
        records=[victim],
        severity="critical",
        summary=f"{user(3)} signed in successfully from {SPRAY_IP}, the source of a password spray against 10 users "
        "at 2024-05-01T08:18:00Z",
        dedup_key=f"{oid_of(user(3))}|spray_success|ip:{SPRAY_IP}",
        context=signin_ctx(
            victim,
            source=f"ip:{SPRAY_IP}",
            spray_flagged_at="2024-05-01T08:18:00Z",
            spray_users=10,
        ),
    )
    return [*fails, victim], None, [_spray_alert(fails[0], fails[-1], 10, source=f"ip:{SPRAY_IP}"), hit]


def success_during_the_spray_makes_it_critical() -> Any:
    early = failures(5)
    victim = signin(user(50), when=at(minutes=9, seconds=30), ip=SPRAY_IP)
    late = failures(5, start=5)
    alert = _spray_alert(
        early[0],
        late[-1],
        10,
        source=f"ip:{SPRAY_IP}",
        extra_ids=(victim["Id"],),
        successes=[{"user": user(50), "time": "2024-05-01T08:09:30Z"}],
    )
    return [*early, victim, *late], None, [alert]


def distributed_spray_across_one_hosting_asn() -> Any:
    fails = [signin(user(i), when=at(minutes=i), ip=ip, error=50126) for i, ip in enumerate(SPRAY_ASN_IPS[:10])]
    return fails, None, [_spray_alert(fails[0], fails[-1], 10, source="asn:204602")]


def thirty_users_behind_the_trusted_egress() -> Any:
    """Behind a shared egress the bar is 30 users; the employees' own successes raise nothing per user."""
    fails = [signin(user(i), when=at(minutes=i), ip=HOME_DE, error=50126) for i in range(30)]
    wins = [signin(user(i), when=at(minutes=40 + i), ip=HOME_DE) for i in range(3)]
    alert = expected_alert(
        SigninPasswordSpray,
        records=[fails[0], fails[-1]],
        severity="medium",
        summary=f"Password spray from {HOME_DE}: 30 users failed to sign in within 60 minutes",
        dedup_key=f"spray|ip:{HOME_DE}",
        context={
            "source": f"ip:{HOME_DE}",
            "source_kind": "ip",
            "ip": HOME_DE,
            "asn": 3320,
            "asn_org": "Deutsche Telekom AG",
            "country": "DE",
            "users_failed": 30,
            "sample_users": [user(0), user(1)],
            "window_minutes": 60,
            "trusted_range": True,
            "shared_network": False,
            "successes": [],
        },
        user="30 users",
        user_key=None,
        ip=HOME_DE,
    )
    return [*fails, *wins], TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("198.51.100.0/24",)), [alert]


NEGATIVE: dict[str, Callable[[], tuple[list[dict[str, Any]], TenantConfig | None]]] = {
    "nine users": lambda: (failures(9), None),
    "ten users spread over three hours": lambda: (failures(10, every_min=20), None),
    "one user failing many times (brute force, not spray)": lambda: (
        [signin(user(0), when=at(minutes=i), ip=SPRAY_IP, error=50126, seq=i) for i in range(15)],
        None,
    ),
    "failures without any user are not one fake user": lambda: (
        [
            signin(user(i), when=at(minutes=i), ip=SPRAY_IP, error=50126, user_id="Not Available", actor=False)
            for i in range(15)
        ],
        None,
    ),
    "mfa interrupts 50074 across the office": lambda: (failures(12, error=50074), None),
    "mfa interrupts 50076 across the office": lambda: (failures(12, error=50076), None),
    "mfa failures are not password failures": lambda: (failures(12, error=500121), None),
    "conditional access blocks": lambda: (failures(12, error=53003), None),
    "typos behind the trusted office egress": lambda: (
        failures(12, ip=HOME_DE),
        TenantConfig(tenant_id=TEST_TENANT, trusted_ip_ranges=("198.51.100.0/24",)),
    ),
    "typos behind the office nat colleagues share (under 30 users), and their successes": lambda: (
        [
            *(signin(user(100 + i), when=at(hours=i), ip=HOME_DE) for i in range(6)),
            *(signin(user(i), when=at(days=2, minutes=i), ip=HOME_DE, error=50126) for i in range(29)),
            *(signin(user(i), when=at(days=2, minutes=40 + i), ip=HOME_DE) for i in range(29)),
        ],
        None,
    ),
    "typos on one consumer isp from many homes": lambda: (
        [signin(user(i), when=at(minutes=i), ip=ip, error=50126) for i, ip in enumerate(CONSUMER_IPS)],
        None,
    ),
    "successes alone": lambda: ([signin(user(i), when=at(minutes=i), ip=SPRAY_IP) for i in range(12)], None),
}


@pytest.mark.parametrize(
    "case",
    [
        ten_users_from_one_vps,
        lockouts_expired_and_disabled_accounts_count,
        not_available_user_id_with_an_actor_is_still_a_user,
        success_after_the_spray_is_critical,
        success_during_the_spray_makes_it_critical,
        distributed_spray_across_one_hosting_asn,
        thirty_users_behind_the_trusted_egress,
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


def test_success_from_the_source_marks_the_session_and_state_stays_small() -> None:
    victim = signin(user(3), when=at(minutes=40), ip=SPRAY_IP)
    result = run([*failures(25), victim], None)
    state = result.store.load(TEST_TENANT, [oid_of(user(3)), "_tenant"])
    assert state[oid_of(user(3))].data[RISK_SECTION]["marks"] == [
        [result.alerts[-1].first_seen, SPRAY_IP, "spray_source", victim["Id"]]
    ]
    spray = state["_tenant"].data["signin_password_spray"]
    assert sorted(spray["flag"]) == ["asn:204601", f"ip:{SPRAY_IP}"]
    assert all(len(entry["u"]) <= 10 for entry in spray["src"].values())


def test_batches_split_the_spray_and_the_result_is_the_same() -> None:
    fails = failures(10)
    one = run(fails)
    split = run_detector(SigninPasswordSpray, fails, enricher=signin_enricher(EXTRA), batch_size=3)
    assert [a.to_dict() for a in split.alerts] == [a.to_dict() for a in one.alerts]
    assert len(one.alerts) == 1


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pruning_only_when_due_keeps_what_a_full_prune_keeps(seed: int) -> None:
    """Failures from more sources than the cap, inside and across the window: the shortcut keeps the same sources."""
    rng = random.Random(seed)
    ctx = DetectionContext(TenantConfig(tenant_id=TEST_TENANT), {})
    sources: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    now = 1_000_000.0
    for i in range(400):
        now += rng.choice([1.0, 30.0, 120.0, WINDOW_S / 3, WINDOW_S + 1])
        keys = rng.sample([f"ip:203.0.113.{n}" for n in range(3 * MAX_SOURCES)], rng.choice([1, 2]))
        for table in (sources, reference):
            for key in keys:  # what `_failure` does to an entry: a user at this time, the window's users kept
                entry = table.setdefault(key, {"t0": int(now), "u": [], "s": [], "r": f"r{i}", "ok": []})
                entry["u"] = [*entry["u"][-4:], [f"u{i % 7}", int(now)]]
        _prune_sources_when_due(ctx, sources, now)
        _prune_sources(reference, now)
        assert sources == reference, i
        assert len(sources) <= MAX_SOURCES
