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
