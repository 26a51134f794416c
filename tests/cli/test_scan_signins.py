"""`itdr scan` reads Entra sign-in log exports beside audit logs, in one timeline (issue #23 items 2 and 3).

Shapes, as the tools that write them do (sources in tests/records/signin_fixtures.py): a Graph ``auditLogs/signIns``
page (``{"value": [...]}``, ``@odata.nextLink``), the Entra portal's JSON download (an array of beta-shaped
sign-ins), its CSV download, diagnostic settings lines (``time``/``category``/``properties``), and the unified
audit log's ``UserLoggedIn`` / ``UserLoginFailed`` records of the same sign-ins (``IntraSystemId`` = request id).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.cli.main import main
from tests.records.signin_fixtures import PORTAL_CSV_HEADER, TENANT, portal_csv_row

ALICE = "alice@contoso.com"
ALICE_ID = "5f09333a-842c-47da-a157-57da27fcbca5"


def graph_signin(i: int, *, error: int = 0, ip: str = "198.51.100.10", minute: int = 0, **extra: Any) -> dict[str, Any]:
    """A beta-shaped Graph signIn (the Entra portal's JSON download has the same shape)."""
    return {
        "id": f"0b5e7c1a-1111-4222-8333-{i:012d}",
        "createdDateTime": f"2024-05-01T08:{minute:02d}:{i % 60:02d}Z",
        "userDisplayName": "Alice Example",
        "userPrincipalName": ALICE,
        "userId": ALICE_ID,
        "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": f"c0c0c0c0-1111-4222-8333-{i:012d}",
        "conditionalAccessStatus": "success",
        "isInteractive": True,
        "signInEventTypes": ["interactiveUser"],
        "resourceTenantId": TENANT,
        "homeTenantId": TENANT,
        "riskLevelDuringSignIn": "none",
        "riskLevelAggregated": "none",
        "riskState": "none",
        "status": {"errorCode": error, "failureReason": "Invalid username or password." if error else None},
        "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Edge 124.0"},
        **extra,
    }


def audit_of(signin: dict[str, Any]) -> dict[str, Any]:
    """The unified audit log's record of the same sign-in (RecordType 15, IntraSystemId = the request id)."""
    error = signin["status"]["errorCode"]
    return {
        "CreationTime": signin["createdDateTime"].rstrip("Z"),
        "Id": "ual-" + signin["id"],
        "Operation": "UserLoginFailed" if error else "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "ResultStatus": "Failed" if error else "Success",
        "UserKey": ALICE_ID,
        "Workload": "AzureActiveDirectory",
        "ClientIP": signin["ipAddress"],
        "UserId": ALICE,
        "Actor": [{"ID": ALICE_ID, "Type": 0}, {"ID": ALICE, "Type": 5}],
        "ApplicationId": signin["appId"],
        "ErrorNumber": str(error),
        "LogonError": "InvalidUserNameOrPassword" if error else None,
        "InterSystemsId": signin["correlationId"],
        "IntraSystemId": signin["id"],
        "ExtendedProperties": [{"Name": "RequestType", "Value": "Login:login"}],
        "DeviceProperties": [{"Name": "SessionId", "Value": "9d8c7b6a-5f4e-4d3c-8b2a-190817263544"}],
    }


def scan(tmp_path: Path, *paths: Path) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    summary = tmp_path / "summary.json"
    out = tmp_path / "alerts.jsonl"
    rc = main(
        ["scan", *map(str, paths), "--format", "jsonl", "--output", str(out), "--summary", str(summary), "--quiet"]
    )
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
    return rc, alerts, orjson.loads(summary.read_bytes())


def counts(s: dict[str, Any]) -> tuple[int, int, int]:
    return s["records_read"], s["records_processed"], s["records_quarantined"]


