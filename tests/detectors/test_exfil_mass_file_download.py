"""Bursts of FileDownloaded well above the user's own baseline."""

from __future__ import annotations

from typing import Any

from records import (
    EDGE_UA,
    HOME_DE,
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    expected_alert,
    file_record,
    identity_enricher,
    signin,
)

from detectors.exfil_mass_file_download import ExfilMassFileDownload
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
SITE = "https://contoso.sharepoint.com/sites/finance/"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        ExfilMassFileDownload,
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
        batch_size=40,
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def downloads(n: int, *, days: float = 3, ua: str = EDGE_UA, start_hour: float = 0) -> list[dict[str, Any]]:
    return [
        file_record(
            "FileDownloaded",
            ALICE,
            when=at(days=days, hours=start_hour, seconds=10 * i),
            file_name=f"f{i}.xlsx",
            user_agent=ua,
            seq=i,
        )
        for i in range(n)
    ]


def usual_days(per_hour: int = 3, hours: int = 8) -> list[dict[str, Any]]:
    return [r for h in range(hours) for r in downloads(per_hour, days=0, start_hour=2 * h)]


def test_150_downloads_by_a_script_is_critical() -> None:
    burst = downloads(160, ua="python-requests/2.31.0")
    got = run([*usual_days(), *burst])
    assert got == [
        expected_alert(
            ExfilMassFileDownload,
            records=burst[:10],
            severity="critical",
            summary=f"{ALICE} downloaded 150 files in under an hour (usual 3)",
            dedup_key=f"{ALICE}|downloads",
            user_key=ALICE,
            ip=HOME_DE,
            last_seen=burst[149]["CreationTime"] + "Z",
            context={
                "files": 150,
                "threshold": 150.0,
                "baseline_per_hour": 3.0,
                "hours_learned": 8,
                "window_start": burst[0]["CreationTime"] + "Z",
                "site": SITE,
                "user_agent": "python-requests/2.31.0",
                "user_agent_family": "python-requests",
                "risk": None,
            },
        )
    ]


def test_below_the_floor_or_the_users_own_tenfold_is_quiet() -> None:
    assert run([*usual_days(), *downloads(120)]) == []
    heavy = usual_days(per_hour=30)
    assert run([*heavy, *downloads(250)]) == []
    got = run([*heavy, *downloads(300)])
    assert [(a["severity"], a["context"]["files"], a["context"]["threshold"]) for a in got] == [("high", 300, 300.0)]


def test_after_a_risky_sign_in_a_smaller_burst_above_the_users_habit_alerts() -> None:
    login = signin(ALICE, when=at(days=3, minutes=-20), ip=RISKY_IP)
    burst = downloads(45)
    got = run_detector(
        [RiskySigninMarker, ExfilMassFileDownload],
        [*usual_days(), login, *burst],
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
        batch_size=40,
    )
    alerts = [a.to_dict() for a in got.alerts]
    # threshold max(40, 10 x usual 3) = 40; high raised one step for the risky sign-in
    assert [
        (a["severity"], a["context"]["files"], a["context"]["threshold"], a["context"]["risk"]["record_id"])
        for a in alerts
    ] == [("critical", 40, 40.0, login["Id"])]
    # the same 45 downloads without the risky sign-in stay below the floor of 150
    assert run([*usual_days(), *burst]) == []
