"""The sign-in baseline's one-pass update does exactly what the readable view-then-observe does.

``observe_signin`` uses ``_view_and_observe``, a fused version of ``_view`` followed by ``Baseline.observe``.
Both are run here over the same seeded sign-in sequences, from the same stored sections, including the
shapes a stored document can take (floats, malformed entries, a missing table, values aging out, attributes
over their cap): the views, the snapshots and the state documents must be identical.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from shared.detection.base import DetectionContext
from shared.detection.baseline import (
    DAY_S,
    VALUE_CAPS,
    Baseline,
    TenantPrevalence,
    _snapshot_priors,
    _view,
    _view_and_observe,
    user_hash,
)
from shared.detection.state import TENANT_KEY, UserState
from shared.tenant_config import TenantConfig

STORED: dict[str, dict[str, Any]] = {
    "empty": {},
    "as-written": {
        "fs": 1_000_000,
        "n": 12,
        "pr": 1_000_000,
        "v": {"country": {"FR": [1_000_000, 1_100_000, 11]}, "asn": {"3215": [1_000_000, 1_100_000, 12]}},
    },
    "floats-and-malformed": {
        "fs": 1_000_000.5,
        "n": 3,
        "pr": "yesterday",
        "v": {
            "country": {"FR": [1_000_000.5, 1_050_000.25, 2], "DE": "bad", "US": [1, 2]},
            "asn": [],
            "os": {"windows": [True, 5, 1], "macos": [1_000_000, 1_000_001, 1.0]},
        },
    },
    "not-a-table": {"fs": 1_000_000, "n": 1, "v": "broken"},
    "full": {
        "fs": 1_000_000,
        "n": 40,
        "pr": 1_200_000,
        "v": {
            attr: {f"{attr}{i}": [1_000_000 + i, 1_100_000 + i, 1 + i] for i in range(cap)}
            for attr, cap in VALUE_CAPS.items()
        },
    },
}


def attrs_of(rng: random.Random) -> dict[str, str | None]:
    """A sign-in's attributes: mostly the habitual values, sometimes new ones, sometimes unknown."""
    pool = {attr: [f"{attr}{i}" for i in range(cap + 3)] for attr, cap in VALUE_CAPS.items()}
    pool["country"] += ["FR", "DE", "US"]
    pool["asn"] += ["3215"]
    pool["os"] += ["windows", "macos"]
    return {
        attr: (None if rng.random() < 0.1 else rng.choice(values[:2] if rng.random() < 0.7 else values))
        for attr, values in pool.items()
    }


@pytest.mark.parametrize("stored", sorted(STORED))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_pass_update_matches_view_then_observe(stored: str, seed: int) -> None:
    rng = random.Random(seed)
    fused: dict[str, Any] = copy.deepcopy(STORED[stored])
    reference: dict[str, Any] = copy.deepcopy(STORED[stored])
    t = 1_150_000.0
    for i in range(60):
        t += rng.choice([5.5, 600.0, 3600.0, DAY_S, 20 * DAY_S, 95 * DAY_S])
        attrs = attrs_of(rng)
        expected = _view(f"r{i}", Baseline(reference), attrs, t)
        Baseline(reference).observe(t, attrs)
        got, snapshot = _view_and_observe(f"r{i}", fused, dict(attrs), t)
        assert got == expected, i
        assert snapshot == _snapshot_priors(expected), i
        assert fused == reference, i


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        pytest.param(None, [5000, 5000, ["h"]], id="new"),
        pytest.param([4000, 4500, ["a", "b"]], [4000, 5000, ["a", "b", "h"]], id="as-written"),
        pytest.param([6000, 7000, ["h"]], [5000, 7000, ["h"]], id="earlier-sign-in-arrives-late"),
        pytest.param([4000.5, 4500.5, ["a"]], [4000, 5000, ["a", "h"]], id="floats-become-integers"),
        pytest.param([True, 4500, []], [1, 5000, ["h"]], id="a-boolean-is-a-number"),
        pytest.param([4000, 4500, "a,b"], [5000, 5000, ["h"]], id="users-not-a-list"),
        pytest.param(["x", 4500, []], [5000, 5000, ["h"]], id="not-a-number"),
        pytest.param([4000, 4500], [5000, 5000, ["h"]], id="too-short"),
        pytest.param(
            [4000, 4500, ["a", "b", "c", "d", "e", "f"]], [4000, 5000, ["a", "b", "c", "d", "e", "f"]], id="full"
        ),
    ],
)
def test_prevalence_entry_update_from_every_stored_shape(stored: Any, expected: list[Any]) -> None:
    """A stored prevalence entry is updated as written (integers, at most SHARED_MIN_USERS + 1 users) or replaced."""
    h = user_hash("alice")
    if stored is not None and len(stored) == 3 and isinstance(stored[2], list):
        stored = [stored[0], stored[1], [h if u == "h" else u for u in stored[2]]]
    table = {} if stored is None else {"FR": copy.deepcopy(stored)}
    state = UserState({"_prevalence": {"c": table}})
    ctx = DetectionContext(TenantConfig(tenant_id="t"), {TENANT_KEY: state})
    TenantPrevalence(ctx).observe("c", "FR", "alice", 5000.5)
    want = [expected[0], expected[1], [h if u == "h" else u for u in expected[2]]]
    assert state.data["_prevalence"]["c"] == {"FR": want}
