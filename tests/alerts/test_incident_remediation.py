"""Remediation outcomes in their incident and in the partner payload (issue 8.5).

The real pipeline pieces on Azurite: ``after_alerts`` opens the incident and plans the actions, the
remediation runner acts through the Graph emulator with the real SyncGraphClient, and the runner's
``on_change`` hook records each outcome in the incident, raises its revision and publishes it to the
partner's Logic App emulator (which validates every body against the published JSON Schema).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from shared.alert_model import Alert, Category, Severity, iso
from shared.alerts.delivery import DeliveryFormat, InMemoryDeliveryLedger, PartnerDeliveryClient
from shared.alerts.incidents import (
    Incident,
    InMemoryIncidentBook,
    RemediationEntry,
    TableIncidentBook,
)
from shared.alerts.ocsf import incident_to_ocsf
from shared.alerts.payload import load_schema
from shared.app import PartnerTransport, Services
from shared.emulators.graph import GraphEmulator
from shared.emulators.partner import PartnerEndpoint
from shared.functions import deliver_alerts, remediate
from shared.functions.deliver_alerts import RETRY_DELAYS_S
from shared.functions.detect_records import after_alerts
from shared.functions.fate import Inbound, run_message
from shared.ingest.deadletters import list_deadletters
from shared.messages import IncidentRef
from shared.platform import faults, names
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.errors import NotFoundError
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.platform.telemetry import telemetry
from shared.remediation.actions import forwarding_cmdlet
from shared.remediation.ledger import LedgerEntry, RemediationState, TableRemediationLedger
from shared.remediation.runner import reject_action
from shared.runtime.world import emulator_credentials
from shared.tenants import TenantRecord
from tests.alerts.conftest import TENANT, Clock, MakeAlert

MEGAN = "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f"
AUTO = {
    # a partner's policy that acts from high on (the defaults act on critical only) and plans below high too
    "default_mode": "auto",
    "auto_min_severity": "high",
    "min_severity": "low",
    "detector_actions": {
        "test_unwanted_login": ["isolate_identity"],
        "test_shadow_workflow": ["clear_mailbox_forwarding"],
    },
}


@dataclass
class World:
    svc: Services
    bus: InProcessBus
    partner: PartnerEndpoint
    graph: GraphEmulator
    clock: Clock
    handled: list[tuple[str, bytes]]
    telemetry_mark: int = 0

    def remediation_metrics(self) -> list[tuple[str, str, float]]:
        """(action, outcome, value) of the ``itdr.remediations`` items this test emitted."""
        mine = telemetry().since(self.telemetry_mark)
        return [(str(d["action"]), str(d["outcome"]), v) for n, v, d in mine if n == "itdr.remediations"]

    def detected(self, alerts: list[Alert]) -> None:
        """What the detect function does with new alerts: store them, then incidents, triage, remediation."""
        self.svc.alert_store.upsert_alerts(alerts)
        after_alerts(self.svc, TENANT, alerts)

    def drain(self) -> None:
        """Deliver and remediate until both queues are empty (alerts first, as the host would interleave)."""
        for _ in range(50):
            moved = False
            for queue, handle in (
                (names.QUEUE_ALERTS, deliver_alerts.handle),
                (names.QUEUE_REMEDIATION, remediate.handle),
            ):
                for m in self.bus.receive(queue, max_messages=10):
                    handle(self.svc, m.body)
                    self.bus.complete(m)
                    self.handled.append((queue, m.body))
                    moved = True
            if not moved:
                return
        raise AssertionError("the queues did not drain")

    def incident(self, alert: Alert) -> Incident:
        found = self.svc.incident_book.find_incident_for_alert(TENANT, alert.alert_id)
        assert found is not None
        return found

    def set_policy(self, policy: dict[str, Any]) -> None:
        """The tenant's own remediation policy (its tenant record), as a partner sets it."""
        self.svc.tenants.upsert(TenantRecord(tenant_id=TENANT, remediation=policy))

    def ledger(self) -> list[LedgerEntry]:
        return TableRemediationLedger(self.svc.storage).list_entries(TENANT)

    def bodies(self) -> list[dict[str, Any]]:
        return [p.json() for p in self.partner.effective_deliveries]


