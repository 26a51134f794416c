"""The bench's roaming profiles (README "Benchmark"): what each promises about its users' addresses."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from shared.bench.__main__ import TARGETS, cpu_child, target_checks
from shared.bench.corpus import PROFILES, ensure_corpus, generate, profile_addresses
from shared.bench.panther_peer import VENV as PANTHER_VENV
from shared.bench.panther_peer import run_peer


def _signins(profile: str, n: int) -> list[dict[str, object]]:
    return [r for _, _, recs in generate(n, seed=7, profile=profile) for r in recs]


def _ip(r: dict[str, object]) -> str:
    raw = str(r.get("ClientIP") or r.get("ClientIPAddress"))
    return raw[1:].split("]", 1)[0] if raw.startswith("[") else raw


def test_the_diverse_profile_gives_each_user_20_to_30_networks() -> None:
    counts = profile_addresses()
    assert len(counts) == 1000
    assert min(counts.values()) >= 20
    assert max(counts.values()) <= 30


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_writes_the_records_asked_in_time_order(profile: str) -> None:
    recs = _signins(profile, 6000)
    assert len(recs) == 6000
    times = sorted(datetime.fromisoformat(str(r["CreationTime"])) for r in recs)
    assert times[0] < times[-1]


def test_the_roaming_profiles_span_a_month() -> None:
    for profile in ("diverse", "stress"):
        times = [datetime.fromisoformat(str(r["CreationTime"])) for r in _signins(profile, 3000)]
        assert (max(times) - min(times)).days >= 29


def test_the_stress_profile_has_about_one_event_in_14_from_an_address_new_to_the_user() -> None:
    recs = _signins("stress", 30000)
    uses: dict[tuple[str, str], int] = defaultdict(int)
    for r in recs:
        uses[(str(r["UserId"]), _ip(r))] += 1
    # a usual address recurs; an address new to the user is (almost always) used once
    once = sum(1 for n in uses.values() if n == 1)
    assert 1 / 16 < once / len(recs) < 1 / 11  # light users touch a usual address once too


def test_the_diverse_profile_roams_where_home_does_not() -> None:
    def per_user(profile: str) -> float:
        ips: dict[str, set[str]] = defaultdict(set)
        for r in _signins(profile, 20000):
            ips[str(r["UserId"])].add(_ip(r))
        return sum(len(v) for v in ips.values()) / len(ips)

    assert per_user("home") < 1.5
    assert per_user("diverse") > 5


def test_an_unknown_profile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown bench profile"):
        ensure_corpus(tmp_path, 10, profile="nope")


def test_results_carry_each_target_beside_its_figure() -> None:
    checks = target_checks({"throughput_ratio_vs_orjson_diverse": 0.8, "throughput_ratio_vs_orjson_stress": 0.4})
    assert set(checks) == set(TARGETS)
    assert checks["throughput_ratio_vs_orjson_diverse"]["met"] is True
    assert checks["throughput_ratio_vs_orjson_stress"]["met"] is False
    assert checks["throughput_ratio_vs_pypanther_diverse"]["met"] is None


def test_the_cpu_pass_loads_the_ip_data_before_timing_and_says_how_long_it_took(tmp_path: Path) -> None:
    corpus = ensure_corpus(tmp_path, 3000, profile="diverse")
    got = cpu_child(corpus.path, 1)
    assert got["records_timed"] == 3000
    assert got["intel_load_s"] > 0
    assert 0 < got["throughput_ratio_vs_orjson"] < got["throughput_ratio_without_detectors"]


@pytest.mark.skipif(not PANTHER_VENV.joinpath("bin", "python").exists(), reason="pypanther's venv not set up here")
def test_the_pypanther_peer_runs_its_microsoft_365_rules_over_the_same_blobs(tmp_path: Path) -> None:
    corpus = ensure_corpus(tmp_path, 3000, profile="diverse")
    got = run_peer(corpus.path)
    failed = sum(
        1 for _, _, recs in generate(3000, profile="diverse") for r in recs if r["Operation"] == "UserLoginFailed"
    )
    assert got["records"] == 3000 and got["rules"] == 4
    # of the four rules only brute force matches this corpus: each failed sign-in (the threshold is Panther's backend's)
    assert got["matches"] == failed
    assert got["ratio_vs_orjson"] > 0
