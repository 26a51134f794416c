"""`make demo`: the whole product on the embedded local setup, as a partner would see it.

A deterministic workload (three tenants, five days of benign activity, a business-email-
compromise chain, the same attacker reaching a second tenant) is published day by day by the
Management Activity API emulator. The registered functions of ``function_app.py`` do the rest
over the in-process bus, with Table and Blob storage in Azurite: onboarding, polling, content
download and archive, enrichment, detection, incidents and triage, delivery to the partner's
Logic App endpoint, and remediation through the Graph emulator. Time is simulated, so the five
days take seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from shared.alert_model import iso
from shared.app import IntelSources
from shared.demo.workload import ATTACKER_IP, ATTACKER_RANGE, ROGUE_APP_ID, Workload, generate, sp_id_for
from shared.enrich.factory import IntelFeeds
from shared.runtime.world import LocalWorld

DEMO_SILENCE = {
    "Audit.AzureActiveDirectory": timedelta(hours=36),
    "Audit.Exchange": timedelta(hours=36),
    "Audit.SharePoint": timedelta(hours=36),
    "Audit.General": timedelta(days=8),
}


OUTAGE_S = 3 * 3600
"""How long the partner's Logic App is down in the demo, from the attack on."""


class WarningTally(logging.Handler):
    """The app's warnings and errors (Application Insights traces when deployed), counted for the report.

    Without a handler, Python prints them bare to stderr, in the middle of the progress bar.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[tuple[str, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.levelname, record.getMessage())] += 1

    def __enter__(self) -> WarningTally:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)


def progress(done: int, total: int, label: str) -> None:
    """A bar redrawn in place on a terminal; into a log or a pipe (CI), only the finished bar."""
    interactive = sys.stdout.isatty()
    if done < total and not interactive:
        return
    width = 36
    filled = int(width * done / max(total, 1))
    start = "\r" if interactive else ""
    end = "\n" if done >= total else ""
    sys.stdout.write(f"{start}  {label:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
    sys.stdout.flush()


def write_feeds(tmp: Path) -> IntelFeeds:
    """The demo's feeds: a VPN exit list naming the attacker's range, and a RogueApps list."""
    vpn = tmp / "vpn-exits.txt"
    vpn.write_text(f"# demo feed: the attacker's VPN exit range\n{ATTACKER_RANGE}\n")
    rogue = tmp / "rogueapps.json"
    rogue.write_bytes(
        orjson.dumps(
            [
                {
                    "appId": ROGUE_APP_ID,
                    "appDisplayName": "eM Client",
                    "appPublisherName": "eM Client s.r.o.",
                    "tags": ["BEC", "email"],
                    "permissions": [
                        {"resource": "Microsoft Graph", "permission": "IMAP.AccessAsUser.All", "type": "Delegated"}
                    ],
                }
            ]
        )
    )
    return IntelFeeds(vpn_feeds=(str(vpn),), rogue_app_feeds=(str(rogue),))


def seed_graph(world: LocalWorld, wl: Workload) -> None:
    """The tenants as Graph knows them at onboarding: users and their everyday rules."""
    g = world.graph
    for t in wl.tenants:
        g.add_tenant(t.tenant_id)
        for u in t.users:
            g.add_user(
                t.tenant_id,
                user_principal_name=u.upn,
                id=u.object_id,
                display_name=u.display_name,
                usage_location=t.country,
            )
    victim_tenant = wl.tenants[0]
    victim = victim_tenant.users[0]
    g.add_inbox_rule(
        victim_tenant.tenant_id,
        victim.object_id,
        display_name="Newsletters",
        actions={"moveToFolder": "AAMkNewsletters", "stopProcessingRules": False},
    )


def plant_attack(world: LocalWorld, wl: Workload) -> None:
    """What the attacker leaves in the victim's tenant, visible through Graph from the attack on."""
    g = world.graph
    victim_tenant = wl.tenants[0]
    victim = victim_tenant.users[0]
    g.add_inbox_rule(
        victim_tenant.tenant_id,
        victim.object_id,
        display_name=".",
        conditions={"bodyOrSubjectContains": ["invoice", "payment", "wire"]},
        actions={
            "forwardTo": [{"emailAddress": {"address": f"{victim.upn.split('@')[0]}.finance@gmail.com"}}],
            "moveToFolder": "AAMkRssFeeds",
            "markAsRead": True,
            "stopProcessingRules": True,
        },
    )
    sp = sp_id_for(wl, victim_tenant.tenant_id)
    g.add_service_principal(victim_tenant.tenant_id, app_id=ROGUE_APP_ID, display_name="eM Client", id=sp)
    g.add_permission_grant(
        victim_tenant.tenant_id,
        client_id=sp,
        resource_id="graph-sp",
        scope="EWS.AccessAsUser.All IMAP.AccessAsUser.All Mail.ReadWrite offline_access",
        consent_type="Principal",
        principal_id=victim.object_id,
    )


