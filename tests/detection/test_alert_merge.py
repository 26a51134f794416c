"""Alert.merge: a later finding of the same dedup key folded into the open alert.

Mutation testing found no test reading the merged fields (the engine calls merge, nobody looked at
what it kept): evidence is capped at MAX_EVIDENCE, the window widens, a higher severity brings its
summary, a lower one changes neither, the count grows, and a finding that adds nothing is refused.
"""

from __future__ import annotations

from shared.alert_model import Alert, Category, Finding, Severity

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"


def _alert(evidence: list[str]) -> Alert:
    return Alert(
        alert_id="al-000000000000000000000001",
        detector="signin_password_spray",
        title="Password spray",
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.MEDIUM,
        tenant_id=TENANT,
        user="megan@contoso.com",
        user_key=None,
        first_seen=1000.0,
        last_seen=2000.0,
        evidence_record_ids=evidence,
        mitre=("T1110.003",),
        summary="first summary",
        dedup_key="megan|spray",
    )


def _finding(evidence: tuple[str, ...], *, first: float, last: float, severity: Severity, summary: str) -> Finding:
    return Finding(
        detector_id="signin_password_spray",
        tenant_id=TENANT,
        user_key=None,
        user="megan@contoso.com",
        severity=severity,
        summary=summary,
        first_seen=first,
        last_seen=last,
        evidence_record_ids=evidence,
        dedup_key="megan|spray",
    )


def test_a_higher_severity_brings_its_summary_and_widens_the_window() -> None:
    alert = _alert(["r1"])
    assert alert.merge(_finding(("r2",), first=500.0, last=3000.0, severity=Severity.HIGH, summary="worse")) is True
    assert (alert.evidence_record_ids, alert.first_seen, alert.last_seen) == (["r1", "r2"], 500.0, 3000.0)
    assert (alert.severity, alert.summary, alert.count) == (Severity.HIGH, "worse", 2)


def test_the_same_or_a_lower_severity_keeps_severity_and_summary() -> None:
    alert = _alert(["r1"])
    assert alert.merge(_finding(("r2",), first=1500.0, last=1800.0, severity=Severity.MEDIUM, summary="same")) is True
    assert alert.merge(_finding(("r3",), first=1500.0, last=1800.0, severity=Severity.LOW, summary="lower")) is True
    assert (alert.severity, alert.summary, alert.count) == (Severity.MEDIUM, "first summary", 3)
    assert (alert.first_seen, alert.last_seen) == (1000.0, 2000.0)


def test_a_finding_that_adds_nothing_is_refused() -> None:
    alert = _alert(["r1"])
    assert alert.merge(_finding(("r1",), first=1000.0, last=2000.0, severity=Severity.HIGH, summary="x")) is False
    assert (alert.severity, alert.summary, alert.count, alert.evidence_record_ids) == (
        Severity.MEDIUM,
        "first summary",
        1,
        ["r1"],
    )
    # no new evidence but a later sighting still counts
    assert alert.merge(_finding(("r1",), first=1000.0, last=2500.0, severity=Severity.LOW, summary="x")) is True
    assert (alert.last_seen, alert.count) == (2500.0, 2)


def test_evidence_stops_at_max_evidence() -> None:
    alert = _alert([f"r{i}" for i in range(Alert.MAX_EVIDENCE - 1)])
    assert alert.merge(_finding(("n1", "n2", "n3"), first=1000.0, last=2100.0, severity=Severity.LOW, summary="x"))
    assert len(alert.evidence_record_ids) == Alert.MAX_EVIDENCE == 100
    assert alert.evidence_record_ids[-1] == "n1"
    assert alert.merge(_finding(("n4",), first=1000.0, last=2200.0, severity=Severity.LOW, summary="x")) is True
    assert len(alert.evidence_record_ids) == 100
    assert (alert.last_seen, alert.count) == (2200.0, 3)


def test_severity_steps_stop_at_the_ends() -> None:
    assert [Severity.LOW.upgrade(), Severity.HIGH.upgrade(), Severity.CRITICAL.upgrade()] == [
        Severity.MEDIUM,
        Severity.CRITICAL,
        Severity.CRITICAL,
    ]
    assert [Severity.HIGH.downgrade(), Severity.MEDIUM.downgrade(2), Severity.LOW.downgrade()] == [
        Severity.MEDIUM,
        Severity.LOW,
        Severity.LOW,
    ]
