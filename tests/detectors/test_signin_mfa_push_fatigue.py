"""MFA push fatigue: repeated denied or unanswered prompts, or a prompt reported as fraud (Entra sign-in log).

Result texts as the sign-in log writes them (``status.additionalDetails`` / ``authenticationStepResultDetail``):
"MFA denied; user declined the authentication", "MFA denied; user did not respond to mobile app notification",
"MFA denied; Phone App Reported Fraud", "Invalid verification code" (a one-time code, not a push).
"""

from __future__ import annotations

from typing import Any

from records import SPRAY_IP, at, signin, signin_enricher
from signin_log_records import log_signin

from detectors.signin_mfa_push_fatigue import SigninMfaPushFatigue
from shared.detection.testing import run_detector

DECLINED = "MFA denied; user declined the authentication"
UNANSWERED = "MFA denied; user did not respond to mobile app notification"
FRAUD = "MFA denied; Phone App Reported Fraud"
FAILURE = "Authentication failed during strong authentication request."


def prompt(details: str, *, minute: float, seq: int = 0, **kw: Any) -> dict[str, Any]:
    return log_signin(
        ip=SPRAY_IP, error=500121, failure=FAILURE, details=details, when=at(minutes=minute), seq=seq, **kw
    )


def run(records: list[dict[str, Any]], *, batch_size: int = 0) -> list[dict[str, Any]]:
    got = run_detector(SigninMfaPushFatigue, records, enricher=signin_enricher(), batch_size=batch_size)
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_three_denied_or_unanswered_prompts_within_minutes_alert() -> None:
    records = [prompt(DECLINED, minute=0), prompt(UNANSWERED, minute=2), prompt(DECLINED, minute=4)]
    [alert] = run(records, batch_size=1)
    assert alert["severity"] == "high"
    assert alert["evidence_record_ids"] == [r["Id"] for r in records]
    assert alert["summary"] == (
        "MFA push fatigue: alice@contoso.com received 3 MFA prompts it declined or left unanswered since "
        f"2024-05-01T08:00:00Z (sign-ins from {SPRAY_IP})"
    )
    assert alert["context"]["outcomes"] == ["denied", "unanswered"] and alert["context"]["prompts"] == 3


def test_the_step_detail_counts_like_the_status_detail() -> None:
    step = [
        {
            "authenticationMethod": "Mobile app notification",
            "succeeded": False,
            "authenticationStepResultDetail": DECLINED,
        }
    ]
    records = [log_signin(ip=SPRAY_IP, error=500121, when=at(minutes=m), steps=step, seq=m) for m in (0, 1, 2)]
    assert len(run(records)) == 1


def test_a_prompt_reported_as_fraud_alerts_at_once() -> None:
    [alert] = run([prompt(FRAUD, minute=0)])
    assert alert["summary"].startswith("MFA push fatigue: alice@contoso.com reported an MFA prompt as fraud")
    assert alert["context"]["outcomes"] == ["fraud"]


def test_ordinary_prompts_do_not_alert() -> None:
    records = [
        prompt(DECLINED, minute=0),  # one declined prompt
        prompt(DECLINED, minute=20),  # another, outside the window of the first
        prompt("Invalid verification code", minute=22),  # a wrong one-time code, not a push
        prompt(UNANSWERED, minute=50),  # more than 15 minutes after the one at 20
        signin(error=500121, when=at(minutes=51)),  # the audit log does not say how MFA failed
        signin(error=500121, when=at(minutes=52), seq=1),
        log_signin(when=at(minutes=53)),  # a prompt answered: success
    ]
    assert run(records) == []
