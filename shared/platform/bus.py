"""The message bus port, and an in-process bus with Service Bus semantics.

Production sends through :class:`shared.platform.servicebus.ServiceBusSender` (azure-servicebus);
the Functions host receives. Locally (demo, tests, chaos run) :class:`InProcessBus` keeps the
semantics that correctness depends on:

* sessions: a session's messages are delivered in order, to one receiver at a time;
* peek-lock and at-least-once delivery: a message is locked while handled; completing
  removes it, abandoning or losing the lock makes it available again with
  ``delivery_count + 1``;
* dead-lettering with a reason after ``max_delivery_count`` deliveries (``MaxDeliveryCountExceeded``),
  or explicitly; a session queue rejects a message without a session ID (``Session ID is null``);
* duplicate detection by ``message_id`` within a window (on the queues that enable it);
* scheduled enqueue; the 256 KB message size limit of the Standard tier.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from shared.platform.errors import BadInputError

MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_MAX_DELIVERY = 10


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to send: the body plus the Service Bus properties the code relies on."""

    body: bytes
    message_id: str
    session_id: str | None = None
    application_properties: dict[str, str | int] = field(default_factory=dict)
    scheduled_enqueue_time: datetime | None = None
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        if len(self.message_id) > 128:
            raise ValueError("message_id longer than 128 characters")
        if self.session_id is not None and len(self.session_id) > 128:
            raise ValueError("session_id longer than 128 characters")


class MessageBus(Protocol):
    """The one thing producers need: send messages to a queue."""

    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None: ...


@dataclass(slots=True)
class ReceivedMessage:
    """A locked message handed to a consumer."""

    queue: str
    body: bytes
    message_id: str
    session_id: str | None
    application_properties: dict[str, str | int]
    delivery_count: int
    enqueued_time: datetime
    sequence_number: int
    lock_token: int
    locked_until: float


@dataclass(slots=True)
class DeadLetter:
    queue: str
    message: OutboundMessage
    reason: str
    description: str
    delivery_count: int
    dead_lettered_at: datetime


@dataclass(slots=True)
class _Stored:
    msg: OutboundMessage
    seq: int
    enqueued: datetime
    visible_at: float
    delivery_count: int = 0
    lock_token: int | None = None
    locked_until: float = 0.0


@dataclass(slots=True)
class QueueOptions:
    requires_session: bool = False
    duplicate_detection_s: float = 0.0
    max_delivery_count: int = DEFAULT_MAX_DELIVERY
    lock_duration_s: float = 60.0


@dataclass(slots=True)
class BusStats:
    sent_by_queue: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0
    completed: int = 0
    abandoned: int = 0
    dead_lettered: int = 0
    duplicates_dropped: int = 0
    locks_lost: int = 0


