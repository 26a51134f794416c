"""End to end on Azurite and the Logic App emulator: records → engine → alerts → incident → triage → delivery.

The same evidence processed twice (state lost, batch re-run) and the alert message handled twice
(bus redelivery) leave one row per alert, one incident and one effective delivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.alert_model import Category, DetectorMeta, Finding, Severity
from shared.alerts.delivery import PartnerDeliveryClient, TableDeliveryLedger
from shared.alerts.incidents import TableIncidentBook
from shared.alerts.payload import load_schema
from shared.alerts.store import TableAlertStore
from shared.alerts.suppressions import TableSuppressionStore
from shared.alerts.triage import TriagePolicy, decide
from shared.detection.base import DetectionContext, Detector, Registry
from shared.detection.engine import DetectionEngine
from shared.detection.state import InMemoryStateStore
from shared.emulators.partner import PartnerEndpoint
from shared.platform import names
from shared.records.event import Event, parse_records

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
RUNBOOK = "Check the sign-in logs of the user, then revoke sessions if the activity is not theirs."


class TorSignIn(Detector):
    meta = DetectorMeta(
        id="test_tor_signin",
        title="Sign-in from a Tor exit node",
        description="A successful sign-in from a Tor exit node.",
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin"}),
        runbook=RUNBOOK,
        reference="https://attack.mitre.org/techniques/T1078/004/",
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        return (self.finding(event, summary=f"Sign-in from Tor exit {event.ip}"),)


class ForwardingRule(Detector):
    meta = DetectorMeta(
        id="test_forwarding_rule",
        title="Inbox rule forwarding outside",
        description="An inbox rule that forwards mail to an outside address.",
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.MEDIUM,
        mitre=("T1114.003",),
        operations=frozenset({"new-inboxrule"}),
        runbook=RUNBOOK,
        reference="https://attack.mitre.org/techniques/T1114/003/",
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        return (self.finding(event, summary="Inbox rule forwards to evil@example.net", context={"asn": 64500}),)


def records() -> list[bytes]:
    base = {"OrganizationId": TENANT, "UserId": "megan@contoso.com", "ResultStatus": "Succeeded"}
    return [
        orjson.dumps(
            {
                **base,
                "Id": "rec-signin-1",
                "CreationTime": "2025-11-24T16:00:00",
                "Operation": "UserLoggedIn",
                "RecordType": 15,
                "Workload": "AzureActiveDirectory",
                "ClientIP": "203.0.113.66",
            }
        ),
        orjson.dumps(
            {
                **base,
                "Id": "rec-rule-1",
                "CreationTime": "2025-11-24T16:20:00",
                "Operation": "New-InboxRule",
                "RecordType": 1,
                "Workload": "Exchange",
                "ResultStatus": "True",
                "ClientIP": "[203.0.113.66]:50123",
                "ObjectId": "megan\\fwd",
                "Parameters": [{"Name": "Name", "Value": "fwd"}, {"Name": "ForwardTo", "Value": "evil@example.net"}],
            }
        ),
    ]


@pytest.fixture
def endpoint() -> Iterator[PartnerEndpoint]:
    with PartnerEndpoint(schema=load_schema()) as ep:
        yield ep


def test_replays_end_in_one_row_each_one_incident_one_delivery(storage: Any, endpoint: PartnerEndpoint) -> None:
    now = 1_764_003_600.0
    alerts_store = TableAlertStore.from_storage(storage, now=lambda: now)
    events = parse_records(records(), expected_tenant=TENANT).events
    assert len(events) == 2
    for batch in ("b1", "b2"):  # b2: the raw archive re-processed with lost state
        engine = DetectionEngine(Registry([TorSignIn, ForwardingRule]), store=InMemoryStateStore(), sink=alerts_store)
        engine.process(TENANT, events, batch_id=batch)

    stored = alerts_store.list_alerts(TENANT)
    assert [r.alert.detector for r in stored] == ["test_tor_signin", "test_forwarding_rule"]
    rows = list(storage.table(names.TABLE_ALERTS).list_entities())
    assert len(rows) == 2

    book = TableIncidentBook.from_storage(storage, now=lambda: now)
    suppressions = TableSuppressionStore.from_storage(storage, now=lambda: now)
    outcomes = []
    with httpx.Client() as http:
        delivery = PartnerDeliveryClient(
            endpoint.url,
            http=http,
            ledger=TableDeliveryLedger.from_storage(storage),
            allowed_hosts=("127.0.0.1",),
            allow_insecure=True,
            now=lambda: now,
        )
        for _ in range(2):  # the alerts message, delivered twice by the bus
            alerts = [r.alert for r in alerts_store.list_alerts(TENANT)]
            for incident in book.add_alerts(alerts, include_unchanged=True):
                decision = decide(incident, TriagePolicy(), suppressions.list_suppressions(TENANT), now=now)
                assert decision.publish, decision.reason
                outcomes.append(delivery.deliver(incident, decision=decision).outcome)

    assert outcomes == ["delivered", "already_delivered"]
    (incident,) = book.list_incidents(TENANT)
    assert (incident.severity, incident.revision, len(incident.entries)) == (Severity.HIGH, 1, 2)
    assert [r.status for r in endpoint.requests] == [202]
    (effective,) = endpoint.effective_deliveries
    body = effective.json()
    assert (body["incident_id"], body["severity"], [a["stage"] for a in body["alerts"]]) == (
        incident.incident_id,
        "high",
        ["sign_in", "persistence"],
    )
    assert body["ips"] == ["203.0.113.66"]
