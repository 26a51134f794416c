"""The in-process enricher looks each distinct address up once per batch (issue #24 item 3)."""

from __future__ import annotations

from typing import Any

import orjson

from shared.detection.testing import StaticIntel
from shared.enrich.access import classify_access
from shared.enrich.enricher import LocalEnricher
from shared.records.event import parse_blob
from shared.tenant_config import TenantConfig
from tests.detectors.records import SIGNIN_IPS, signin


class CountingIntel(StaticIntel):
    """The test table, counting the lookups it answers."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__(answers)
        self.asked: list[str] = []

    def lookup(self, ip: str | None) -> Any:
        self.asked.append(str(ip))
        return super().lookup(ip)


def test_each_distinct_address_is_looked_up_once_per_batch_and_every_event_gets_its_answer() -> None:
    ips = sorted(SIGNIN_IPS)[:2]
    records = [signin(ip=ips[i % 2], seq=i) for i in range(10)]
    events = parse_blob(orjson.dumps(records)).events
    intel = CountingIntel(dict(SIGNIN_IPS))
    LocalEnricher(intel, classify=classify_access).enrich(events, TenantConfig(tenant_id=events[0].tenant_id))
    assert sorted(intel.asked) == ips
    assert [ev.ip_info for ev in events] == [SIGNIN_IPS[ips[i % 2]] for i in range(10)]
    # the next batch asks again (the client's own cache decides what a lookup costs across batches)
    more = parse_blob(orjson.dumps(records[:3])).events
    LocalEnricher(intel, classify=classify_access).enrich(more, TenantConfig(tenant_id=more[0].tenant_id))
    assert sorted(intel.asked) == sorted([*ips, *ips])
