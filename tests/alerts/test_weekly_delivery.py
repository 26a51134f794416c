"""The weekly report delivered like alerts (issue 7.7): stored, then POSTed once per tenant and week.

The ``weekly_report`` timer body on Azurite, with the Graph emulator for the inbox-rule scan and the
partner's Logic App emulator validating every body against the published JSON Schema.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import pytest

from shared.alert_model import Alert, Category, Severity, alert_id_for
from shared.alerts.delivery import STATUS_DELIVERED, STATUS_FAILED, STATUS_REJECTED, TableDeliveryLedger
from shared.alerts.incidents import InMemoryIncidentBook
from shared.alerts.payload import build_weekly_report_payload, load_schema, product_version, weekly_report_id_for
from shared.app import PartnerTransport, Services
from shared.emulators.graph import GraphEmulator
from shared.emulators.partner import PartnerEndpoint
from shared.functions.weekly_report import run as weekly_reports
from shared.platform import names
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.reports.credentials import build_credentials_report
from shared.runtime.world import emulator_credentials
from shared.tenants import TenantRecord

CONTOSO = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
FABRIKAM = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
MONDAY = datetime(2025, 11, 17, tzinfo=UTC)  # ISO week 2025-W47
NOW = MONDAY + timedelta(days=9, hours=6)  # Wednesday of the next week: the report covers W47
ALICE = "alice@contoso.com"
ALICE_ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"


def mfa_alert(tenant: str, user: str, user_key: str | None, at: datetime, *, ip: str, risky: bool) -> Alert:
    ts = at.timestamp()
    return Alert(
        alert_id=alert_id_for(tenant, "signin_mfa_failure", f"{user}|{ip}", f"rec-{ip}-{int(ts)}"),
        detector="signin_mfa_failure",
        title="Correct password, MFA failed",
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH if risky else Severity.LOW,
        tenant_id=tenant,
        user=user,
        user_key=user_key,
        first_seen=ts,
        last_seen=ts + 60,
        evidence_record_ids=[f"rec-{ip}-{int(ts)}"],
        mitre=("T1110",),
        summary=f"{user}: correct password from {ip}, MFA failed",
        dedup_key=f"{user}|{ip}",
        ip=ip,
        context={
            "ip": ip,
            "country": "NL" if risky else "DE",
            "city": "Amsterdam" if risky else "Berlin",
            "asn": 9009 if risky else 3320,
            "anonymizer": "vpn" if risky else None,
            "familiar_location": not risky,
            "reasons": ["anonymizer"] if risky else [],
            "error_number": 500121,
        },
        runbook="Reset the password.",
    )


def takeover(tenant: str, user: str, at: datetime) -> Alert:
    ts = at.timestamp()
    return Alert(
        alert_id=alert_id_for(tenant, "signin_anonymizer", f"{user}|vpn", f"rec-anon-{int(ts)}"),
        detector="signin_anonymizer",
        title="Sign-in through an anonymiser",
        category=Category.UNWANTED_LOGIN,
        severity=Severity.HIGH,
        tenant_id=tenant,
        user=user,
        user_key=None,
        first_seen=ts,
        last_seen=ts + 60,
        evidence_record_ids=[f"rec-anon-{int(ts)}"],
        mitre=("T1078",),
        summary=f"{user} signed in through a VPN",
        dedup_key=f"{user}|vpn",
        ip="146.70.133.30",
        context={},
        runbook="Check the sign-ins.",
    )


@dataclass
class Rig:
    svc: Services
    partner: PartnerEndpoint

    def bodies(self) -> list[dict[str, Any]]:
        return [p.json() for p in self.partner.effective_deliveries]

    def ledger(self, tenant: str, report_id: str) -> list[tuple[str, int, str]]:
        rows = TableDeliveryLedger.from_storage(self.svc.storage).list_deliveries(tenant, report_id)
        return [(r.status, r.http_status, r.reason) for r in rows]

    def blobs(self) -> list[str]:
        container = self.svc.storage.container(names.CONTAINER_REPORTS)
        return sorted(b.name for b in container.list_blobs())


def make_services(storage: StorageClients, graph: GraphEmulator, endpoint: str | None) -> Services:
    settings = {"ITDR_GRAPH_BASE_URL": graph.base_url, "ITDR_PARTNER_ALLOWED_HOSTS": "127.0.0.1"}
    settings.update({"ITDR_PARTNER_ENDPOINT": endpoint} if endpoint else {})
    return Services(
        Settings(**settings),
        storage=storage,
        bus=InProcessBus(default_queue_options()),
        credentials=emulator_credentials(time.time),
        clock=lambda: NOW.timestamp(),
        sleep=lambda s: None,
        rng=random.Random(2),
        partner=PartnerTransport(allow_http=True),
    )


def seed(svc: Services) -> dict[str, Any]:
    directory = svc.tenants
    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam")):
        directory.upsert(TenantRecord(tenant_id=tid, name=name, status="active"))
    alerts = [
        mfa_alert(CONTOSO, ALICE, ALICE_ID, MONDAY + timedelta(days=1, hours=9), ip="198.51.100.20", risky=False),
        mfa_alert(CONTOSO, ALICE, ALICE_ID, MONDAY + timedelta(days=2, hours=9), ip="146.70.133.30", risky=True),
        mfa_alert(CONTOSO, ALICE, ALICE_ID, MONDAY - timedelta(days=3), ip="198.51.100.20", risky=False),  # W46
    ]
    inc_alerts = [
        takeover(CONTOSO, "megan@contoso.com", MONDAY + timedelta(days=3)),
        takeover(FABRIKAM, "adele@fabrikam.example", MONDAY + timedelta(days=4)),
        takeover(FABRIKAM, "old@fabrikam.example", MONDAY - timedelta(days=6)),  # W46: not in the report
        takeover(FABRIKAM, "late@fabrikam.example", MONDAY + timedelta(days=8)),  # W48: not in the report
    ]
    svc.alert_store.upsert_alerts([*alerts, *inc_alerts])
    incidents = svc.incident_book.add_alerts([*alerts, *inc_alerts])
    return {"alerts": alerts, "incidents": {(i.tenant_id, i.user): i for i in incidents}}


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(seed=9) as emulator:
        emulator.add_tenant(CONTOSO)
        emulator.add_tenant(FABRIKAM)
        yield emulator


@pytest.fixture
def rig(storage: StorageClients, graph: GraphEmulator) -> Iterator[Rig]:
    with PartnerEndpoint(schema=load_schema()) as partner:
        yield Rig(make_services(storage, graph, partner.url), partner)


def test_one_effective_delivery_per_tenant_and_week_even_when_the_timer_runs_twice(rig: Rig) -> None:
    seeded = seed(rig.svc)
    runs = [weekly_reports(rig.svc, now=NOW), weekly_reports(rig.svc, now=NOW + timedelta(days=2))]

    base = {t: f"weekly/{t}/2025-11-24" for t in (CONTOSO, FABRIKAM)}
    assert [
        sorted((s["tenant_id"], s["users"], s["incidents"], s["blob"], s["delivery"]) for s in r) for r in runs
    ] == [
        sorted([(CONTOSO, 1, 2, base[CONTOSO], "delivered"), (FABRIKAM, 0, 1, base[FABRIKAM], "delivered")]),
        sorted(
            [
                (CONTOSO, 1, 2, base[CONTOSO], "already_delivered"),
                (FABRIKAM, 0, 1, base[FABRIKAM], "already_delivered"),
            ]
        ),
    ]
    assert len(rig.partner.requests) == 2  # the second run posted nothing
    assert rig.blobs() == sorted(f"{b}-credentials.{ext}" for b in base.values() for ext in ("json", "html"))

    bodies = {b["tenant_id"]: b for b in rig.bodies()}
    validator = jsonschema.Draft202012Validator(load_schema())
    for body in bodies.values():
        validator.validate(body)
    contoso = bodies[CONTOSO]
    megan = seeded["incidents"][(CONTOSO, "megan@contoso.com")]
    alice_inc = seeded["incidents"][(CONTOSO, ALICE)]
    report_id = weekly_report_id_for(CONTOSO, MONDAY)
    assert {k: v for k, v in contoso.items() if k not in ("generated_at", "credentials", "incidents")} == {
        "schema_version": "1.1",
        "kind": "weekly_report",
        "idempotency_key": f"{report_id}-r1",
        "incident_id": report_id,
        "revision": 1,
        "tenant_id": CONTOSO,
        "title": f"m365-itdr weekly report 2025-W47 for tenant {CONTOSO}",
        "week": "2025-W47",
        "period_start": "2025-11-17T00:00:00Z",
        "period_end": "2025-11-24T00:00:00Z",
        "incident_count": 2,
        "product": {"name": "m365-itdr", "version": product_version()},
    }
    (alice,) = contoso["credentials"]["users"]
    assert (contoso["credentials"]["user_count"], contoso["credentials"]["attempts"]) == (1, 2)
    assert {k: v for k, v in alice.items() if k != "sources"} == {
        "user": ALICE,
        "user_key": ALICE_ID,
        "severity": "high",
        "attempts": 2,
        "first_seen": "2025-11-18T09:00:00Z",
        "last_seen": "2025-11-19T09:01:00Z",
        "mfa_fatigue": False,
        "risky": True,
        "reasons": ["anonymizer"],
        "alert_ids": [a.alert_id for a in seeded["alerts"][:2]],
    }
    assert [(s["ip"], s["anonymizer"], s["familiar_location"], s["attempts"]) for s in alice["sources"]] == [
        ("146.70.133.30", "vpn", False, 1),
        ("198.51.100.20", None, True, 1),
    ]
    assert contoso["incidents"] == [
        {
            "incident_id": inc.incident_id,
            "title": inc.title,
            "severity": inc.severity.value,
            "status": "new",
            "user": inc.user,
            "first_seen": inc.to_dict()["first_seen"],
            "last_seen": inc.to_dict()["last_seen"],
            "revision": inc.revision,
        }
        for inc in (megan, alice_inc)
    ]
    fabrikam = bodies[FABRIKAM]
    assert (fabrikam["credentials"], [i["user"] for i in fabrikam["incidents"]]) == (
        {"user_count": 0, "attempts": 0, "users": []},
        ["adele@fabrikam.example"],
    )
    assert fabrikam["idempotency_key"] != contoso["idempotency_key"]
    assert rig.ledger(CONTOSO, report_id) == [(STATUS_DELIVERED, 202, "")]


def test_the_next_week_is_a_new_report(rig: Rig) -> None:
    seed(rig.svc)
    weekly_reports(rig.svc, now=NOW)
    weekly_reports(rig.svc, now=NOW + timedelta(days=7))
    keys = [(b["tenant_id"], b["week"], b["idempotency_key"]) for b in rig.bodies()]
    assert sorted(keys) == sorted(
        (t, week, f"{weekly_report_id_for(t, start)}-r1")
        for t in (CONTOSO, FABRIKAM)
        for week, start in (("2025-W47", MONDAY), ("2025-W48", MONDAY + timedelta(days=7)))
    )
    late = next(b for b in rig.bodies() if b["tenant_id"] == FABRIKAM and b["week"] == "2025-W48")
    assert [i["user"] for i in late["incidents"]] == ["late@fabrikam.example"]


@pytest.mark.parametrize(
    ("status", "delivery", "recorded"),
    [
        pytest.param(503, "failed:service_unavailable", (STATUS_FAILED, 503, "service_unavailable"), id="down"),
        pytest.param(429, "failed:throttled", (STATUS_FAILED, 429, "throttled"), id="throttled"),
        pytest.param(400, "failed:bad_input", (STATUS_REJECTED, 400, "bad_input"), id="rejected"),
    ],
)
def test_a_failed_delivery_is_recorded_and_the_report_stays_stored(
    rig: Rig, status: int, delivery: str, recorded: tuple[str, int, str]
) -> None:
    seed(rig.svc)
    rig.partner.set_down(status=status)
    first = weekly_reports(rig.svc, now=NOW)
    assert [s["delivery"] for s in first] == [delivery, delivery]  # one tenant's failure does not stop the other
    report_id = weekly_report_id_for(CONTOSO, MONDAY)
    assert rig.ledger(CONTOSO, report_id) == [recorded]
    assert f"weekly/{CONTOSO}/2025-11-24-credentials.json" in rig.blobs()
    stored = orjson.loads(
        rig.svc.storage.container(names.CONTAINER_REPORTS)
        .download_blob(f"weekly/{CONTOSO}/2025-11-24-credentials.json")
        .readall()
    )
    assert (stored["tenant_id"], [u["user"] for u in stored["users"]]) == (CONTOSO, [ALICE])
    assert rig.partner.effective_deliveries == []

    rig.partner.set_up()  # the timer runs again in the same week: delivered once, then never again
    again = [weekly_reports(rig.svc, now=NOW), weekly_reports(rig.svc, now=NOW)]
    assert [[s["delivery"] for s in run] for run in again] == [["delivered"] * 2, ["already_delivered"] * 2]
    assert rig.ledger(CONTOSO, report_id) == [(STATUS_DELIVERED, 202, "")]
    assert sorted(b["tenant_id"] for b in rig.bodies()) == sorted([CONTOSO, FABRIKAM])


def test_without_a_partner_endpoint_the_report_is_only_stored(storage: StorageClients, graph: GraphEmulator) -> None:
    svc = make_services(storage, graph, None)
    seed(svc)
    summary = weekly_reports(svc, now=NOW)
    assert sorted((s["tenant_id"], s["delivery"]) for s in summary) == sorted(
        [(CONTOSO, "not_configured"), (FABRIKAM, "not_configured")]
    )
    container = svc.storage.container(names.CONTAINER_REPORTS)
    assert len(list(container.list_blobs())) == 4


def test_a_weekly_report_never_carries_another_tenants_incidents() -> None:
    book = InMemoryIncidentBook(now=lambda: NOW.timestamp())
    (theirs,) = book.add_alerts([takeover(FABRIKAM, "adele@fabrikam.example", MONDAY + timedelta(days=1))])
    report = build_credentials_report([], tenant_id=CONTOSO, start=MONDAY, end=MONDAY + timedelta(days=7))
    with pytest.raises(ValueError, match=FABRIKAM):
        build_weekly_report_payload(report, [theirs])
    assert weekly_report_id_for(CONTOSO, MONDAY) == weekly_report_id_for(CONTOSO, MONDAY + timedelta(days=6))
    assert weekly_report_id_for(CONTOSO, MONDAY) != weekly_report_id_for(FABRIKAM, MONDAY)


def test_an_offboarded_tenant_gets_no_report_and_no_scan(rig: Rig) -> None:
    seed(rig.svc)
    rig.svc.tenants.upsert(TenantRecord(tenant_id=FABRIKAM, name="Fabrikam", status="offboarded"))
    assert [s["tenant_id"] for s in weekly_reports(rig.svc, now=NOW)] == [CONTOSO]
    assert {p.json()["tenant_id"] for p in rig.partner.effective_deliveries} == {CONTOSO}
