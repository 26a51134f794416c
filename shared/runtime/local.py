"""The local runtime: the Function App's registered functions in one process.

It stands in for the Functions host, which cannot run on a developer machine without
network downloads: an in-process bus with Service Bus semantics feeds the Service Bus
triggers (return = complete, exception = abandon, then redelivery and dead-lettering),
timers are ticked on request, and HTTP functions are called with ``func.HttpRequest``.
The functions are the real ones from ``function_app.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage as _SbMessage
from azure.functions.timer import TimerRequest

from shared.platform import names
from shared.platform.bus import InProcessBus, ReceivedMessage

log = logging.getLogger("itdr.runtime")

QUEUE_ORDER = (
    names.QUEUE_CONTENT,
    names.QUEUE_RECORDS,
    names.QUEUE_DETECT,
    names.QUEUE_ALERTS,
    names.QUEUE_REMEDIATION,
)
QUEUE_FUNCTION = {
    names.QUEUE_CONTENT: "process_content",
    names.QUEUE_RECORDS: "enrich_records",
    names.QUEUE_DETECT: "detect_records",
    names.QUEUE_ALERTS: "deliver_alerts",
    names.QUEUE_REMEDIATION: "remediate",
}

_FUNCTIONS: dict[str, Any] | None = None


def registered_functions() -> dict[str, Any]:
    """The app's functions by name (``get_functions()`` may be called once per FunctionApp)."""
    global _FUNCTIONS
    if _FUNCTIONS is None:
        import function_app

        _FUNCTIONS = {str(f.get_function_name()): f for f in function_app.app.get_functions()}
    return _FUNCTIONS


def call_function(name: str, *args: Any) -> Any:
    return registered_functions()[name].get_user_function()(*args)


def sb_message(m: ReceivedMessage) -> func.ServiceBusMessage:
    return _SbMessage(
        body=m.body,
        message_id=m.message_id,
        session_id=m.session_id,
        delivery_count=m.delivery_count,
        enqueued_time_utc=m.enqueued_time,
        application_properties=dict(m.application_properties),
        user_properties=dict(m.application_properties),
    )


@dataclass
class RuntimeStats:
    invocations: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, failed: bool = False) -> None:
        self.invocations[name] = self.invocations.get(name, 0) + 1
        if failed:
            self.failures[name] = self.failures.get(name, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.invocations.values())


FaultHook = Callable[[str, ReceivedMessage], str | None]
"""Called before a message is handled: return "crash" (the handler fails), "lose_lock", or None."""


class LocalRuntime:
    """Drives the registered functions over an in-process bus until it is idle."""

    def __init__(self, bus: InProcessBus, *, fault_hook: FaultHook | None = None, batch: int = 1) -> None:
        self.bus = bus
        self.fault_hook = fault_hook
        self.batch = batch
        self.stats = RuntimeStats()

    def tick(self, timer_function: str) -> None:
        """Run a timer-triggered function once."""
        self.stats.count(timer_function)
        call_function(timer_function, TimerRequest(past_due=False, schedule_status=None, schedule=None))

    def http(self, name: str, *, method: str, url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
        self.stats.count(name)
        req = func.HttpRequest(method=method, url=url, headers=headers, params={}, route_params={}, body=body)
        response: func.HttpResponse = call_function(name, req)
        return response

    def step(self) -> int:
        """Handle the messages available now on every queue; returns how many were handled."""
        handled = 0
        for queue in QUEUE_ORDER:
            while True:
                got = self.bus.receive(queue, max_messages=self.batch)
                if not got:
                    break
                for m in got:
                    handled += 1
                    self._handle(queue, m)
        return handled

    def _handle(self, queue: str, m: ReceivedMessage) -> None:
        name = QUEUE_FUNCTION[queue]
        fault = self.fault_hook(queue, m) if self.fault_hook is not None else None
        if fault == "lose_lock":
            self.bus.lose_lock(m)
        try:
            if fault == "crash":
                raise RuntimeError(f"injected crash in {name}")
            call_function(name, sb_message(m))
            if fault == "duplicate":  # delivered again: the first completion never reached the broker
                call_function(name, sb_message(m))
        except Exception as exc:  # the host abandons on any exception
            self.stats.count(name, failed=True)
            log.info("function failed; message abandoned", extra={"function": name, "error": type(exc).__name__})
            self.bus.abandon(m)
            return
        self.stats.count(name)
        try:
            self.bus.complete(m)
        except LookupError:
            log.info("lock lost before completion; the message will be redelivered", extra={"function": name})

    def run_until_idle(self, *, max_rounds: int = 10000, advance: Callable[[float], None] | None = None) -> int:
        """Step until no message is left; with ``advance``, move a fake clock to scheduled messages."""
        total = 0
        for _ in range(max_rounds):
            n = self.step()
            total += n
            if n:
                continue
            if self.bus.pending() == 0:
                return total
            nxt = self.bus.next_visible_at()
            if advance is None or nxt is None:
                return total
            advance(nxt)
        return total
