"""`itdr scan`: run every detector over exported audit records, without deploying anything.

The contract (documented in the README, relied on by other tools):
``itdr scan PATH... [--format jsonl|table|html|ocsf] [--output FILE] [--incidents FILE] [--summary FILE]
[--config FILE] [--since T] [--until T] [--tenant ID] [--user UPN] [--quarantine FILE] [--quiet]``.
Incidents (``--incidents``, and first in ``table`` and ``html``) and gaps in the input (``integration_health``
alerts) come from :mod:`shared.cli.story`.
Records of all inputs are processed in CreationTime order. ``records_read ==
records_processed + records_quarantined`` always holds in the summary.
The input's own first days are the baseline: novelty detectors (a ``DetectorMeta.learning`` rule) alert only once
the user and the tenant have been observed long enough in it; the summary's ``baseline_until`` says, per tenant,
when that period ends (``shared.detection.learning``).

Any size in bounded memory: inputs are read as streams (:mod:`shared.cli.inputs`); events are
buffered in runs of `RUN_RECORDS`, each run sorted by (CreationTime, Id) and, once there is more
than one, spilled to a temporary directory as (time, Id, the event's derived keys, the record's JSON);
from then on a plain record gets only a light first look (`shared.records.event.place_record`), since it
is decoded in full at the merge anyway. The runs are merged with ``heapq.merge`` (the last one stays in
memory) and the merged stream fed to the engine in per-tenant batches of `BATCH`.
Quarantined records are counted by reason, written to ``--quarantine FILE`` when asked, and only a
bounded sample is kept in memory.
"""

from __future__ import annotations

import datetime as dt
import heapq
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from sys import intern
from typing import IO, TYPE_CHECKING, Any

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.alert_model import Alert, iso
from shared.cli import story
from shared.cli.inputs import FileReport, InputReader, Limits, iter_sources
from shared.cli.terminal import safe
from shared.detection.engine import DetectionEngine, InMemoryAlertSink
from shared.detection.learning import tenant_baseline_until
from shared.detection.signin_merge import merge_pairs
from shared.detection.state import TENANT_KEY, InMemoryStateStore
from shared.enrich.factory import IntelFeeds
from shared.ingest.gaps import GapDetector
from shared.platform.errors import ConfigurationError
from shared.records.event import Event, Placed, Quarantined, parse_raw_record
from shared.records.model import decode_record
from shared.tenant_config import TenantConfig

if TYPE_CHECKING:
    from shared.alerts.incidents import Incident

BATCH = 5000
RUN_RECORDS = 50_000
"""Events held in memory before a sorted run is spilled to disk."""
QUARANTINE_SAMPLES = 1000
"""Quarantined entries kept in `ScanResult.quarantined` (all of them are counted, and written to --quarantine)."""
SIGNIN_ROWS = 20_000
"""Sign-ins kept for the report (the first ones; all are counted, and the report says it shows a part)."""


