"""What the worker exports as spans: calls across the network, not the steps inside the process."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import SpanKind

from shared.platform.tracing import INSTRUMENTATIONS, OutboundCallsSampler


@pytest.mark.parametrize(
    ("kind", "decision"),
    [
        (SpanKind.INTERNAL, Decision.DROP),
        (None, Decision.DROP),
        (SpanKind.CLIENT, Decision.RECORD_AND_SAMPLE),
        (SpanKind.SERVER, Decision.RECORD_AND_SAMPLE),
        (SpanKind.PRODUCER, Decision.RECORD_AND_SAMPLE),
        (SpanKind.CONSUMER, Decision.RECORD_AND_SAMPLE),
    ],
)
def test_in_process_spans_are_dropped(kind: SpanKind | None, decision: Decision) -> None:
    sampler = OutboundCallsSampler(ALWAYS_ON)
    assert sampler.should_sample(None, 1, "RetryHandler_send", kind).decision is decision


def test_a_call_made_inside_a_dropped_step_is_kept_in_its_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "false")  # make test sets it for every other test
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=OutboundCallsSampler(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("invocation", kind=SpanKind.SERVER) as request,
        tracer.start_as_current_span("send_async"),  # kiota's steps around one Graph request
        tracer.start_as_current_span("RetryHandler_send"),
        tracer.start_as_current_span("GET", kind=SpanKind.CLIENT),
    ):
        pass
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert sorted(spans) == ["GET", "invocation"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in spans.values()} == {trace_id}


def test_only_httpx_is_instrumented() -> None:
    assert {name for name, opt in INSTRUMENTATIONS.items() if opt["enabled"]} == {"httpx"}
    assert {"azure_sdk", "requests", "urllib3"} <= set(INSTRUMENTATIONS)
