"""How a workload is cut into batches changes no alert and no saved state.

The detectors share work within a batch (the sign-in view, the tenant's prevalence answers, points
and spray sources normalised or pruned once) and must give exactly what a batch of one event gives,
where nothing is shared. The workload mixes the demo's days and attack chain with password-spray
waves whose sources age out in the middle of a batch, sign-ins from the spray address, an office
network that becomes shared between two sign-ins of the same second, and stored state written by
an older version (points with other number types, malformed entries).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import orjson
import pytest

from detectors import default_registry
from shared.demo import records as R
from shared.demo.workload import generate
from shared.detection.engine import DetectionEngine, InMemoryAlertSink
from shared.detection.state import APPLIED_BATCHES, InMemoryStateStore, UserState
from shared.enrich.factory import IntelFeeds, build_local_enricher
from shared.records.event import parse_blob, parse_time

SPRAY_IPS = ("146.70.133.30", "159.89.10.5", "146.70.160.20")
"""Hosting and VPN addresses of the embedded IP data (M247, DigitalOcean)."""
OFFICE_IP = "81.2.69.160"


def _workload() -> tuple[str, list[dict[str, Any]]]:
    wl = generate(5, days=6, users_per_tenant=12, blob_hours=6)
    tenant = wl.tenants[0]
    records = [r for b in wl.blobs for r in b.records if r["OrganizationId"] == tenant.tenant_id]
    rng = random.Random(5)
    start = wl.start + timedelta(days=3)
    for wave, ip in enumerate(SPRAY_IPS):
        t0 = start + timedelta(hours=5 * wave)
        for i, user in enumerate(tenant.users * 2):
            t = t0 + timedelta(minutes=4 * i)
            records.append(R.signin(rng, t, tenant.tenant_id, user, ip=ip, error=50126))
        victim = tenant.users[wave]
        records.append(R.signin(rng, t0 + timedelta(minutes=50), tenant.tenant_id, victim, ip=ip))
    # four users share the office from day 1; on day 4 a fifth and a sixth arrive in the same second, and
    # the fifth signs in again in that second: the office is shared for the fifth's second sign-in only
    for user in tenant.users[6:10]:
        records.append(R.signin(rng, wl.start + timedelta(days=1, hours=9), tenant.tenant_id, user, ip=OFFICE_IP))
    same_second = wl.start + timedelta(days=4, hours=10)
    for n, user in enumerate((tenant.users[10], tenant.users[11], tenant.users[10])):
        rec = R.signin(rng, same_second, tenant.tenant_id, user, ip=OFFICE_IP)
        rec["Id"] = f"00000000-0000-4000-8000-{n:012d}"  # the engine orders a second's records by Id
        records.append(rec)
    return tenant.tenant_id, records


def _older_state(tenant_id: str, records: list[dict[str, Any]]) -> dict[str, UserState]:
    """Travel points as an older version might have stored them, for the users of the first sign-ins."""
    users = list(dict.fromkeys(r["UserKey"].lower() for r in records if r["Operation"] == "UserLoggedIn"))[:4]
    first = min(r["CreationTime"] for r in records)
    t = parse_time(first) - 3600.5
    points: list[Any] = [[t, 52, 0, 20, "dbip", "GB", "81.2.69.1", "old-1"], "garbage", [t, None], [t + 1, 40.7, -74]]
    return {u: UserState({"signin_impossible_travel": {"pts": points}}, dirty=True) for u in users}


def _run(tenant_id: str, blob: bytes, size: int) -> tuple[list[dict[str, Any]], dict[Any, Any]]:
    events = parse_blob(blob).events
    events.sort(key=lambda e: (e.time, e.record_id))  # batches in time order, as the engine orders one batch
    store, sink = InMemoryStateStore(), InMemoryAlertSink()
    store.save(tenant_id, _older_state(tenant_id, orjson.loads(blob)))
    engine = DetectionEngine(default_registry(), store=store, sink=sink, enricher=build_local_enricher(IntelFeeds()))
    for i in range(0, len(events), size):
        engine.process(tenant_id, events[i : i + size], batch_id=f"batch-{i}")
    states = {}
    for key in store._rows:
        doc = orjson.loads(store.load(key[0], [key[1]])[key[1]].encode())
        doc.pop(APPLIED_BATCHES, None)  # the batch IDs differ by construction
        states[key] = doc
    return [a.to_dict() for a in sink.list_alerts()], states


@pytest.fixture(scope="module")
def one_by_one() -> tuple[str, bytes, list[dict[str, Any]], dict[Any, Any]]:
    tenant_id, records = _workload()
    blob = orjson.dumps(records)
    return (tenant_id, blob, *_run(tenant_id, blob, 1))


@pytest.mark.parametrize("size", [7, 250, 100_000])
def test_batch_size_changes_no_alert_and_no_state(
    one_by_one: tuple[str, bytes, list[dict[str, Any]], dict[Any, Any]], size: int
) -> None:
    tenant_id, blob, alerts_one_by_one, states_one_by_one = one_by_one
    alerts, states = _run(tenant_id, blob, size)
    assert {a["detector"] for a in alerts_one_by_one} >= {"signin_password_spray"}
    assert alerts == alerts_one_by_one
    assert states == states_one_by_one
