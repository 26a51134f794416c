"""The azure-servicebus adapter builds real SDK messages and size-bounded batches, offline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from azure.servicebus import ServiceBusMessageBatch

from shared.platform.bus import OutboundMessage
from shared.platform.errors import BadInputError
from shared.platform.servicebus import pack_batches, to_sdk_message


def test_sdk_message_carries_session_id_message_id_properties_and_schedule() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    m = to_sdk_message(
        OutboundMessage(
            b'{"x":1}',
            message_id="records:c1:0:0",
            session_id="tenant-a",
            application_properties={"n": 1},
            scheduled_enqueue_time=at,
        )
    )
    assert (m.message_id, m.session_id, m.scheduled_enqueue_time_utc, m.content_type) == (
        "records:c1:0:0",
        "tenant-a",
        at,
        "application/json",
    )
    assert m.application_properties == {"n": 1}
    assert b"".join(m.body) == b'{"x":1}'


def test_batches_stay_under_the_standard_tier_limit() -> None:
    messages = [OutboundMessage(b"x" * 1000, message_id=f"m{i}", session_id="t") for i in range(600)]
    batches = pack_batches(messages, lambda: ServiceBusMessageBatch(max_size_in_bytes=262_144))
    assert sum(len(b) for b in batches) == 600
    assert len(batches) == 3
    assert all(b.size_in_bytes <= 262_144 for b in batches)


def test_a_message_too_big_for_any_batch_is_refused() -> None:
    with pytest.raises(BadInputError):
        pack_batches(
            [OutboundMessage(b"x" * 300_000, message_id="big")],
            lambda: ServiceBusMessageBatch(max_size_in_bytes=262_144),
        )
