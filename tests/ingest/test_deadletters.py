"""``itdr deadletters list | replay``: parked rows and the in-process bus's dead-letter queue."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.app import Services, configure
from shared.cli.main import main
from shared.functions.fate import Inbound, run_message
from shared.ingest.deadletters import list_deadletters, replay_deadletters, replay_message_id
from shared.platform import names
from shared.platform.bus import InProcessBus, OutboundMessage, default_queue_options
from shared.platform.errors import BadInputError, ExpiredContentError
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"


@pytest.fixture
def svc(storage: StorageClients) -> Services:
    """Storage on Azurite and an in-process bus with the deployed queue options (no API needed here)."""
    return Services(Settings(), storage=storage, bus=InProcessBus(default_queue_options()))


def park(
    svc: Services, queue: str, message_id: str, body: dict[str, Any], error: Exception, session: str | None = None
) -> None:
    """Park a message the way the function bodies do (run_message with a handler that fails permanently)."""

    def fail(_svc: Services, _body: bytes) -> None:
        raise error

    run_message(svc, Inbound(queue, orjson.dumps(body), message_id, session), fail)


def drain(svc: Services, queue: str) -> list[tuple[str, str | None, bytes]]:
    assert isinstance(svc.bus, InProcessBus)
    out = []
    while got := svc.bus.receive(queue, max_messages=20):
        for m in got:
            out.append((m.message_id, m.session_id, m.body))
            svc.bus.complete(m)
    return out


@pytest.fixture
def parked(svc: Services) -> None:
    park(
        svc,
        names.QUEUE_CONTENT,
        "cid-1",
        {"tenant_id": TENANT_A, "content_id": "cid-1"},
        ExpiredContentError("expired"),
    )
    park(
        svc,
        names.QUEUE_CONTENT,
        "cid-2:replay:1",
        {"tenant_id": TENANT_A, "content_id": "cid-2"},
        BadInputError("bad", reason="invalid_blob"),
    )
    park(
        svc,
        names.QUEUE_RECORDS,
        "records:c:0:0",
        {"tenant_id": TENANT_B},
        BadInputError("x", reason="batch_missing"),
        session=TENANT_B,
    )


def test_list_shows_parked_rows(svc: Services, parked: None) -> None:
    items = list_deadletters(svc)
    assert sorted((i.message_id, i.source, i.tenant_id, i.queue, i.reason) for i in items) == [
        ("cid-1", "table", TENANT_A, names.QUEUE_CONTENT, "content_expired"),
        ("cid-2:replay:1", "table", TENANT_A, names.QUEUE_CONTENT, "invalid_blob"),
        ("records:c:0:0", "table", TENANT_B, names.QUEUE_RECORDS, "batch_missing"),
    ]
    assert [i.message_id for i in list_deadletters(svc, tenant_id=TENANT_B)] == ["records:c:0:0"]
    assert all(datetime.fromisoformat(i.parked_at).tzinfo == UTC for i in items)


def test_replay_resends_with_a_new_message_id_and_forgets_the_row(svc: Services, parked: None) -> None:
    done = replay_deadletters(svc, tenant_id=TENANT_A)
    assert sorted(i.message_id for i in done) == ["cid-1", "cid-2:replay:1"]
    assert sorted(drain(svc, names.QUEUE_CONTENT)) == [
        ("cid-1:replay:1", None, orjson.dumps({"tenant_id": TENANT_A, "content_id": "cid-1"})),
        ("cid-2:replay:2", None, orjson.dumps({"tenant_id": TENANT_A, "content_id": "cid-2"})),
    ]
    assert [i.message_id for i in list_deadletters(svc)] == ["records:c:0:0"]
    # a session queue gets its session back
    replay_deadletters(svc, queue=names.QUEUE_RECORDS, reasons={"batch_missing"})
    assert drain(svc, names.QUEUE_RECORDS) == [
        ("records:c:0:0:replay:1", TENANT_B, orjson.dumps({"tenant_id": TENANT_B}))
    ]
    assert list_deadletters(svc) == []


def test_replay_filters(svc: Services, parked: None) -> None:
    assert [i.message_id for i in replay_deadletters(svc, reasons={"content_expired"})] == ["cid-1"]
    assert [i.message_id for i in replay_deadletters(svc, message_ids={"records:c:0:0"})] == ["records:c:0:0"]
    assert [i.message_id for i in list_deadletters(svc)] == ["cid-2:replay:1"]


def test_the_in_process_bus_dead_letters_are_listed_and_replayed(svc: Services) -> None:
    bus = svc.bus
    assert isinstance(bus, InProcessBus)
    bus.send(names.QUEUE_CONTENT, [OutboundMessage(orjson.dumps({"tenant_id": TENANT_A}), message_id="poison")])
    for _ in range(10):  # max_delivery_count: the bus dead-letters it
        (m,) = bus.receive(names.QUEUE_CONTENT)
        bus.abandon(m)
    (item,) = list_deadletters(svc)
    assert (item.source, item.tenant_id, item.message_id, item.reason) == (
        "bus",
        TENANT_A,
        "poison",
        "MaxDeliveryCountExceeded",
    )
    replay_deadletters(svc, reasons={"MaxDeliveryCountExceeded"})
    assert [m for m, _, _ in drain(svc, names.QUEUE_CONTENT)] == ["poison:replay:1"]
    assert bus.dead_letters() == []


@pytest.mark.parametrize(
    ("message_id", "replayed"),
    [
        ("abc", "abc:replay:1"),
        ("abc:replay:1", "abc:replay:2"),
        ("abc:replay:x", "abc:replay:x:replay:1"),
        ("records:a$b:0:1:replay:9", "records:a$b:0:1:replay:10"),
        ("x" * 125, "sha256:" + hashlib.sha256(b"x" * 125).hexdigest() + ":replay:1"),
    ],
)
def test_replay_message_ids(message_id: str, replayed: str) -> None:
    assert replay_message_id(message_id) == replayed
    assert len(replay_message_id(message_id)) <= 128


def test_the_deadletters_commands(svc: Services, parked: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure(svc)
    try:
        assert main(["deadletters", "list", "--tenant", TENANT_A]) == 0
        listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted((i["message_id"], i["reason"]) for i in listed) == [
            ("cid-1", "content_expired"),
            ("cid-2:replay:1", "invalid_blob"),
        ]
        assert main(["deadletters", "replay"]) == 2
        assert "give a filter" in capsys.readouterr().err
        assert main(["deadletters", "replay", "--all"]) == 0
        replayed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sorted(i["message_id"] for i in replayed) == ["cid-1", "cid-2:replay:1", "records:c:0:0"]
        assert all(i["replayed"] for i in replayed)
    finally:
        configure(None)
    assert list_deadletters(svc) == []
