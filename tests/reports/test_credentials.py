"""The weekly compromised-credentials report, built from the alerts signin_mfa_failure really raises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.signin_mfa_failure import SigninMfaFailure
from shared.alert_model import Alert, Category, Severity
from shared.alerts.store import AlertStatus, StoredAlert
from shared.detection.testing import TEST_TENANT, run_detector
from shared.reports.credentials import (
    DATA_CREDIT,
    CredentialsReport,
    ExposedUser,
    ExposureSource,
    build_credentials_report,
    credentials_report_json,
    last_week,
    render_credentials_html,
)
from tests.detectors.records import HOME_DE, OFFICE_DE, VPN_NL, at, history, oid_of, signin, signin_enricher

ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"
CAROL = "carol@contoso.com"
START = datetime(2024, 5, 13, tzinfo=UTC)  # the week of day 12..18 after BASE_TIME (2024-05-01)
END = datetime(2024, 5, 20, tzinfo=UTC)
GENERATED = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def t(day: float, minutes: float = 0) -> datetime:
    return datetime.fromisoformat(at(days=day, minutes=minutes)).replace(tzinfo=UTC)


def week_of_alerts() -> list[Alert]:
    records = [
        *history(ALICE),
        *history(BOB),
        *history(CAROL),
        # alice: twice from a DE network she never signed in from (report only; a denial on her own home network
        # is not reported: tenant-aware baseline), once through a VPN (high)
        signin(ALICE, when=at(days=15), ip=OFFICE_DE, error=500121),
        signin(ALICE, when=at(days=15, minutes=30), ip=OFFICE_DE, error=500121, seq=1),
        signin(ALICE, when=at(days=16), ip=VPN_NL, error=500121),
        # bob: MFA fatigue, three denials and a success
        *(signin(BOB, when=at(days=17, minutes=2 * i), ip=OFFICE_DE, error=500121, seq=i) for i in range(3)),
        signin(BOB, when=at(days=17, minutes=10), ip=HOME_DE),
        # carol: once at home, but the week before the report
        signin(CAROL, when=at(days=5), ip=OFFICE_DE, error=500121),
    ]
    return run_detector(SigninMfaFailure, records, enricher=signin_enricher()).alerts


def _home(attempts: int, first: datetime, last: datetime) -> ExposureSource:
    """Denials from a network of the home country the user never signed in from."""
    return ExposureSource(
        ip=OFFICE_DE,
        country="DE",
        city="Munich",
        asn=3209,
        asn_org="Vodafone GmbH",
        familiar_location=True,
        attempts=attempts,
        first_seen=first,
        last_seen=last,
        error_numbers=(500121,),
    )


def expected_report(alerts: list[Alert]) -> CredentialsReport:
    def ids(user: str) -> tuple[str, ...]:
        mine = sorted((a for a in alerts if a.user == user), key=lambda a: (a.first_seen, a.alert_id))
        return tuple(a.alert_id for a in mine)

    vpn = ExposureSource(
        ip=VPN_NL,
        country="NL",
        city="Amsterdam",
        asn=9009,
        asn_org="M247 Europe SRL",
        anonymizer="vpn",
        vpn_operator="NordVPN",
        hosting=True,
        attempts=1,
        first_seen=t(16),
        last_seen=t(16),
        reasons=("vpn", "new_country"),
        error_numbers=(500121,),
    )
    alice = ExposedUser(
        user=ALICE,
        user_key=oid_of(ALICE),
        severity=Severity.HIGH,
        attempts=3,
        first_seen=t(15),
        last_seen=t(16),
        risky=True,
        reasons=("vpn", "new_country"),
        sources=(vpn, _home(2, t(15), t(15, 30))),
        alert_ids=ids(ALICE),
    )
    bob = ExposedUser(
        user=BOB,
        user_key=oid_of(BOB),
        severity=Severity.HIGH,
        attempts=3,
        first_seen=t(17),
        last_seen=t(17, 10),
        mfa_fatigue=True,
        risky=True,
        reasons=("mfa_fatigue",),
        sources=(_home(3, t(17), t(17, 4)),),
        alert_ids=ids(BOB),
    )
    return CredentialsReport(
        tenant_id=TEST_TENANT, period_start=START, period_end=END, generated_at=GENERATED, users=(alice, bob)
    )


def _other(detector: str = "signin_mfa_failure", tenant: str = TEST_TENANT) -> Alert:
    return Alert(
        alert_id="al-other",
        detector=detector,
        title="x" * 10,
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.CRITICAL,
        tenant_id=tenant,
        user="mallory@fabrikam.com",
        user_key="mallory",
        first_seen=t(16).timestamp(),
        last_seen=t(16).timestamp(),
        evidence_record_ids=["r"],
        mitre=("T1621",),
        summary="s",
        dedup_key="k",
        ip="192.0.2.1",
        context={"ip": "192.0.2.1", "reasons": ["vpn"]},
    )


def test_report_groups_the_week_per_user_worst_first() -> None:
    alerts = week_of_alerts()
    noise = [_other(tenant="another-tenant"), _other(detector="signin_anonymizer")]
    report = build_credentials_report(
        [*alerts, *noise], tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED
    )
    expected = expected_report(alerts)
    assert report == expected
    assert report.attempts == 6


@pytest.mark.parametrize("form", ["alert", "dict", "stored"])
def test_inputs_may_be_alerts_dicts_or_stored_alerts(form: str) -> None:
    alerts = week_of_alerts()
    forms: dict[str, list[Any]] = {
        "alert": alerts,
        "dict": [a.to_dict() for a in alerts],
        "stored": [StoredAlert(a) for a in alerts],
    }
    report = build_credentials_report(forms[form], tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    baseline = build_credentials_report(alerts, tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    assert report == baseline
    assert [u.user for u in report.users] == [ALICE, BOB]


def test_dismissed_alerts_are_left_out_unless_asked() -> None:
    alerts = week_of_alerts()
    stored = [StoredAlert(a, AlertStatus.DISMISSED if a.user == BOB else AlertStatus.NEW) for a in alerts]
    kept = build_credentials_report(stored, tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    assert [u.user for u in kept.users] == [ALICE]
    every = build_credentials_report(
        stored, tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED, include_dismissed=True
    )
    assert [u.user for u in every.users] == [ALICE, BOB]


def test_an_earlier_week_holds_only_carol() -> None:
    report = build_credentials_report(
        week_of_alerts(),
        tenant_id=TEST_TENANT,
        start=datetime(2024, 5, 6, tzinfo=UTC),
        end=START,
        generated_at=GENERATED,
    )
    assert report.users == (
        ExposedUser(
            user=CAROL,
            user_key=oid_of(CAROL),
            severity=Severity.LOW,
            attempts=1,
            first_seen=t(5),
            last_seen=t(5),
            sources=(_home(1, t(5), t(5)),),
            alert_ids=report.users[0].alert_ids,
        ),
    )
    assert len(report.users[0].alert_ids) == 1


def test_json_round_trips_the_model() -> None:
    alerts = week_of_alerts()
    report = build_credentials_report(alerts, tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    doc = orjson.loads(credentials_report_json(report))
    assert doc == {**report.model_dump(mode="json"), "attempts": 6, "data_credit": DATA_CREDIT}
    assert doc["period_start"] == "2024-05-13T00:00:00Z"
    assert CredentialsReport.model_validate({k: v for k, v in doc.items() if k in CredentialsReport.model_fields}) == (
        report
    )


def test_html_table_rows_and_escaping() -> None:
    evil = "<script>alert(1)</script>@contoso.com"
    alert = _other()
    alert.user = evil
    alert.context = {"ip": "192.0.2.1", "country": "US", "city": "<b>", "reasons": ["vpn"], "anonymizer": "vpn"}
    report = build_credentials_report([alert], tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    page = render_credentials_html(report)
    assert "<script>" not in page and "<b>" not in page
    row = (
        "<tr><td>&lt;script&gt;alert(1)&lt;/script&gt;@contoso.com</td>"
        '<td class="sev-critical">critical</td><td>1</td>'
        "<td>192.0.2.1 – &lt;b&gt;, US [vpn] ×1</td>"
        "<td>vpn</td><td>2024-05-17 08:00 UTC</td><td>2024-05-17 08:00 UTC</td></tr>"
    )
    assert row in page
    assert DATA_CREDIT in page


def test_html_of_a_quiet_week() -> None:
    report = build_credentials_report([], tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED)
    assert report.users == ()
    page = render_credentials_html(report)
    assert '<tr><td colspan="7">No user had a correct password followed by failed MFA.</td></tr>' in page
    assert "0 users whose password was used correctly" in page


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        build_credentials_report([], tenant_id=TEST_TENANT, start=END, end=START)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (datetime(2024, 5, 20, 6, 0, tzinfo=UTC), START, END),  # Monday morning
        (datetime(2024, 5, 26, 23, 59, tzinfo=UTC), START, END),  # Sunday night
        (datetime(2024, 5, 27, 0, 0, tzinfo=UTC), END, datetime(2024, 5, 27, tzinfo=UTC)),
    ],
)
def test_last_week(now: datetime, start: datetime, end: datetime) -> None:
    assert last_week(now) == (start, end)


def test_html_names_mfa_fatigue_once() -> None:
    report = build_credentials_report(
        week_of_alerts(), tenant_id=TEST_TENANT, start=START, end=END, generated_at=GENERATED
    )
    page = render_credentials_html(report)
    bob = (
        '<tr><td>bob@contoso.com</td><td class="sev-high">high</td><td>3</td>'
        "<td>203.0.113.7 – Munich, DE [familiar location] ×3</td><td><strong>MFA fatigue</strong></td>"
        "<td>2024-05-18 08:00 UTC</td><td>2024-05-18 08:10 UTC</td></tr>"
    )
    assert bob in page
    assert "<td>vpn, new country</td>" in page
