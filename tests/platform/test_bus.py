"""The in-process bus keeps the Service Bus semantics the pipeline relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.platform.bus import InProcessBus, OutboundMessage, QueueOptions
from shared.platform.errors import BadInputError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_bus(clock: Clock) -> InProcessBus:
    return InProcessBus(
        {
            "s": QueueOptions(requires_session=True, max_delivery_count=3, lock_duration_s=30),
            "q": QueueOptions(duplicate_detection_s=3600, max_delivery_count=2),
        },
        clock=clock,
    )


def msg(i: int, session: str | None = None, **kw: object) -> OutboundMessage:
    return OutboundMessage(f"body-{i}".encode(), message_id=f"m{i}", session_id=session, **kw)  # type: ignore[arg-type]


def test_sessions_deliver_in_order_to_one_receiver_at_a_time() -> None:
    bus = make_bus(Clock())
    bus.send("s", [msg(1, "tenant-a"), msg(2, "tenant-b"), msg(3, "tenant-a")])
    first = bus.receive("s", max_messages=10)
    assert [m.message_id for m in first] == ["m1", "m3"]  # one session per receive, in order
    second = bus.receive("s", max_messages=10)
    assert [m.message_id for m in second] == ["m2"]
    assert bus.receive("s", max_messages=10) == []  # tenant-a is locked while m1/m3 are held
    bus.complete(first[0])
    bus.complete(first[1])
    bus.complete(second[0])
    assert bus.pending() == 0


def test_abandon_redelivers_then_dead_letters_with_reason() -> None:
    bus = make_bus(Clock())
    bus.send("s", [msg(1, "t")])
    for expected_count in (1, 2, 3):
        got = bus.receive("s")
        assert got[0].delivery_count == expected_count
        bus.abandon(got[0])
    assert bus.receive("s") == []
    (dead,) = bus.dead_letters("s")
    assert (dead.reason, dead.delivery_count, dead.message.message_id) == ("MaxDeliveryCountExceeded", 3, "m1")


def test_session_queue_rejects_message_without_session() -> None:
    bus = make_bus(Clock())
    bus.send("s", [msg(1)])
    assert [d.reason for d in bus.dead_letters("s")] == ["Session ID is null"]


def test_lock_expiry_redelivers_and_late_complete_fails() -> None:
    clock = Clock()
    bus = make_bus(clock)
    bus.send("s", [msg(1, "t")])
    held = bus.receive("s")[0]
    clock.now += 31
    again = bus.receive("s")[0]
    assert again.delivery_count == 2
    with pytest.raises(LookupError):
        bus.complete(held)
    bus.complete(again)
    assert bus.pending() == 0


def test_duplicate_detection_by_message_id_within_window() -> None:
    clock = Clock()
    bus = make_bus(clock)
    bus.send("q", [msg(1), msg(1)])
    assert bus.pending("q") == 1 and bus.stats.duplicates_dropped == 1
    clock.now += 3601
    bus.send("q", [msg(1)])
    assert bus.pending("q") == 2


def test_scheduled_messages_wait_for_their_time() -> None:
    clock = Clock()
    bus = make_bus(clock)
    at = datetime.fromtimestamp(clock.now + 60, UTC)
    bus.send("q", [msg(1, scheduled_enqueue_time=at)])
    assert bus.receive("q") == []
    assert bus.next_visible_at() == clock.now + 60
    clock.now += 60
    assert [m.message_id for m in bus.receive("q")] == ["m1"]


def test_oversized_message_is_refused() -> None:
    bus = make_bus(Clock())
    with pytest.raises(BadInputError):
        bus.send("q", [OutboundMessage(b"x" * (256 * 1024 + 1), message_id="big")])


@pytest.mark.parametrize("queue", ["records", "detect"])
def test_the_deployed_records_and_detect_queues_drop_a_repeated_message_id_for_a_day(queue: str) -> None:
    """#25.5: records and detect had fixed MessageIds but no duplicate detection (Bicep and this bus alike)."""
    from shared.platform.bus import default_queue_options

    clock = Clock()
    bus = InProcessBus(default_queue_options(), clock=clock)
    bus.send(queue, [msg(1, "t:0"), msg(1, "t:0")])
    clock.now += 86_399
    bus.send(queue, [msg(1, "t:0")])
    assert (bus.pending(queue), bus.stats.duplicates_dropped) == (1, 2)
    clock.now += 2
    bus.send(queue, [msg(1, "t:0")])
    assert bus.pending(queue) == 2
