"""Incidents: grouping one user's alerts, the story in stage order, severity raised by the combination."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.alert_model import Category, Severity
from shared.alerts.incidents import (
    InMemoryIncidentBook,
    Stage,
    TableIncidentBook,
    TimelineEntry,
    assess,
    incident_id_for,
)
from shared.alerts.store import AlertStatus
from shared.platform.errors import ConcurrencyError, NotFoundError

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OTHER = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
MEGAN = "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f"

C = Category
S = Severity


@pytest.fixture(params=["table", "memory"])
def book(request: pytest.FixtureRequest, clock: Any) -> Any:
    if request.param == "memory":
        return InMemoryIncidentBook(now=clock)
    return TableIncidentBook.from_storage(request.getfixturevalue("storage"), now=clock)


def entry(category: Category, hours: float, severity: Severity = S.MEDIUM) -> TimelineEntry:
    return TimelineEntry(
        alert_id=f"al-{category.value}-{hours}",
        detector=f"test_{category.value}",
        title=category.value,
        category=category,
        severity=severity,
        first_seen=T0 + hours * H,
        last_seen=T0 + hours * H + 60,
        summary="",
        user="megan@contoso.com",
    )


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([(C.UNWANTED_LOGIN, 0, S.MEDIUM)], (S.MEDIUM, []), id="one-sign-in"),
        pytest.param(
            [(C.UNWANTED_LOGIN, 0, S.LOW), (C.SHADOW_WORKFLOW, 2, S.LOW)],
            (S.HIGH, ["risky sign-in followed within 24 h by mail rule / forwarding"]),
            id="sign-in-then-rule",
        ),
        pytest.param(
            [(C.CREDENTIAL_COMPROMISE, 0, S.MEDIUM), (C.EVASIVE_ACCESS, 23, S.LOW), (C.EVASIVE_ACCESS, 1, S.LOW)],
            (S.HIGH, ["risky sign-in followed within 24 h by access"]),
            id="spray-then-evasive-access",
        ),
        pytest.param(
            [(C.UNWANTED_LOGIN, 0, S.MEDIUM), (C.ROGUE_APP, 5, S.MEDIUM)],
            (S.HIGH, ["risky sign-in followed within 24 h by consent / privilege"]),
            id="sign-in-then-consent",
        ),
        pytest.param(
            [(C.SHADOW_WORKFLOW, 0, S.MEDIUM), (C.UNWANTED_LOGIN, 2, S.MEDIUM)],
            (S.MEDIUM, []),
            id="rule-before-the-sign-in-is-not-a-follow-up",
        ),
        pytest.param(
            [(C.UNWANTED_LOGIN, 0, S.MEDIUM), (C.EVASIVE_ACCESS, 25, S.MEDIUM)], (S.MEDIUM, []), id="beyond-24h"
        ),
        pytest.param(
            [(C.DEFENSE_EVASION, 0, S.LOW), (C.DATA_EXFILTRATION, 1, S.LOW)],
            (S.HIGH, ["defence evasion together with other attack stages"]),
            id="evasion-with-access",
        ),
        pytest.param(
            [(C.UNWANTED_LOGIN, 0, S.LOW), (C.SHADOW_WORKFLOW, 1, S.LOW), (C.PRIVILEGE_CHANGE, 2, S.LOW)],
            (
                S.CRITICAL,
                [
                    "risky sign-in followed within 24 h by mail rule / forwarding, consent / privilege",
                    "3 attack stages: Sign-in → Mail rule / forwarding → Consent / privilege",
                ],
            ),
            id="three-stages",
        ),
        pytest.param(
            [(C.UNWANTED_LOGIN, 0, S.CRITICAL), (C.SHADOW_WORKFLOW, 1, S.LOW)], (S.CRITICAL, []), id="already-critical"
        ),
        pytest.param(
            [(C.INTEGRATION_HEALTH, 0, S.LOW), (C.UNWANTED_LOGIN, 0, S.LOW), (C.DEFENSE_EVASION, 1, S.LOW)],
            (S.HIGH, ["defence evasion together with other attack stages"]),
            id="health-is-not-an-attack-stage",
        ),
    ],
)
def test_assess_raises_severity_by_combination(
    entries: list[tuple[Category, float, Severity]], expected: tuple[Severity, list[str]]
) -> None:
    assert assess([entry(c, h, s) for c, h, s in entries], window=timedelta(hours=24)) == expected


def test_sign_in_then_rule_is_one_high_incident_told_in_stage_order(book: Any, make_alert: Any) -> None:
    consent = make_alert(C.ROGUE_APP, at=T0 + 1 * H, context={"app_id": "A1B2C3D4-0000-4000-8000-000000000001"})
    rule = make_alert(C.SHADOW_WORKFLOW, at=T0 + 2 * H, context={"asn": 64500, "country": "nl"})
    sign_in = make_alert(C.UNWANTED_LOGIN, at=T0 + 3 * H, ip="[2001:DB8::1]:443")
    changed = book.add_alerts([rule, consent, sign_in])
    (inc,) = changed
    assert inc.incident_id == incident_id_for(TENANT, MEGAN, consent.alert_id)
    assert [e.stage for e in inc.entries] == [Stage.SIGN_IN, Stage.PERSISTENCE, Stage.CONSENT]
    assert inc.to_dict() == {
        "incident_id": inc.incident_id,
        "tenant_id": TENANT,
        "user_key": MEGAN,
        "user": "megan@contoso.com",
        "title": "Possible account takeover of megan@contoso.com: Sign-in → Mail rule / forwarding → Consent / privilege",
        "severity": "critical",
        "severity_reasons": [
            "3 attack stages: Sign-in → Mail rule / forwarding → Consent / privilege",
        ],
        "status": "new",
        "triage": "awaiting_verdict",  # a book without a triage hook: no verdict yet, so awaiting one
        "escalations": [],
        "stages": ["sign_in", "persistence", "consent"],
        "first_seen": "2025-11-24T17:00:00Z",
        "last_seen": "2025-11-24T19:01:00Z",
        "revision": 1,
        "updated_at": "2025-11-24T17:00:00Z",
        "alerts": [
            {
                "alert_id": sign_in.alert_id,
                "detector": "test_unwanted_login",
                "title": "Sign-in from an anonymising proxy",
                "category": "unwanted_login",
                "stage": "sign_in",
                "severity": "medium",
                "first_seen": "2025-11-24T19:00:00Z",
                "last_seen": "2025-11-24T19:01:00Z",
                "summary": "Sign-in from an anonymising proxy for megan@contoso.com",
                "user": "megan@contoso.com",
                "ip": "2001:db8::1",
                "asn": None,
                "country": None,
                "app_id": None,
                "mitre": ["T1078"],
                "evidence_record_ids": [sign_in.evidence_record_ids[0]],
                "count": 1,
            },
            {
                "alert_id": rule.alert_id,
                "detector": "test_shadow_workflow",
                "title": "Suspicious inbox rule",
                "category": "shadow_workflow",
                "stage": "persistence",
                "severity": "medium",
                "first_seen": "2025-11-24T18:00:00Z",
                "last_seen": "2025-11-24T18:01:00Z",
                "summary": "Suspicious inbox rule for megan@contoso.com",
                "user": "megan@contoso.com",
                "ip": "198.51.100.7",
                "asn": 64500,
                "country": "NL",
                "app_id": None,
                "mitre": ["T1564.008", "T1114.003"],
                "evidence_record_ids": [rule.evidence_record_ids[0]],
                "count": 1,
            },
            {
                "alert_id": consent.alert_id,
                "detector": "test_rogue_app",
                "title": "Consent to a known rogue application",
                "category": "rogue_app",
                "stage": "consent",
                "severity": "medium",
                "first_seen": "2025-11-24T17:00:00Z",
                "last_seen": "2025-11-24T17:01:00Z",
                "summary": "Consent to a known rogue application for megan@contoso.com",
                "user": "megan@contoso.com",
                "ip": "198.51.100.7",
                "asn": None,
                "country": None,
                "app_id": "a1b2c3d4-0000-4000-8000-000000000001",
                "mitre": ["T1528"],
                "evidence_record_ids": [consent.evidence_record_ids[0]],
                "count": 1,
            },
        ],
        "history": [],
        "remediation": [],
    }
    assert inc.story[0] == (
        "2025-11-24T19:00:00Z Sign-in: Sign-in from an anonymising proxy - "
        "Sign-in from an anonymising proxy for megan@contoso.com"
    )
    assert [i.incident_id for i in book.list_incidents(TENANT)] == [inc.incident_id]


def test_replayed_alerts_change_nothing(book: Any, make_alert: Any, clock: Any) -> None:
    alerts = [make_alert(C.UNWANTED_LOGIN, at=T0), make_alert(C.SHADOW_WORKFLOW, at=T0 + H)]
    (first,) = book.add_alerts(alerts)
    clock.advance(600)
    assert book.add_alerts(alerts) == []
    assert book.add_alerts(list(reversed(alerts))) == []
    (stored,) = book.list_incidents(TENANT)
    assert stored.to_dict() == first.to_dict()
    assert stored.revision == 1


def test_a_merged_alert_updates_its_incident_with_a_new_revision(book: Any, make_alert: Any, clock: Any) -> None:
    sign_in = make_alert(C.UNWANTED_LOGIN, at=T0)
    (inc,) = book.add_alerts([sign_in])
    assert (inc.severity, inc.revision) == (S.MEDIUM, 1)
    merged = replace(sign_in, last_seen=T0 + 2 * H, count=2, severity=S.HIGH)
    clock.advance(60)
    (again,) = book.add_alerts([merged])
    assert (again.incident_id, again.severity, again.revision, len(again.entries)) == (inc.incident_id, S.HIGH, 2, 1)
    assert again.entries[0].count == 2


@pytest.mark.parametrize(
    ("second", "same_incident"),
    [
        pytest.param({"at": T0 + 23 * H}, True, id="same-user-within-24h"),
        pytest.param({"at": T0 + 26 * H}, False, id="same-user-after-the-window"),
        pytest.param({"at": T0 + H, "user": "adele@contoso.com", "user_key": "7c1d"}, False, id="another-user"),
        pytest.param({"at": T0 + H, "tenant": OTHER}, False, id="another-tenant"),
        pytest.param({"at": T0 + H, "user_key": None}, False, id="name-only-is-another-key"),
    ],
)
def test_grouping_by_user_and_window(book: Any, make_alert: Any, second: dict[str, Any], same_incident: bool) -> None:
    a = make_alert(C.UNWANTED_LOGIN, at=T0)
    b = make_alert(C.SHADOW_WORKFLOW, **second)
    book.add_alerts([a])
    book.add_alerts([b])
    ids = {i.incident_id for t in (TENANT, OTHER) for i in book.list_incidents(t)}
    assert len(ids) == (1 if same_incident else 2)


def test_a_sliding_window_is_bounded_by_max_span(clock: Any, make_alert: Any) -> None:
    book = InMemoryIncidentBook(now=clock, window=timedelta(hours=24), max_span=timedelta(days=2))
    chain = [make_alert(C.UNWANTED_LOGIN, at=T0 + d * 20 * H, evidence=(f"d{d}",)) for d in range(4)]
    book.add_alerts(chain)
    spans = [[e.alert_id for e in i.entries] for i in book.list_incidents(TENANT)]
    # 0 h, 20 h and 40 h chain within 24 h of each other and span 40 h; 60 h would make the span 60 h > 48 h
    assert spans == [[a.alert_id for a in chain[:3]], [chain[3].alert_id]]


def test_max_alerts_opens_a_new_incident(clock: Any, make_alert: Any) -> None:
    book = InMemoryIncidentBook(now=clock, max_alerts=2)
    alerts = [make_alert(C.UNWANTED_LOGIN, at=T0 + i * 60, evidence=(f"m{i}",)) for i in range(3)]
    changed = book.add_alerts(alerts)
    assert [len(i.entries) for i in changed] == [2, 1]
    assert changed[1].incident_id == incident_id_for(TENANT, MEGAN, alerts[2].alert_id)


def test_status_changes_and_reopening(book: Any, make_alert: Any, clock: Any) -> None:
    (inc,) = book.add_alerts([make_alert(C.UNWANTED_LOGIN, at=T0)])
    dismissed = book.set_status(TENANT, inc.incident_id, "dismissed", by="ana", reason="travelling")
    assert (dismissed.status, dismissed.revision) == (AlertStatus.DISMISSED, 2)
    assert book.set_status(TENANT, inc.incident_id, "dismissed", by="ana", reason="again").revision == 2
    clock.advance(60)
    rule = make_alert(C.SHADOW_WORKFLOW, at=T0 + H)
    (reopened,) = book.add_alerts([rule])
    assert (reopened.status, reopened.revision) == (AlertStatus.NEW, 3)
    assert [(h.status.value, h.by, h.reason) for h in reopened.history] == [
        ("dismissed", "ana", "travelling"),
        ("new", "m365-itdr", f"reopened: new alert {rule.alert_id}"),
    ]
    assert book.get_incident(TENANT, inc.incident_id).to_dict() == reopened.to_dict()
    assert book.find_incident_for_alert(TENANT, rule.alert_id).incident_id == inc.incident_id
    assert book.find_incident_for_alert(OTHER, rule.alert_id) is None
    with pytest.raises(NotFoundError):
        book.get_incident(OTHER, inc.incident_id)


class RacingBook(TableIncidentBook):
    """Lets a rival writer in between this book's read and its write (a second function instance)."""

    rival: Any = None
    rival_alerts: list[Any] = []

    def _query(self, tenant_id: str, **kw: Any) -> Any:
        rows = super()._query(tenant_id, **kw)
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival.add_alerts(self.rival_alerts)
        return rows


def test_concurrent_writers_conflict_and_a_retry_wins(storage: Any, make_alert: Any, clock: Any) -> None:
    first = make_alert(C.UNWANTED_LOGIN, at=T0)
    TableIncidentBook.from_storage(storage, now=clock).add_alerts([first])
    racer = RacingBook.from_storage(storage, now=clock)
    racer.rival = TableIncidentBook.from_storage(storage, now=clock)
    racer.rival_alerts = [make_alert(C.EVASIVE_ACCESS, at=T0 + H)]
    rule = make_alert(C.SHADOW_WORKFLOW, at=T0 + 2 * H)
    with pytest.raises(ConcurrencyError):
        racer.add_alerts([rule])
    (inc,) = racer.add_alerts([rule])
    assert (len(inc.entries), inc.revision, inc.severity) == (3, 3, S.CRITICAL)