def run(seed: int, out_dir: Path) -> int:
    started = time.perf_counter()
    wl = generate(seed)
    print(
        f"m365-itdr demo (seed {seed}): {len(wl.tenants)} tenants, {wl.records} records in {len(wl.blobs)} content blobs"
    )
    with (
        tempfile.TemporaryDirectory(prefix="itdr-demo-") as tmp,
        # the demo's users work office hours and no tenant uses Teams (Audit.General): widen the silences
        LocalWorld(
            wl.start,
            seed=seed,
            namespace="demo",
            intel=IntelSources(feeds=write_feeds(Path(tmp))),
            feed_silence=DEMO_SILENCE,
        ) as world,
        WarningTally() as logged,
    ):
        svc = world.svc
        seed_graph(world, wl)
        print(
            "\nOnboarding through consent links (the admin accepts; the callback registers the tenant, starts its"
            " subscriptions, reads home countries and protected identities; the demo runs without a webhook):"
        )
        consented: dict[str, float] = {}
        for t in wl.tenants:
            began = time.perf_counter()
            outcome, status = consent_and_onboard(svc, t.tenant_id, t.name, t.config())
            consented[t.tenant_id] = began
            print(f"  {t.name:10} {t.tenant_id}  {outcome} in {time.perf_counter() - began:.2f} s; {status}")
            _set_policies(world, t.tenant_id)
        lived: dict[str, float] = {}
        end = max(b.created for b in wl.blobs) + timedelta(hours=1)
        hours = int((end - wl.start).total_seconds() // 3600) + 1
        pending = sorted(wl.blobs, key=lambda b: b.created)
        planted = False
        outage = False
        print("\nFive days of audit log through the emulator, the poller and the content function:")
        for h in range(hours):
            world.clock.set(wl.start + timedelta(hours=h))
            if not planted and wl.attack_time is not None and world.clock.datetime() >= wl.attack_time:
                plant_attack(world, wl)
                planted = True
            while pending and pending[0].created <= world.clock.datetime():
                b = pending.pop(0)
                if not outage and any(ATTACKER_IP in str(r) for r in b.records):
                    # the partner's Logic App goes down as the attack reaches the feed: deliveries wait, none is lost
                    world.partner.set_down(until=world.clock() + OUTAGE_S)
                    outage = True
                world.api.add_content(b.tenant_id, b.content_type, list(b.records), created=b.created, notify=False)
            world.tick("poll_content")
            world.drain()
            for d in world.partner.effective_deliveries:
                body = d.json()
                if body.get("kind") == "proof_of_life" and body.get("tenant_id") not in lived:
                    lived[str(body["tenant_id"])] = time.perf_counter()
            if h % 12 == 0:
                world.tick("feed_health")
            progress(h + 1, hours, "simulated hours")
        world.drain()
        report = collect(world, wl)
        report["logged"] = logged.counts
        report["onboarding_s"] = {t: lived[t] - consented[t] for t in consented if t in lived}
    print_report(report, wl)
    write_html(out_dir, wl, report)
    print(f"\n  finished in {time.perf_counter() - started:.1f} s")
    missed = [
        a for a in wl.attacks if not any(al.tenant_id == a.tenant_id and al.user == a.user for al in report["alerts"])
    ]
    if missed:
        print(f"  MISSED ATTACKS: {[a.description for a in missed]}")
        return 1
    return 0


def consent_and_onboard(svc: Any, tenant_id: str, name: str, detection: Any) -> tuple[str, str]:
    """A consent link for the tenant, accepted by its admin: Entra's redirect to the registered consent_callback
    (``admin_consent=True&tenant=...&state=...``). (outcome, feed states)."""
    from urllib.parse import parse_qs, urlsplit

    import azure.functions as func

    from shared.ingest.consent import issue_consent_link
    from shared.runtime.local import call_function

    link = issue_consent_link(svc, partner_id="demo-msp", tenant=tenant_id, name=name, detection=detection)
    state = parse_qs(urlsplit(link.url).query)["state"][0]
    req = func.HttpRequest(
        method="GET",
        url=svc.settings.consent_redirect_url or "",
        headers={},
        params={"admin_consent": "True", "tenant": tenant_id, "state": state},
        route_params={},
        body=b"",
    )
    resp = call_function("consent_callback", req)
    page = resp.get_body().decode()
    outcome = page.split("<code>", 1)[1].split("</code>", 1)[0] if "<code>" in page else str(resp.status_code)
    record = svc.tenants.get(tenant_id)
    from shared.ingest.onboarding import tenant_status

    status = tenant_status(svc, tenant_id, live=True) if record is not None else None
    return outcome, _status_line(status) if status is not None else "not registered"


def _status_line(status: Any) -> str:
    """``active; AzureActiveDirectory enabled, Exchange enabled, ...`` from the onboarding result."""
    feeds = ", ".join(f"{f.content_type.split('.')[-1]} {f.subscription}" for f in status.feeds)
    return f"{status.status}; {feeds}" if feeds else str(status.status)


def _set_policies(world: LocalWorld, tenant_id: str) -> None:
    """The demo partner lets high-confidence detections remediate automatically."""
    directory = world.svc.tenants
    rec = directory.get(tenant_id)
    assert rec is not None
    directory.upsert(rec.model_copy(update={"remediation": {"default_mode": "auto"}}))


def collect(world: LocalWorld, wl: Workload) -> dict[str, Any]:
    from shared.remediation.ledger import TableRemediationLedger

    svc = world.svc
    ledger = TableRemediationLedger(svc.storage)
    stored = [s for t in wl.tenants for s in svc.alert_store.list_alerts(t.tenant_id)]
    return {
        "stored": stored,
        "alerts": [s.alert for s in stored],
        "incidents": [i for t in wl.tenants for i in svc.incident_book.list_incidents(t.tenant_id)],
        "remediations": [e for t in wl.tenants for e in ledger.list_entries(t.tenant_id)],
        "deliveries": [p.json() for p in world.partner.effective_deliveries],
        "posts": len(world.partner.requests),
        "refused_posts": sum(1 for p in world.partner.requests if p.status >= 500),
        "bus": world.bus.stats,
        "invocations": dict(world.runtime.stats.invocations),
        "served": len(world.api.served_record_ids),
        "dead_letters": [(d.queue, d.reason) for d in world.bus.dead_letters()],
        "graph_effects": world.graph.state.effects(),
    }


def print_report(r: dict[str, Any], wl: Workload) -> None:
    from shared.cli.scan import format_table

    names = {t.tenant_id: t.name for t in wl.tenants}
    security = [a for a in r["alerts"] if a.category.value != "integration_health"]
    health = [a for a in r["alerts"] if a.category.value == "integration_health"]
    print("\nAlerts (what the SOC sees):")
    print(format_table(security), end="")
    print(f"\nFeed health ({len(health)} integration alerts):")
    for a in health:
        print(f"  {names.get(a.tenant_id, a.tenant_id):10} {a.summary}")
    print("\nIncidents (the story of one user, severity raised by the combination):")
    for inc in r["incidents"]:
        print(f"  [{inc.severity.value:8}] {names.get(inc.tenant_id)} / {inc.user}: {inc.title}")
        for line in inc.story:
            print(f"      {line}")
    print("\nWhat the partner received (Logic App trigger, one delivery per incident revision):")
    for d in r["deliveries"]:
        rev = f" r{d['revision']}" if d.get("kind") == "incident" else ""
        print(
            f"  {d.get('kind', '?'):16} {names.get(d.get('tenant_id', ''), d.get('tenant_id', ''))}{rev}: "
            f"{d.get('severity', '')} {d.get('title', d.get('summary', ''))}"
        )
        for a in d.get("remediation", []):
            print(f"      {a['action']} {a['target']}: {a['state']}" + (f" ({a['reason']})" if a.get("reason") else ""))
    print(f"  ({r['posts']} POSTs in all, retries included)")
    print(
        f"  the Logic App was down for {OUTAGE_S // 3600} hours as the attack came in: {r['refused_posts']} POSTs refused"
        " with 503; the deliveries were put off, and the latest revision of each incident was posted once it was back"
    )
    print("\nRemediation (through Microsoft Graph, recorded in the ledger):")
    for e in r["remediations"]:
        req = e.request()
        print(f"  {req.action:26} {str(req.target)[:60]:60} -> {e.state}  {e.reason or ''}")
        for step in (e.result or {}).get("manual_steps", []) if isinstance(e.result, dict) else []:
            print(f"      manual step: {step}")
    cats = Counter(a.category.value for a in r["alerts"])
    expected = {(a.tenant_id, a.user) for a in wl.attacks}
    benign = [
        a for a in r["alerts"] if (a.tenant_id, a.user) not in expected and a.category.value != "integration_health"
    ]
    print(f"\n  records served by the API: {r['served']}; alerts by category: {dict(cats)}")
    print(f"  attacks in the workload: {len(wl.attacks)}; alerts on benign users: {len(benign)}")
    print(f"  bus: {r['bus'].sent} messages, {r['bus'].dead_lettered} dead-lettered {r['dead_letters'] or ''}")
    print(f"  function invocations: {r['invocations']}")
    logged = ", ".join(f"{n} x {level.lower()} '{msg}'" for (level, msg), n in sorted(r["logged"].items()))
    print(f"  logged for operations (Application Insights traces when deployed): {logged or 'no warnings'}")
    print(
        f"  attacker address {ATTACKER_IP}: seen in {len({a.tenant_id for a in r['alerts'] if a.ip == ATTACKER_IP})} tenants"
    )
    if r.get("onboarding_s"):
        worst = max(r["onboarding_s"].values())
        print(
            f"  onboarding, consent callback to first content processed and proof of life sent: at most {worst:.1f} s"
            " per tenant (wall clock; simulated time skips Microsoft's wait for the first blob); published: < 90 s"
        )


def _signins_of_attacked_users(wl: Workload) -> list[dict[str, Any]]:
    """Sign-ins of the users in incidents, located with the embedded IP data, for the report's map."""
    from shared.enrich.factory import build_ip_intel

    intel = build_ip_intel(IntelFeeds())
    users = {(a.tenant_id, a.user) for a in wl.attacks}
    out: list[dict[str, Any]] = []
    for blob in wl.blobs:
        for rec in blob.records:
            if rec.get("Operation") != "UserLoggedIn" or (blob.tenant_id, rec.get("UserId")) not in users:
                continue
            info = intel.lookup(rec.get("ClientIP"))
            if info is None or info.latitude is None:
                continue
            out.append(
                {
                    "tenant_id": blob.tenant_id,
                    "user": rec["UserId"],
                    "time": rec["CreationTime"] + "Z",
                    "ip": rec["ClientIP"],
                    "lat": info.latitude,
                    "lon": info.longitude,
                    "country": info.country,
                }
            )
    return out


def write_html(out_dir: Path, wl: Workload, r: dict[str, Any]) -> None:
    from shared.reports.html import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_report(
        ", ".join(t.name for t in wl.tenants),
        f"{iso(wl.start.timestamp())[:10]} + 5 days",
        incidents=r["incidents"],
        alerts=[s.to_dict() for s in r["stored"]],
        signins=_signins_of_attacked_users(wl),
        remediations=[
            {
                "action": e.request().action,
                "target": ", ".join(f"{k}={v}" for k, v in e.request().target.items()),
                "state": str(e.state),
                "summary": (e.result or {}).get("summary", "") if isinstance(e.result, dict) else "",
                "manual_steps": (e.result or {}).get("manual_steps", []) if isinstance(e.result, dict) else [],
            }
            for e in r["remediations"]
        ],
    )
    path = out_dir / "demo-report.html"
    path.write_text(html)
    print(f"  HTML report: {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.demo")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="out")
    args = p.parse_args(argv)
    return run(args.seed, Path(args.out))


if __name__ == "__main__":
    raise SystemExit(main())
