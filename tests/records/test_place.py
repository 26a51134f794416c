"""`place_record` (the light first look `itdr scan` takes once it spills) derives exactly what `build_event` does,
and declines every record the full parse would quarantine, repair or map."""

from __future__ import annotations

import orjson
import pytest

from shared.bench.corpus import generate
from shared.records.event import Event, parse_raw_record, place_record

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


def test_the_keys_equal_the_full_parse_over_the_bench_corpus() -> None:
    records = [r for _, _, recs in generate(3000, seed=7) for r in recs]
    assert len(records) == 3000
    for rec in records:
        raw = orjson.dumps(rec)
        ev = parse_raw_record(raw)
        placed = place_record(raw)
        assert isinstance(ev, Event) and placed is not None
        assert (
            placed.time,
            placed.record_id,
            placed.tenant_id,
            placed.op,
            placed.object_id,
            placed.upn,
            placed.ip,
        ) == (
            ev.time,
            ev.record_id,
            ev.tenant_id,
            ev.op,
            ev.object_id,
            ev.upn,
            ev.ip,
        )


BASE = {"Id": "r-1", "CreationTime": "2026-11-24T14:01:00", "OrganizationId": TENANT, "Operation": "UserLoggedIn"}


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps({k: v for k, v in BASE.items() if k != "Id"}),
        orjson.dumps({k: v for k, v in BASE.items() if k != "OrganizationId"}),
        orjson.dumps(BASE | {"CreationTime": "yesterday"}),
        orjson.dumps(BASE | {"CreationTime": "0001-01-01T00:00:00+05:00"}),
        orjson.dumps(BASE | {"Id": "x" * 300}),
        orjson.dumps(BASE | {"UserId": "a\u0085b@contoso.com"}),
        orjson.dumps(BASE | {"UserId": 42}),
        orjson.dumps({"AuditData": orjson.dumps(BASE).decode()}),
        orjson.dumps([BASE]),
        orjson.dumps(BASE)[:-1] + b',"X":NaN}',
        b'{"Id":"deep","X":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_anything_but_a_plain_usable_record_is_left_to_the_full_parse(raw: bytes) -> None:
    assert place_record(raw) is None
