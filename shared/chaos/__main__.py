"""`make chaos`: the whole local product under injected faults, checked against invariants.

Runs the demo's multi-tenant workload twice with the same seed: once without faults (the
reference) and once with faults drawn from the seed — Management Activity API throttling
(429, AF429 in a 403), 5xx, slow responses, truncated and invalid blobs, duplicate content IDs
(also days later), a subscription disabled by an admin mid-run; functions dying between their
steps (crash points), messages redelivered, locks lost; Graph 429/503/403/404 on remediation; the
partner's endpoint down for hours. Spoofed webhook notifications are sent throughout. Then it
checks, prints and enforces:

1. every record the API served was processed or quarantined with a reason (by record ``Id``);
2. no alert, incident, partner delivery or remediation happened twice in effect;
3. checkpoints only moved forward, and only past work that is durable;
4. every attack was alerted as in the fault-free run, and no tenant's state is visible to another;
5. every dead-letter carries a reason and replays with ``itdr deadletters replay``;
6. security: every spoofed notification was refused, and no token or secret reached a log line;
7. hardening (#25): forged content references (one blob's id with another's URI, a path under the feed
   that is not a blob) are parked and the blob they named is still processed; secrets planted in every
   log path and in exception text are redacted; hostile tenant and user keys are stored and read back;
   every queue message is also delivered twice (nothing doubles); a poller holding a stale checkpoint
   cannot write it; the admin API refuses oversized fields and over-wide trusted ranges without a 500.

Reproduce a failure with ``make chaos SEED=<the printed seed>``.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from shared.app import IntelSources
from shared.demo.__main__ import plant_attack, seed_graph, write_feeds
from shared.demo.workload import Workload, generate
from shared.platform import logsafety, names
from shared.platform.faults import CrashInjector, install
from shared.runtime.world import LocalWorld

CRASH_POINTS = (
    "content.after_download",
    "content.after_archive",
    "content.after_publish",
    "poll.after_enqueue",
    "detect.after_alerts",
    "detect.after_incidents",
    "detect.before_state",
    "remediation.after_graph",
    "remediation.after_incident",
    "delivery.after_post",
)
SECRET_MARKERS = ("emulator-token", "fake-token:")


class LogCapture(logging.Handler):
    """Every log line of the run, rendered, to search for secrets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:  # the whole rendered line: message, exception text and traceback, stack
            text = self.format(record)
        except Exception:  # a broken format string is still a line to check
            text = str(record.msg)
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STD_ATTRS)
        self.lines.append(f"{record.name} {text} {extras}")


_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@dataclass
class RunResult:
    alerts: dict[str, Any] = field(default_factory=dict)
    incidents: list[Any] = field(default_factory=list)
    detected_ids: set[str] = field(default_factory=set)
    served_ids: set[str] = field(default_factory=set)
    quarantined_ids: set[str] = field(default_factory=set)
    quarantined_content: set[str] = field(default_factory=set)
    deliveries: list[Any] = field(default_factory=list)
    graph_effects: list[Any] = field(default_factory=list)
    checkpoint_history: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    state_rows: list[tuple[str, str]] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)
    replayed: int = 0
    spoofs_sent: int = 0
    spoofs_refused: int = 0
    log_lines: list[str] = field(default_factory=list)
    crashes: Counter[str] = field(default_factory=Counter)
    api_faults: dict[str, int] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    tenants: dict[str, set[str]] = field(default_factory=dict)
    after_replay: list[Any] = field(default_factory=list)
    forged_sent: int = 0
    forged_parked: int = 0
    forged_targets: dict[str, set[str]] = field(default_factory=dict)
    """Content id -> record Ids of blobs a forged reference named: they must still be processed."""
    hardening: dict[str, tuple[bool, str]] = field(default_factory=dict)
    """Per hardening probe: (passed, detail)."""


