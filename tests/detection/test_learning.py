"""The learning gate: novelty detectors declare their rule, it is checked at registration, and the engine holds
their findings back until the user and the tenant have been observed long enough."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, ClassVar

import orjson
import pytest

from detectors import default_registry
from shared.alert_model import Category, DetectorMeta, Finding, Learning, Severity
from shared.detection import baseline, learning
from shared.detection.base import DetectionContext, Detector, Registry, RegistryError
from shared.detection.engine import DetectionEngine, InMemoryAlertSink
from shared.detection.state import TENANT_KEY, UserState
from shared.detection.testing import TEST_TENANT, run_detector
from shared.records.event import Event, parse_blob
from tests.detectors.records import at, epoch, oid_of, signin

RULE = Learning(user_days=7, tenant_days=14)
RUNBOOK = "1. Ask the user whether it was them. 2. Revoke their sessions if not. " + RULE.describe()


def _meta(**over: Any) -> DetectorMeta:
    base: dict[str, Any] = {
        "id": "test_every_signin",
        "title": "Every sign-in",
        "description": "Raises a finding for every successful sign-in (tests the learning gate).",
        "category": Category.UNWANTED_LOGIN,
        "severity": Severity.MEDIUM,
        "mitre": ("T1078",),
        "operations": frozenset({"userloggedin"}),
        "runbook": RUNBOOK,
        "reference": "https://learn.microsoft.com/en-us/purview/audit-log-activities",
        "learning": RULE,
        "dedup_window": timedelta(minutes=1),
    }
    base.update(over)
    return DetectorMeta(**base)


class EverySignin(Detector):
    """Medium for each sign-in; high for one from 203.0.113.66 (as a risk signal would raise it)."""

    meta: ClassVar[DetectorMeta] = _meta()

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        ctx.state(event, self.meta.id)["n"] = int(ctx.peek_state(event, self.meta.id).get("n", 0)) + 1
        severity = Severity.HIGH if event.ip == "203.0.113.66" else Severity.MEDIUM
        return (self.finding(event, summary="sign-in", severity=severity, dedup_key=event.record_id),)


def _alerts(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(user, day) of each alert, days counted from the first record's day."""
    got = run_detector(EverySignin, records, batch_size=5)
    start = epoch(at())
    return [(a.user, int((a.first_seen - start) // 86400)) for a in got.alerts]


def test_findings_wait_until_the_user_and_the_tenant_are_learned() -> None:
    bob = [signin("bob@contoso.com", when=at(days=d), seq=d) for d in range(16)]
    alice = [signin("alice@contoso.com", when=at(days=d, hours=1), seq=d) for d in range(10, 18)]
    got = _alerts([*bob, *alice])
    # bob from day 14 (tenant 14 days, bob 14 >= 7); alice joined on day 10: from day 17 (7 days)
    assert got == [("bob@contoso.com", 14), ("bob@contoso.com", 15), ("alice@contoso.com", 17)]


def test_the_detector_learns_while_its_findings_are_held_back() -> None:
    run = run_detector(EverySignin, [signin("bob@contoso.com", when=at(days=d), seq=d) for d in range(3)])
    assert run.alerts == []
    bob = oid_of("bob@contoso.com")
    assert run.store.load(TEST_TENANT, [bob])[bob].data["test_every_signin"]["n"] == 3


def test_a_finding_a_risk_signal_raised_is_not_held_back() -> None:
    got = run_detector(EverySignin, [signin("bob@contoso.com", when=at(), ip="203.0.113.66")]).alerts
    assert [(a.severity.value, a.user) for a in got] == [("high", "bob@contoso.com")]


def test_nothing_alerts_while_learning_when_the_rule_says_so() -> None:
    rule = Learning(user_days=1, tenant_days=1, while_learning=None)

    class Strict(EverySignin):
        meta = _meta(learning=rule, runbook="1. Ask the user. 2. Revoke sessions. " + rule.describe())

    assert run_detector(Strict, [signin("bob@contoso.com", when=at(), ip="203.0.113.66")]).alerts == []


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"learning": Learning(user_days=14, tenant_days=7)}, "at least as long as the user"),
        ({"learning": Learning(user_days=7, tenant_days=14, while_learning=Severity.LOW)}, "nothing is learned"),
        ({"runbook": "1. Ask the user whether it was them. 2. Revoke their sessions if not."}, "must state"),
    ],
)
def test_registration_checks_the_rule(over: dict[str, Any], message: str) -> None:
    class Bad(EverySignin):
        meta = _meta(**over)

    with pytest.raises(RegistryError, match=message):
        Registry([Bad])


NOVELTY = {
    "evasive_public_client_first_use",
    "evasive_legacy_or_ropc_signin",
    "evasive_mailbox_access_unusual_client",
    "signin_new_location",
    "signin_unfamiliar_fingerprint",
    "exfil_sync_new_client",
    "exfil_app_mailbox_sweep",
}
HIGH_CONFIDENCE = {
    "signin_adversary_infrastructure",
    "signin_anonymizer",
    "app_risky_consent",
    "exchange_mailbox_forwarding",
    "exchange_suspicious_inbox_rule",
    "exchange_transport_rule_forwarding",
    "defense_audit_disabled",
}


def test_novelty_detectors_declare_a_rule_and_high_confidence_ones_fire_from_the_first_record() -> None:
    metas = {d.meta.id: d.meta for d in default_registry().detectors}
    assert {i for i, m in metas.items() if m.learning is not None} == NOVELTY
    assert all(metas[i].learning is None for i in HIGH_CONFIDENCE)
    for i in NOVELTY:
        rule = metas[i].learning
        assert rule is not None and rule.describe() in " ".join(metas[i].runbook.split())


def test_state_kept_before_the_gate_counts_as_observation() -> None:
    """A deployment gaining the gate does not learn again: the user's sign-in baseline and the tenant's prevalence
    counts say since when they have been observed."""
    assert (learning.SIGNIN_SECTION, learning.PREVALENCE_SECTION) == (
        baseline.SIGNIN_SECTION,
        baseline.PREVALENCE_SECTION,
    )
    rec = signin("bob@contoso.com", when=at(days=20))
    first = epoch(at())
    bob = oid_of("bob@contoso.com")
    got = run_detector(EverySignin, [])
    got.store.save(
        TEST_TENANT,
        {
            bob: UserState({"_signins": {"fs": int(first), "n": 40}}, dirty=True),
            TENANT_KEY: UserState({"_prevalence": {"c": {"DE": [int(first), int(first), ["abc123"]]}}}, dirty=True),
        },
    )
    sink = InMemoryAlertSink()
    engine = DetectionEngine(Registry([EverySignin]), store=got.store, sink=sink)
    engine.process(TEST_TENANT, parse_blob(orjson.dumps([rec])).events, batch_id="after-upgrade")
    assert [a.user for a in sink.list_alerts()] == ["bob@contoso.com"]
    states = got.store.load(TEST_TENANT, [bob, TENANT_KEY])
    assert states[bob].data["_learning"] == {"fs": int(first)}
    assert states[TENANT_KEY].data["_learning"] == {"fs": int(first)}