def test_the_27_sign_ins_of_a_graph_page_are_read_not_quarantined(tmp_path: Path) -> None:
    page = {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
        "value": [graph_signin(i, minute=i // 10) for i in range(27)],
        "@odata.nextLink": "https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken=abc",
    }
    path = tmp_path / "signins.json"
    path.write_bytes(orjson.dumps(page))
    rc, alerts, s = scan(tmp_path, path)
    assert rc == 0
    assert counts(s) == (27, 27, 0) and s["quarantine_reasons"] == {}
    assert alerts == []


def test_portal_downloads_and_diagnostic_lines_beside_the_audit_log_in_one_timeline(tmp_path: Path) -> None:
    portal_json = tmp_path / "InteractiveSignIns_2024-05-01.json"
    portal_json.write_bytes(orjson.dumps([graph_signin(i) for i in range(3)]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(PORTAL_CSV_HEADER)
    for i in range(3, 5):
        w.writerow(
            portal_csv_row(
                **{"Request ID": f"0b5e7c1a-1111-4222-8333-{i:012d}", "Date (UTC)": f"2024-05-01T08:00:{i:02d}Z"}
            )
        )
    portal_csv = tmp_path / "InteractiveSignIns_2024-05-01.csv"
    portal_csv.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode())
    diagnostic = tmp_path / "PT1H.json"
    diagnostic.write_bytes(
        b"\n".join(
            orjson.dumps(
                {
                    "time": f"2024-05-01T08:01:{i:02d}Z",
                    "category": "NonInteractiveUserSignInLogs",
                    "tenantId": TENANT,
                    "operationName": "Sign-in activity",
                    "properties": graph_signin(i, minute=1),
                }
            )
            for i in range(5, 8)
        )
    )
    audit = tmp_path / "ual.json"
    audit.write_bytes(
        orjson.dumps([audit_of(graph_signin(i, minute=2)) | {"IntraSystemId": f"other-{i}"} for i in range(8, 10)])
    )
    rc, _alerts, s = scan(tmp_path, portal_json, portal_csv, diagnostic, audit)
    assert rc == 0
    assert counts(s) == (10, 10, 0)
    assert (s["files_read"], s["files_skipped"]) == (4, [])


def failures(n: int) -> list[dict[str, Any]]:
    return [graph_signin(i, error=50126, ip="45.140.13.7") for i in range(n)]


@pytest.mark.parametrize(("both_sources", "n", "alerted"), [(True, 6, False), (False, 6, False), (False, 10, True)])
def test_one_sign_in_from_both_sources_is_counted_once(
    tmp_path: Path, both_sources: bool, n: int, alerted: bool
) -> None:
    """Brute force needs 10 wrong passwords in 10 minutes: 6 failures sent by both sources stay 6."""
    logs = failures(n)
    (tmp_path / "signins.json").write_bytes(orjson.dumps({"value": logs}))
    paths = [tmp_path / "signins.json"]
    if both_sources:
        (tmp_path / "ual.json").write_bytes(orjson.dumps([audit_of(x) for x in logs]))
        paths.append(tmp_path / "ual.json")
    rc, alerts, s = scan(tmp_path, *paths)
    assert rc == 0 and s["records_quarantined"] == 0
    assert s["records_processed"] == (2 * n if both_sources else n)  # every record read is counted
    assert [a["detector"] for a in alerts if a["detector"] == "signin_brute_force"] == (
        ["signin_brute_force"] if alerted else []
    )


def test_the_sign_in_sample_of_the_report_counts_a_merged_sign_in_once(tmp_path: Path) -> None:
    from shared.cli.scan import ScanConfig
    from shared.cli.scan import scan as run

    logs = [graph_signin(i, ip="198.51.100.10") for i in range(3)]
    (tmp_path / "signins.json").write_bytes(orjson.dumps({"value": logs}))
    (tmp_path / "ual.json").write_bytes(orjson.dumps([audit_of(x) for x in logs]))
    result = run([str(tmp_path / "signins.json"), str(tmp_path / "ual.json")], ScanConfig.load(None))
    assert (result.records_processed, result.signins_total, len(result.signins)) == (6, 3, 3)
