"""`itdr ip`: normalised context of messy addresses, each source's verdict and age, in json, jsonl and table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from shared.cli.main import main

TOR_EXIT = "185.220.101.1"  # in the shipped tor-exit-nodes.txt (SecOps-Institute snapshot of 2024-02-27)
VPN_ADDRESS = "2.26.157.5"  # in 2.26.157.0/24, the first line of the shipped X4BNet output/vpn/ipv4.txt
TOR_SOURCE = "SecOps-Institute/Tor-IP-Addresses tor-exit-nodes.lst @8a1ac761a5230b328748b5c5353af38e83652b0b"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_messy_forms_feeds_and_non_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vpn.txt").write_text("# exits\n146.70.133.0/24\n")
    (tmp_path / "cfg.json").write_bytes(orjson.dumps({"intel": {"vpn_feeds": ["vpn.txt"]}}))
    rc = main(["ip", "[146.70.133.30]:443", "8.8.8.8:53", "mail.contoso.com", "--config", str(tmp_path / "cfg.json")])
    assert rc == 0
    vpn, google, host = orjson.loads(capsys.readouterr().out)
    assert (vpn["ip"], vpn["is_vpn"], vpn["anonymizer_kind"], vpn["sources"]["is_vpn"]) == (
        "146.70.133.30",
        True,
        "vpn",
        "feeds",
    )
    mine = [v for v in vpn["lists"] if v["origin"] == "configured"]
    assert [(v["name"], v["kind"], v["listed"]) for v in mine] == [("vpn.txt", "vpn", True)]
    assert (google["ip"], google["country"], google["asn"]) == ("8.8.8.8", "US", 15169)
    assert host == {"input": "mail.contoso.com", "error": "not an IP address"}


def test_a_shipped_tor_exit_with_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ip", TOR_EXIT, "--format", "jsonl"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    item = orjson.loads(line)
    assert (item["is_tor"], item["anonymizer_kind"], item["sources"]["is_tor"]) == (True, "tor", "feeds")
    tor = next(v for v in item["lists"] if v["kind"] == "tor")
    assert tor == {
        "name": "tor-exit-nodes",
        "kind": "tor",
        "origin": "shipped",
        "as_of": "2024-02-27",
        "age_days": (today() - dt.date(2024, 2, 27)).days,
        "source": TOR_SOURCE,
        "licence": "MIT",
        "listed": True,
    }
    adversary = item["lists"][-1]
    assert (adversary["name"], adversary["kind"], adversary["listed"]) == ("adversary-asns", "adversary_asn", False)


def test_a_shipped_vpn_range_with_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ip", VPN_ADDRESS, "--format", "json"]) == 0
    [item] = orjson.loads(capsys.readouterr().out)
    assert (item["is_vpn"], item["is_tor"], item["anonymizer_kind"]) == (True, None, "vpn")
    verdicts = {v["name"]: (v["listed"], v["as_of"]) for v in item["lists"]}
    assert verdicts["x4bnet-vpn-ipv4"] == (True, "2026-08-22")
    assert verdicts["x4bnet-vpn-ipv6"] == (False, "2026-08-22")
    assert verdicts["tor-exit-nodes"] == (False, "2024-02-27")


def test_table_names_each_source_with_its_verdict_and_age_and_strips_control_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ip", "\x1b[2Jevil\u202e", TOR_EXIT, "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert lines[0] == "evil: not an IP address"  # escape sequences removed whole (shared.cli.terminal.safe)
    rows = [line.split() for line in lines if line.startswith("  ")]
    assert rows[0] == ["anonymizer:", "tor", "tor:", "yes", "vpn:", "yes", "hosting:", "yes"]
    assert rows[1] == ["SOURCE", "KIND", "VERDICT", "ORIGIN", "AS", "OF", "AGE", "(DAYS)"]
    assert [
        "tor-exit-nodes",
        "tor",
        "listed",
        "shipped",
        "2024-02-27",
        str((today() - dt.date(2024, 2, 27)).days),
    ] in rows
    age = str((today() - dt.date(2026, 8, 22)).days)
    assert ["x4bnet-vpn-ipv6", "vpn", "not", "listed", "shipped", "2026-08-22", age] in rows