def run_world(wl: Workload, *, seed: int, faults: bool, smoke: bool) -> RunResult:
    import tempfile
    from pathlib import Path

    from shared.ingest.onboarding import onboard_tenant

    out = RunResult()
    rng = random.Random(seed)
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    # the libraries' per-request lines too (the app holds them at WARNING): the secrets check reads every line
    libraries = {name: logging.getLogger(name).level for name in logsafety.QUIET_LIBRARIES}
    for name in libraries:
        logging.getLogger(name).setLevel(logging.DEBUG)
    injector = CrashInjector(seed=seed, rate=0.04 if faults else 0.0, points=CRASH_POINTS)
    install(injector if faults else None)

    def fault_hook(queue: str, m: Any) -> str | None:
        if not faults:
            return None
        r = rng.random()
        # "duplicate": the message is handled twice (a redelivery after a completion that was lost)
        return "crash" if r < 0.03 else "lose_lock" if r < 0.05 else "duplicate" if r < 0.12 else None

    try:
        with (
            tempfile.TemporaryDirectory(prefix="itdr-chaos-") as tmp,
            LocalWorld(
                wl.start,
                seed=seed,
                namespace=f"{'f' if faults else 'r'}{seed}",
                fault_hook=fault_hook,
                intel=IntelSources(feeds=write_feeds(Path(tmp))),
                on_detected=lambda ref, res: out.detected_ids.update(res.record_ids),
            ) as w,
        ):
            svc = w.svc
            seed_graph(w, wl)
            out.tenants = {t.tenant_id: {u.object_id for u in t.users} | {u.upn for u in t.users} for t in wl.tenants}
            for t in wl.tenants:
                onboard_tenant(svc, tenant_id=t.tenant_id, name=t.name, partner_id="chaos-msp", detection=t.config())
                _auto_remediate(w, t.tenant_id)
            out.secrets = [w.partner.signature]
            if faults:
                _arm_faults(w, wl, rng)
            _drive(w, wl, out, rng, faults=faults, smoke=smoke)
            if faults:
                _hardening_probes(w, wl, out, rng)
            _collect(w, wl, out)
            if faults:
                out.replayed = _replay_dead_letters(w, out)
            out.api_faults = dict(getattr(w.api.stats, "faults", {}) or {})
    finally:
        install(None)
        root.removeHandler(capture)
        root.setLevel(old_level)
        for name, level in libraries.items():
            logging.getLogger(name).setLevel(level)
    out.crashes = injector.crashes
    out.log_lines = capture.lines
    return out


def _auto_remediate(w: LocalWorld, tenant_id: str) -> None:
    d = w.svc.tenants
    rec = d.get(tenant_id)
    assert rec is not None
    d.upsert(rec.model_copy(update={"remediation": {"default_mode": "auto"}}))


def _arm_faults(w: LocalWorld, wl: Workload, rng: random.Random) -> None:
    from shared.emulators.graph import Fault

    w.api.set_fault_rates(
        {
            "throttle_429": 0.05,
            "throttle_403": 0.02,
            "server_error": 0.05,
            "slow": 0.02,
            "truncated_blob": 0.04,
            "invalid_json_blob": 0.02,
            "duplicate_content": 0.05,
            "long_page_chain": 0.05,
        },
        seed=rng.randint(0, 2**31),
    )
    w.graph.inject(Fault(429, count=2, retry_after=30))
    w.graph.inject(Fault(503, count=2))
    w.graph.inject(Fault(503, count=1, after=True, method="PATCH"))  # done, but the caller never hears it
    w.graph.inject(Fault(404, count=1, method="DELETE", path_prefix="/users"))
    w.graph.inject(Fault(403, count=1, method="PATCH", path_prefix="/servicePrincipals"))
    # content of a tenant without attacks expires before it is fetched: a data-loss alert, not a crash
    w.api.inject("expired_content", times=1, tenant=wl.tenants[2].tenant_id, content_type="Audit.SharePoint")


