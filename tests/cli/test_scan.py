"""`itdr scan` on every input kind, with the documented output and summary contract."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shared.cli.main import main

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
ROOT = Path(__file__).resolve().parents[2]


def rule_record(i: int, *, forward: str = "exfil@gmail.com", name: str = ".") -> dict[str, object]:
    return {
        "CreationTime": f"2026-11-24T14:{i:02d}:00",
        "Id": f"rule-{i}",
        "Operation": "New-InboxRule",
        "OrganizationId": TENANT,
        "RecordType": 1,
        "ResultStatus": "True",
        "UserKey": "1003200096971F55",
        "Workload": "Exchange",
        "ClientIP": "[198.51.100.7]:51234",
        "ObjectId": f"megan\\{name}",
        "UserId": "megan@contoso.com",
        "Parameters": [
            {"Name": "Name", "Value": name},
            {"Name": "ForwardTo", "Value": forward},
        ],
    }


def benign(i: int) -> dict[str, object]:
    rec = rule_record(i, forward="colleague@contoso.com", name="Team")
    rec["Parameters"] = [{"Name": "Name", "Value": "Team"}, {"Name": "ForwardTo", "Value": "colleague@contoso.com"}]
    return rec


RECORDS = [rule_record(1), benign(2), rule_record(3, name="..")]


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.json"
    cfg.write_bytes(orjson.dumps({"tenants": {TENANT: {"internal_domains": ["contoso.com"]}}}))
    return cfg


def csv_export(records: list[dict[str, object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["CreationDate", "UserIds", "Operations", "AuditData"])
    for r in records:
        w.writerow([r["CreationTime"], r["UserId"], r["Operation"], orjson.dumps(r).decode()])
    return buf.getvalue().encode()


KINDS = {
    "json-array.bin": orjson.dumps(RECORDS),
    "lines.txt": b"\n".join(orjson.dumps(r) for r in RECORDS) + b"\n",
    "purview.export": csv_export(RECORDS),
    "blob.json.gz": gzip.compress(orjson.dumps(RECORDS)),
    "lines.gz": gzip.compress(b"\n".join(orjson.dumps(r) for r in RECORDS)),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_input_kind_gives_the_same_alerts(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_bytes(KINDS[name])
    summary = tmp_path / "summary.json"
    rc = main(
        ["scan", str(path), "--format", "jsonl", "--summary", str(summary), "--config", str(write_config(tmp_path))]
    )
    assert rc == 0
    alerts = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["detector"], a["evidence_record_ids"], a["severity"], a["category"]) for a in alerts] == [
        ("exchange_suspicious_inbox_rule", ["rule-1"], "high", "shadow_workflow"),
        ("exchange_suspicious_inbox_rule", ["rule-3"], "high", "shadow_workflow"),
    ]
    for a in alerts:
        assert {"alert_id", "tenant_id", "user", "first_seen", "last_seen", "mitre", "summary"} <= a.keys()
        assert a["tenant_id"] == TENANT and a["user"] == "megan@contoso.com" and a["first_seen"].endswith("Z")
    s = orjson.loads(summary.read_bytes())
    assert (s["records_read"], s["records_processed"], s["records_quarantined"]) == (3, 3, 0)
    assert s["alerts_by_category"] == {"shadow_workflow": 2}


def test_malformed_input_is_counted_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.json").write_bytes(orjson.dumps([rule_record(1)]))
    (tmp_path / "in" / "truncated.json").write_bytes(orjson.dumps(RECORDS)[:-40])
    (tmp_path / "in" / "mixed.jsonl").write_bytes(b'{"Id": "x"}\nnot json\n' + orjson.dumps(rule_record(5)) + b"\n")
    (tmp_path / "in" / "export.csv").write_bytes(b"a,b\n1,2\n")
    summary = tmp_path / "s.json"
    rc = main(["scan", str(tmp_path / "in"), "--summary", str(summary), "--format", "jsonl"])
    assert rc == 0
    s = orjson.loads(summary.read_bytes())
    assert s["records_read"] == s["records_processed"] + s["records_quarantined"]
    # the truncated array keeps the two records before the cut; the CSV without audit columns is skipped
    assert (s["records_read"], s["records_processed"]) == (7, 4)
    assert s["quarantine_reasons"] == {"truncated": 1, "missing_tenant": 1, "invalid_json": 1}
    assert s["files_skipped"] == [
        {
            "path": str(tmp_path / "in" / "export.csv"),
            "reason": "not audit data: no AuditData column (and not OfficeActivity columns)",
        }
    ]
    (alert,) = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert alert["evidence_record_ids"] == ["rule-1", "rule-5"]  # same rule name and user: one alert (Ids once)


def test_stdin_and_usage_errors(tmp_path: Path) -> None:
    itdr = ROOT / ".venv" / "bin" / "itdr"
    ok = subprocess.run([str(itdr), "scan", "-"], input=orjson.dumps(RECORDS), capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.splitlines()) == 2  # stdout is a pipe: jsonl by default
    missing = subprocess.run([str(itdr), "scan", str(tmp_path / "nope")], capture_output=True, check=False)
    assert missing.returncode == 2 and b"no such file" in missing.stderr and b"Traceback" not in missing.stderr
    bad_cfg = tmp_path / "bad.json"
    bad_cfg.write_text('{"tenants": {"x": {"allowed_countries": 5}}}')
    (tmp_path / "r.json").write_bytes(orjson.dumps(RECORDS))
    bad = subprocess.run(
        [str(itdr), "scan", str(tmp_path / "r.json"), "--config", str(bad_cfg)], capture_output=True, check=False
    )
    assert bad.returncode == 2 and b"invalid config" in bad.stderr and b"Traceback" not in bad.stderr
    usage = subprocess.run([str(itdr), "scan", "--format", "xml", "x"], capture_output=True, check=False)
    assert usage.returncode == 2


def test_records_are_processed_in_creation_time_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same rule name twice: the earlier record opens the alert whatever the file order
    late, early = rule_record(9), rule_record(1)
    (tmp_path / "a.json").write_bytes(orjson.dumps([late]))
    (tmp_path / "b.json").write_bytes(orjson.dumps([early]))
    assert main(["scan", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--format", "jsonl"]) == 0
    (alert,) = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert alert["evidence_record_ids"] == ["rule-1", "rule-9"]
    assert sys.platform  # keep imports used


def test_a_signin_from_a_shipped_tor_exit_is_an_anonymizer_alert_with_no_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.detectors.records import signin

    tor_exit = "185.220.101.1"  # in the shipped tor-exit-nodes.txt (SecOps-Institute snapshot of 2024-02-27)
    (tmp_path / "signins.json").write_bytes(orjson.dumps([signin("alice@contoso.com", ip=f"{tor_exit}:51234")]))
    summary = tmp_path / "summary.json"
    assert main(["scan", str(tmp_path / "signins.json"), "--format", "jsonl", "--summary", str(summary)]) == 0
    captured = capsys.readouterr()
    alerts = [orjson.loads(line) for line in captured.out.splitlines()]
    anon = [
        (a["detector"], a["severity"], a["ip"], a["summary"]) for a in alerts if a["detector"] == "signin_anonymizer"
    ]
    assert anon == [
        (
            "signin_anonymizer",
            "high",
            tor_exit,
            f"alice@contoso.com signed in through a Tor exit node from DE ({tor_exit})",
        )
    ]
    lists = orjson.loads(summary.read_bytes())["intel_lists"]
    tor = next(x for x in lists if x["name"] == "tor-exit-nodes")
    import datetime as dt

    age = (dt.datetime.now(dt.UTC).date() - dt.date(2024, 2, 27)).days
    assert (tor["origin"], tor["as_of"], tor["age_days"]) == ("shipped", "2024-02-27", age)
    assert f"tor-exit-nodes (shipped 2024-02-27, {age} days old)" in captured.err
