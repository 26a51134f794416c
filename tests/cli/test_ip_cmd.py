"""`itdr ip`: normalised context of messy addresses, with the configured feeds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.cli.main import main


def test_messy_forms_feeds_and_non_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vpn.txt").write_text("# exits\n146.70.133.0/24\n")
    (tmp_path / "cfg.json").write_bytes(orjson.dumps({"intel": {"vpn_feeds": ["vpn.txt"]}}))
    rc = main(["ip", "[146.70.133.30]:443", "8.8.8.8:53", "mail.contoso.com", "--config", str(tmp_path / "cfg.json")])
    assert rc == 0
    text = capsys.readouterr().out
    items = [orjson.loads(chunk) for chunk in text.replace("}\n{", "}\x00{").split("\x00")]
    vpn, google, host = items
    assert (vpn["ip"], vpn["is_vpn"], vpn["anonymizer_kind"], vpn["sources"]["is_vpn"]) == (
        "146.70.133.30",
        True,
        "vpn",
        "feeds",
    )
    assert (google["ip"], google["country"], google["asn"]) == ("8.8.8.8", "US", 15169)
    assert host == {"input": "mail.contoso.com", "error": "not an IP address"}