class ScanConfig(BaseModel):
    """The ``--config`` JSON of `itdr scan` (and `itdr ip`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    intel: IntelFeeds = IntelFeeds()

    @classmethod
    def load(cls, path: str | None) -> ScanConfig:
        if path is None:
            return cls()
        p = Path(path)
        try:
            cfg = cls.model_validate_json(p.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read config {path}: {exc.strerror}") from exc
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ConfigurationError(f"invalid config {path}: {where}: {first['msg']}") from exc
        cfg = cfg.model_copy(update={"intel": cfg.intel.resolved(p.parent)})
        cfg.tenant_configs()  # validate now, fail with a clear message
        return cfg

    def tenant_configs(self) -> dict[str, TenantConfig]:
        out: dict[str, TenantConfig] = {}
        for tid, body in self.tenants.items():
            try:
                out[tid.lower()] = TenantConfig.model_validate({**body, "tenant_id": tid.lower()})
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(x) for x in first["loc"])
                raise ConfigurationError(f"invalid config for tenant {tid}: {where}: {first['msg']}") from exc
        return out


@dataclass
class ScanResult:
    alerts: list[Alert]
    records_read: int = 0
    records_processed: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    """A sample (the first `QUARANTINE_SAMPLES`); the counts are ``records_quarantined`` and ``quarantine_reasons``."""
    duration_s: float = 0.0
    signins: list[dict[str, Any]] = field(default_factory=list)
    """A bounded sample of the sign-ins (`SIGNIN_ROWS`); ``signins_total`` and ``signins_located`` count them all."""
    signins_total: int = 0
    signins_located: int = 0
    incidents: list[Incident] = field(default_factory=list)
    records_quarantined: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    records_filtered_out: int = 0
    files: list[FileReport] = field(default_factory=list)

    def add_quarantined(self, q: Quarantined) -> None:
        self.records_quarantined += 1
        self.quarantine_reasons[q.reason] += 1
        if len(self.quarantined) < QUARANTINE_SAMPLES:
            self.quarantined.append(Quarantined(q.reason, q.detail[:1000], q.raw[:4096], q.tenant_id, q.record_id))

    @property
    def files_skipped(self) -> list[dict[str, str]]:
        return [{"path": f.name, "reason": f.skipped} for f in self.files if f.skipped is not None]

    intel_lists: list[dict[str, object]] = field(default_factory=list)
    """The threat-intelligence lists the scan graded addresses with, each with its date and age."""
    tenants_detected: set[str] = field(default_factory=set)
    """Tenants whose events reached the engine."""
    baseline_until: dict[str, str] = field(default_factory=dict)
    """Per tenant, when the input's own first days stop being the baseline: the novelty detectors (those with a
    ``DetectorMeta.learning`` rule) alert only after it (``shared.detection.learning``)."""

    def summary(self) -> dict[str, Any]:
        return {
            "records_read": self.records_read,
            "records_processed": self.records_processed,
            "records_quarantined": self.records_quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "records_filtered_out": self.records_filtered_out,
            "files_read": sum(1 for f in self.files if f.skipped is None),
            "files_skipped": self.files_skipped,
            "alerts": len(self.alerts),
            "incidents": len(self.incidents),
            "alerts_by_category": dict(Counter(a.category.value for a in self.alerts)),
            "alerts_by_severity": dict(Counter(a.severity.value for a in self.alerts)),
            "duration_s": round(self.duration_s, 3),
            "intel_lists": self.intel_lists,
            "baseline_until": dict(sorted(self.baseline_until.items())),
        }


def build_engine(
    cfg: ScanConfig, *, seen_domains: dict[str, set[str]] | None = None
) -> tuple[DetectionEngine, InMemoryAlertSink]:
    """The engine `itdr scan` uses: every registered detector, in-memory state, offline enrichment.

    A tenant without configured internal domains gets the domains of its own users' UPNs seen
    in the input, so an export scanned without a config still tells internal from external.
    """
    from detectors import default_registry
    from shared.enrich.factory import build_local_enricher, load_rogue_apps

    tenants = cfg.tenant_configs()
    for tid, domains in (seen_domains or {}).items():
        current = tenants.get(tid) or TenantConfig(tenant_id=tid)
        if not current.internal_domains:
            tenants[tid] = current.model_copy(update={"internal_domains": frozenset(domains)})
    sink = InMemoryAlertSink()
    engine = DetectionEngine(
        default_registry(),
        store=InMemoryStateStore(),
        sink=sink,
        enricher=build_local_enricher(cfg.intel),
        tenant_config=lambda tid: tenants.get(tid) or TenantConfig(tenant_id=tid),
        rogue_apps=load_rogue_apps(cfg.intel.rogue_app_feeds),
    )
    return engine, sink


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What to keep and where to put what is not kept."""

    since: float | None = None
    until: float | None = None
    tenants: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    quarantine_out: IO[bytes] | None = None
    temp_dir: str | None = None
    run_records: int = RUN_RECORDS

    def keeps(self, ev: Event | Placed) -> bool:
        """True when the event passes ``--since`` (inclusive), ``--until`` (exclusive), ``--tenant``, ``--user``."""
        if self.since is not None and ev.time < self.since:
            return False
        if self.until is not None and ev.time >= self.until:
            return False
        if self.tenants and ev.tenant_id not in self.tenants:
            return False
        return not self.users or bool({ev.upn, ev.object_id} & self.users)


