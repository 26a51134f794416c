"""`itdr scan` over every shape responders hand over, and over hostile input (issue #18).

Each test builds its inputs the way the tool that writes them does, from that tool's public source or
documentation (cited at each writer below), with the inbox-rule records of test_scan.py: records 1 and 3
make one high ``exchange_suspicious_inbox_rule`` alert each, record 2 none.
"""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.cli.main import main
from shared.cli.scan import ScanConfig, ScanOptions, scan
from tests.cli.test_scan import RECORDS, ROOT, TENANT, benign, rule_record

ITDR = ROOT / ".venv" / "bin" / "itdr"
EXPECTED = [("exchange_suspicious_inbox_rule", ["rule-1"]), ("exchange_suspicious_inbox_rule", ["rule-3"])]


def run_scan(tmp_path: Path, *paths: Path | str, extra: tuple[str, ...] = ()) -> tuple[int, list[Any], dict[str, Any]]:
    summary = tmp_path / "summary.json"
    rc = main(["scan", *map(str, paths), "--format", "jsonl", "--summary", str(summary), "--quiet", *extra])
    return rc, [], orjson.loads(summary.read_bytes())


def alerts_of(out: str) -> list[tuple[str, list[str]]]:
    return [(a["detector"], a["evidence_record_ids"]) for a in map(orjson.loads, out.splitlines())]


def counts(s: dict[str, Any]) -> tuple[int, int, int]:
    return s["records_read"], s["records_processed"], s["records_quarantined"]


# ------------------------------------------------------------------ writers of other tools' shapes


def search_row(rec: dict[str, Any], index: int, *, audit_as_object: bool) -> dict[str, Any]:
    """A ``Search-UnifiedAuditLog`` result row (Exchange Online PowerShell: RecordType, CreationDate, UserIds,
    Operations, AuditData, ResultIndex, ResultCount, Identity, IsValid, ObjectState)."""
    return {
        "RunspaceId": "6c0d2b6e-0b1f-4b7e-9f3c-0a1b2c3d4e5f",
        "RecordType": "ExchangeAdmin",
        "CreationDate": str(rec["CreationTime"]),
        "UserIds": rec["UserId"],
        "Operations": rec["Operation"],
        "AuditData": rec if audit_as_object else orjson.dumps(rec).decode(),
        "ResultIndex": index,
        "ResultCount": 3,
        "Identity": rec["Id"],
        "IsValid": True,
        "ObjectState": "Unchanged",
    }


def get_ual_json(records: list[dict[str, Any]]) -> bytes:
    """Microsoft-Extractor-Suite ``Get-UAL -Output JSON`` (Scripts/Get-UAL.ps1): per query window,
    ``$_.AuditData = $_.AuditData | ConvertFrom-Json``, then ``$results | ConvertTo-Json -Depth 100 |
    Out-File -Append`` and ``Add-Content "`n"``: pretty-printed arrays (4-space indent) concatenated in one file."""
    first = [search_row(records[0], 1, audit_as_object=True)]
    rest = [search_row(r, i, audit_as_object=True) for i, r in enumerate(records[1:], 2)]
    out = b""
    for window in (first, rest):
        text = orjson.dumps(window, option=orjson.OPT_INDENT_2).decode().replace("\n  ", "\n    ")
        out += text.replace("\n", "\r\n").encode() + b"\r\n\r\n"
    return out


def export_csv(rows: list[dict[str, Any]], *, encoding: str) -> bytes:
    """PowerShell ``Export-Csv -NoTypeInformation``: every field quoted, CRLF, the header from the first row;
    ``-Encoding UTF8`` in Windows PowerShell writes a BOM, ``Unicode`` is UTF-16 LE with BOM."""
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(list(rows[0]))
    for r in rows:
        w.writerow([v if isinstance(v, str) else orjson.dumps(v).decode() for v in r.values()])
    return buf.getvalue().encode(encoding)


