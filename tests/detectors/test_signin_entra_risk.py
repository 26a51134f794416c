"""Successful sign-ins Entra ID Protection rated risky (Entra sign-in log)."""

from __future__ import annotations

from typing import Any

from records import HOME_DE, TOR_DE, at, signin, signin_enricher
from signin_log_records import log_signin

from detectors.signin_entra_risk import SigninEntraRisk
from shared.detection.testing import run_detector


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(SigninEntraRisk, records, enricher=signin_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_high_risk_sign_in_alerts_with_the_detections() -> None:
    rec = log_signin(
        ip=HOME_DE, risk_during="high", risk_aggregated="high", risk_state="atRisk", risk_types=("unfamiliarFeatures",)
    )
    [alert] = run([rec])
    assert alert["severity"] == "high"
    assert alert["summary"] == (
        f"alice@contoso.com signed in from {HOME_DE} although Entra rated the sign-in high risk (unfamiliarFeatures)"
    )
    assert alert["context"]["risk_event_types"] == ["unfamiliarFeatures"]
    assert alert["context"]["risk_state"] == "atRisk"


def test_medium_risk_from_tor_is_raised_and_compromised_is_critical() -> None:
    medium = log_signin(ip=TOR_DE, risk_during="medium", risk_state="atRisk", risk_types=("anonymizedIPAddress",))
    [alert] = run([medium])
    assert alert["severity"] == "high" and alert["context"]["reasons"] == ["tor"]
    compromised = log_signin(ip=HOME_DE, risk_aggregated="high", risk_state="confirmedCompromised", when=at(hours=2))
    [alert] = run([compromised])
    assert alert["severity"] == "critical"
    assert "confirmed compromised" in alert["summary"]


def test_ordinary_and_closed_risks_do_not_alert() -> None:
    records = [
        log_signin(ip=HOME_DE, when=at(minutes=1)),  # no risk
        log_signin(ip=HOME_DE, risk_during="low", risk_state="atRisk", when=at(minutes=2)),  # low
        log_signin(ip=HOME_DE, risk_during="hidden", risk_state="none", when=at(minutes=3)),  # no P2 licence
        log_signin(ip=HOME_DE, risk_during="high", risk_state="remediated", when=at(minutes=4)),
        log_signin(ip=HOME_DE, risk_during="high", risk_state="dismissed", when=at(minutes=5)),
        log_signin(ip=HOME_DE, risk_during="high", risk_state="atRisk", error=53003, when=at(minutes=6)),  # blocked
        signin(ip=TOR_DE, when=at(minutes=7)),  # the audit log carries no risk level
    ]
    assert run(records) == []
