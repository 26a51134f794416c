"""The detection engine: routes events to detectors, keeps state, turns findings into alerts.

One call handles one batch of one tenant (a Service Bus session guarantees one consumer
per tenant at a time). The order of durable writes is what makes a crash harmless:

1. alerts are upserted first, by deterministic ID (a replay rewrites the same rows);
2. then user state is saved, each user marked with the batch ID it has absorbed;
3. a redelivered batch skips every user that already absorbed it, so counters are not
   doubled, and re-raises nothing that was not already written in step 1.

The tenant-wide row is shared by the shards of a tenant (each shard owns its users): the store
merges a batch's change of it into whatever another shard wrote meanwhile (``merge_state``)
instead of failing, and writes it with the first users, so a replay that finds it has absorbed
the batch does not write it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter
from typing import Any, Protocol

import orjson

from shared.alert_model import Alert, Finding, Need, build_alert
from shared.detection.base import DetectionContext, Registry
from shared.detection.learning import gated
from shared.detection.signin_merge import MERGE_OPS, Fate, SigninMerger, merge_pairs
from shared.detection.state import TENANT_KEY, StateStore, UserState
from shared.platform.faults import crash_point
from shared.records.event import Event, gc_paused
from shared.tenant_config import TenantConfig

_Route = tuple[Callable[[Event, DetectionContext], Iterable[Finding]], ...]
"""The ``detect`` methods of the detectors one operation is routed to, in registry order."""
_TIME_THEN_ID = attrgetter("time", "record_id")
"""Sort key of routed events: ``(event.time, event.record_id)``."""

OPEN_ALERTS = "_open"
"""Per-user state section: detector|dedup_key -> [alert_id, last_seen] of the alert still open for merging."""


class AlertSink(Protocol):
    """Where alerts are kept (Table Storage deployed; memory in `itdr scan`)."""

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None: ...

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None: ...


class Enricher(Protocol):
    """Adds IP context, access method and identity to events before detection."""

    def enrich(self, events: Sequence[Event], tenant: TenantConfig) -> None: ...


class InMemoryAlertSink:
    """Alerts in a dict keyed by (tenant, alert ID)."""

    def __init__(self) -> None:
        self._alerts: dict[tuple[str, str], Alert] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert | None:
        with self._lock:
            return self._alerts.get((tenant_id, alert_id))

    def upsert_alerts(self, alerts: Sequence[Alert]) -> None:
        with self._lock:
            for a in alerts:
                self._alerts[(a.tenant_id, a.alert_id)] = a
            self.writes += 1 if alerts else 0

    def list_alerts(self, tenant_id: str | None = None) -> list[Alert]:
        with self._lock:
            items = [a for (t, _), a in self._alerts.items() if tenant_id is None or t == tenant_id]
        return sorted(items, key=lambda a: (a.first_seen, a.alert_id))


@dataclass(slots=True)
class BatchOutcome:
    tenant_id: str
    batch_id: str
    processed: int = 0
    routed: int = 0
    replayed_users: int = 0
    findings: list[Finding] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _snapshot(state: UserState) -> bytes | None:
    """The state document's canonical JSON (None when it holds something JSON cannot say: then it is written)."""
    try:
        return orjson.dumps(state.data, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


class DetectionEngine:
    """Runs every registered detector over batches of events."""

    def __init__(
        self,
        registry: Registry,
        *,
        store: StateStore,
        sink: AlertSink,
        enricher: Enricher | None = None,
        tenant_config: Callable[[str], TenantConfig] | None = None,
        rogue_apps: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.sink = sink
        self.enricher = enricher
        self._tenant_config = tenant_config or (lambda tid: TenantConfig(tenant_id=tid))
        self.rogue_apps = rogue_apps or {}

    def process(
        self,
        tenant_id: str,
        events: Iterable[Event],
        *,
        batch_id: str,
        after_alerts: Callable[[str, Sequence[Alert]], None] | None = None,
    ) -> BatchOutcome:
        """Detect over one tenant's batch; alerts and state are durable when this returns.

        ``after_alerts`` (incident grouping, publishing, remediation planning) runs after the
        alerts are written and before the state is saved, so a crash inside it replays the
        batch; it must be idempotent (deterministic IDs make it so).
        """
        out = BatchOutcome(tenant_id, batch_id)
        with gc_paused():
            # CPU only inside the pause: routing, enrichment, state reads and every detector
            states = self._detect(tenant_id, events, out)
        if states is None:
            return out
        if out.alerts:
            self.sink.upsert_alerts(out.alerts)
            crash_point("detect.after_alerts")
            if after_alerts is not None:
                after_alerts(tenant_id, out.alerts)
            crash_point("detect.before_state")
        self.store.save(tenant_id, states)
        return out

    def _detect(self, tenant_id: str, events: Iterable[Event], out: BatchOutcome) -> dict[str, UserState] | None:
        """Route, enrich and detect; fills ``out`` and returns the states to save (None: nothing routed)."""
        batch_id = out.batch_id
        routes: dict[str, _Route] = {}
        get_route = self.registry.route
        routed: list[Event] = []
        add = routed.append
        processed = 0
        for ev in events:
            processed += 1
            if ev.tenant_id != tenant_id:
                raise ValueError(f"event of tenant {ev.tenant_id} in a batch of tenant {tenant_id}")
            op = ev.op
            r = routes.get(op)
            if r is None:
                r = routes[op] = tuple(gated(d) for d in get_route(op))  # novelty detectors behind their learning rule
            if r:
                add(ev)
        out.processed = processed
        out.routed = len(routed)
        if not routed:
            return None
        if any(ev.record.SignIn is not None for ev in routed):
            routed = merge_pairs(routed)  # one sign-in, one event (shared.detection.signin_merge)
        routed.sort(key=_TIME_THEN_ID)
        tenant = self._tenant_config(tenant_id)
        if self.enricher is not None:
            self.enricher.enrich(routed, tenant)
        keys = {ev.user_key or TENANT_KEY for ev in routed}
        states = self.store.load(tenant_id, keys | {TENANT_KEY})
        tenant_before = _snapshot(states[TENANT_KEY])
        replayed = {k for k, st in states.items() if st.has_applied(batch_id)}
        out.replayed_users = len(replayed)
        ctx = DetectionContext(tenant, states, rogue_apps=self.rogue_apps)
        changed: dict[str, Alert] = {}
        findings = out.findings
        merger = SigninMerger(ctx, routed) if "userloggedin" in routes or "userloginfailed" in routes else None
        for ev in routed:
            if replayed and (ev.user_key or TENANT_KEY) in replayed:
                continue
            ev.batch_id = batch_id
            detectors = routes[ev.op]
            if merger is not None and ev.op in MERGE_OPS:
                fate = merger.fate(ev)
                if fate is Fate.DROP:
                    continue
                if fate is Fate.SIGNIN_LOG_ONLY:
                    detectors = self._signin_log_route(ev.op)
            for detect in detectors:
                got = detect(ev, ctx)
                if not got:
                    continue  # nothing to iterate (an empty tuple or list)
                for f in got:
                    findings.append(f)
                    alert = self._to_alert(f, states, changed)
                    if alert is not None:
                        changed[alert.alert_id] = alert
        if TENANT_KEY not in keys and tenant_before is not None and _snapshot(states[TENANT_KEY]) == tenant_before:
            # read but not changed (``section`` marks a read dirty): not written, so the shards of one tenant
            # do not all rewrite (and conflict on) the tenant-wide row with every batch. Harmless for replays:
            # no event of this batch is keyed to it, and an unchanged row has nothing to lose.
            states[TENANT_KEY].dirty = False
        if TENANT_KEY in replayed:
            # the tenant-wide row absorbed this batch already (it is saved in the first transaction, with the
            # first users): what the replayed users add to it now is in it, so it is not written again
            states[TENANT_KEY].dirty = False
        for key, st in states.items():
            if key not in replayed and (st.dirty or key in keys):
                st.mark_applied(batch_id)
        out.alerts = list(changed.values())
        return states

    def _signin_log_route(self, op: str) -> _Route:
        """The detectors of ``op`` that read the sign-in log's own fields (``Need.SIGNIN_LOG``)."""
        return tuple(d.detect for d in self.registry.route(op) if Need.SIGNIN_LOG in d.meta.needs)

    def _to_alert(self, f: Finding, states: Mapping[str, Any], changed: dict[str, Alert]) -> Alert | None:
        meta = self.registry.meta(f.detector_id)
        if meta is None:
            raise ValueError(f"finding from unregistered detector {f.detector_id}")
        st = states[f.user_key or TENANT_KEY]
        open_alerts = st.section(OPEN_ALERTS)
        slot = f"{f.detector_id}|{f.dedup_key}"
        window = meta.dedup_window / timedelta(seconds=1)
        prior = open_alerts.get(slot)
        if isinstance(prior, list) and len(prior) == 2 and f.first_seen - float(prior[1]) <= window:
            existing = changed.get(str(prior[0])) or self.sink.get_alert(f.tenant_id, str(prior[0]))
            if existing is not None:
                if not existing.merge(f):
                    return None
                open_alerts[slot] = [existing.alert_id, existing.last_seen]
                return existing
        alert = build_alert(meta, f)
        open_alerts[slot] = [alert.alert_id, alert.last_seen]
        _expire_open(open_alerts, now=f.last_seen, horizon=30 * 86400)
        return alert


def _expire_open(open_alerts: dict[str, Any], *, now: float, horizon: float) -> None:
    stale = [k for k, v in open_alerts.items() if isinstance(v, list) and len(v) == 2 and now - float(v[1]) > horizon]
    for k in stale:
        open_alerts.pop(k)
