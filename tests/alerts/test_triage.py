"""Triage and suppressions: publish at once or wait, suppressions applied before publishing, expiry, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.alert_model import Category, Severity
from shared.alerts.incidents import InMemoryIncidentBook, TableIncidentBook, TriageState
from shared.alerts.store import AlertStatus, InMemoryAlertStore, TableAlertStore
from shared.alerts.suppressions import (
    InMemorySuppressionStore,
    Suppression,
    TableSuppressionStore,
    dismiss_alert,
    suppression_from_alert,
)
from shared.alerts.triage import Decision, TriagePolicy, apply_alert_verdict, decide
from shared.platform.errors import BadInputError, NotFoundError

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OTHER = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
NOW = T0 + 3 * H
C = Category
S = Severity


def sup(**kw: Any) -> Suppression:
    values: dict[str, Any] = {"tenant_id": TENANT, "reason": "known VPN", "created_by": "ana", "created_at": T0}
    values.update(kw)
    return Suppression(**values)


@pytest.fixture
def takeover(make_alert: Any) -> Any:
    """A sign-in followed by an inbox rule: two medium alerts, a high incident."""
    book = InMemoryIncidentBook(now=lambda: NOW)
    sign_in = make_alert(C.UNWANTED_LOGIN, at=T0, ip="203.0.113.9", context={"asn": 64500})
    rule = make_alert(C.SHADOW_WORKFLOW, at=T0 + H, ip="198.51.100.7", context={"asn": 64501})
    (inc,) = book.add_alerts([sign_in, rule])
    assert inc.severity is S.HIGH
    return inc, sign_in, rule, book


def test_default_policy_publishes_high_at_once(takeover: Any) -> None:
    inc, sign_in, rule, _ = takeover
    assert decide(inc, TriagePolicy(tenant_id=TENANT), [], now=NOW) == Decision(
        True,
        "severity high is published at once (high, critical)",
        S.HIGH,
        TriageState.AWAITING_CONFIRMATION,
        (sign_in.alert_id, rule.alert_id),
        (),
    )


@pytest.mark.parametrize(
    ("categories", "status", "policy", "expected"),
    [
        pytest.param([C.UNWANTED_LOGIN], None, {}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical)"), id="medium-waits"),
        pytest.param([C.UNWANTED_LOGIN], ("confirmed", "ana", "user never signed in from there"), {}, (True, "confirmed by ana: user never signed in from there"), id="confirmed-publishes"),
        pytest.param([C.UNWANTED_LOGIN], ("confirmed", "ana", "true positive"), {"publish_confirmed": False}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical)"), id="confirmed-not-published-by-policy"),
        pytest.param([C.UNWANTED_LOGIN, C.SHADOW_WORKFLOW, C.ROGUE_APP], ("dismissed", "ana", "pen test"), {}, (False, "dismissed by ana: pen test"), id="dismissed-critical-never"),
        pytest.param([C.UNWANTED_LOGIN, C.SHADOW_WORKFLOW], None, {"auto_publish": False}, (False, "waiting for an analyst: automatic publishing is off"), id="auto-publish-off"),
        pytest.param([C.INTEGRATION_HEALTH], None, {"publish_categories": [C.INTEGRATION_HEALTH]}, (True, "category integration_health is published at once"), id="category"),
        pytest.param([C.UNWANTED_LOGIN], None, {"publish_severities": [S.MEDIUM, S.HIGH, S.CRITICAL]}, (True, "severity medium is published at once (medium, high, critical)"), id="lower-threshold"),
    ],
)  # fmt: skip
def test_policy_decisions(
    make_alert: Any,
    categories: list[Category],
    status: tuple[str, str, str] | None,
    policy: dict[str, Any],
    expected: tuple[bool, str],
) -> None:
    book = InMemoryIncidentBook(now=lambda: NOW)
    (inc,) = book.add_alerts([make_alert(c, at=T0 + i * 600) for i, c in enumerate(categories)])
    if status is not None:
        inc = book.set_status(TENANT, inc.incident_id, status[0], by=status[1], reason=status[2])
    decision = decide(inc, TriagePolicy(tenant_id=TENANT, **policy), [], now=NOW)
    assert (decision.publish, decision.reason) == expected


@pytest.mark.parametrize(
    ("suppression", "expected"),
    [
        pytest.param({"detector": "test_shadow_workflow"}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical); 1 suppressed alert left out", S.MEDIUM, ("sign_in",), ("rule",)), id="detector"),
        pytest.param({"ip": "198.51.100.0/24"}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical); 1 suppressed alert left out", S.MEDIUM, ("sign_in",), ("rule",)), id="cidr"),
        pytest.param({"asn": 64500}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical); 1 suppressed alert left out", S.MEDIUM, ("rule",), ("sign_in",)), id="asn"),
        pytest.param({"user": "MEGAN@contoso.com"}, (False, "all 2 alerts suppressed (SUP)", S.HIGH, (), ("sign_in", "rule")), id="user-upn"),
        pytest.param({"user": "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f", "detector": "test_unwanted_login"}, (False, "waiting for an analyst: severity medium is below the publish threshold (high, critical); 1 suppressed alert left out", S.MEDIUM, ("rule",), ("sign_in",)), id="user-key-and-detector"),
        pytest.param({"user": "adele@contoso.com"}, (True, "severity high is published at once (high, critical)", S.HIGH, ("sign_in", "rule"), ()), id="another-user"),
        pytest.param({"ip": "203.0.113.9", "detector": "test_shadow_workflow"}, (True, "severity high is published at once (high, critical)", S.HIGH, ("sign_in", "rule"), ()), id="all-selectors-must-match"),
        pytest.param({"tenant_id": OTHER, "user": "megan@contoso.com"}, (True, "severity high is published at once (high, critical)", S.HIGH, ("sign_in", "rule"), ()), id="another-tenant"),
        pytest.param({"user": "megan@contoso.com", "expires_at": NOW - 1}, (True, "severity high is published at once (high, critical)", S.HIGH, ("sign_in", "rule"), ()), id="expired"),
        pytest.param({"user": "megan@contoso.com", "revoked_at": NOW - 1, "revoked_by": "bob"}, (True, "severity high is published at once (high, critical)", S.HIGH, ("sign_in", "rule"), ()), id="revoked"),
    ],
)  # fmt: skip
def test_suppressions_apply_before_publishing(
    takeover: Any, suppression: dict[str, Any], expected: tuple[bool, str, Severity, tuple[str, ...], tuple[str, ...]]
) -> None:
    inc, sign_in, rule, _ = takeover
    ids = {"sign_in": sign_in.alert_id, "rule": rule.alert_id}
    s = sup(**suppression)
    decision = decide(inc, TriagePolicy(tenant_id=TENANT), [s], now=NOW)
    publish, reason, severity, kept, hidden = expected
    # published at once: to be confirmed; every alert suppressed: out of the queue; else: held for a verdict
    state = (
        TriageState.AWAITING_CONFIRMATION
        if publish
        else (TriageState.DISMISSED if not kept else TriageState.AWAITING_VERDICT)
    )
    assert decision == Decision(
        publish,
        reason.replace("SUP", s.suppression_id),
        severity,
        state,
        tuple(ids[k] for k in kept),
        tuple((ids[k], s.suppression_id) for k in hidden),
    )


def test_a_confirmed_incident_outweighs_a_suppression(takeover: Any) -> None:
    inc, _, _, book = takeover
    confirmed = book.set_status(TENANT, inc.incident_id, "confirmed", by="ana", reason="true positive")
    decision = decide(confirmed, TriagePolicy(), [sup(user="megan@contoso.com")], now=NOW)
    assert (decision.publish, decision.reason, decision.suppressed) == (True, "confirmed by ana: true positive", ())


def test_a_policy_of_another_tenant_is_refused(takeover: Any) -> None:
    with pytest.raises(BadInputError):
        decide(takeover[0], TriagePolicy(tenant_id=OTHER), [], now=NOW)


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param({}, id="no-selector"),
        pytest.param({"ip": "not-an-ip"}, id="bad-ip"),
        pytest.param({"ip": "10.0.0.0/33"}, id="bad-cidr"),
        pytest.param({"user": "megan@contoso.com", "reason": ""}, id="no-reason"),
        pytest.param({"asn": -1}, id="bad-asn"),
    ],
)
def test_invalid_suppressions_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sup(**kw)


def test_suppression_ids_are_deterministic_and_normalised() -> None:
    a = sup(ip="[2001:DB8::1]:443", detector=" test_x ")
    b = sup(ip="2001:db8::1", detector="test_x", reason="other reason", created_at=T0 + 5)
    assert (a.ip, a.detector, a.suppression_id) == ("2001:db8::1", "test_x", b.suppression_id)
    assert sup(ip="10.1.2.3/8").ip == "10.0.0.0/8"


@pytest.fixture(params=["table", "memory"])
def sup_store(request: pytest.FixtureRequest, clock: Any) -> Any:
    if request.param == "memory":
        return InMemorySuppressionStore(now=clock)
    return TableSuppressionStore.from_storage(request.getfixturevalue("storage"), now=clock)


def test_suppressions_are_listed_expire_and_are_revocable(sup_store: Any, clock: Any) -> None:
    now = clock()
    vpn = sup(ip="203.0.113.0/24", expires_at=now + 86400)
    old = sup(detector="test_old", expires_at=now - 1, created_at=T0 - 10)
    forever = sup(user="svc-backup@contoso.com", reason="backup service account", created_at=T0 + 1)
    foreign = sup(tenant_id=OTHER, asn=64500)
    for s in (vpn, old, forever, foreign):
        sup_store.add_suppression(s)
    sup_store.add_suppression(vpn)  # same selectors: one row
    assert sup_store.list_suppressions(TENANT) == [vpn, forever]
    assert sup_store.list_suppressions(TENANT, include_inactive=True) == [old, vpn, forever]
    assert sup_store.list_suppressions(OTHER) == [foreign]
    assert sup_store.get_suppression(TENANT, forever.suppression_id) == forever

    revoked = sup_store.revoke_suppression(TENANT, vpn.suppression_id, by="bob")
    assert (revoked.revoked_at, revoked.revoked_by) == (now, "bob")
    assert sup_store.revoke_suppression(TENANT, vpn.suppression_id, by="carol") == revoked
    assert sup_store.list_suppressions(TENANT) == [forever]
    assert sup_store.list_suppressions(TENANT, include_inactive=True) == [old, revoked, forever]
    clock.advance(86400 * 365)
    assert sup_store.list_suppressions(TENANT) == [forever]
    with pytest.raises(NotFoundError):
        sup_store.revoke_suppression(OTHER, vpn.suppression_id, by="bob")
    readded = sup_store.add_suppression(sup(ip="203.0.113.0/24", reason="VPN again", created_at=clock()))
    assert sup_store.list_suppressions(TENANT) == [forever, readded]


def test_suppression_from_alert_copies_the_chosen_fields(make_alert: Any) -> None:
    alert = make_alert(C.UNWANTED_LOGIN, ip="198.51.100.7:5000", context={"ip_info": {"asn": "AS64500"}})
    s = suppression_from_alert(
        alert, scope=["user", "ip", "asn", "detector"], by="ana", reason="office VPN", now=NOW, ttl=timedelta(days=7)
    )
    assert s.model_dump() == {
        "tenant_id": TENANT,
        "user": "5b0e9a3c-1111-4c2d-9e8f-0a1b2c3d4e5f",
        "ip": "198.51.100.7",
        "asn": 64500,
        "detector": "test_unwanted_login",
        "reason": "office VPN",
        "created_by": "ana",
        "created_at": NOW,
        "expires_at": NOW + 7 * 86400,
        "revoked_at": None,
        "revoked_by": None,
    }
    with pytest.raises(BadInputError):
        suppression_from_alert(make_alert(C.UNWANTED_LOGIN, ip=None), scope=["ip"], by="a", reason="r", now=NOW)
    with pytest.raises(BadInputError):
        suppression_from_alert(alert, scope=["country"], by="a", reason="r", now=NOW)


@pytest.fixture(params=["table", "memory"])
def stores(request: pytest.FixtureRequest, clock: Any) -> Any:
    if request.param == "memory":
        return InMemoryAlertStore(now=clock), InMemoryIncidentBook(now=clock), InMemorySuppressionStore(now=clock)
    storage = request.getfixturevalue("storage")
    return (
        TableAlertStore.from_storage(storage, now=clock),
        TableIncidentBook.from_storage(storage, now=clock),
        TableSuppressionStore.from_storage(storage, now=clock),
    )


def test_dismissing_with_a_reason_suppresses_look_alikes(stores: Any, make_alert: Any, clock: Any) -> None:
    alerts, book, sups = stores
    first = make_alert(C.UNWANTED_LOGIN, at=T0)
    alerts.upsert_alerts([first])
    (inc,) = book.add_alerts([first])
    record, created = dismiss_alert(
        alerts,
        sups,
        TENANT,
        first.alert_id,
        by="ana",
        reason="travel to Lisbon",
        suppress=["user", "detector"],
        now=clock,
    )
    assert (record.status, record.history[-1].reason) == (AlertStatus.DISMISSED, "travel to Lisbon")
    assert created is not None and sups.list_suppressions(TENANT) == [created]
    assert (created.user, created.detector, created.expires_at) == (
        first.user_key,
        first.detector,
        clock() + 30 * 86400,
    )

    later = make_alert(C.UNWANTED_LOGIN, at=T0 + 30 * H, severity=S.HIGH, evidence=("rec-later",))
    (inc2,) = book.add_alerts([later])
    assert inc2.incident_id != inc.incident_id
    decision = decide(inc2, TriagePolicy(tenant_id=TENANT), sups.list_suppressions(TENANT), now=clock())
    assert (decision.publish, decision.suppressed) == (False, ((later.alert_id, created.suppression_id),))


def test_verdicts_on_alerts_reach_their_incident(stores: Any, make_alert: Any) -> None:
    alerts, book, _ = stores
    a = make_alert(C.UNWANTED_LOGIN, at=T0)
    b = make_alert(C.SHADOW_WORKFLOW, at=T0 + H)
    alerts.upsert_alerts([a, b])
    (inc,) = book.add_alerts([a, b])
    _, acked = apply_alert_verdict(alerts, book, TENANT, a.alert_id, "acknowledged", by="ana")
    assert acked is not None and (acked.status, acked.revision) == (AlertStatus.ACKNOWLEDGED, 2)
    _, none = apply_alert_verdict(alerts, book, TENANT, a.alert_id, "dismissed", by="ana", reason="benign")
    assert none is None  # b is still open
    _, dismissed = apply_alert_verdict(alerts, book, TENANT, b.alert_id, "dismissed", by="ana", reason="benign")
    assert dismissed is not None and dismissed.status is AlertStatus.DISMISSED
    _, confirmed = apply_alert_verdict(alerts, book, TENANT, b.alert_id, "confirmed", by="bob", reason="attacker rule")
    assert confirmed is not None
    assert [(h.status.value, h.by, h.reason) for h in confirmed.history] == [
        ("acknowledged", "ana", f"alert {a.alert_id} acknowledged"),
        ("dismissed", "ana", f"alert {b.alert_id} dismissed: benign"),
        ("confirmed", "bob", f"alert {b.alert_id} confirmed: attacker rule"),
    ]
    assert decide(book.get_incident(TENANT, inc.incident_id), TriagePolicy(), []).publish is True