class ScanProgress:
    """What `scan` reports as it goes; the default reports nothing (see shared.cli.progress for the bar)."""

    def reading(self, total_bytes: int | None) -> None: ...
    def advance_bytes(self, n: int) -> None: ...
    def records(self, n: int) -> None: ...
    def detecting(self, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...


_ENTRY = struct.Struct("<I")
_Spilled = tuple[float, str, str, str, str | None, str | None, str | None, bytes]
"""A spilled event: time, Id, tenant, operation key, object id, UPN, client IP (what `build_event` derived, so
the merge rebuilds the event with one decode and no second normalisation) and the record's JSON."""


class _SpilledEntry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """`_Spilled` as read back: the same MessagePack array, decoded into a struct (about half the time of the typed
    tuple) whose fields are named as `Placed`'s, so `_unspill` takes either."""

    time: float
    record_id: str
    tenant_id: str
    op: str
    object_id: str | None
    upn: str | None
    ip: str | None
    raw: bytes


_SPILL_DECODER = msgspec.msgpack.Decoder(_SpilledEntry)


class _Runs:
    """Sorted runs of events: in memory while there is one, spilled to files beyond (see the module docstring)."""

    def __init__(self, run_records: int, temp_dir: str | None) -> None:
        self.run_records = run_records
        self.temp_dir = temp_dir
        self.current: list[Event | Placed] = []
        self.files: list[Path] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def add(self, ev: Event | Placed) -> None:
        self.current.append(ev)
        if len(self.current) >= self.run_records:
            self._spill()

    def _spill(self) -> None:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="itdr-scan-", dir=self.temp_dir)
        self.current.sort(key=_order)
        path = Path(self._dir.name) / f"run{len(self.files):05d}"
        encode = msgspec.msgpack.encode
        with open(path, "wb", buffering=1 << 20) as fh:
            for ev in self.current:
                body = encode(_entry(ev))
                fh.write(_ENTRY.pack(len(body)))
                fh.write(body)
        self.files.append(path)
        self.current = []

    def ordered(self) -> Iterator[Event | Quarantined]:
        """Every event added, in (CreationTime, Id) order: the spilled runs merged with the last run, which
        stays in memory (only spilled records are parsed again)."""
        self.current.sort(key=_order)
        events, self.current = self.current, []
        if not self.files:
            for ev in events:
                yield ev if isinstance(ev, Event) else _unspill(ev)
            return
        held = ((ev.time, ev.record_id, ev) for ev in events)
        runs: list[Iterator[tuple[float, str, _SpilledEntry | Event | Placed]]] = [_read_run(p) for p in self.files]
        for _, _, item in heapq.merge(*runs, held, key=_entry_order):
            yield item if isinstance(item, Event) else _unspill(item)

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


_order = attrgetter("time", "record_id")
"""Sort key of held events, ``(ev.time, ev.record_id)`` (both `Event` and `Placed` have them)."""


def _entry(ev: Event | Placed) -> _Spilled:
    return (ev.time, ev.record_id, ev.tenant_id, ev.op, ev.object_id, ev.upn, ev.ip, ev.raw)


def _entry_order(entry: tuple[float, str, _SpilledEntry | Event | Placed]) -> tuple[float, str]:
    return (entry[0], entry[1])


def _read_run(path: Path) -> Iterator[tuple[float, str, _SpilledEntry | Event | Placed]]:
    with open(path, "rb", buffering=1 << 16) as fh:
        while head := fh.read(4):
            (size,) = _ENTRY.unpack(head)
            entry = _SPILL_DECODER.decode(fh.read(size))
            yield entry.time, entry.record_id, entry


