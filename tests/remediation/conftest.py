"""Fixtures for the remediation tests: a Graph emulator, the real SyncGraphClient, Azurite, an in-process bus.

``rig`` bundles what one runner needs: the emulator with tenant A (users, rules, grants, service principals
are added per test), a Table ledger on the session's Azurite, an InProcessBus with the deployed queue options
sharing a fake clock, an in-memory alert sink, and ``rig.runner(...)`` to build a RemediationRunner whose
Graph factory makes a fresh ``SyncGraphClient`` per message (exactly what the function app does).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.detection.engine import InMemoryAlertSink
from shared.emulators.graph import GraphEmulator
from shared.graph.client import SyncGraphClient
from shared.platform import names
from shared.platform.bus import InProcessBus, ReceivedMessage, default_queue_options
from shared.platform.storage import StorageClients
from shared.remediation.actions import GraphPort
from shared.remediation.ledger import (
    LedgerEntry,
    RemediationLedger,
    RemediationRequest,
    RemediationState,
    TableRemediationLedger,
)
from shared.remediation.policy import RemediationPolicy
from shared.remediation.runner import PolicySource, RemediationRunner

TENANT_A = "5f0c1c39-4e0b-4d7e-9b51-1a7d3c2a0a01"
TENANT_B = "9a3e2d11-7c4f-4b8a-a2d6-3e5b7c9d0b02"
START = datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)
ATTACKER = "exfil@evil-mail.example"


class FakeClock:
    """A settable UTC clock for the runner (``clock()``) and the bus (``clock.time()``)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def time(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Rig:
    emu: GraphEmulator
    ledger: TableRemediationLedger
    bus: InProcessBus
    clock: FakeClock
    sink: InMemoryAlertSink
    tenant: str = TENANT_A
    other_tenant: str = TENANT_B
    attacker: str = ATTACKER
    client_timeout: float = 5.0
    factory_calls: list[str] = field(default_factory=list)

    def graph(self, tenant_id: str) -> AbstractContextManager[GraphPort]:
        self.factory_calls.append(tenant_id)
        return SyncGraphClient.create(
            tenant_id,
            credential=self.emu.credential(tenant_id),
            base_url=self.emu.base_url,
            timeout=self.client_timeout,
        )

    def runner(
        self,
        policy: PolicySource | None = None,
        *,
        ledger: RemediationLedger | None = None,
        seed: int = 7,
    ) -> RemediationRunner:
        return RemediationRunner(
            ledger or self.ledger,
            self.graph,
            self.bus,
            policy=policy or RemediationPolicy(tenant_id=TENANT_A),
            clock=self.clock,
            rng=random.Random(seed),
            alert_sink=self.sink,
        )

    def receive(self) -> list[ReceivedMessage]:
        """Every remediation message visible now (completed as received)."""
        out: list[ReceivedMessage] = []
        while True:
            got = self.bus.receive(names.QUEUE_REMEDIATION, max_messages=10)
            if not got:
                return out
            for m in got:
                self.bus.complete(m)
            out.extend(got)

    def drain(self, runner: RemediationRunner, *, max_rounds: int = 20) -> list[Any]:
        """Handle messages until none is visible, advancing the clock to each scheduled one."""
        results: list[Any] = []
        for _ in range(max_rounds):
            msgs = self.receive()
            if not msgs:
                nxt = self.bus.next_visible_at()
                if nxt is None:
                    return results
                self.clock.now = datetime.fromtimestamp(nxt, UTC)
                continue
            results.extend(runner.handle(m.body) for m in msgs)
        raise AssertionError("the remediation queue did not drain")

    def record(
        self, request: RemediationRequest, *, by: str = "soc-analyst", ledger: RemediationLedger | None = None
    ) -> RemediationRequest:
        """The ledger row of an action a person approved (as ``approve_action`` leaves it), so its message runs:
        a message without a row is refused."""
        at = self.clock()
        entry = LedgerEntry.new(request, state=RemediationState.PENDING, at=at, note=f"approved by {by}")
        entry.approved_by = by
        entry.decided_at = at
        into = ledger or self.ledger
        if into.get_entry(request.tenant_id, request.idempotency_key) is None:
            into.create_entry(entry)
        return request

    def row(self, key: str) -> LedgerEntry:
        entry = self.ledger.get_entry(TENANT_A, key)
        assert entry is not None
        return entry

    def states(self) -> dict[str, RemediationState]:
        return {e.key: e.state for e in self.ledger.list_entries(TENANT_A)}


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator(seed=11) as emulator:
        emulator.add_tenant(TENANT_A)
        emulator.add_tenant(TENANT_B)
        yield emulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rig(emu: GraphEmulator, storage: StorageClients, clock: FakeClock) -> Rig:
    return Rig(
        emu=emu,
        ledger=TableRemediationLedger(storage),
        bus=InProcessBus(default_queue_options(), clock=clock.time),
        clock=clock,
        sink=InMemoryAlertSink(),
    )