def _drive(w: LocalWorld, wl: Workload, out: RunResult, rng: random.Random, *, faults: bool, smoke: bool) -> None:
    end = max(b.created for b in wl.blobs) + timedelta(hours=2)
    hours = int((end - wl.start).total_seconds() // 3600) + 1
    pending = sorted(wl.blobs, key=lambda b: b.created)
    disabled_at = hours // 2
    partner_down = (hours // 3, hours // 3 + 6)
    planted = False
    for h in range(hours):
        w.clock.set(wl.start + timedelta(hours=h))
        if not planted and wl.attack_time is not None and w.clock.datetime() >= wl.attack_time:
            plant_attack(w, wl)
            planted = True
        added: list[dict[str, Any]] = []
        while pending and pending[0].created <= w.clock.datetime():
            b = pending.pop(0)
            entry = w.api.add_content(b.tenant_id, b.content_type, list(b.records), created=b.created, notify=False)
            added.append({**entry, "tenantId": b.tenant_id, "recordIds": [str(r.get("Id")) for r in b.records]})
        # the third tenant's SharePoint feed is disabled and expired on purpose: forge only what must arrive
        steady = [e for e in added if e["tenantId"] != wl.tenants[2].tenant_id]
        if faults and h % 5 == 2 and len(steady) >= 1 and len(added) >= 2:
            _forge(w, out, steady[0], next(e for e in added if e is not steady[0]))
        if faults and h == disabled_at:
            w.api.disable_subscription(wl.tenants[2].tenant_id, "Audit.SharePoint")
        if faults and h == partner_down[0]:
            w.partner.set_down(until=(wl.start + timedelta(hours=partner_down[1])).timestamp())
        if faults and h % 7 == 3:
            out.spoofs_sent += 4
            out.spoofs_refused += _spoof(w, wl)
        _tick(w, "poll_content")
        w.drain()
        if h % 6 == 0:
            _tick(w, "feed_health")
            w.drain()
        _record_checkpoints(w, out)
    for _ in range(3):  # let retries, repairs and redeliveries settle
        w.clock.sleep(3600)
        _tick(w, "poll_content")
        w.drain()
        _tick(w, "feed_health")
        w.drain()
        _record_checkpoints(w, out)


def _tick(w: LocalWorld, name: str) -> None:
    try:
        w.tick(name)
    except Exception:  # an injected crash in a timer: the next tick runs again
        logging.getLogger("itdr.chaos").info("timer %s failed", name)


def _spoof(w: LocalWorld, wl: Workload) -> int:
    """Four spoofed notifications: wrong AuthID, unknown tenant, content URL on another host, oversized."""
    t = wl.tenants[0].tenant_id
    item = {
        "tenantId": t,
        "clientId": "00000000-0000-0000-0000-00000000c11e",
        "contentType": "Audit.Exchange",
        "contentId": "spoof$1",
        "contentUri": f"{w.api.base_url}/api/v1.0/{t}/activity/feed/audit/spoof$1",
        "contentCreated": "2026-11-24T00:00:00.000Z",
        "contentExpiration": "2026-12-01T00:00:00.000Z",
    }
    cases = [
        ({"Webhook-AuthID": "not-the-secret"}, orjson.dumps([item])),
        ({"Webhook-AuthID": "x"}, orjson.dumps([{**item, "tenantId": "11111111-2222-3333-4444-555555555555"}])),
        ({"Webhook-AuthID": "x"}, orjson.dumps([{**item, "contentUri": "https://evil.example/steal"}])),
        ({"Webhook-AuthID": "x"}, b"[" + b" " * (2 * 1024 * 1024) + b"]"),
    ]
    refused = 0
    for headers, body in cases:
        resp = w.runtime.http(
            "o365_webhook", method="POST", url="http://localhost/api/o365/webhook", headers=headers, body=body
        )
        if resp.status_code >= 400:
            refused += 1
    return refused


def _forge(w: LocalWorld, out: RunResult, x: dict[str, Any], y: dict[str, Any]) -> None:
    """Queue forged content references before the poller lists ``x``: its id with ``y``'s URI, and its id
    with the tenant's subscription list (which carries the webhook AuthID). Both must be parked, and ``x``
    still processed when the poller lists it (the old code marked it done with ``y``'s records)."""
    from shared.messages import ContentRef
    from shared.platform.bus import OutboundMessage

    listing = y["contentUri"].split("/audit/")[0] + "/subscriptions/list"
    refs = [
        ContentRef(
            tenant_id=x["tenantId"],
            content_type=x["contentType"],
            content_id=x["contentId"],
            content_uri=uri,
            content_created=x["contentCreated"],
            content_expiration=x["contentExpiration"],
            source="webhook",
        )
        for uri in (y["contentUri"], listing)
    ]
    w.bus.send(
        names.QUEUE_CONTENT,
        [OutboundMessage(r.encode(), message_id=f"forged:{n}:{x['contentId']}"[:128]) for n, r in enumerate(refs)],
    )
    out.forged_sent += len(refs)
    out.forged_targets.setdefault(x["contentId"], set()).update(x["recordIds"])


PLANTED = ("Pl4ntedSig0xC0FFEE", "fake-token:planted-bearer", "Pl4ntedAuthId9")


def _hardening_probes(w: LocalWorld, wl: Workload, out: RunResult, rng: random.Random) -> None:
    """The #25 probes that are not part of the pipeline's run (their outcomes go to ``out.hardening``)."""
    out.secrets.extend(PLANTED)
    _plant_secrets_in_logs()
    out.hardening["hostile keys stored and read back"] = _hostile_keys(w, wl)
    out.hardening["stale checkpoint writer refused"] = _stale_checkpoint(w, wl)
    out.hardening["admin API fuzz: no 500, no wide range"] = _admin_fuzz(w, rng)
    parked = {str(r.get("message_id")) for r in w.storage.table(names.TABLE_DEADLETTERS).list_entities()}
    out.forged_parked = sum(1 for m in parked if m.startswith("forged:"))


def _plant_secrets_in_logs() -> None:
    sas = f"https://prod-1.westeurope.logic.azure.com/workflows/x/invoke?sp=%2F&sv=1.0&sig={PLANTED[0]}"
    for name in (
        "httpcore.http11",
        "azure.core.pipeline.policies.http_logging_policy",
        "msal.application",
        "itdr.ingest",
        "shared.alerts.delivery",
        "urllib3.connectionpool",
        "some.library",
    ):
        log = logging.getLogger(name)
        log.warning("request %s Authorization: Bearer %s", sas, PLANTED[1])
        log.warning('listing {"webhook": {"authId": "%s"}}', PLANTED[2])
        try:
            raise RuntimeError(f"POST {sas} failed; Authorization: Bearer {PLANTED[1]}")
        except RuntimeError:
            log.exception("delivery failed")


def _hostile_keys(w: LocalWorld, wl: Workload) -> tuple[bool, str]:
    from shared.detection.table_state import TableStateStore

    tenant = wl.tenants[0].tenant_id
    keys = ["c1\u0085\u009fuser@contoso.com", "k" * 1000, "\u00e9" * 700, "a/b\\c#d?e%f\u0000"]
    try:
        store = TableStateStore(w.storage.table(names.TABLE_USER_STATE + "probe"))
        states = store.load(tenant, keys)
        for n, key in enumerate(keys):
            states[key].section("probe")["n"] = n
        store.save(tenant, states)
        back = TableStateStore(w.storage.table(names.TABLE_USER_STATE + "probe")).load(tenant, keys)
        stored = all(back[k].data == {"probe": {"n": n}} for n, k in enumerate(keys))
        pairs = [(keys[0], "c1\u0085upn@contoso.com"), ("o" * 1000, ("u" * 990) + "@contoso.com")]
        w.svc.identity_resolver.learn(tenant, pairs)
        from shared.enrich.identity import IdentityResolver

        fresh = IdentityResolver(w.storage, lambda t: None, clock=w.svc.clock)  # the world's time: answers expire
        resolved = fresh.resolve(tenant, [o for o, _ in pairs]).resolved == dict(pairs)
    except Exception as exc:  # a failure here is the finding
        return False, f"{type(exc).__name__}: {str(exc)[:120]}"
    return stored and resolved, f"{len(keys)} state keys, {len(pairs)} identity pairs"


def _stale_checkpoint(w: LocalWorld, wl: Workload) -> tuple[bool, str]:
    from dataclasses import replace

    from shared.ingest.checkpoints import CheckpointStore
    from shared.platform.errors import ConcurrencyError

    store = CheckpointStore(w.storage)
    tenant, ct = wl.tenants[0].tenant_id, "Audit.AzureActiveDirectory"
    stale = store.get_checkpoint(tenant, ct)
    current = store.save_progress(replace(stale, last_poll_at=stale.last_poll_at))  # another poller's write
    try:
        store.save_progress(replace(stale, watermark=None, cursor=None))
    except ConcurrencyError:
        kept = store.get_checkpoint(tenant, ct).watermark == current.watermark
        return kept, "the stale write raised ConcurrencyError; the watermark stayed"
    return False, "a stale checkpoint write went through"


def _admin_fuzz(w: LocalWorld, rng: random.Random) -> tuple[bool, str]:
    """Oversized fields and wide trusted ranges against the admin API's request validation and onboarding checks."""
    from shared.ingest.onboarding import OnboardRequest, _validated_detection
    from shared.platform.errors import ConfigurationError

    tenant = "0f0f0f0f-0000-4000-8000-000000000fff"
    refused = accepted = 0
    bad: list[str] = []
    for _ in range(200):
        size = rng.choice([0, 1, 255, 256, 257, 1000, 40_000])
        prefix4, prefix6 = rng.randint(0, 32), rng.randint(0, 128)
        body = {
            "tenant_id": tenant,
            "name": "n" * size,
            "partner_id": rng.choice(["p1", "p" * 65, "../x", "ok-partner"]),
            "detection": {
                "trusted_ip_ranges": [f"10.0.0.0/{prefix4}" if prefix4 else "0.0.0.0/0", f"2001:db8::/{prefix6}"]
            },
        }
        try:
            request = OnboardRequest.model_validate_json(orjson.dumps(body))
            _validated_detection(tenant, request.detection or {})
        except (ValueError, ConfigurationError):
            refused += 1
            continue
        accepted += 1
        if size > 256 or prefix4 < 8 or prefix6 < 32:
            bad.append(f"accepted name={size} v4=/{prefix4} v6=/{prefix6}")
    return not bad, f"{refused} refused, {accepted} accepted, {len(bad)} wrongly accepted"


def _record_checkpoints(w: LocalWorld, out: RunResult) -> None:
    for row in w.storage.table(names.TABLE_CHECKPOINTS).list_entities():
        key = (str(row["PartitionKey"]), str(row["RowKey"]))
        wm = str(row.get("watermark") or "")
        hist = out.checkpoint_history.setdefault(key, [])
        if wm and (not hist or hist[-1] != wm):
            hist.append(wm)


def _collect(w: LocalWorld, wl: Workload, out: RunResult) -> None:

    svc = w.svc
    for t in wl.tenants:
        for s in svc.alert_store.list_alerts(t.tenant_id):
            out.alerts[s.alert.alert_id] = s.alert
        out.incidents.extend(svc.incident_book.list_incidents(t.tenant_id))
    out.served_ids = set(w.api.served_record_ids)
    for row in w.storage.table(names.TABLE_QUARANTINE).list_entities():
        if row.get("record_id"):
            out.quarantined_ids.add(str(row["record_id"]))
        if int(row.get("index", 0)) < 0 and row.get("reason"):
            out.quarantined_content.add(str(row["content_id"]))
    out.deliveries = list(w.partner.effective_deliveries)
    out.graph_effects = list(w.graph.state.effects())
    out.state_rows = [
        (str(r["PartitionKey"]), str(r["RowKey"])) for r in w.storage.table(names.TABLE_USER_STATE).list_entities()
    ]
    from shared.ingest.deadletters import list_deadletters

    out.dead_letters = list_deadletters(svc)


def _replay_dead_letters(w: LocalWorld, out: RunResult) -> int:
    """`itdr deadletters replay`: every dead-letter goes back to its queue; the run settles again."""
    from shared.ingest.deadletters import list_deadletters, replay_deadletters

    replayed = replay_deadletters(w.svc)
    w.drain()
    out.after_replay = list_deadletters(w.svc)
    return len(replayed)


def check(ref: RunResult, got: RunResult, wl: Workload) -> list[tuple[str, bool, str]]:
    results: list[tuple[str, bool, str]] = []
    lost = got.served_ids - got.detected_ids - got.quarantined_ids
    results.append(
        ("1. every served record processed or quarantined", not lost, f"{len(got.served_ids)} served, {len(lost)} lost")
    )

    delivery_keys = Counter(p.idempotency_key for p in got.deliveries)
    doubled = [k for k, n in delivery_keys.items() if n > 1]
    effects = Counter(
        (e.kind, e.tenant_id, e.target)
        for e in got.graph_effects
        if e.kind in ("user.disabled", "rule.deleted", "grant.deleted", "sp.disabled")
    )
    double_effects = [k for k, n in effects.items() if n > 1]
    inc_ids = Counter((i.tenant_id, i.incident_id) for i in got.incidents)
    results.append(
        (
            "2. nothing happened twice in effect",
            not doubled and not double_effects and all(n == 1 for n in inc_ids.values()),
            f"{len(got.alerts)} alerts, {len(inc_ids)} incidents, {len(delivery_keys)} deliveries, {sum(effects.values())} Graph effects",
        )
    )

    backwards = [k for k, h in got.checkpoint_history.items() if h != sorted(h)]
    results.append(
        (
            "3. checkpoints only moved forward",
            not backwards,
            f"{len(got.checkpoint_history)} feeds, {sum(len(h) for h in got.checkpoint_history.values())} moves",
        )
    )

    def attack_alerts(r: RunResult) -> set[str]:
        users = {(a.tenant_id, a.user) for a in wl.attacks}
        return {
            a.alert_id
            for a in r.alerts.values()
            if (a.tenant_id, a.user) in users and a.category.value != "integration_health"
        }

    missing = attack_alerts(ref) - attack_alerts(got)
    cross = [
        (t, k) for t, k in got.state_rows if t not in got.tenants or (k not in got.tenants[t] and not k.startswith("_"))
    ]
    results.append(
        (
            "4. every attack alerted as without faults; tenants isolated",
            bool(attack_alerts(ref)) and not missing and not cross,
            f"{len(attack_alerts(ref))} attack alerts in the reference, {len(missing)} missing, {len(cross)} foreign state rows",
        )
    )
    no_reason = [
        d for d in got.dead_letters if not (getattr(d, "reason", None) or (isinstance(d, dict) and d.get("reason")))
    ]
    results.append(
        (
            "5. every dead-letter has a reason and replays",
            not no_reason,
            f"{len(got.dead_letters)} dead-letters, {got.replayed} replayed",
        )
    )

    leaks = [
        line for line in got.log_lines if any(m in line for m in SECRET_MARKERS) or any(s in line for s in got.secrets)
    ]
    results.append(
        (
            "6. spoofs refused; no secret in logs",
            got.spoofs_refused == got.spoofs_sent and not leaks,
            f"{got.spoofs_refused}/{got.spoofs_sent} spoofs refused, {len(got.log_lines)} log lines, {len(leaks)} with secrets",
        )
    )
    missed = {
        rid
        for cid, ids in got.forged_targets.items()
        if cid not in got.quarantined_content  # a truncated or invalid blob (an API fault) is quarantined whole
        for rid in ids - got.detected_ids - got.quarantined_ids
    }
    probes = [(name, ok, detail) for name, (ok, detail) in sorted(got.hardening.items())]
    results.append(
        (
            "7. hardening: forged refs parked, their blobs processed; probes",
            got.forged_parked == got.forged_sent and not missed and all(ok for _, ok, _ in probes),
            f"{got.forged_parked}/{got.forged_sent} forged refs parked, {len(missed)} of {len(got.forged_targets)}"
            " named records missed; " + "; ".join(f"{n}: {'ok' if ok else 'FAIL'} ({d})" for n, ok, d in probes),
        )
    )
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.chaos")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--smoke", action="store_true", help="a shorter workload for make test")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randint(1, 99999)
    print(f"chaos seed: {seed}  (reproduce: make chaos SEED={seed})")
    started = time.perf_counter()
    wl = generate(seed, days=3 if args.smoke else 5, users_per_tenant=4 if args.smoke else 10)
    print(f"  workload: {len(wl.tenants)} tenants, {wl.records} records, {len(wl.attacks)} attacks")
    ref = run_world(wl, seed=seed, faults=False, smoke=args.smoke)
    print(f"  reference run: {len(ref.alerts)} alerts, {len(ref.detected_ids)} records detected")
    got = run_world(wl, seed=seed, faults=True, smoke=args.smoke)
    print(f"  faulty run: crashes {dict(got.crashes)}; API faults {got.api_faults}")
    ok = True
    for name, passed, detail in check(ref, got, wl):
        ok &= passed
        print(f"  [{'PASS' if passed else 'FAIL'}] {name}: {detail}")
    print(
        f"  {'all invariants hold' if ok else 'INVARIANTS FAILED'} in {time.perf_counter() - started:.0f} s (seed {seed})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
