"""The production adapter of the bus port: azure-servicebus, sessions, size-bounded batches.

The Python Functions output binding cannot set SessionId, MessageId or a scheduled time, so
m365-itdr sends with the SDK. Messages are packed into batches bounded by the Standard
tier's 256 KB; scheduled messages (remediation retries) are sent one by one with
``schedule_messages``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError, ServiceBusError

from shared.platform.bus import MAX_MESSAGE_BYTES, OutboundMessage
from shared.platform.errors import BadInputError, ServiceUnavailable


def to_sdk_message(m: OutboundMessage) -> ServiceBusMessage:
    """The SDK message for one outbound message (no connection needed)."""
    props: dict[str | bytes, Any] | None = {k: v for k, v in m.application_properties.items()} or None
    return ServiceBusMessage(
        m.body,
        message_id=m.message_id,
        session_id=m.session_id,
        application_properties=props,
        scheduled_enqueue_time_utc=m.scheduled_enqueue_time,
        content_type=m.content_type,
    )


def pack_batches(
    messages: Sequence[OutboundMessage], new_batch: Any, *, max_size: int = MAX_MESSAGE_BYTES
) -> list[ServiceBusMessageBatch]:
    """Pack immediate messages into as few size-bounded batches as fit (``new_batch()`` makes one)."""
    batches: list[ServiceBusMessageBatch] = []
    current: ServiceBusMessageBatch | None = None
    for m in messages:
        sdk = to_sdk_message(m)
        if current is not None:
            try:
                current.add_message(sdk)
                continue
            except (ValueError, MessageSizeExceededError):
                batches.append(current)
        current = new_batch()
        try:
            current.add_message(sdk)
        except (ValueError, MessageSizeExceededError) as exc:
            raise BadInputError(f"message {m.message_id} does not fit in a {max_size}-byte batch") from exc
    if current is not None and len(current):
        batches.append(current)
    return batches


class ServiceBusSender:
    """`MessageBus` over a Service Bus namespace, reached with the managed identity."""

    def __init__(self, client: ServiceBusClient, *, max_batch_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._client = client
        self._max = max_batch_bytes
        self._senders: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str, *, client_id: str | None = None) -> ServiceBusSender:
        from azure.identity import DefaultAzureCredential

        cred = DefaultAzureCredential(managed_identity_client_id=client_id)
        return cls(ServiceBusClient(fully_qualified_namespace, credential=cred))

    def _sender(self, queue: str) -> Any:
        with self._lock:
            s = self._senders.get(queue)
            if s is None:
                s = self._client.get_queue_sender(queue)
                self._senders[queue] = s
            return s

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        sender = self._sender(queue)
        immediate = [m for m in messages if m.scheduled_enqueue_time is None]
        scheduled = [m for m in messages if m.scheduled_enqueue_time is not None]
        try:
            for batch in pack_batches(
                immediate, lambda: sender.create_message_batch(max_size_in_bytes=self._max), max_size=self._max
            ):
                sender.send_messages(batch)
            for m in scheduled:
                assert m.scheduled_enqueue_time is not None
                sender.schedule_messages(to_sdk_message(m), m.scheduled_enqueue_time)
        except ServiceBusError as exc:
            raise ServiceUnavailable(f"service bus send to {queue} failed: {type(exc).__name__}", queue=queue) from exc

    def close(self) -> None:
        with self._lock:
            for s in self._senders.values():
                s.close()
            self._senders.clear()
        self._client.close()
