"""One timed pass of the detection path beside its parse ceiling (``make bench`` and the profile share it)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class PassTimes:
    """Seconds spent, summed over blobs, and the records read."""

    ceiling_s: float = 0.0
    """``orjson.loads`` of each blob, its result freed inside the measurement."""
    parse_s: float = 0.0
    """``parse_blob``: typed, normalised events."""
    engine_s: float = 0.0
    """Routing, enrichment, every detector with its state, and freeing the batch."""
    records: int = 0


def timed_pass(engine: Any, files: Iterable[Path], *, tag: str, into: PassTimes | None = None) -> PassTimes:
    """Time each blob interleaved: the ceiling, then the parse, then the engine (one batch per blob)."""
    import orjson

    from shared.records.event import parse_blob

    out = into if into is not None else PassTimes()
    clock = time.perf_counter
    for i, f in enumerate(files):
        data = f.read_bytes()
        t0 = clock()
        orjson.loads(data)
        t1 = clock()
        parsed = parse_blob(data)
        t2 = clock()
        engine.process(parsed.events[0].tenant_id if parsed.events else "", parsed.events, batch_id=f"{tag}-{i}")
        n = parsed.read
        del parsed  # freeing the batch is part of the path too, and the next orjson.loads runs without it
        t3 = clock()
        out.ceiling_s += t1 - t0
        out.parse_s += t2 - t1
        out.engine_s += t3 - t2
        out.records += n
    return out


def routes_only(registry: Any) -> Any:
    """A registry routing the same operations as ``registry`` to one detector that finds nothing.

    The engine over it does everything but detect: routing, sorting, enrichment of every routed event,
    loading and saving the same users' state, freeing the batch. Its time is the floor the detectors
    sit on: the ratio the path would reach if all of them cost nothing.
    """
    from shared.alert_model import Category, DetectorMeta, Finding, Severity
    from shared.detection.base import DetectionContext, Detector, Registry
    from shared.records.event import Event

    class BenchNoDetection(Detector):
        meta = DetectorMeta(
            id="bench_no_detection",
            title="Benchmark: no detection",
            description="Routes the registry's operations and finds nothing (the benchmark's floor).",
            category=Category.INTEGRATION_HEALTH,
            severity=Severity.LOW,
            mitre=("T1078",),
            operations=frozenset(registry.operations),
            runbook="Not a detector: the benchmark measures the engine around the detectors with it.",
            reference="https://learn.microsoft.com/en-us/office/office-365-management-api/",
        )

        def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
            return ()

    return Registry([BenchNoDetection])
