"""`itdr scan`: run every detector over exported audit records, without deploying anything.

The contract (documented in the README, relied on by other tools):
``itdr scan PATH... [--format jsonl|table|html|ocsf] [--output FILE] [--incidents FILE] [--summary FILE]
[--config FILE]``. Incidents (``--incidents``, and first in ``table`` and ``html``) and gaps in the input
(``integration_health`` alerts) come from :mod:`shared.cli.story`.
Records of all inputs are processed in CreationTime order. ``records_read ==
records_processed + records_quarantined`` always holds in the summary.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.alert_model import Alert, iso
from shared.cli import story
from shared.cli.inputs import iter_paths, read_input
from shared.detection.engine import DetectionEngine, InMemoryAlertSink
from shared.detection.state import InMemoryStateStore
from shared.enrich.factory import IntelFeeds
from shared.platform.errors import ConfigurationError
from shared.records.event import Event, Quarantined
from shared.tenant_config import TenantConfig

if TYPE_CHECKING:
    from shared.alerts.incidents import Incident

BATCH = 5000


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
    duration_s: float = 0.0
    signins: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    intel_lists: list[dict[str, object]] = field(default_factory=list)
    """The threat-intelligence lists the scan graded addresses with, each with its date and age."""

    def summary(self) -> dict[str, Any]:
        return {
            "records_read": self.records_read,
            "records_processed": self.records_processed,
            "records_quarantined": len(self.quarantined),
            "quarantine_reasons": dict(Counter(q.reason for q in self.quarantined)),
            "alerts": len(self.alerts),
            "incidents": len(self.incidents),
            "alerts_by_category": dict(Counter(a.category.value for a in self.alerts)),
            "alerts_by_severity": dict(Counter(a.severity.value for a in self.alerts)),
            "duration_s": round(self.duration_s, 3),
            "intel_lists": self.intel_lists,
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


def scan(paths: Sequence[str], cfg: ScanConfig, *, progress: Any = None) -> ScanResult:
    """Read, parse, order and detect over every input."""
    started = time.perf_counter()
    events: list[Event] = []
    bad: list[Quarantined] = []
    for name, raw in iter_paths(list(paths)):
        batch = read_input(name, raw)
        events.extend(batch.events)
        bad.extend(batch.quarantined)
    domains: dict[str, set[str]] = {}
    for ev in events:
        if ev.upn and "@" in ev.upn and not ev.upn.endswith("#ext#"):
            domains.setdefault(ev.tenant_id, set()).add(ev.upn.rsplit("@", 1)[1])
    engine, sink = build_engine(cfg, seen_domains=domains)
    events.sort(key=lambda e: (e.time, e.record_id))
    by_tenant: dict[str, list[Event]] = {}
    for ev in events:
        by_tenant.setdefault(ev.tenant_id, []).append(ev)
    done = 0
    for tid, evs in by_tenant.items():
        for i in range(0, len(evs), BATCH):
            chunk = evs[i : i + BATCH]
            engine.process(tid, chunk, batch_id=f"scan-{tid}-{i}")
            done += len(chunk)
            if progress is not None:
                progress(done, len(events))
    # the story (shared/cli/story.py): gaps in the input, the report's sign-ins, incidents
    watch = story.StoryWatch()
    for ev in events:  # CreationTime order across tenants
        watch.observe(ev)
    result = ScanResult(sink.list_alerts() + watch.gap_alerts(), len(events) + len(bad), len(events), bad)
    result.signins = watch.signins
    result.incidents = story.build_incidents(result.alerts)
    result.intel_lists = intel_lists(cfg.intel)
    result.duration_s = time.perf_counter() - started
    return result


def intel_lists(feeds: IntelFeeds, *, today: dt.date | None = None) -> list[dict[str, object]]:
    """Each IP list in use with its origin, date and age in days (``today``: the UTC date now)."""
    from shared.enrich.factory import lists_in_use

    day = today or dt.datetime.now(dt.UTC).date()
    return [item.describe(day) for item in lists_in_use(feeds)]


def intel_note(lists: Sequence[dict[str, object]]) -> str:
    """One line naming each list and its age, for stderr."""
    parts = [f"{x['name']} ({x['origin']} {x['as_of'] or 'undated'}, {x['age_days']} days old)" for x in lists]
    return story.plain("itdr: threat intelligence: " + ("; ".join(parts) if parts else "no lists"))


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def format_table(alerts: Sequence[Alert]) -> str:
    rows = [("SEVERITY", "DETECTOR", "TENANT", "USER", "IP", "FIRST SEEN", "SUMMARY")]
    for a in sorted(alerts, key=lambda a: (SEVERITY_ORDER[a.severity.value], a.first_seen)):
        summary = a.summary if len(a.summary) <= 90 else a.summary[:87] + "..."
        rows.append((a.severity.value, a.detector, a.tenant_id[:8], a.user, a.ip or "-", iso(a.first_seen), summary))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:6])) + "  " + r[6] for r in rows]
    return "\n".join(story.plain(line) for line in lines) + "\n"  # no terminal escapes from the data


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
        )
        out.write(html.encode())
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(fmt)


def run(args: Any) -> int:
    cfg = ScanConfig.load(args.config)
    for p in args.paths:
        if p != "-" and not Path(p).exists():
            print(f"itdr scan: no such file or directory: {p}", file=sys.stderr)
            return 2
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    result = scan(args.paths, cfg)
    print(intel_note(result.intel_lists), file=sys.stderr)
    if args.output:
        with open(args.output, "wb") as fh:
            write_output(result, fmt, fh)
    else:
        write_output(result, fmt, sys.stdout.buffer)
        sys.stdout.flush()
    if getattr(args, "incidents", None):
        with open(args.incidents, "wb") as fh:
            story.write_incidents(result.incidents, fh)
    if args.summary:
        Path(args.summary).write_bytes(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
    return 0