def graph_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A Microsoft Graph ``microsoft.graph.security.auditLogRecord`` (auditLogRecord resource type, Graph docs):
    camel-case common properties and the service's record in ``auditData`` (``defaultAuditData``)."""
    audit = {k: v for k, v in rec.items() if k not in ("Id", "CreationTime", "OrganizationId", "UserId")}
    return {
        "@odata.type": "#microsoft.graph.security.auditLogRecord",
        "id": rec["Id"],
        "createdDateTime": f"{rec['CreationTime']}Z",
        "auditLogRecordType": "exchangeAdmin",
        "operation": rec["Operation"],
        "organizationId": rec["OrganizationId"],
        "userType": "regular",
        "userId": "6f4c5a2e-6d0a-4f71-9f43-2f1a0d9c8b7e",
        "service": "Exchange",
        "objectId": rec["ObjectId"],
        "userPrincipalName": rec["UserId"],
        "clientIp": "198.51.100.7",
        "administrativeUnits": [],
        "auditData": {"@odata.type": "#microsoft.graph.security.defaultAuditData", **audit},
    }


def office_activity(rec: dict[str, Any]) -> dict[str, Any]:
    """A Microsoft Sentinel ``OfficeActivity`` row (Azure Monitor Logs table reference): the record's fields
    under their names, the Id as ``OfficeId``, the time as ``TimeGenerated``, ``OfficeWorkload``; Parameters as
    the JSON text the table stores."""
    row = {k: v for k, v in rec.items() if k not in ("Id", "CreationTime", "Workload")}
    row["Parameters"] = orjson.dumps(rec["Parameters"]).decode()
    return {
        "TenantId": "b7a2c1d0-0000-4000-8000-000000000001",
        "TimeGenerated": f"{rec['CreationTime']}.000Z",
        "OfficeId": rec["Id"],
        "OfficeWorkload": rec["Workload"],
        **row,
        "Type": "OfficeActivity",
    }


# ------------------------------------------------------------------ shapes


SHAPES = {
    "get-ual.json": lambda: get_ual_json(RECORDS),
    "get-ual.csv": lambda: (
        b"\xef\xbb\xbf"
        + export_csv([search_row(r, i, audit_as_object=False) for i, r in enumerate(RECORDS, 1)], encoding="utf-8")
    ),
    "purview-utf16.csv": lambda: (
        b"\xff\xfe"
        + export_csv([search_row(r, i, audit_as_object=False) for i, r in enumerate(RECORDS, 1)], encoding="utf-16-le")
    ),
    "purview-utf16be.csv": lambda: (
        b"\xfe\xff"
        + export_csv([search_row(r, i, audit_as_object=False) for i, r in enumerate(RECORDS, 1)], encoding="utf-16-be")
    ),
    "get-ual-ps51.json": lambda: (
        b"\xff\xfe" + "\r\n".join(orjson.dumps(r).decode() for r in RECORDS).encode("utf-16-le")
    ),
    "graph-page.json": lambda: orjson.dumps(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/auditLog/queries('q')/records",
            "value": [graph_record(r) for r in RECORDS],
        }
    ),
    "graph-records.jsonl": lambda: b"\n".join(orjson.dumps(graph_record(r)) for r in RECORDS),
    "office-activity.json": lambda: orjson.dumps([office_activity(r) for r in RECORDS]),
    "office-activity.csv": lambda: export_csv(
        [
            {("TimeGenerated [UTC]" if k == "TimeGenerated" else k): v for k, v in office_activity(r).items()}
            for r in RECORDS
        ],
        encoding="utf-8",
    ),
    "concatenated.json": lambda: (
        orjson.dumps(RECORDS[:1]) + b"\n" + orjson.dumps(RECORDS[1:2]) + orjson.dumps(RECORDS[2])
    ),
    "pretty.json": lambda: orjson.dumps(RECORDS, option=orjson.OPT_INDENT_2),
    "crlf.jsonl": lambda: b"\r\n".join(orjson.dumps(r) for r in RECORDS) + b"\r\n",
    "bare-cr.jsonl": lambda: b"\r".join(orjson.dumps(r) for r in RECORDS) + b"\r",
    "export.zip": lambda: _zip(
        {"b/lines.jsonl": b"\n".join(orjson.dumps(r) for r in RECORDS[1:]), "a/first.json": orjson.dumps(RECORDS[:1])}
    ),
    "double.gz": lambda: gzip.compress(gzip.compress(orjson.dumps(RECORDS))),
}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_gives_the_same_alerts(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_bytes(SHAPES[name]())
    rc, _, s = run_scan(tmp_path, path)
    assert rc == 0
    assert alerts_of(capsys.readouterr().out) == EXPECTED
    assert counts(s) == (3, 3, 0)
    assert s["files_skipped"] == []


# ------------------------------------------------------------------ hostile input (the findings)


def test_a_long_first_json_lines_record_is_not_taken_for_one_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = rule_record(1) | {"Padding": "p" * 6000}
    lines = [first] + [benign(i % 60) | {"Id": f"b-{i}"} for i in range(168)]
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in lines) + b"\n")
    rc, _, s = run_scan(tmp_path, path)
    assert rc == 0 and counts(s) == (169, 169, 0)
    assert alerts_of(capsys.readouterr().out) == [("exchange_suspicious_inbox_rule", ["rule-1"])]


