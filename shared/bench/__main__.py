"""`make bench`: throughput against the parse ceiling, remote operations per record, cost.

Everything is measured in one run and reported side by side; ratios are the figures we steer by
(absolute numbers move with the machine). Targets are reported, never asserted.

1. CPU (in a child process, so its peak RSS is the detection process's own; the IP data loaded first, as a
   warm worker holds it, its load time reported as ``intel_load_s``): for every content blob, interleaved, ``orjson.loads`` (the parse ceiling) and the full detection path (parse,
   normalise, enrich, every registered detector with per-user state); then the same path with the
   detectors taken out (`shared.bench.timing.routes_only`), the floor the detectors sit on.
2. Remote operations: a sample of the corpus goes through the registered functions on the local
   runtime (Azurite, the in-process bus, the Graph emulator holding the corpus's users), counting
   Service Bus messages, Table and Blob requests, Graph calls, function invocations, the app's
   metric items and everything Application Insights would receive (log lines, requests, dependencies).
3. Cost per 1,000,000 records and per 1,000 users a month from the list prices in ``PRICES``, with
   what a deployment pays whatever its volume (the Service Bus base, the timer functions).
4. IP lookups per second on a cold random IPv4 stream and the memory of the embedded IP data.
5. Cold import time of ``function_app``.
6. `itdr scan` as a subprocess over JSON Lines of 500,000 and 5,000,000 records (a smoke run uses small
   counts): its peak resident set (``VmHWM`` of the child, read while it runs) and records per second.
   Bounded memory shows as the larger scan's peak staying within 1.2 times the smaller one's.
7. The false-positive budget (`shared.bench.precision`): the precision workload (3 tenants x 60 users x 21 days of
   ordinary behaviour plus the attack cases) through the detection engine in process: false alerts per 1,000
   benign user-days (any severity, and medium or higher) and recall on the attack cases.

``bench/results.json`` is written only when it carries every figure of `REQUIRED_KEYS`.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.app import Services

ROOT = Path(__file__).resolve().parents[2]

# USD list prices (East US, no free grants); sources in docs/cost.md. Marked where unverified there.
PRICES = {
    "servicebus_per_million_ops": 0.80,  # Standard, 13M-100M tier
    "servicebus_base_month": 9.81,
    "functions_per_million_executions": 0.40,  # Flex Consumption on demand
    "functions_per_gb_s": 0.000026,
    "table_per_10k_transactions": 0.00036,
    "blob_write_per_10k": 0.05,
    "blob_read_per_10k": 0.004,
    "log_analytics_per_gb": 2.76,
}
TELEMETRY_ITEM_KB = 0.5
EXECUTION_GB_S = 2.048 * 1.0  # a 2 GB Flex instance, billed at least 1 s per execution
RECORDS_PER_1000_USERS_MONTH = 1000 * 1500 * 30.4

REQUIRED_KEYS = (
    "records",
    "throughput_ratio_vs_orjson",
    "detection_records_per_second",
    "orjson_records_per_second",
    "servicebus_messages_per_record",
    "table_transactions_per_record",
    "graph_calls_per_record",
    "function_invocations_per_record",
    "telemetry_items_per_record",
    "cost_usd_per_million_records",
    "cost_usd_per_1000_users_month",
    "ip_lookups_per_second",
    "ip_data_memory_mb",
    "peak_rss_mb",
    "cold_import_s",
    "scan_peak_rss_mb_500k",
    "scan_peak_rss_mb_5m",
    "scan_rss_ratio_5m_vs_500k",
    "scan_records_per_second",
    "false_alerts_per_1000_user_days",
    "false_alerts_medium_plus_per_1000_user_days",
    "attack_recall",
    "throughput_ratio_vs_orjson_diverse",
    "throughput_ratio_vs_orjson_stress",
    "throughput_ratio_vs_pypanther_diverse",
)
"""The figures ``bench/results.json`` must carry (the checks that read it rely on them): each a finite number."""

TARGETS = {
    "throughput_ratio_vs_orjson": (">=", 1.0),
    "throughput_ratio_vs_orjson_diverse": (">=", 0.75),
    "throughput_ratio_vs_orjson_stress": (">=", 0.5),
    "throughput_ratio_vs_pypanther_diverse": (">=", 1.5),
    "servicebus_messages_per_record": ("<=", 0.01),
    "table_transactions_per_record": ("<=", 0.01),
    "function_invocations_per_record": ("<=", 0.002),
    "telemetry_items_per_record": ("<=", 0.01),
    "appinsights_items_per_record": ("<=", 0.01),
    "cost_usd_per_million_records": ("<=", 0.15),
    "ip_lookups_per_second": (">=", 200_000),
    "ip_lookups_per_second_gc_paused": (">=", 200_000),
    "ip_data_memory_mb": ("<=", 150),
    "peak_rss_mb": ("<=", 400),
    "cold_import_s": ("<=", 1.5),
    "scan_peak_rss_mb_5m": ("<=", 500),
    "scan_rss_ratio_5m_vs_500k": ("<=", 1.2),
    "false_alerts_per_1000_user_days": ("<=", 2.0),
    "false_alerts_medium_plus_per_1000_user_days": ("<=", 0.5),
    "attack_recall": (">=", 1.0),
}


def cpu_child(corpus_dir: Path, rounds: int) -> dict[str, Any]:
    """The CPU measurement, run in its own process."""
    from detectors import default_registry
    from shared.bench.timing import PassTimes, routes_only, timed_pass
    from shared.detection.engine import DetectionEngine, InMemoryAlertSink
    from shared.detection.state import InMemoryStateStore
    from shared.enrich.factory import IntelFeeds, build_ip_intel, build_local_enricher

    files = sorted(corpus_dir.glob("*.json"))
    ip = build_ip_intel(IntelFeeds())
    started = time.perf_counter()
    ip.load()  # a warm worker's: loaded once per process, not per record (its time is reported on its own)
    intel_load_s = time.perf_counter() - started
    enricher = build_local_enricher(IntelFeeds(), intel=ip)
    registry = default_registry()
    gc.collect()
    gc.freeze()
    times = PassTimes()
    for r in range(rounds):
        engine = DetectionEngine(registry, store=InMemoryStateStore(), sink=InMemoryAlertSink(), enricher=enricher)
        timed_pass(engine, files, tag=f"bench-{r}", into=times)
        del engine
    # the same path with the detectors taken out (routes, enrichment and state kept): the floor they sit on
    floor = PassTimes()
    engine = DetectionEngine(
        routes_only(registry), store=InMemoryStateStore(), sink=InMemoryAlertSink(), enricher=enricher
    )
    timed_pass(engine, files, tag="floor", into=floor)
    del engine
    detect_s = times.parse_s + times.engine_s
    engine_share = times.engine_s / times.ceiling_s
    floor_share = floor.engine_s / floor.ceiling_s
    return {
        "records_timed": times.records,
        "orjson_records_per_second": times.records / times.ceiling_s,
        "detection_records_per_second": times.records / detect_s,
        "throughput_ratio_vs_orjson": times.ceiling_s / detect_s,
        # where the path's time goes, in units of the ceiling: parsing into typed events, then the engine
        # (routing, enrichment, detectors with state) and freeing the batch
        "parse_time_vs_orjson": times.parse_s / times.ceiling_s,
        "engine_time_vs_orjson": engine_share,
        # of the engine, what is left with no detector: routing, enrichment, state, freeing the batch; and the
        # ratio the path would reach if every detector cost nothing (each over its own pass's ceiling)
        "engine_without_detectors_time_vs_orjson": floor_share,
        "detectors_time_vs_orjson": engine_share - floor_share,
        "throughput_ratio_without_detectors": floor.ceiling_s / (floor.parse_s + floor.engine_s),
        "peak_rss_mb": peak_rss_mb(),
        "intel_load_s": intel_load_s,
    }


def peak_rss_mb() -> float:
    """This program's peak resident set: ``VmHWM`` where Linux has it, because ``ru_maxrss`` keeps the high-water
    mark of the process before its ``exec`` (the bench's parent, which may just have built the corpus)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def remote_ops(corpus_dir: Path, sample_blobs: int) -> dict[str, Any]:
    """Run a sample through the registered functions and count what each port did."""
    import orjson

    from shared.app import PartnerTransport, Services, configure
    from shared.bench.corpus import corpus_users
    from shared.emulators.graph import GraphEmulator
    from shared.emulators.partner import PartnerEndpoint
    from shared.messages import RecordBatchRef, session_for
    from shared.platform import names
    from shared.platform.azurite import Azurite
    from shared.platform.bus import InProcessBus, OutboundMessage, default_queue_options
    from shared.platform.settings import Settings
    from shared.platform.storage import OperationCounter, StorageClients
    from shared.platform.telemetry import telemetry
    from shared.runtime.local import LocalRuntime
    from shared.runtime.world import emulator_credentials

    files = sorted(corpus_dir.glob("*.json"))[:sample_blobs]
    with Azurite() as az, PartnerEndpoint() as partner, GraphEmulator(seed=1) as graph:
        for tid, user in corpus_users():
            graph.add_user(tid, user_principal_name=user.upn, id=user.object_id, display_name=user.display_name)
        counter = OperationCounter()
        storage = StorageClients.from_connection_string(az.connection_string, namespace="bench", counter=counter)
        storage.ensure_all()
        bus = InProcessBus(default_queue_options())
        settings = Settings(
            ITDR_STORAGE_CONNECTION_STRING=az.connection_string,
            ITDR_PARTNER_ENDPOINT=partner.url,
            ITDR_PARTNER_ALLOWED_HOSTS="127.0.0.1",
            ITDR_GRAPH_BASE_URL=graph.base_url,
        )
        # the pipeline's Graph clients on the emulator, which logs every request it receives
        svc = Services(
            settings,
            storage=storage,
            bus=bus,
            credentials=emulator_credentials(time.time),
            partner=PartnerTransport(allow_http=True),
        )
        configure(svc)
        batches = storage.container(names.CONTAINER_BATCHES)
        records = 0
        refs: list[tuple[str, RecordBatchRef]] = []
        for i, f in enumerate(files):
            recs = orjson.loads(f.read_bytes())
            tid = recs[0]["OrganizationId"]
            name = f"{tid}/bench/{f.stem}.batch0.json"
            batches.upload_blob(name, f.read_bytes(), overwrite=True)
            records += len(recs)
            refs.append(
                (
                    tid,
                    RecordBatchRef(
                        tenant_id=tid,
                        content_type="bench",
                        content_id=f"bench{i}",
                        batch_blob=name,
                        batch_id=f"bench{i}#0",
                        records=len(recs),
                    ),
                )
            )
        base = dict(counter.counts)
        sent0, items0 = bus.stats.sent, telemetry().items
        for tid, ref in refs:
            # the content function's own work per blob: one archive write, one batch write, one message
            bus.send(
                names.QUEUE_RECORDS,
                [OutboundMessage(ref.encode(), message_id=ref.batch_id, session_id=session_for(tid, 0, 1))],
            )
        runtime = LocalRuntime(bus)
        posts0 = len(partner.requests)
        with LineCount() as lines:
            runtime.run_until_idle()
        configure(None)
        svc.close()
        graph_requests = len(graph.calls)  # every request the Graph clients sent (retries included)
        content_fn = len(refs)  # process_content runs once per blob in production
        table = counter.counts["table"] - base["table"]
        blob = counter.counts["blob"] - base["blob"] + 2 * len(refs)  # + archive and batch writes
        messages = bus.stats.sent - sent0 + len(refs)  # + the content reference per blob
        invocations = runtime.stats.total + content_fn
        metrics = telemetry().items - items0 + 2 * len(refs)  # + the content function's two metrics
        # the calls the worker records as dependencies (shared.platform.tracing): Graph, the partner's endpoint
        # and the content function's download of each blob from the Management Activity API, one item each
        dependencies = graph_requests + len(partner.requests) - posts0 + len(refs)
        return {
            "sample_records": records,
            "servicebus_messages": messages,
            "table_transactions": table,
            "blob_operations": blob,
            "graph_calls": graph_requests,
            "function_invocations": invocations,
            "telemetry_items": metrics,
            # what Application Insights receives in all: our metrics, the log lines (traces), one request per
            # invocation (the host's), and the dependencies
            "appinsights_items": {
                "metrics": metrics,
                "traces": lines.count,
                "requests": invocations,
                "dependencies": dependencies,
            },
            "dead_lettered": bus.stats.dead_lettered,
            "messages_by_queue": dict(bus.stats.sent_by_queue),
            "alerts": sum(len(alert_store_of(svc, t)) for t in {tid for tid, _ in refs}),
        }


class LineCount(logging.Handler):
    """Counts the log lines the functions write at INFO and above while it is entered, as the Functions worker
    forwards them to Application Insights (host.json: ``Information``); loggers keep the levels the app set."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self._root_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def __enter__(self) -> LineCount:
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._root_level)


def alert_store_of(svc: Services, tenant_id: str) -> list[Any]:
    return list(svc.alert_store.list_alerts(tenant_id))


def cost(per_record: dict[str, float]) -> dict[str, Any]:
    m = 1_000_000
    per_execution = PRICES["functions_per_million_executions"] / 1e6 + EXECUTION_GB_S * PRICES["functions_per_gb_s"]
    sb = (
        per_record["servicebus_messages_per_record"] * m * PRICES["servicebus_per_million_ops"] / 1e6 * 2
    )  # send + receive
    fn = per_record["function_invocations_per_record"] * m * per_execution
    table = per_record["table_transactions_per_record"] * m * PRICES["table_per_10k_transactions"] / 1e4
    blob = per_record["blob_operations_per_record"] * m * PRICES["blob_write_per_10k"] / 1e4
    tel = (
        per_record["appinsights_items_per_record"]
        * m
        * TELEMETRY_ITEM_KB
        / 1024
        / 1024
        * PRICES["log_analytics_per_gb"]
    )
    per_million = sb + fn + table + blob + tel
    timers = timer_runs_per_month() * per_execution
    month = per_million * RECORDS_PER_1000_USERS_MONTH / m + PRICES["servicebus_base_month"] + timers
    return {
        "cost_usd_per_million_records": round(per_million, 4),
        "cost_usd_per_1000_users_month": round(month, 2),
        "cost_fixed_per_month": {"servicebus_base": PRICES["servicebus_base_month"], "timers": round(timers, 2)},
        "cost_breakdown_per_million": {
            "servicebus": round(sb, 4),
            "functions": round(fn, 4),
            "table": round(table, 5),
            "blob": round(blob, 4),
            "telemetry": round(tel, 4),
        },
    }


MONTH_DAYS = 30.4


def timer_runs_per_month() -> float:
    """Executions a month of the app's timer functions at their default schedules (`Settings`): fixed, per
    deployment, whatever the volume (polling, feed health, intel refresh, the weekly report)."""
    from shared.platform.settings import Settings

    fields = Settings.model_fields
    schedules = ("poll_schedule", "feed_health_schedule", "intel_refresh_schedule", "weekly_report_schedule")
    return sum(cron_runs_per_month(str(fields[name].default)) for name in schedules)


def cron_runs_per_month(schedule: str) -> float:
    """How often an NCRONTAB schedule (second minute hour day month weekday) fires in `MONTH_DAYS` days.

    Counted over four whole weeks from a Monday, so each weekday is counted as often, then scaled; fields may
    be ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n`` and comma lists of those. A schedule tied to days of the month
    or to months has no steady monthly rate here: ValueError.
    """
    sec, minute, hour, day, month, weekday = schedule.split()
    if day != "*" or month != "*":
        raise ValueError(f"schedule {schedule!r}: only second, minute, hour and weekday fields are counted")
    per_minute = sum(1 for s_ in range(60) if _cron_match(sec, s_))
    start = datetime.datetime(2026, 11, 2)  # a Monday
    minutes = 0
    for k in range(28 * 24 * 60):
        t = start + datetime.timedelta(minutes=k)
        if (
            _cron_match(minute, t.minute)
            and _cron_match(hour, t.hour)
            and _cron_match(weekday, (t.weekday() + 1) % 7)  # NCRONTAB: 0 is Sunday
        ):
            minutes += 1
    return minutes * per_minute * MONTH_DAYS / 28


def _cron_match(field: str, value: int) -> bool:
    """One NCRONTAB field (every counted field starts at 0) against a value."""
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 10**6
        elif "-" in span:
            a, b = span.split("-")
            first, last = int(a), int(b)
        else:
            first = int(span)
            last = first if not step_text else 10**6
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


def ip_figures() -> dict[str, Any]:
    from shared.enrich.factory import IntelFeeds, build_ip_intel
    from shared.enrich.ipintel import measure_lookups
    from shared.records.event import gc_paused

    got = measure_lookups(build_ip_intel(IntelFeeds()), n=200_000)
    with gc_paused():  # as inside the detection engine, which pauses the collector during a batch
        paused = measure_lookups(build_ip_intel(IntelFeeds()), n=200_000, seed=2)
    return {
        "ip_lookups_per_second": got.get("lookups_per_second"),
        "ip_lookups_per_second_gc_paused": paused.get("lookups_per_second"),
        "ip_data_memory_mb": got.get("memory_mb"),
        "ip_detail": got,
    }


SCAN_SIZES = {"500k": 500_000, "5m": 5_000_000}
SCAN_SIZES_SMOKE = {"500k": 5_000, "5m": 50_000}


def ensure_jsonl(root: Path, records: int, *, seed: int = 42) -> Path:
    """The corpus's records as one JSON Lines file under ``root`` (written once, reused)."""
    import orjson

    from shared.bench.corpus import generate

    path = root / f"scan-{records}-{seed}-v1.jsonl"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        with part.open("wb") as fh:
            for _, _, recs in generate(records, seed=seed):
                fh.write(b"".join(orjson.dumps(r) + b"\n" for r in recs))
        part.rename(path)
    return path


def child_peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of a command: its ``VmHWM``, read every 20 ms while it runs
    (the mark only grows, so the last reading is the peak up to the last 20 ms)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status = Path(f"/proc/{proc.pid}/status")
    peak = 0.0
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0 and proc.stderr is not None:
        print(proc.stderr.read().decode(errors="replace"), file=sys.stderr)
    return peak, elapsed, proc.returncode


def scan_figures(smoke: bool) -> dict[str, Any]:
    """Peak RSS and throughput of `itdr scan` over JSON Lines of two sizes (see the module docstring)."""
    sizes = SCAN_SIZES_SMOKE if smoke else SCAN_SIZES
    out: dict[str, Any] = {}
    for label, n in sizes.items():
        path = ensure_jsonl(ROOT / "bench" / "corpus", n)
        cmd = [sys.executable, "-m", "shared.cli.main", "scan", str(path), "--format", "jsonl", "--quiet"]
        if smoke:  # small counts, so small runs: both sizes spill and merge as the full sizes do
            cmd += ["--run-records", "2000"]
        peak, elapsed, rc = child_peak_rss_mb(cmd)
        if rc != 0:
            raise RuntimeError(f"itdr scan exited {rc} over {path}")
        out[f"scan_peak_rss_mb_{label}"] = peak
        out[f"scan_records_{label}"] = n
        out[f"scan_seconds_{label}"] = round(elapsed, 2)
    out["scan_rss_ratio_5m_vs_500k"] = out["scan_peak_rss_mb_5m"] / out["scan_peak_rss_mb_500k"]
    out["scan_records_per_second"] = sizes["5m"] / out["scan_seconds_5m"]
    return out


def cold_import() -> float:
    code = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.bench")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--smoke", action="store_true", help="a few seconds: keeps the benchmark from rotting")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    p.add_argument("--cpu-child", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-peer", action="store_true", help="skip the pypanther peer (its figure is then missing: no results.json)"
    )
    args = p.parse_args(argv)
    if args.cpu_child:
        print(json.dumps(cpu_child(Path(args.cpu_child), args.rounds or 1)))
        return 0

    from shared.bench.corpus import ensure_corpus

    started = time.perf_counter()
    corpus = ensure_corpus(ROOT / "bench" / "corpus", args.records)
    print(f"corpus: {corpus.records} records in {corpus.blobs} blobs, {corpus.bytes / corpus.records:.0f} B/record")
    rounds = args.rounds or (1 if args.smoke else 2)
    cpu = run_cpu_child(corpus.path, rounds)
    if cpu is None:
        return 1
    profiles = roaming_figures(args.records, rounds, peer=not args.no_peer)
    if profiles is None:
        return 1
    # before the remote-operations sample, whose Azure SDK objects would otherwise sit in this process's heap
    # and slow every collection the lookup stream triggers
    ip = ip_figures()
    ops = remote_ops(corpus.path, 5 if args.smoke else 40)
    n = ops["sample_records"]
    per = {
        "servicebus_messages_per_record": ops["servicebus_messages"] / n,
        "table_transactions_per_record": ops["table_transactions"] / n,
        "blob_operations_per_record": ops["blob_operations"] / n,
        "graph_calls_per_record": ops["graph_calls"] / n,
        "function_invocations_per_record": ops["function_invocations"] / n,
        "telemetry_items_per_record": ops["telemetry_items"] / n,
        "appinsights_items_per_record": sum(ops["appinsights_items"].values()) / n,
    }
    results: dict[str, Any] = {"records": corpus.records, "smoke": args.smoke, "rounds": rounds}
    results.update({k: v for k, v in cpu.items()})
    results.update(profiles)
    results.update(per)
    results.update(cost(per))
    results.update(ip)
    results["cold_import_s"] = cold_import()
    results.update(scan_figures(args.smoke))
    results.update(precision_figures())
    results["remote_ops_sample"] = ops
    results["duration_s"] = round(time.perf_counter() - started, 1)
    unfit = missing_figures(results)
    if unfit:
        print(f"bench: results lack figures {unfit}", file=sys.stderr)
        return 1
    results["targets"] = target_checks(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    print(f"wrote {out}")
    return 0


def precision_figures() -> dict[str, Any]:
    """The false-positive budget (`shared.bench.precision`): false alerts per 1,000 benign user-days, recall."""
    from shared.bench.precision import run

    return run().figures()


def run_cpu_child(corpus_dir: Path, rounds: int) -> dict[str, Any] | None:
    """`cpu_child` over one corpus in its own process (None, with its stderr printed, when it fails)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    child = subprocess.run(
        [sys.executable, "-m", "shared.bench", "--cpu-child", str(corpus_dir), "--rounds", str(rounds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def roaming_figures(records: int, rounds: int, *, peer: bool) -> dict[str, Any] | None:
    """The detection path over the ``diverse`` and ``stress`` profiles (`shared.bench.corpus.PROFILES`), each
    against its own ``orjson.loads`` ceiling, and pypanther's Microsoft 365 rules over the diverse blobs."""
    from shared.bench.corpus import ensure_corpus

    out: dict[str, Any] = {}
    for profile in ("diverse", "stress"):
        corpus = ensure_corpus(ROOT / "bench" / "corpus", records, profile=profile)
        print(f"corpus {profile}: {corpus.records} records in {corpus.blobs} blobs")
        cpu = run_cpu_child(corpus.path, rounds)
        if cpu is None:
            return None
        out[f"throughput_ratio_vs_orjson_{profile}"] = cpu["throughput_ratio_vs_orjson"]
        out[f"detection_records_per_second_{profile}"] = cpu["detection_records_per_second"]
        out[f"orjson_records_per_second_{profile}"] = cpu["orjson_records_per_second"]
        out[f"throughput_ratio_without_detectors_{profile}"] = cpu["throughput_ratio_without_detectors"]
        out[f"peak_rss_mb_{profile}"] = cpu["peak_rss_mb"]
        if profile == "diverse" and peer:
            from shared.bench.panther_peer import run_peer

            got = run_peer(corpus.path)
            out["pypanther_diverse"] = got
            out["pypanther_ratio_vs_orjson_diverse"] = got["ratio_vs_orjson"]
            # ours over the peer's, each in units of its own process's orjson ceiling (see panther_peer)
            out["throughput_ratio_vs_pypanther_diverse"] = cpu["throughput_ratio_vs_orjson"] / got["ratio_vs_orjson"]
    return out


def missing_figures(results: dict[str, Any]) -> list[str]:
    """The `REQUIRED_KEYS` that ``results`` lacks or holds as anything but a finite number."""
    return [
        k
        for k in REQUIRED_KEYS
        if not isinstance(results.get(k), int | float) or isinstance(results[k], bool) or not math.isfinite(results[k])
    ]


def target_checks(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of `TARGETS` beside the figure measured and whether it is met (``bench/results.json`` carries them)."""
    checks: dict[str, dict[str, Any]] = {}
    for key, (op, bound) in TARGETS.items():
        value = results.get(key)
        met = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            met = value >= bound if op == ">=" else value <= bound
        checks[key] = {"op": op, "bound": bound, "value": value, "met": met}
    return checks


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'figure':40} {'value':>16}  target")
    for key in (
        "orjson_records_per_second",
        "detection_records_per_second",
        "throughput_ratio_vs_orjson",
        "throughput_ratio_vs_orjson_diverse",
        "throughput_ratio_vs_orjson_stress",
        "pypanther_ratio_vs_orjson_diverse",
        "throughput_ratio_vs_pypanther_diverse",
        "parse_time_vs_orjson",
        "engine_time_vs_orjson",
        "engine_without_detectors_time_vs_orjson",
        "detectors_time_vs_orjson",
        "throughput_ratio_without_detectors",
        "servicebus_messages_per_record",
        "table_transactions_per_record",
        "graph_calls_per_record",
        "function_invocations_per_record",
        "telemetry_items_per_record",
        "appinsights_items_per_record",
        "cost_usd_per_million_records",
        "cost_usd_per_1000_users_month",
        "ip_lookups_per_second",
        "ip_lookups_per_second_gc_paused",
        "ip_data_memory_mb",
        "peak_rss_mb",
        "cold_import_s",
        "scan_peak_rss_mb_500k",
        "scan_peak_rss_mb_5m",
        "scan_rss_ratio_5m_vs_500k",
        "scan_records_per_second",
        "false_alerts_per_1000_user_days",
        "false_alerts_medium_plus_per_1000_user_days",
        "attack_recall",
    ):
        value = results.get(key)
        target = TARGETS.get(key)
        mark = ""
        if target is not None and isinstance(value, int | float):
            op, bound = target
            ok = value >= bound if op == ">=" else value <= bound
            mark = f"{op} {bound:g}  {'ok' if ok else 'MISSED'}"
        shown = (
            f"{value:,.4f}"
            if isinstance(value, float) and value < 10
            else (f"{value:,.0f}" if isinstance(value, float) else str(value))
        )
        print(f"{key:40} {shown:>16}  {mark}")


if __name__ == "__main__":
    raise SystemExit(main())
