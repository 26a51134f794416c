"""Bursts of MailItemsAccessed well above the user's own baseline, and throttled mailbox logging."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    GRAPH_POWERSHELL_APP,
    HOME_DE,
    OUTLOOK_APP,
    TEST_TENANT,
    at,
    expected_alert,
    identity_enricher,
    mailbox_record,
)

from detectors.exfil_mass_mail_access import ExfilMassMailAccess
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ALICE = "alice@contoso.com"
REST = "Client=REST;Client=RESTSystem;;"
OWA_APP = "9199bf20-a13f-4107-85dc-02114787ef48"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        ExfilMassMailAccess,
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
        batch_size=50,
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def baseline(per_hour: int, hours: int = 12, upn: str = ALICE) -> list[dict[str, Any]]:
    """One OWA read of ``per_hour`` items in each of ``hours`` active hours over the previous days."""
    return [
        mailbox_record(
            "MailItemsAccessed",
            upn,
            when=at(hours=2 * h),
            app=OWA_APP,
            client_info="Client=OWA;Action=ViaProxy",
            items=per_hour,
            seq=h,
        )
        for h in range(hours)
    ]


def burst(n: int, items: int, *, app: str = GRAPH_POWERSHELL_APP, client_info: str = REST) -> list[dict[str, Any]]:
    return [
        mailbox_record(
            "MailItemsAccessed",
            ALICE,
            when=at(days=2, minutes=3 * i),
            app=app,
            client_info=client_info,
            items=items,
            seq=100 + i,
        )
        for i in range(n)
    ]


def test_graph_powershell_reading_600_items_in_an_hour_after_a_quiet_baseline_is_critical() -> None:
    reads = burst(6, 100)
    got = run([*baseline(20), *reads])
    assert got == [
        expected_alert(
            ExfilMassMailAccess,
            records=reads[:5],
            severity="critical",
            summary=f"500 mail items read from {ALICE} in under an hour (usual 20) via rest",
            dedup_key=f"{ALICE}|volume",
            user_key=ALICE,
            ip=HOME_DE,
            last_seen=reads[4]["CreationTime"] + "Z",
            context={
                "items": 500,
                "threshold": 500.0,
                "baseline_per_hour": 20.0,
                "hours_learned": 12,
                "window_start": reads[0]["CreationTime"] + "Z",
                "via": "rest",
                "client_app_id": GRAPH_POWERSHELL_APP,
                "client_app_name": "Microsoft Graph Command Line Tools",
                "risk": None,
            },
        )
    ]


def test_a_heavy_reader_needs_ten_times_their_usual_hour() -> None:
    reads = burst(9, 100, app=OWA_APP, client_info="Client=OWA;Action=ViaProxy")
    assert run([*baseline(100), *reads]) == []
    more = burst(12, 100, app=OWA_APP, client_info="Client=OWA;Action=ViaProxy")
    got = run([*baseline(100), *more])
    assert [(a["severity"], a["context"]["items"], a["context"]["threshold"]) for a in got] == [("high", 1000, 1000.0)]


def test_no_baseline_yet_uses_the_floor() -> None:
    reads = burst(5, 100, app=OUTLOOK_APP, client_info="Client=MSExchangeRPC")
    got = run(reads)
    assert [(a["severity"], a["summary"]) for a in got] == [
        ("high", f"500 mail items read from {ALICE} in under an hour (no baseline yet) via outlook")
    ]


def test_throttled_logging_is_reported_once_a_day() -> None:
    recs = [
        mailbox_record("MailItemsAccessed", ALICE, when=at(minutes=i), items=1, throttled=True, seq=i) for i in range(3)
    ]
    got = run(recs)
    assert got == [
        expected_alert(
            ExfilMassMailAccess,
            records=recs[:1],
            severity="medium",
            summary=f"MailItemsAccessed logging throttled for {ALICE} (over 1,000 mail-access records in 24 hours; "
            "last client outlook)",
            dedup_key=f"{ALICE}|throttled",
            user_key=ALICE,
            ip=HOME_DE,
            context={"via": "outlook", "client": "Microsoft Outlook", "risk": None},
        )
    ]


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(burst(4, 100), id="400-items-below-floor"),
        pytest.param(
            [
                mailbox_record(
                    "MailItemsAccessed",
                    ALICE,
                    when=at(minutes=i),
                    client_info="Client=MSExchangeRPC",
                    access_type="Sync",
                    seq=i,
                )
                for i in range(900)
            ],
            id="outlook-sync-of-a-new-profile",
        ),
        pytest.param(
            [
                *burst(3, 100)[:3],
                *[
                    mailbox_record(
                        "MailItemsAccessed", ALICE, when=at(days=2, hours=2, minutes=i), items=100, seq=300 + i
                    )
                    for i in range(3)
                ],
            ],
            id="600-items-spread-over-two-hours",
        ),
    ],
)
def test_no_alert(records: list[dict[str, Any]]) -> None:
    assert run(records) == []
