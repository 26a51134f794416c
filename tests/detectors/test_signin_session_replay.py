"""One sign-in session seen from a second network (AiTM token replay).

Record shapes: sign-ins as in records.signin (DeviceProperties with SessionId, management-activity-api.md §9);
SharePoint file records carry the session in ``AppAccessContext.AADSessionId`` as in Sekoia's public sample
SEKOIA-IO/intake-formats "Office 365/o365/tests/file_sync_download_full.json" and the Common schema's
AppAccessContext complex type (Office 365 Management Activity API schema).
"""

from __future__ import annotations

from typing import Any

from records import (
    HOME_DE,
    HOSTING_US,
    MOBILE_HH,
    NY_US,
    OFFICE_DE,
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    expected_alert,
    file_record,
    identity_enricher,
    ip_info,
    oid_of,
    signin,
)

from detectors.signin_session_replay import SigninSessionReplay
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
SESSION = "8a1f3c2e-55b0-4d7e-9c1a-2f6e0b9d4c11"
RISKY_INFO = {RISKY_IP: ip_info(RISKY_IP, country="DE", city="Berlin", asn=60729, asn_org="Tor exit", is_tor=True)}


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, SigninSessionReplay],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(RISKY_INFO),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def in_session(rec: dict[str, Any], session: str = SESSION) -> dict[str, Any]:
    """The sign-in record with its DeviceProperties SessionId set to ``session``."""
    rec["DeviceProperties"] = [
        {"Name": "SessionId", "Value": session} if p["Name"] == "SessionId" else p for p in rec["DeviceProperties"]
    ]
    return rec


def file_in_session(ip: str, *, when: str, session: str = SESSION) -> dict[str, Any]:
    rec = file_record("FileDownloaded", ALICE, when=when, ip=ip, file_name="Payroll.xlsx")
    rec["AppAccessContext"] = {
        "AADSessionId": session,
        "CorrelationId": "c299a0a0-14da-428a-b08d-481d562298cb",
        "UniqueTokenId": "2xk3bQ9yZ0aV1cW4dE5fGg",
    }
    return rec


def test_a_session_of_home_reused_from_a_hosting_provider_abroad_is_high() -> None:
    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    reuse = in_session(signin(ALICE, when=at(minutes=20), ip=HOSTING_US))
    assert run([first, reuse]) == [
        expected_alert(
            SigninSessionReplay,
            records=[first, reuse],
            severity="high",
            summary=f"Sign-in session of {ALICE} first used from {HOME_DE} (DE, AS3320) reused from another country "
            f"(hosting): {HOSTING_US} (US, AS14061) by UserLoggedIn",
            dedup_key=f"{oid_of(ALICE)}|{SESSION}",
            ip=HOSTING_US,
            context={
                "session_id": SESSION,
                "first_ip": HOME_DE,
                "first_asn": 3320,
                "first_country": "DE",
                "first_seen": first["CreationTime"] + "Z",
                "reuse_ip": HOSTING_US,
                "reuse_asn": 14061,
                "reuse_country": "US",
                "reuse_ip_risk": "hosting",
                "reuse_operation": "UserLoggedIn",
                "risk": None,
            },
        )
    ]


def test_the_token_reused_by_a_workload_record_from_another_country_is_high() -> None:
    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    reuse = file_in_session(NY_US, when=at(minutes=45))
    got = run([first, reuse])
    assert [(a["severity"], a["evidence_record_ids"], a["context"]["reuse_operation"]) for a in got] == [
        ("high", [first["Id"], reuse["Id"]], "FileDownloaded")
    ]
    assert got[0]["user_key"] == oid_of(ALICE)


def test_another_provider_in_the_same_country_is_medium_and_critical_after_a_risky_sign_in() -> None:
    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    office = in_session(signin(ALICE, when=at(minutes=30), ip=OFFICE_DE))
    assert [a["severity"] for a in run([first, office])] == ["medium"]
    # a risky sign-in (another session) shortly before the replay raises it one step
    risky = signin(ALICE, when=at(minutes=10), ip=RISKY_IP)
    got = run([first, risky, office])
    assert [(a["severity"], a["context"]["risk"]["record_id"]) for a in got] == [("high", risky["Id"])]


def test_ordinary_laptop_moving_to_a_phone_hotspot_is_low_and_the_same_network_is_silent() -> None:
    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    again = in_session(signin(ALICE, when=at(hours=3), ip=HOME_DE))
    assert run([first, again]) == []
    office = in_session(signin(ALICE, when=at(minutes=0), ip=OFFICE_DE))
    hotspot = in_session(signin(ALICE, when=at(minutes=40), ip=MOBILE_HH))
    assert [a["severity"] for a in run([office, hotspot])] == ["low"]


def test_different_sessions_and_expired_sessions_do_not_alert() -> None:
    home = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE), "11111111-2222-3333-4444-555555555555")
    travel = in_session(signin(ALICE, when=at(minutes=30), ip=NY_US), "66666666-7777-8888-9999-000000000000")
    assert run([home, travel]) == []
    old = in_session(signin(ALICE, when=at(days=0), ip=HOME_DE))
    late = in_session(signin(ALICE, when=at(days=8), ip=NY_US))
    assert run([old, late]) == []


def test_one_alert_per_session_and_failed_sign_ins_ignored() -> None:
    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    failed = in_session(signin(ALICE, when=at(minutes=5), ip=NY_US, error=50126))
    reuse1 = in_session(signin(ALICE, when=at(minutes=10), ip=HOSTING_US))
    reuse2 = file_in_session(HOSTING_US, when=at(minutes=12))
    got = run([first, failed, reuse1, reuse2])
    assert [(a["severity"], a["count"], a["evidence_record_ids"]) for a in got] == [
        ("high", 1, [first["Id"], reuse1["Id"]])
    ]


# Entra sign-in logs (issue #23): the session id of interactive and non-interactive sign-ins (Graph ``sessionId``,
# the portal's "Session ID"), mapped by shared.records.signins into the same DeviceProperties SessionId.


def test_a_non_interactive_sign_in_log_entry_reusing_the_session_abroad_is_high() -> None:
    from signin_log_records import log_signin

    first = log_signin(ALICE, when=at(minutes=0), ip=HOME_DE, session=SESSION)
    reuse = log_signin(ALICE, when=at(minutes=25), ip=HOSTING_US, session=SESSION, category="nonInteractiveUser")
    got = run([first, reuse])
    assert [(a["severity"], a["evidence_record_ids"], a["context"]["session_id"]) for a in got] == [
        ("high", [first["Id"], reuse["Id"]], SESSION)
    ]


def test_the_audit_log_and_the_sign_in_log_name_the_same_session() -> None:
    from signin_log_records import log_signin

    first = in_session(signin(ALICE, when=at(minutes=0), ip=HOME_DE))
    reuse = log_signin(ALICE, when=at(minutes=25), ip=NY_US, session=SESSION.upper(), category="nonInteractiveUser")
    assert [a["severity"] for a in run([first, reuse])] == ["high"]
    same_place = log_signin(ALICE, when=at(minutes=25), ip=HOME_DE, session=SESSION, category="nonInteractiveUser")
    assert run([first, same_place]) == []