def test_a_record_nested_100000_deep_is_quarantined_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = b'{"Id":"deep","CreationTime":"2026-11-24T14:00:00","X":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(
        orjson.dumps(RECORDS[0]) + b"\n" + deep + b"\n" + orjson.dumps(RECORDS[1])
    )
    (tmp_path / "in" / "b.json").write_bytes(b"[" + deep + b"," + orjson.dumps(RECORDS[2]) + b"]")
    rc, _, s = run_scan(tmp_path, tmp_path / "in")
    assert rc == 0
    assert counts(s) == (5, 3, 2) and s["quarantine_reasons"] == {"too_deep": 2}
    assert alerts_of(capsys.readouterr().out) == EXPECTED


def test_one_nan_among_1001_records_quarantines_that_record_only(tmp_path: Path) -> None:
    records = [benign(i % 60) | {"Id": f"b-{i}"} for i in range(1001)]
    body = orjson.dumps(records)
    marker = b'"Id":"b-500"'
    body = body.replace(marker, marker + b',"Score":NaN')
    path = tmp_path / "nan.json"
    path.write_bytes(body)
    rc, _, s = run_scan(tmp_path, path)
    assert rc == 0 and counts(s) == (1001, 1000, 1) and s["quarantine_reasons"] == {"invalid_json": 1}