@pytest.fixture
def world(storage: StorageClients, clock: Clock) -> Iterator[World]:
    with GraphEmulator(seed=3) as graph, PartnerEndpoint(schema=load_schema()) as partner:
        graph.add_tenant(TENANT)
        graph.add_user(TENANT, user_principal_name="megan@contoso.com", id=MEGAN)
        bus = InProcessBus(default_queue_options(), clock=clock)
        svc = Services(
            Settings(
                ITDR_PARTNER_ENDPOINT=partner.url,
                ITDR_PARTNER_ALLOWED_HOSTS="127.0.0.1",
                ITDR_GRAPH_BASE_URL=graph.base_url,
            ),
            storage=storage,
            bus=bus,
            credentials=emulator_credentials(clock),
            clock=clock,
            sleep=lambda s: None,
            rng=random.Random(5),
            partner=PartnerTransport(allow_http=True),
            remediation_defaults=AUTO,
        )
        yield World(svc, bus, partner, graph, clock, [], telemetry().items)
        svc.close()


def sign_in(make_alert: MakeAlert, severity: Severity = Severity.HIGH) -> Alert:
    return make_alert(Category.UNWANTED_LOGIN, severity=severity)


def test_a_succeeded_remediation_is_recorded_in_its_incident_and_sent_to_the_partner(
    world: World, make_alert: MakeAlert
) -> None:
    alert = sign_in(make_alert)
    world.detected([alert])
    world.drain()

    (row,) = world.ledger()
    assert row.state is RemediationState.SUCCEEDED
    inc = world.incident(alert)
    assert inc.revision == 2
    assert inc.to_dict()["remediation"] == [
        {
            "idempotency_key": row.key,
            "action": "isolate_identity",
            "target": f"user {MEGAN}",
            "state": "succeeded",
            "updated_at": iso(world.clock()),
            "reason": None,
            "summary": "megan@contoso.com disabled and its sign-in sessions revoked",
            "manual_steps": [],
            "warnings": ["access tokens already issued stay valid until they expire (up to about an hour)"],
            "undo_of": None,
            "revision": 2,
        }
    ]
    first, second = world.bodies()
    validator = jsonschema.Draft202012Validator(load_schema())
    for body in (first, second):
        validator.validate(body)
    assert [(b["idempotency_key"], b["remediation"]) for b in (first, second)] == [
        (f"{inc.incident_id}-r1", []),
        (
            f"{inc.incident_id}-r2",
            [
                {
                    "idempotency_key": row.key,
                    "action": "isolate_identity",
                    "target": f"user {MEGAN}",
                    "state": "succeeded",
                    "reason": None,
                    "summary": "megan@contoso.com disabled and its sign-in sessions revoked",
                    "manual_steps": [],
                    "warnings": ["access tokens already issued stay valid until they expire (up to about an hour)"],
                    "undo_of": None,
                    "updated_at": iso(world.clock()),
                }
            ],
        ),
    ]
    assert world.graph.state.effects() != []  # the account really was disabled through Graph
    assert world.remediation_metrics() == [("isolate_identity", "succeeded", 1)]