def _unspill(entry: _SpilledEntry | Placed) -> Event | Quarantined:
    """The event a spilled (or light-read, held) entry was: its record decoded again, its derived fields as they were."""
    ts, rid, tenant, op = entry.time, entry.record_id, entry.tenant_id, entry.op
    oid, upn, ip, raw = entry.object_id, entry.upn, entry.ip, entry.raw
    try:
        rec = decode_record(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return parse_raw_record(raw)  # a record the lenient path repaired: repair it again
    # one string object per distinct tenant, operation and user, as the parse's caches give: the engine keys
    # its routing and state by them, and a shared string hashes once and compares by identity
    tenant = intern(tenant)
    op = intern(op)
    oid = intern(oid) if oid is not None else None
    upn = intern(upn) if upn is not None else None
    return Event(rec, raw, rid, tenant, ts, op, oid, upn, oid or upn, ip)


def _write_quarantined(out: IO[bytes], q: Quarantined) -> None:
    out.write(
        orjson.dumps(
            {
                "reason": q.reason,
                "location": q.detail.split(": ", 1)[0] if ": " in q.detail else "",
                "detail": q.detail,
                "tenant_id": q.tenant_id,
                "record_id": q.record_id,
                "raw": q.raw.decode("utf-8", errors="replace"),
            }
        )
        + b"\n"
    )


def scan(
    paths: Sequence[str],
    cfg: ScanConfig,
    *,
    progress: ScanProgress | None = None,
    options: ScanOptions | None = None,
) -> ScanResult:
    """Read, parse, order and detect over every input, in bounded memory."""
    started = time.perf_counter()
    opts = options or ScanOptions()
    prog = progress or ScanProgress()
    result = ScanResult([])
    sources = list(iter_sources(list(paths)))
    sizes = [s.size for s in sources]
    total = None if any(x is None for x in sizes) else sum(x or 0 for x in sizes)
    prog.reading(total)
    consumed = [0]

    def on_bytes(n: int) -> None:
        consumed[0] += n
        prog.advance_bytes(n)

    reader = InputReader(opts.limits, on_bytes=on_bytes)
    runs = _Runs(opts.run_records, opts.temp_dir)
    domains: dict[str, set[str]] = {}
    kept = 0
    try:
        for source in sources:
            for got in reader.read(source):
                if isinstance(got, Quarantined):
                    _quarantine(result, opts, got)
                    continue
                if not opts.keeps(got):
                    result.records_filtered_out += 1
                    continue
                upn = got.upn
                if upn and "@" in upn and not upn.endswith("#ext#"):
                    domains.setdefault(got.tenant_id, set()).add(upn.rsplit("@", 1)[1])
                runs.add(got)
                if runs.files and not reader.light:
                    reader.light = True  # records are decoded again after the merge: a first look is enough
                kept += 1
                if kept % 1000 == 0:
                    prog.records(kept)
                    if not reader.light and total and consumed[0] and kept * total > opts.run_records * consumed[0]:
                        # the inputs' size says they hold more than one run (the bytes read run ahead of the records
                        # kept, so the estimate is low): the first run will spill too, so it gets the light look
                        # as well, rather than a full decode now and another at the merge
                        reader.light = True
        prog.records(kept)
        result.files = reader.reports
        engine, sink = build_engine(cfg, seen_domains=domains)
        prog.detecting(kept)
        gaps = GapDetector()
        _detect(engine, runs.ordered(), result, opts, prog, gaps)
    finally:
        runs.close()
        prog.close()
    result.baseline_until = baseline_until(engine, sorted(result.tenants_detected))
    # the story (shared/cli/story.py): gaps in the input are findings; alerts are told as incidents
    result.alerts = sink.list_alerts() + gaps.alerts()
    result.incidents = story.build_incidents(result.alerts)
    result.records_read = result.records_processed + result.records_quarantined
    result.intel_lists = intel_lists(cfg.intel)
    result.duration_s = time.perf_counter() - started
    return result


def baseline_until(engine: DetectionEngine, tenants: Sequence[str]) -> dict[str, str]:
    """Per tenant, the end of the baseline period: its first observed record plus the longest tenant learning
    period of the registered detectors (tenants the learning gate never saw are left out)."""
    metas = [d.meta for d in engine.registry.detectors]
    out: dict[str, str] = {}
    for tid in tenants:
        state = engine.store.load(tid, [TENANT_KEY])[TENANT_KEY]
        until = tenant_baseline_until(state.data, metas)
        if until is not None:
            out[tid] = until
    return out


def _quarantine(result: ScanResult, opts: ScanOptions, q: Quarantined) -> None:
    result.add_quarantined(q)
    if opts.quarantine_out is not None:
        _write_quarantined(opts.quarantine_out, q)


def _detect(
    engine: DetectionEngine,
    ordered: Iterator[Event | Quarantined],
    result: ScanResult,
    opts: ScanOptions,
    prog: ScanProgress,
    gaps: GapDetector,
) -> None:
    """Feed the ordered events to the engine in per-tenant batches; watch for gaps (in CreationTime order across
    all inputs) and keep a bounded sample of the sign-ins for the report (after enrichment located them)."""
    pending: dict[str, list[Event]] = {}
    batches: Counter[str] = Counter()

    def flush(tid: str) -> None:
        chunk = pending.pop(tid)
        result.tenants_detected.add(tid)
        read = len(chunk)
        if any(e.record.SignIn is not None for e in chunk):
            chunk = merge_pairs(chunk)  # one sign-in, one event: also one row in the sign-in sample and counts
        engine.process(tid, chunk, batch_id=f"scan-{tid}-{batches[tid]}")
        batches[tid] += 1
        result.records_processed += read
        prog.advance(read)
        for e in chunk:
            if e.op == "userloggedin":
                info = e.ip_info
                result.signins_total += 1
                result.signins_located += (
                    getattr(info, "latitude", None) is not None and getattr(info, "longitude", None) is not None
                )
                if len(result.signins) < SIGNIN_ROWS:  # the row only for the sample kept
                    result.signins.append(story.signin_row(e))

    for ev in ordered:
        if isinstance(ev, Quarantined):  # a spilled record no longer decodes: never expected, still counted
            _quarantine(result, opts, ev)
            continue
        gaps.observe(ev)
        lst = pending.get(ev.tenant_id)
        if lst is None:
            lst = pending[ev.tenant_id] = []
        lst.append(ev)
        if len(lst) >= BATCH:
            flush(ev.tenant_id)
    for tid in list(pending):
        flush(tid)


def intel_lists(feeds: IntelFeeds, *, today: dt.date | None = None) -> list[dict[str, object]]:
    """Each IP list in use with its origin, date and age in days (``today``: the UTC date now)."""
    from shared.enrich.factory import lists_in_use

    day = today or dt.datetime.now(dt.UTC).date()
    return [item.describe(day) for item in lists_in_use(feeds)]


def intel_note(lists: Sequence[dict[str, object]]) -> str:
    """One line naming each list and its age, for stderr."""
    parts = [f"{x['name']} ({x['origin']} {x['as_of'] or 'undated'}, {x['age_days']} days old)" for x in lists]
    return safe("itdr: threat intelligence: " + ("; ".join(parts) if parts else "no lists"))


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def format_table(alerts: Sequence[Alert]) -> str:
    """The alerts as an aligned table for people; every cell terminal-safe (:func:`shared.cli.terminal.safe`)."""
    rows: list[tuple[str, ...]] = [("SEVERITY", "DETECTOR", "TENANT", "USER", "IP", "FIRST SEEN", "SUMMARY")]
    for a in sorted(alerts, key=lambda a: (SEVERITY_ORDER[a.severity.value], a.first_seen)):
        text = safe(a.summary)  # before cutting: escape sequences take no width on screen
        summary = text if len(text) <= 90 else text[:87] + "..."
        cells = (a.severity.value, a.detector, a.tenant_id[:8], a.user, a.ip or "-", iso(a.first_seen), summary)
        rows.append(tuple(safe(c) for c in cells))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:6])) + "  " + r[6] for r in rows]
    return "\n".join(lines) + "\n"


