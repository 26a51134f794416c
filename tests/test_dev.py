"""`make dev` serves what local.settings.sample.json names, and an app built from the settings it writes signs in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_make_dev_serves_the_sample_ports_and_the_written_settings_work(tmp_path: Path) -> None:
    target = tmp_path / "local.settings.json"
    done = subprocess.run(
        [sys.executable, "-m", "shared.runtime.dev", "--check", "--settings", str(target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "check: subscriptions: 0" in done.stdout and "check: users: 3" in done.stdout
    written = json.loads(target.read_text(encoding="utf-8"))["Values"]
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    # the sample's names and addresses, plus what only this run can know (certificate, CA, partner URL)
    assert set(written) == set(sample) | {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"}
    assert {k: v for k, v in written.items() if k in sample and sample[k] == v}.keys() == set(sample) - {
        "ITDR_APP_CERTIFICATE",
        "ITDR_PARTNER_ENDPOINT",
        "ITDR_ADMIN_KEY_SHA256",
    }
    assert written["ITDR_PARTNER_ENDPOINT"].startswith("https://127.0.0.1:8704/")