@pytest.mark.parametrize("replay", ["remediation_message", "detect_batch", "hook", "all"])
def test_a_replayed_notification_changes_nothing(world: World, make_alert: MakeAlert, replay: str) -> None:
    alert = sign_in(make_alert)
    world.detected([alert])
    world.drain()
    before = world.incident(alert).to_dict()
    posts = len(world.partner.requests)
    (row,) = world.ledger()
    remediation_bodies = [b for q, b in world.handled if q == names.QUEUE_REMEDIATION]

    world.clock.advance(600)
    if replay in ("remediation_message", "all"):
        for body in remediation_bodies:
            remediate.handle(world.svc, body)
    if replay in ("detect_batch", "all"):
        world.detected([alert])
    if replay in ("hook", "all"):
        world.svc.remediation_recorder.record(row)
        world.svc.remediation_recorder.record(row)
    world.drain()

    assert world.incident(alert).to_dict() == before
    assert (len(world.partner.requests), [b["revision"] for b in world.bodies()]) == (posts, [1, 2])
    assert [e.model_dump(exclude={"etag"}) for e in world.ledger()] == [row.model_dump(exclude={"etag"})]
    assert world.remediation_metrics() == [("isolate_identity", "succeeded", 1)]  # replays count nothing more


def test_a_crash_between_the_incident_and_the_message_is_repaired_by_the_redelivery(
    world: World, make_alert: MakeAlert
) -> None:
    alert = sign_in(make_alert)
    world.detected([alert])
    (ref,) = world.bus.receive(names.QUEUE_ALERTS, max_messages=10)  # revision 1, delivered first
    deliver_alerts.handle(world.svc, ref.body)
    world.bus.complete(ref)
    (msg,) = world.bus.receive(names.QUEUE_REMEDIATION, max_messages=10)
    faults.install(faults.CrashInjector(seed=1, rate=1.0, points={"remediation.after_incident"}))
    try:
        with pytest.raises(faults.InjectedCrash):
            remediate.handle(world.svc, msg.body)
    finally:
        faults.install(None)
    assert (world.incident(alert).revision, world.bus.receive(names.QUEUE_ALERTS, max_messages=10)) == (2, [])
    world.bus.abandon(msg)  # the host abandons the message; Service Bus redelivers it
    world.drain()
    assert [(b["revision"], [r["state"] for r in b["remediation"]]) for b in world.bodies()] == [
        (1, []),
        (2, ["succeeded"]),
    ]
    assert world.incident(alert).revision == 2


def test_needs_manual_carries_the_manual_step_to_the_incident_and_both_formats(
    world: World, make_alert: MakeAlert
) -> None:
    rule = make_alert(
        Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        context={"mailbox": "megan@contoso.com", "destinations": ["megan.finance@gmail.example"]},
    )
    world.detected([rule])
    world.drain()

    (row,) = world.ledger()
    step = forwarding_cmdlet("megan@contoso.com")
    inc = world.incident(rule)
    assert (inc.revision, inc.remediation) == (
        2,
        [
            RemediationEntry(
                idempotency_key=row.key,
                action="clear_mailbox_forwarding",
                target="mailbox megan@contoso.com",
                state="needs_manual",
                updated_at=world.clock(),
                reason="graph_cannot_clear_forwarding",
                summary="clear the mailbox forwarding of megan@contoso.com (to megan.finance@gmail.example) in "
                "Exchange Online",
                manual_steps=(step,),
            )
        ],
    )
    last = world.bodies()[-1]
    assert (last["revision"], [(r["state"], r["manual_steps"]) for r in last["remediation"]]) == (
        2,
        [("needs_manual", [step])],
    )
    assert world.remediation_metrics() == [("clear_mailbox_forwarding", "manual", 1)]
    ocsf = incident_to_ocsf(inc)
    assert ocsf["unmapped"]["remediation"] == last["remediation"]
    assert ocsf["remediation"] == {
        "desc": "clear_mailbox_forwarding mailbox megan@contoso.com: needs_manual (graph_cannot_clear_forwarding) - "
        "clear the mailbox forwarding of megan@contoso.com (to megan.finance@gmail.example) in Exchange Online\n"
        f"  manual step: {step}"
    }