def write_output(result: ScanResult, fmt: str, out: IO[bytes]) -> None:
    if fmt == "jsonl":
        for a in result.alerts:
            out.write(orjson.dumps(a.to_dict()) + b"\n")
    elif fmt == "ocsf":
        from shared.alerts.ocsf import to_ocsf

        for a in result.alerts:
            out.write(orjson.dumps(to_ocsf(a)) + b"\n")
    elif fmt == "table":
        out.write(story.format_incidents(result.incidents).encode())
        out.write(format_table(result.alerts).encode())
    elif fmt == "html":
        from shared.reports.html import render_report

        tenants = sorted({a.tenant_id for a in result.alerts}) or ["(none)"]
        html = render_report(
            ", ".join(tenants),
            "scan",
            incidents=result.incidents,
            alerts=[a.to_dict() for a in result.alerts],
            signins=result.signins,
            remediations=[],
            signins_total=result.signins_total,
            located_total=result.signins_located,
        )
        out.write(html.encode())
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(fmt)


def parse_when(value: str, option: str) -> float:
    """Epoch seconds of a ``--since``/``--until`` value: an ISO 8601 date or time (UTC when it has no zone)."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigurationError(f"{option}: not an ISO 8601 date or time: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def options_from(args: Any, quarantine_out: IO[bytes] | None) -> ScanOptions:
    """`ScanOptions` from the parsed command line (a usage mistake raises ConfigurationError: exit 2)."""
    since = parse_when(args.since, "--since") if getattr(args, "since", None) else None
    until = parse_when(args.until, "--until") if getattr(args, "until", None) else None
    if since is not None and until is not None and since >= until:
        raise ConfigurationError("--since must be before --until")
    limits = Limits()
    ratio = getattr(args, "max_expansion_ratio", None)
    expanded = getattr(args, "max_expanded_mb", None)
    if ratio is not None:
        limits = Limits(max_ratio=ratio, max_expanded=limits.max_expanded, ratio_floor=0)
    if expanded is not None:
        limits = Limits(
            max_ratio=limits.max_ratio, max_expanded=int(expanded * 1024 * 1024), ratio_floor=limits.ratio_floor
        )
    return ScanOptions(
        since=since,
        until=until,
        tenants=frozenset(t.strip().lower() for t in getattr(args, "tenant", None) or ()),
        users=frozenset(u.strip().lower() for u in getattr(args, "user", None) or ()),
        limits=limits,
        quarantine_out=quarantine_out,
        temp_dir=getattr(args, "temp_dir", None),
        run_records=getattr(args, "run_records", None) or RUN_RECORDS,
    )


def _open_for_writing(path: str, what: str) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {what} {path}: {exc.strerror}") from exc


def _notes(result: ScanResult) -> list[str]:
    """What the user must know about the inputs: skipped files, files wholly quarantined, the quarantine total."""
    lines = [f"skipped {f['path']}: {f['reason']}" for f in result.files_skipped]
    for f in result.files:
        if f.skipped is None and f.records and f.quarantined == f.records:
            lines.append(f"{f.name}: all {f.records:,} records quarantined")
    if result.records_quarantined:
        reasons = ", ".join(f"{k} {v:,}" for k, v in result.quarantine_reasons.most_common())
        lines.append(f"{result.records_quarantined:,} of {result.records_read:,} records quarantined ({reasons})")
    return lines


def run(args: Any) -> int:
    cfg = ScanConfig.load(args.config)
    for p in args.paths:
        if p != "-" and not Path(p).exists():
            raise ConfigurationError(f"no such file or directory: {p}")
    quiet = bool(getattr(args, "quiet", False))
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    out = _open_for_writing(args.output, "output") if args.output else None
    qfile = _open_for_writing(args.quarantine, "quarantine file") if getattr(args, "quarantine", None) else None
    try:
        opts = options_from(args, qfile)
        progress: ScanProgress | None = None
        if not quiet and sys.stderr.isatty():
            from shared.cli.progress import RichScanProgress

            progress = RichScanProgress(sys.stderr)
        result = scan(args.paths, cfg, progress=progress, options=opts)
        if out is not None:
            write_output(result, fmt, out)
        else:
            write_output(result, fmt, sys.stdout.buffer)
            sys.stdout.flush()
    finally:
        if out is not None:
            out.close()
        if qfile is not None:
            qfile.close()
    if getattr(args, "incidents", None):
        with open(args.incidents, "wb") as fh:
            story.write_incidents(result.incidents, fh)
    if args.summary:
        Path(args.summary).write_bytes(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
    if not quiet:
        print(intel_note(result.intel_lists), file=sys.stderr)
        for line in _notes(result):
            print(f"itdr scan: {_printable(line)}", file=sys.stderr)
    return 0


def _printable(text: str) -> str:
    """A line for the terminal: control characters (from file names or records) shown escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
