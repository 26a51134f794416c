"""The SOC queue (#19 item 4): low and medium wait for a verdict, high and critical go at once and wait for a
confirmation, a silent feed goes to the partner at once, the same attacker in a second tenant is escalated."""

from __future__ import annotations

import io
from typing import Any

import orjson

from shared.alert_model import Category, Severity
from shared.alerts.crosstenant import InMemoryCrossTenantCorrelator
from shared.alerts.incidents import InMemoryIncidentBook, TriageState
from shared.alerts.publisher import IncidentPublisher
from shared.alerts.store import AlertStatus, InMemoryAlertStore
from shared.alerts.suppressions import InMemorySuppressionStore
from shared.alerts.triage import Triage, TriagePolicy, apply_incident_verdict, decide
from shared.cli.alerts_cmd import Stores, cmd_alerts_queue
from shared.messages import IncidentRef
from shared.platform import names
from shared.platform.bus import InProcessBus, QueueOptions
from shared.tenants import TenantRecord

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
H = 3600.0
NOW = T0 + 3 * H
CONTOSO = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
FABRIKAM = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
ATTACKER = "203.0.113.66"
C = Category
S = Severity


class Directory:
    """The tenant directory's ``get``: both tenants of one partner, default triage fields."""

    def __init__(self, triage: dict[str, Any] | None = None) -> None:
        self._triage = triage or {}

    def get(self, tenant_id: str) -> TenantRecord | None:
        if tenant_id not in (CONTOSO, FABRIKAM):
            return None
        return TenantRecord(tenant_id=tenant_id, partner_id="p1", triage=self._triage)


def soc(triage: dict[str, Any] | None = None) -> tuple[InMemoryIncidentBook, Triage]:
    t = Triage(Directory(triage), InMemorySuppressionStore(now=lambda: NOW), clock=lambda: NOW)
    return InMemoryIncidentBook(now=lambda: NOW, triage=t.states), t


def test_silent_feed_goes_to_the_partner_at_once(make_alert: Any) -> None:
    """Fails on the old code: an integration-health (silent feed) incident is medium and was held back."""
    book, _ = soc()
    silent = make_alert(C.INTEGRATION_HEALTH, tenant=CONTOSO, user="", user_key=None, ip=None, severity=S.MEDIUM)
    (inc,) = book.add_alerts([silent])
    decision = decide(inc, TriagePolicy(tenant_id=CONTOSO), [], now=NOW)
    assert (decision.publish, decision.reason, decision.state) == (
        True,
        "category integration_health is published at once",
        TriageState.AWAITING_CONFIRMATION,
    )
    assert inc.triage is TriageState.AWAITING_CONFIRMATION


def test_high_goes_at_once_and_waits_for_confirmation_medium_waits_for_a_verdict(make_alert: Any) -> None:
    """Fails on the old code: a high incident was published and never entered an analyst's queue."""
    book, triage = soc()
    alerts = InMemoryAlertStore(now=lambda: NOW)
    sign_in = make_alert(C.UNWANTED_LOGIN, at=T0, tenant=CONTOSO)
    rule = make_alert(C.SHADOW_WORKFLOW, at=T0 + H, tenant=CONTOSO)
    lone = make_alert(C.UNWANTED_LOGIN, at=T0, tenant=CONTOSO, user="adele@contoso.com", user_key=None)
    alerts.upsert_alerts([sign_in, rule, lone])
    by_user = {i.user: i for i in book.add_alerts([sign_in, rule, lone])}
    high, medium = by_user["megan@contoso.com"], by_user["adele@contoso.com"]
    assert (high.severity, triage.decide(high).publish, high.triage) == (
        S.HIGH,
        True,
        TriageState.AWAITING_CONFIRMATION,
    )
    assert (medium.severity, triage.decide(medium).publish, medium.triage) == (
        S.MEDIUM,
        False,
        TriageState.AWAITING_VERDICT,
    )
    assert [i.incident_id for i in book.list_queue(CONTOSO)] == [high.incident_id, medium.incident_id]

    confirmed = apply_incident_verdict(alerts, book, CONTOSO, high.incident_id, "confirmed", by="ana", reason="tp")
    assert (confirmed.status, confirmed.triage) == (AlertStatus.CONFIRMED, TriageState.CONFIRMED)
    assert [alerts.get_alert_record(CONTOSO, a).status for a in high.alert_ids] == [AlertStatus.CONFIRMED] * 2
    dismissed = apply_incident_verdict(alerts, book, CONTOSO, medium.incident_id, "dismissed", by="ana", reason="vpn")
    assert dismissed.triage is TriageState.DISMISSED
    assert triage.decide(dismissed).publish is False
    assert book.list_queue(CONTOSO) == []
    assert [i.incident_id for i in book.list_queue(CONTOSO, states=[TriageState.CONFIRMED])] == [high.incident_id]