def test_awaiting_approval_then_rejected_are_both_published_once(world: World, make_alert: MakeAlert) -> None:
    world.set_policy({**AUTO, "default_mode": "approval"})
    alert = sign_in(make_alert)
    world.detected([alert])
    world.drain()
    (row,) = world.ledger()
    inc = world.incident(alert)
    assert [(r.state, r.revision) for r in inc.remediation] == [("pending_approval", 2)]
    assert inc.remediation[0].summary == (
        f"awaiting approval: itdr remediate approve (or reject) --tenant {TENANT} {row.key} --by NAME"
    )

    world.clock.advance(60)
    for _ in range(2):  # a repeated rejection records nothing new
        rejected = reject_action(
            world.svc.remediation_ledger,
            TENANT,
            row.key,
            by="soc-lead",
            clock=world.svc.now,
            reason="travelling",
            on_change=world.svc.remediation_recorder.record,
        )
        world.drain()
    assert rejected.state is RemediationState.REJECTED
    inc = world.incident(alert)
    assert [(r.state, r.reason, r.summary, r.revision) for r in inc.remediation] == [
        ("rejected", "rejected", "rejected by soc-lead", 3)
    ]
    assert [(b["revision"], [r["state"] for r in b["remediation"]]) for b in world.bodies()] == [
        (2, ["pending_approval"]),
        (3, ["rejected"]),
    ]
    assert world.remediation_metrics() == [("isolate_identity", "rejected", 1)]  # counted once


def test_an_unpublished_incident_records_the_outcome_without_posting(world: World, make_alert: MakeAlert) -> None:
    world.set_policy({**AUTO, "auto_min_severity": "low"})
    alert = sign_in(make_alert, Severity.MEDIUM)  # medium incidents wait for an analyst
    world.detected([alert])
    world.drain()
    inc = world.incident(alert)
    assert ([r.state for r in inc.remediation], inc.revision, world.partner.requests) == (["succeeded"], 2, [])


def test_a_parked_remediation_message_is_counted_as_dead_lettered(world: World) -> None:
    body = b'{"tenant_id": "' + TENANT.encode() + b'", "action": "isolate_identity", "target": "not an object"}'
    run_message(world.svc, Inbound(names.QUEUE_REMEDIATION, body, "bad-1"), remediate.handle)
    odd = b'{"tenant_id": "' + TENANT.encode() + b'", "action": "<script>", "target": {}}'
    run_message(world.svc, Inbound(names.QUEUE_REMEDIATION, odd, "bad-2"), remediate.handle)
    assert world.remediation_metrics() == [("isolate_identity", "dead_lettered", 1), ("unknown", "dead_lettered", 1)]
    assert world.ledger() == []


def test_a_remediation_of_an_unknown_incident_is_ignored(world: World, make_alert: MakeAlert) -> None:
    alert = sign_in(make_alert)
    world.detected([alert])
    world.drain()
    (row,) = world.ledger()
    stray = row.model_copy(update={"incident_id": "inc-000000000000000000000000"})
    assert world.svc.remediation_recorder.record(stray) is None
    with pytest.raises(NotFoundError):
        world.svc.incident_book.get_incident(TENANT, stray.incident_id)


def test_a_remediation_is_delivered_in_ocsf_too(world: World, make_alert: MakeAlert) -> None:
    alert = sign_in(make_alert)
    world.detected([alert])
    world.drain()
    inc = world.incident(alert)
    with httpx.Client() as http, PartnerEndpoint() as ocsf_partner:
        client = PartnerDeliveryClient(
            ocsf_partner.url,
            http=http,
            ledger=InMemoryDeliveryLedger(),
            format=DeliveryFormat.OCSF,
            allowed_hosts=("127.0.0.1",),
            allow_insecure=True,
        )
        assert client.deliver(inc).outcome == "delivered"
        (post,) = ocsf_partner.requests
    body = post.json()
    assert (body["unmapped"]["revision"], [r["state"] for r in body["unmapped"]["remediation"]]) == (2, ["succeeded"])
    assert body["remediation"]["desc"].startswith(f"isolate_identity user {MEGAN}: succeeded - ")


# --------------------------------------------------------------------------- the book, both twins


