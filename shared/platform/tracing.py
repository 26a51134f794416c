"""What the worker sends to Application Insights as requests and dependencies, and what it leaves out.

Every span the worker exports is a billed item. Left to its defaults, the Azure Monitor distro would
export a dependency for every storage and Service Bus call (the Azure SDK instrumentation, and the
requests/urllib3 instrumentations underneath it): in the benchmark's sample about one per hundred
audit records, more than everything else the app sends. And msgraph-sdk's HTTP layer (kiota) opens more
than a dozen in-process spans for each Graph request, one per middleware step.

So the worker keeps the calls that leave the platform and that operations diagnose: Graph, the
Management Activity API and the partner's endpoint, all made with httpx, one dependency each, rate
limited like the distro's default sampler (5 traces a second per instance). In-process spans are
dropped. Storage and Service Bus calls are not dependencies: a call that fails after the SDK's retries
fails the invocation, which the host records as a failed request with its exception (never sampled),
and the SDKs' retry warnings are traces.

Only imported where telemetry is configured (the OpenTelemetry SDK is not loaded otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

TRACES_PER_SECOND = 5.0
"""The distro's default rate limit, kept."""

INSTRUMENTATIONS: dict[str, dict[str, bool]] = {
    "azure_sdk": {"enabled": False},
    "requests": {"enabled": False},
    "urllib": {"enabled": False},
    "urllib3": {"enabled": False},
    "django": {"enabled": False},
    "fastapi": {"enabled": False},
    "flask": {"enabled": False},
    "psycopg2": {"enabled": False},
    "httpx": {"enabled": True},
}
"""``instrumentation_options`` of ``configure_azure_monitor``: httpx only (Graph, Management Activity API,
the partner)."""


class OutboundCallsSampler(Sampler):
    """Drops in-process (``INTERNAL``) spans; every other span is decided by ``inner``.

    Not parent-based on purpose: an HTTP call made inside a dropped in-process span is still kept, and joins
    its invocation's trace.
    """

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is None or kind == SpanKind.INTERNAL:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"OutboundCalls({self._inner.get_description()})"


def configure(connection_string: str, credential: Any) -> Any:
    """Application Insights for the worker: our tracer provider (the sampler above), then the distro for logs,
    metrics and the httpx instrumentation. Returns the meter of the app's metrics."""
    from azure.monitor.opentelemetry import configure_azure_monitor
    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter, RateLimitedSampler
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        sampler=OutboundCallsSampler(RateLimitedSampler(target_spans_per_second_limit=TRACES_PER_SECOND))
    )
    exporter = AzureMonitorTraceExporter(connection_string=connection_string, credential=credential)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # the distro builds no tracer provider of its own only when OTEL_TRACES_EXPORTER is "none" (it has no
    # argument for it); its instrumentations then use the global provider set above
    previous = os.environ.get("OTEL_TRACES_EXPORTER")
    os.environ["OTEL_TRACES_EXPORTER"] = "none"
    try:
        configure_azure_monitor(
            connection_string=connection_string, credential=credential, instrumentation_options=INSTRUMENTATIONS
        )
    finally:
        if previous is None:
            os.environ.pop("OTEL_TRACES_EXPORTER", None)
        else:
            os.environ["OTEL_TRACES_EXPORTER"] = previous
    return metrics.get_meter("m365-itdr")