def test_bare_cr_in_a_csv_does_not_abort(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [search_row(r, i, audit_as_object=False) for i, r in enumerate(RECORDS, 1)]
    path = tmp_path / "mac.csv"
    path.write_bytes(export_csv(rows, encoding="utf-8").replace(b"\r\n", b"\r"))
    rc, _, s = run_scan(tmp_path, path)
    assert rc == 0 and counts(s) == (3, 3, 0)
    assert alerts_of(capsys.readouterr().out) == EXPECTED


def test_a_gzip_bomb_is_quarantined_past_the_cap_and_the_scan_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    bomb = gzip.compress(orjson.dumps(benign(5)) + b"\n" + b" " * (40 << 20), compresslevel=9)
    assert len(bomb) < 200_000
    (tmp_path / "in" / "bomb.jsonl.gz").write_bytes(bomb)
    (tmp_path / "in" / "good.json").write_bytes(orjson.dumps(RECORDS))
    rc, _, s = run_scan(tmp_path, tmp_path / "in", extra=("--max-expanded-mb", "8"))
    assert rc == 0
    assert counts(s) == (5, 4, 1) and s["quarantine_reasons"] == {"expansion_cap": 1}
    assert alerts_of(capsys.readouterr().out) == EXPECTED
    rc, _, s = run_scan(tmp_path, tmp_path / "in" / "bomb.jsonl.gz", extra=("--max-expansion-ratio", "50"))
    assert counts(s) == (1, 0, 1) and s["quarantine_reasons"] == {"expansion_cap": 1}


def test_files_that_are_not_audit_data_are_skipped_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "book.xlsx").write_bytes(_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}))
    (folder / "image.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "README.md").write_bytes(b"# Case notes\nCollected by the responder.\n")
    rows = [search_row(r, i, audit_as_object=False) for i, r in enumerate(RECORDS, 1)]
    (folder / "ual.csv").write_bytes(b"\xff\xfe" + export_csv(rows, encoding="utf-16-le"))
    summary = tmp_path / "s.json"
    proc = subprocess.run([str(ITDR), "scan", str(folder), "--summary", str(summary)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert alerts_of(proc.stdout.decode()) == EXPECTED
    s = orjson.loads(summary.read_bytes())
    assert counts(s) == (3, 3, 0) and s["files_read"] == 1
    assert [(Path(f["path"]).name, f["reason"].split(",")[0].split(":")[0]) for f in s["files_skipped"]] == [
        ("README.md", "not audit data"),
        ("book.xlsx", "an Office document (e.g. .xlsx)"),
        ("image.bin", "binary content"),
    ]
    err = [line for line in proc.stderr.decode().splitlines() if line.startswith("itdr scan: ")]
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in err] == ["skipped"] * 3


def test_a_wholly_quarantined_file_is_said_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(orjson.dumps([{"Foo": 1}, {"Foo": 2}]))
    proc = subprocess.run([str(ITDR), "scan", str(path)], capture_output=True, check=False)
    assert proc.returncode == 0
    assert [line for line in proc.stderr.decode().splitlines() if line.startswith("itdr scan: ")] == [
        f"itdr scan: {path}: all 2 records quarantined",
        "itdr scan: 2 of 2 records quarantined (missing_id 2)",
    ]


def test_quarantined_records_are_written_with_reason_and_location(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(RECORDS[0]) + b"\n{oops\n" + orjson.dumps(RECORDS[1]) + b"\n" + b'{"Id": "z"}\n')
    qfile = tmp_path / "q.jsonl"
    rc, _, s = run_scan(tmp_path, path, extra=("--quarantine", str(qfile)))
    assert rc == 0 and counts(s) == (4, 2, 2)
    got = [orjson.loads(x) for x in qfile.read_bytes().splitlines()]
    assert [(q["reason"], q["location"], q["raw"]) for q in got] == [
        ("invalid_json", f"{path}:2", "{oops"),
        ("missing_tenant", f"{path}:4", '{"Id": "z"}'),
    ]


# ------------------------------------------------------------------ order, memory, filters


def test_spilled_runs_merge_in_creation_time_order(tmp_path: Path) -> None:
    # ten files each out of order; runs of 3 events force spills to disk; the result equals the in-memory scan
    recs = [rule_record(i, name=f"r{i % 3}") | {"Id": f"rule-{i:02d}"} for i in range(1, 31)]
    paths = []
    for f in range(10):
        p = tmp_path / f"part{f}.jsonl"
        p.write_bytes(b"\n".join(orjson.dumps(recs[i]) for i in range(29 - f, -1, -10)))
        paths.append(str(p))
    spilled = scan(paths, ScanConfig(), options=ScanOptions(run_records=3, temp_dir=str(tmp_path)))
    whole = scan(paths, ScanConfig())
    assert [a.evidence_record_ids for a in spilled.alerts] == [a.evidence_record_ids for a in whole.alerts]
    assert [a.evidence_record_ids for a in whole.alerts] == [
        [f"rule-{i:02d}" for i in range(k, 31, 3)] for k in (1, 2, 3)
    ]
    assert (spilled.records_read, spilled.records_processed) == (30, 30)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("itdr-scan-")] == []


def test_filters_by_time_tenant_and_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = rule_record(4) | {"Id": "rule-4", "UserId": "adele@contoso.com"}
    foreign = rule_record(5) | {"Id": "rule-5", "OrganizationId": "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"}
    path = tmp_path / "r.json"
    path.write_bytes(orjson.dumps([*RECORDS, other, foreign]))
    rc, _, s = run_scan(tmp_path, path, extra=("--since", "2026-11-24T14:02:00Z", "--until", "2026-11-24T14:05"))
    assert rc == 0 and s["records_filtered_out"] == 2 and counts(s) == (3, 3, 0)
    assert alerts_of(capsys.readouterr().out) == [
        ("exchange_suspicious_inbox_rule", ["rule-3"]),
        ("exchange_suspicious_inbox_rule", ["rule-4"]),
    ]
    rc, _, s = run_scan(tmp_path, path, extra=("--tenant", TENANT.upper(), "--user", "megan@contoso.com"))
    assert s["records_filtered_out"] == 2 and counts(s) == (3, 3, 0)
    assert alerts_of(capsys.readouterr().out) == EXPECTED


# ------------------------------------------------------------------ the command line


def test_version_help_and_one_line_usage_errors(tmp_path: Path) -> None:
    version = subprocess.run([str(ITDR), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.strip() == "itdr 0.1.0"
    helptext = subprocess.run([str(ITDR), "scan", "--help"], capture_output=True, text=True, check=False).stdout
    for option in ("--since", "--until", "--tenant", "--user", "--quiet", "--quarantine", "--max-expanded-mb"):
        assert option in helptext
    (tmp_path / "r.json").write_bytes(orjson.dumps(RECORDS))
    for args, message in (
        (["--since", "last tuesday"], "itdr scan: --since: not an ISO 8601 date or time: 'last tuesday'"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "itdr scan: --since must be before --until"),
        (["--output", str(tmp_path / "no" / "dir.jsonl")], "itdr scan: cannot write output"),
    ):
        proc = subprocess.run(
            [str(ITDR), "scan", str(tmp_path / "r.json"), *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(message), proc.stderr


def test_no_progress_output_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(orjson.dumps(RECORDS))
    proc = subprocess.run([str(ITDR), "scan", str(tmp_path / "r.json")], capture_output=True, check=False)
    # stderr is a pipe: no bar, no cursor movement (only notes, of which this input has none)
    assert proc.returncode == 0
    assert b"\x1b[" not in proc.stderr and b"reading" not in proc.stderr and b"itdr scan" not in proc.stderr


def test_the_progress_bar_draws_records_and_megabytes() -> None:
    from shared.cli.progress import RichScanProgress

    term = io.StringIO()
    bar = RichScanProgress(term)
    bar.reading(2_000_000)
    bar.advance_bytes(1_000_000)
    bar.records(1234)
    bar.detecting(1234)
    bar.advance(1234)
    bar.close()
    drawn = term.getvalue()
    assert "1.0 MB  1,234 records" in drawn and "1,234/1,234 records" in drawn


def test_a_truncated_gzip_keeps_the_records_before_the_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [orjson.dumps(r) for r in RECORDS] + [
        orjson.dumps(benign(i % 60) | {"Id": f"pad-{i}"}) for i in range(4, 3000)
    ]
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    rc, _, s = run_scan(tmp_path, path)
    assert rc == 0
    read, processed, quarantined = counts(s)
    assert quarantined == 1 and s["quarantine_reasons"] == {"invalid_gzip": 1}
    assert 3 <= processed < 2999 and read == processed + 1
    assert alerts_of(capsys.readouterr().out) == EXPECTED


def test_a_zip_member_past_the_cap_is_quarantined_and_the_others_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.zip"
    path.write_bytes(_zip({"a.json": orjson.dumps(RECORDS), "b.jsonl": b" " * (20 << 20)}))
    rc, _, s = run_scan(tmp_path, path, extra=("--max-expansion-ratio", "100"))
    assert rc == 0 and counts(s) == (4, 3, 1) and s["quarantine_reasons"] == {"expansion_cap": 1}
    assert alerts_of(capsys.readouterr().out) == EXPECTED


def test_utf16_without_bom_and_gzip_inside_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "nobom.jsonl").write_bytes(
        "\n".join(orjson.dumps(r).decode() for r in RECORDS[:2]).encode("utf-16-le")
    )
    (tmp_path / "in" / "case.zip").write_bytes(_zip({"part.json.gz": gzip.compress(orjson.dumps(RECORDS[2:]))}))
    rc, _, s = run_scan(tmp_path, tmp_path / "in")
    assert rc == 0 and counts(s) == (3, 3, 0) and s["files_skipped"] == []
    assert alerts_of(capsys.readouterr().out) == EXPECTED


def test_an_input_that_will_spill_gets_the_light_look_from_its_first_run_with_the_same_outcome(tmp_path: Path) -> None:
    # 4,000 records in runs of 2,500: after 1,000 records the file's size says a second run is coming, so the first
    # run is read light as well (#24: no full decode now and another at the merge); alerts, incidents and counts
    # are those of the scan held in memory
    from shared.bench.corpus import generate

    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for _, _, recs in generate(4000, profile="stress") for r in recs))
    spilled = scan([str(path)], ScanConfig(), options=ScanOptions(run_records=2500, temp_dir=str(tmp_path)))
    whole = scan([str(path)], ScanConfig())
    assert [a.to_dict() for a in spilled.alerts] == [a.to_dict() for a in whole.alerts]
    assert [i.to_dict() for i in spilled.incidents] == [i.to_dict() for i in whole.incidents]
    assert (
        (spilled.records_read, spilled.records_processed)
        == (whole.records_read, whole.records_processed)
        == (
            4000,
            4000,
        )
    )
    assert spilled.alerts  # the stress profile raises some