def _entry(state: str, at: float, *, summary: str = "", key: str = "rm-" + "a" * 40) -> RemediationEntry:
    return RemediationEntry(
        idempotency_key=key,
        action="isolate_identity",
        target=f"user {MEGAN}",
        state=state,
        updated_at=at,
        summary=summary,
    )


@pytest.fixture(params=["memory", "table"])
def book(request: pytest.FixtureRequest, storage: StorageClients, clock: Clock) -> Any:
    if request.param == "memory":
        return InMemoryIncidentBook(now=clock)
    return TableIncidentBook.from_storage(storage, now=clock)


T = 1_764_003_600.0


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([("pending_approval", T)], ([True], ["pending_approval"], 2), id="first-entry"),
        pytest.param(
            [("pending_approval", T), ("pending_approval", T)],
            ([True, False], ["pending_approval"], 2),
            id="same-twice",
        ),
        pytest.param(
            [("pending_approval", T), ("succeeded", T + 5)], ([True, True], ["succeeded"], 3), id="outcome-replaces"
        ),
        pytest.param(
            [("succeeded", T + 5), ("pending_approval", T)], ([True, False], ["succeeded"], 2), id="older-is-ignored"
        ),
        pytest.param(
            [("pending_approval", T), ("succeeded", T)], ([True, True], ["succeeded"], 3), id="final-wins-a-tie"
        ),
        pytest.param(
            [("succeeded", T), ("pending_approval", T)], ([True, False], ["succeeded"], 2), id="open-loses-a-tie"
        ),
    ],
)
def test_record_remediation_raises_the_revision_once_per_state(
    book: Any, make_alert: MakeAlert, steps: list[tuple[str, float]], expected: tuple[list[bool], list[str], int]
) -> None:
    (inc,) = book.add_alerts([make_alert(Category.UNWANTED_LOGIN)])
    changed = [book.record_remediation(TENANT, inc.incident_id, _entry(s, at))[1] for s, at in steps]
    stored = book.get_incident(TENANT, inc.incident_id)
    assert (changed, [r.state for r in stored.remediation], stored.revision) == expected


def test_remediation_survives_later_alerts_and_status_changes(book: Any, make_alert: MakeAlert) -> None:
    (inc,) = book.add_alerts([make_alert(Category.UNWANTED_LOGIN)])
    book.record_remediation(TENANT, inc.incident_id, _entry("succeeded", T, summary="disabled"))
    book.record_remediation(TENANT, inc.incident_id, _entry("needs_manual", T, key="rm-" + "b" * 40))
    (later,) = book.add_alerts([make_alert(Category.SHADOW_WORKFLOW, at=inc.first_seen + 600)])
    book.set_status(TENANT, inc.incident_id, "acknowledged", by="ana")
    stored = book.get_incident(TENANT, inc.incident_id)
    assert ([(r.idempotency_key[:4], r.state, r.revision) for r in stored.remediation], stored.revision) == (
        [("rm-a", "succeeded", 2), ("rm-b", "needs_manual", 3)],
        5,
    )
    assert later.remediation == stored.remediation


def test_record_remediation_bounds_what_it_stores(book: Any, make_alert: MakeAlert) -> None:
    (inc,) = book.add_alerts([make_alert(Category.UNWANTED_LOGIN)])
    huge = RemediationEntry(
        idempotency_key="rm-" + "c" * 40,
        action="remove_inbox_rule",
        target="mailbox megan@contoso.com rule " + "x" * 5000,
        state="needs_manual",
        updated_at=T,
        summary="s" * 5000,
        manual_steps=tuple(f"step {i}" for i in range(30)),
    )
    for i in range(60):
        book.record_remediation(
            TENANT, inc.incident_id, RemediationEntry(f"rm-{i:040d}", "isolate_identity", "u", "skipped", T)
        )
    book.record_remediation(TENANT, inc.incident_id, huge)
    stored = book.get_incident(TENANT, inc.incident_id).remediation
    assert (len(stored), stored[0].idempotency_key, len(stored[-1].summary), len(stored[-1].manual_steps)) == (
        50,
        f"rm-{11:040d}",
        2000,
        20,
    )


