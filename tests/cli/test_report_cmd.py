"""`itdr report credentials` from the output of `itdr scan`, offline."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.cli.main import main

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
OID = "c3f3b8b0-1111-2222-3333-444455556666"


def mfa_failure(i: int) -> dict[str, object]:
    return {
        "CreationTime": f"2026-11-24T09:{i:02d}:00",
        "Id": f"mfa-{i}",
        "Operation": "UserLoginFailed",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "ResultStatus": "Failed",
        "UserKey": OID,
        "Workload": "AzureActiveDirectory",
        "ClientIP": "73.15.22.10",
        "UserId": "megan@contoso.com",
        "Actor": [{"ID": OID, "Type": 0}, {"ID": "megan@contoso.com", "Type": 5}],
        "ApplicationId": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "ErrorNumber": "500121",
        "LogonError": "AuthenticationFailedSasError",
    }


def test_report_lists_the_user_whose_password_is_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "records.json"
    records.write_bytes(orjson.dumps([mfa_failure(1)]))
    alerts = tmp_path / "alerts.jsonl"
    assert main(["scan", str(records), "--format", "jsonl", "--output", str(alerts)]) == 0
    (alert,) = [orjson.loads(x) for x in alerts.read_bytes().splitlines()]
    assert (alert["detector"], alert["severity"], alert["context"].get("report_only")) == (
        "signin_mfa_failure",
        "low",
        True,
    )
    capsys.readouterr()
    rc = main(
        [
            "report",
            "credentials",
            "--tenant",
            TENANT,
            "--alerts",
            str(alerts),
            "--since",
            "2026-11-23",
            "--until",
            "2026-11-30",
        ]
    )
    assert rc == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["tenant_id"] == TENANT
    assert [u["user"] for u in report["users"]] == ["megan@contoso.com"]


def test_report_with_a_bad_period_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"")
    rc = main(
        [
            "report",
            "credentials",
            "--tenant",
            TENANT,
            "--alerts",
            str(tmp_path / "a.jsonl"),
            "--since",
            "2026-12-01",
            "--until",
            "2026-11-01",
        ]
    )
    assert rc == 2
