"""Where the detection path's time goes, per detector, in units of the ``orjson.loads`` ceiling.

``python -m shared.bench.profile [CORPUS_DIR]`` (default: the largest corpus under ``bench/corpus``) runs
the benchmark's detection path once over the corpus with every detector's ``detect`` and the enricher
timed, and prints each one's share next to the parse ceiling measured in the same pass. The timers add
about 0.2 µs per call, so the shares are a little high for detectors called on every record. For
finding hot spots; the figures we report come from ``make bench``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def profile(corpus_dir: Path) -> tuple[dict[str, float], dict[str, int], float, float, float, int]:
    """(seconds per part, calls per part, orjson s, parse s, engine s, records) of one pass."""
    from detectors import default_registry
    from shared.alert_model import Finding
    from shared.bench.timing import timed_pass
    from shared.detection.base import DetectionContext
    from shared.detection.engine import DetectionEngine, InMemoryAlertSink
    from shared.detection.state import InMemoryStateStore
    from shared.enrich.factory import IntelFeeds, build_ip_intel, build_local_enricher
    from shared.records.event import Event
    from shared.tenant_config import TenantConfig

    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    clock = time.perf_counter
    registry = default_registry()
    for det in registry.detectors:

        def timed(
            ev: Event,
            ctx: DetectionContext,
            _detect: Callable[..., Iterable[Finding]] = det.detect,
            _id: str = det.meta.id,
        ) -> Iterable[Finding]:
            t = clock()
            got = _detect(ev, ctx)
            seconds[_id] += clock() - t
            calls[_id] += 1
            return got

        vars(det)["detect"] = timed  # this registry instance only: the engine routes to the bound attribute
    ip = build_ip_intel(IntelFeeds())
    ip.load()  # before timing, as `make bench` does: a warm worker holds the IP data
    enricher = build_local_enricher(IntelFeeds(), intel=ip)

    class TimedEnricher:
        def enrich(self, events: Sequence[Event], tenant: TenantConfig) -> None:
            t = clock()
            enricher.enrich(events, tenant)
            seconds["(enrichment)"] += clock() - t
            calls["(enrichment)"] += len(events)

    engine = DetectionEngine(registry, store=InMemoryStateStore(), sink=InMemoryAlertSink(), enricher=TimedEnricher())
    gc.collect()
    gc.freeze()
    t = timed_pass(engine, sorted(corpus_dir.glob("*.json")), tag="profile")
    return dict(seconds), dict(calls), t.ceiling_s, t.parse_s, t.engine_s, t.records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.bench.profile")
    p.add_argument("corpus", nargs="?", help="a corpus directory of content blobs (default: the largest one built)")
    args = p.parse_args(argv)
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        built = sorted((ROOT / "bench" / "corpus").glob("*-v*"), key=lambda d: int(d.name.split("-")[0]))
        if not built:
            print("no corpus: run `make bench` (or `make bench BENCH_RECORDS=N`) first")
            return 1
        corpus = built[-1]
    seconds, calls, ceiling, parse, engine, records = profile(corpus)
    print(f"{corpus}: {records:,} records; orjson.loads {ceiling / records * 1e6:.2f} µs per record")
    print(f"{'part':40} {'x ceiling':>9} {'calls':>10} {'µs/call':>8}")
    rows: list[tuple[str, float, Any]] = [
        ("parse into typed events", parse, records),
        ("engine, all of it", engine, None),
    ]
    rows += sorted(((k, v, calls[k]) for k, v in seconds.items()), key=lambda r: -r[1])
    for name, s, n in rows:
        per = f"{s / n * 1e6:8.2f}" if n else ""
        print(f"{name:40} {s / ceiling:9.3f} {n if n is not None else '':>10} {per}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