def test_record_remediation_of_a_missing_incident_is_not_found(book: Any) -> None:
    with pytest.raises(NotFoundError):
        book.record_remediation(TENANT, "inc-000000000000000000000000", _entry("succeeded", T))


def _deliver_due(world: World) -> int:
    """Run the registered delivery body on every alerts message due now; returns how many ran."""
    n = 0
    for m in world.bus.receive(names.QUEUE_ALERTS, max_messages=50):
        run_message(world.svc, Inbound(names.QUEUE_ALERTS, m.body, m.message_id), deliver_alerts.handle)
        world.bus.complete(m)
        n += 1
    return n


def test_an_unavailable_partner_endpoint_puts_the_delivery_off_and_nothing_is_lost(
    world: World, make_alert: MakeAlert
) -> None:
    world.set_policy({**AUTO, "default_mode": "approval"})
    world.partner.set_down(status=503)
    alert = sign_in(make_alert)
    world.detected([alert])  # revision 1, then 2 (the action awaiting approval): only 2 is posted
    assert _deliver_due(world) == 2  # the client's quick retries fail: revision 2 is put off
    assert (world.bus.pending(names.QUEUE_ALERTS), world.bus.next_visible_at()) == (1, world.clock() + 60)
    assert _deliver_due(world) == 0  # not before its time
    world.partner.set_up()
    world.clock.advance(60)
    (later,) = world.bus.receive(names.QUEUE_ALERTS, max_messages=10)
    inc = world.incident(alert)
    assert orjson.loads(later.body) == {
        "tenant_id": TENANT,
        "incident_id": inc.incident_id,
        "revision": 2,
        "partner_id": None,
        "retry": 1,
    }
    world.bus.abandon(later)
    assert _deliver_due(world) == 1
    assert [(b["incident_id"], b["revision"]) for b in world.bodies()] == [(inc.incident_id, 2)]
    assert list_deadletters(world.svc) == []


def test_a_partner_endpoint_down_for_good_is_parked_after_the_last_retry(world: World, make_alert: MakeAlert) -> None:
    world.set_policy({**AUTO, "default_mode": "approval"})
    world.partner.set_down(status=503)
    world.detected([sign_in(make_alert)])
    ran = 0
    for _ in range(len(RETRY_DELAYS_S) + 2):
        ran += _deliver_due(world)
        world.clock.advance(max(RETRY_DELAYS_S))
    assert ran == 1 + 1 + len(RETRY_DELAYS_S)  # revision 1 (superseded), the first try of 2 and every retry
    (parked,) = list_deadletters(world.svc)
    assert (parked.queue, parked.reason, parked.tenant_id) == (names.QUEUE_ALERTS, "partner_unavailable", TENANT)
    assert world.bodies() == []


def _send_revision(world: World, inc: Incident) -> None:
    """What `itdr alerts dismiss` sends after its verdict changed the incident."""
    world.bus.send(names.QUEUE_ALERTS, [IncidentRef.of(inc).message()])


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.MEDIUM])
def test_a_dismissal_is_posted_only_when_the_partner_has_the_incident(
    world: World, make_alert: MakeAlert, severity: Severity
) -> None:
    world.set_policy({**AUTO, "default_mode": "off"})
    alert = sign_in(make_alert, severity)  # high: published at once; medium: waits for an analyst
    world.detected([alert])
    world.drain()
    delivered = [b["revision"] for b in world.bodies()]
    dismissed = world.svc.incident_book.set_status(
        TENANT, world.incident(alert).incident_id, "dismissed", by="ana", reason="travel"
    )
    _send_revision(world, dismissed)
    world.drain()
    if severity is Severity.HIGH:
        assert delivered == [1]
        assert [(b["revision"], b["status"]) for b in world.bodies()] == [(1, "new"), (2, "dismissed")]
    else:
        assert delivered == []
        assert world.bodies() == []  # the partner never saw it: nothing to close