def test_a_tenant_policy_publishes_medium_at_once(make_alert: Any) -> None:
    book, _ = soc({"publish_severities": ["medium", "high", "critical"]})
    (inc,) = book.add_alerts([make_alert(C.UNWANTED_LOGIN, tenant=CONTOSO)])
    assert inc.triage is TriageState.AWAITING_CONFIRMATION


def test_medium_sign_in_of_the_same_attacker_in_a_second_tenant_goes_at_once(make_alert: Any) -> None:
    """Fails on the old code: the second tenant's medium sign-in waited for an analyst."""
    book, triage = soc()
    correlator = InMemoryCrossTenantCorrelator({CONTOSO: "p1", FABRIKAM: "p1"}, now=lambda: NOW)
    bus = InProcessBus({names.QUEUE_ALERTS: QueueOptions()}, clock=lambda: NOW)
    publisher = IncidentPublisher(book, correlator, triage, bus)
    contoso = [
        make_alert(C.UNWANTED_LOGIN, at=T0, tenant=CONTOSO, ip=ATTACKER),
        make_alert(C.SHADOW_WORKFLOW, at=T0 + H, tenant=CONTOSO, ip=ATTACKER),
    ]
    (first,) = publisher.add_alerts(CONTOSO, contoso)
    assert first.severity is S.HIGH
    bus.receive(names.QUEUE_ALERTS, max_messages=10)  # Contoso's own revision: not what this test is about

    other_ip = make_alert(
        C.UNWANTED_LOGIN, at=T0 + 2 * H, tenant=FABRIKAM, user="lee@fabrikam.com", user_key=None, ip="192.0.2.10"
    )
    same = make_alert(
        C.UNWANTED_LOGIN, at=T0 + 2 * H, tenant=FABRIKAM, user="joni@fabrikam.com", user_key=None, ip=ATTACKER
    )
    touched = {i.user: i for i in publisher.add_alerts(FABRIKAM, [other_ip, same])}
    escalated, waiting = touched["joni@fabrikam.com"], touched["lee@fabrikam.com"]
    (pinc,) = correlator.list_partner_incidents("p1")
    assert escalated.severity is S.MEDIUM
    assert escalated.escalations == [
        f"IP address {ATTACKER} also seen in 1 other tenant of the partner (cross-tenant incident {pinc.incident_id})"
    ]
    assert escalated.triage is TriageState.AWAITING_CONFIRMATION
    assert waiting.escalations == [] and waiting.triage is TriageState.AWAITING_VERDICT
    sent = [IncidentRef.parse(m.body) for m in bus.receive(names.QUEUE_ALERTS, max_messages=10)]
    assert sorted((r.tenant_id, r.incident_id, r.revision) for r in sent if isinstance(r, IncidentRef)) == sorted(
        [
            (FABRIKAM, escalated.incident_id, escalated.revision),
            (pinc.scope, pinc.incident_id, pinc.revision),
        ]
    )
    # a replay of the same alerts escalates nothing twice
    again = {i.user: i for i in publisher.add_alerts(FABRIKAM, [same])}
    assert again["joni@fabrikam.com"].revision == escalated.revision


def test_queue_lists_every_tenant_as_json(make_alert: Any) -> None:
    book, _ = soc()
    book.add_alerts([make_alert(C.UNWANTED_LOGIN, at=T0 + H, tenant=FABRIKAM, user="joni@fabrikam.com")])
    book.add_alerts(
        [
            make_alert(C.UNWANTED_LOGIN, at=T0, tenant=CONTOSO),
            make_alert(C.SHADOW_WORKFLOW, at=T0 + 600, tenant=CONTOSO),
        ]
    )
    stores = Stores(
        InMemoryAlertStore(now=lambda: NOW),
        book,
        InMemorySuppressionStore(now=lambda: NOW),
        lambda: [CONTOSO, FABRIKAM],
    )
    out = io.StringIO()
    assert cmd_alerts_queue(stores, fmt="json", out=out, now=lambda: NOW) == 0
    rows = orjson.loads(out.getvalue())
    assert [(r["tenant_id"], r["severity"], r["triage"]) for r in rows] == [
        (CONTOSO, "high", "awaiting_confirmation"),
        (FABRIKAM, "medium", "awaiting_verdict"),
    ]
    out = io.StringIO()
    cmd_alerts_queue(stores, tenant_ids=[FABRIKAM], out=out, now=lambda: NOW)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["INCIDENT", "TENANT", "TRIAGE", "SEVERITY", "USER", "FIRST", "SEEN", "TITLE"]
    assert lines[1].split()[1:5] == [FABRIKAM, "awaiting_verdict", "medium", "joni@fabrikam.com"]
    assert lines[-1] == "1 incident(s)"
