"""`itdr scan`: the input's own first days are the baseline of the novelty detectors (`baseline_until`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from shared.cli.main import main
from shared.demo import records as R

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def _user(i: int) -> R.User:
    return R.User(
        upn=f"user{i}@contoso.com",
        object_id=R.stable_guid("scan-baseline", i),
        puid=f"10032000{i:08X}",
        display_name=f"User {i}",
        home_ip=f"73.15.22.{10 + i}",
        os="Windows10",
        browser="Edge",
        user_agent=R.UA_EDGE,
    )


def export(tmp_path: Path) -> Path:
    """Three users signing in daily for three weeks; user1 tries Azure CLI on day 2, user2 on day 16."""
    rng = random.Random(5)
    users = [_user(i) for i in range(3)]
    recs = [R.signin(rng, START + timedelta(days=d), TENANT, u, ip=u.home_ip) for d in range(21) for u in users]
    for user, day in ((users[1], 2), (users[2], 16)):
        recs.append(
            R.signin(
                rng,
                START + timedelta(days=day, hours=2),
                TENANT,
                user,
                ip=user.home_ip,
                app=AZURE_CLI,
                user_agent=R.UA_POWERSHELL,
                request_type="OAuth2:Token",
            )
        )
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n")
    return path


def test_the_first_days_of_the_input_are_the_baseline(tmp_path: Path) -> None:
    out, summary = tmp_path / "alerts.jsonl", tmp_path / "summary.json"
    code = main(["scan", str(export(tmp_path)), "--format", "jsonl", "--output", str(out), "--summary", str(summary)])
    assert code == 0
    facts = orjson.loads(summary.read_bytes())
    # the tenant was first observed at its first record; the longest tenant learning rule is 14 days
    assert facts["baseline_until"] == {TENANT: (START + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines() if line.strip()]
    first_use = [(a["user"], a["severity"]) for a in alerts if a["detector"] == "evasive_public_client_first_use"]
    # day 2 built the baseline; day 16 is after it
    assert first_use == [("user2@contoso.com", "medium")]