class InProcessBus:
    """A thread-safe in-memory bus with the Service Bus semantics listed in the module docstring."""

    def __init__(
        self,
        queues: dict[str, QueueOptions],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self._clock = clock or time.time
        self._opts = dict(queues)
        self._msgs: dict[str, deque[_Stored]] = {q: deque() for q in queues}
        self._dead: dict[str, list[DeadLetter]] = {q: [] for q in queues}
        self._seen_ids: dict[str, dict[str, float]] = {q: {} for q in queues}
        self._session_locks: dict[tuple[str, str], int] = {}
        self._seq = itertools.count(1)
        self._tokens = itertools.count(1)
        self._lock = threading.RLock()
        self.stats = BusStats()

    # Producer side ------------------------------------------------------------------
    def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        with self._lock:
            opts = self._opts.get(queue)
            if opts is None:
                raise BadInputError(f"no such queue {queue!r}", reason="unknown_queue")
            now = self._clock()
            for m in messages:
                if len(m.body) > MAX_MESSAGE_BYTES:
                    raise BadInputError(
                        f"message {m.message_id} is {len(m.body)} bytes, over the 256 KB limit", reason="too_large"
                    )
                self.stats.sent += 1
                self.stats.sent_by_queue[queue] = self.stats.sent_by_queue.get(queue, 0) + 1
                if opts.duplicate_detection_s:
                    seen = self._seen_ids[queue]
                    t = seen.get(m.message_id)
                    if t is not None and now - t < opts.duplicate_detection_s:
                        self.stats.duplicates_dropped += 1
                        continue
                    seen[m.message_id] = now
                stored = _Stored(
                    m,
                    next(self._seq),
                    datetime.fromtimestamp(now, UTC),
                    m.scheduled_enqueue_time.timestamp() if m.scheduled_enqueue_time else now,
                )
                if opts.requires_session and not m.session_id:
                    self._dead_letter(queue, stored, "Session ID is null", "session-enabled queue")
                    continue
                self._msgs[queue].append(stored)

    # Consumer side ------------------------------------------------------------------
    def receive(self, queue: str, *, max_messages: int = 1) -> list[ReceivedMessage]:
        """Lock and return up to ``max_messages`` available messages.

        On a session queue, all returned messages belong to one session, in order, and that
        session stays locked to this receiver until its messages are settled.
        """
        with self._lock:
            now = self._clock()
            self._expire_locks(queue, now)
            opts = self._opts[queue]
            out: list[ReceivedMessage] = []
            chosen_session: str | None = None
            busy_sessions = {s for (q, s) in self._session_locks if q == queue}
            blocked: set[str] = set()
            for st in list(self._msgs[queue]):
                if len(out) >= max_messages:
                    break
                sid = st.msg.session_id
                if st.lock_token is not None:
                    if sid:
                        blocked.add(sid)
                    continue
                if st.visible_at > now:
                    if sid:
                        blocked.add(sid)  # keep per-session order behind a scheduled message
                    continue
                if opts.requires_session:
                    assert sid is not None
                    if sid in busy_sessions or sid in blocked:
                        continue
                    if chosen_session is None:
                        chosen_session = sid
                    elif sid != chosen_session:
                        continue
                st.delivery_count += 1
                st.lock_token = next(self._tokens)
                st.locked_until = now + opts.lock_duration_s
                self.stats.delivered += 1
                out.append(
                    ReceivedMessage(
                        queue,
                        st.msg.body,
                        st.msg.message_id,
                        sid,
                        dict(st.msg.application_properties),
                        st.delivery_count,
                        st.enqueued,
                        st.seq,
                        st.lock_token,
                        st.locked_until,
                    )
                )
            if chosen_session is not None:
                self._session_locks[(queue, chosen_session)] = len(out)
            return out

    def _find(self, queue: str, token: int) -> _Stored | None:
        for st in self._msgs[queue]:
            if st.lock_token == token:
                return st
        return None

    def _release_session(self, queue: str, sid: str | None) -> None:
        if sid is None:
            return
        key = (queue, sid)
        left = self._session_locks.get(key)
        if left is None:
            return
        if left <= 1:
            self._session_locks.pop(key)
        else:
            self._session_locks[key] = left - 1

    def complete(self, msg: ReceivedMessage) -> None:
        """Settle a message as done. Raises ConcurrencyError-free LookupError when the lock was lost."""
        with self._lock:
            st = self._find(msg.queue, msg.lock_token)
            if st is None:
                raise LookupError(f"lock lost for message {msg.message_id}")
            self._msgs[msg.queue].remove(st)
            self.stats.completed += 1
            self._release_session(msg.queue, msg.session_id)

    def abandon(self, msg: ReceivedMessage) -> None:
        """Give a message back (it is redelivered; dead-lettered after the maximum deliveries)."""
        with self._lock:
            st = self._find(msg.queue, msg.lock_token)
            if st is None:
                return
            self.stats.abandoned += 1
            st.lock_token = None
            self._release_session(msg.queue, msg.session_id)
            if st.delivery_count >= self._opts[msg.queue].max_delivery_count:
                self._msgs[msg.queue].remove(st)
                self._dead_letter(
                    msg.queue, st, "MaxDeliveryCountExceeded", f"delivered {st.delivery_count} times without success"
                )

    def dead_letter(self, msg: ReceivedMessage, *, reason: str, description: str = "") -> None:
        with self._lock:
            st = self._find(msg.queue, msg.lock_token)
            if st is None:
                raise LookupError(f"lock lost for message {msg.message_id}")
            self._msgs[msg.queue].remove(st)
            self._release_session(msg.queue, msg.session_id)
            self._dead_letter(msg.queue, st, reason, description)

    def lose_lock(self, msg: ReceivedMessage) -> None:
        """Fault injection: the lock expires while the consumer still works on the message."""
        with self._lock:
            st = self._find(msg.queue, msg.lock_token)
            if st is None:
                return
            st.lock_token = None
            self.stats.locks_lost += 1
            self._release_session(msg.queue, msg.session_id)
            if st.delivery_count >= self._opts[msg.queue].max_delivery_count:
                self._msgs[msg.queue].remove(st)
                self._dead_letter(msg.queue, st, "MaxDeliveryCountExceeded", "lock lost on the last delivery")

    def _expire_locks(self, queue: str, now: float) -> None:
        for st in list(self._msgs[queue]):
            if st.lock_token is not None and st.locked_until <= now:
                st.lock_token = None
                self.stats.locks_lost += 1
                self._release_session(queue, st.msg.session_id)

    def _dead_letter(self, queue: str, st: _Stored, reason: str, description: str) -> None:
        self.stats.dead_lettered += 1
        when = datetime.fromtimestamp(self._clock(), UTC)
        self._dead[queue].append(DeadLetter(queue, st.msg, reason, description, st.delivery_count, when))

    # Inspection ---------------------------------------------------------------------
    def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        with self._lock:
            if queue is not None:
                return list(self._dead[queue])
            return [d for q in self._dead.values() for d in q]

    def remove_dead_letter(self, item: DeadLetter) -> None:
        with self._lock:
            self._dead[item.queue].remove(item)

    def pending(self, queue: str | None = None) -> int:
        with self._lock:
            queues: Iterable[str] = [queue] if queue else self._msgs.keys()
            return sum(len(self._msgs[q]) for q in queues)

    def next_visible_at(self) -> float | None:
        """The earliest time a scheduled or locked message becomes available (for timers)."""
        with self._lock:
            times = [st.visible_at for q in self._msgs.values() for st in q if st.lock_token is None]
            return min(times) if times else None

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self._opts)


def default_queue_options() -> dict[str, QueueOptions]:
    """The queues of m365-itdr with the options Bicep declares for them (infra/modules/service-bus.bicep)."""
    from shared.platform import names

    week, day = 7 * 86400.0, 86400.0
    return {
        names.QUEUE_CONTENT: QueueOptions(duplicate_detection_s=week, lock_duration_s=300.0),
        names.QUEUE_RECORDS: QueueOptions(requires_session=True, duplicate_detection_s=day, lock_duration_s=300.0),
        names.QUEUE_DETECT: QueueOptions(requires_session=True, duplicate_detection_s=day, lock_duration_s=300.0),
        names.QUEUE_ALERTS: QueueOptions(lock_duration_s=60.0),
        names.QUEUE_REMEDIATION: QueueOptions(lock_duration_s=300.0),
    }
