"""Secrets never reach log lines, whoever writes them."""

from __future__ import annotations

import logging

import pytest

from shared.platform import logsafety


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('HTTP Request: POST https://prod-1.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers&sv=1.0&sig=ujzQgqPNNM1D6I9BsYcd1a "HTTP/1.1 202"', "ujzQgqPNNM1D6I9BsYcd1a"),
        ("Authorization: Bearer fake-token:9f6a3d1e-0c4b", "fake-token:9f6a3d1e-0c4b"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl was refused", "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0"),
        ("GET https://acct.blob.core.windows.net/c/b?sv=2024&sig=abc%2Fdef&se=2026", "abc%2Fdef"),
    ],
)
def test_library_log_lines_are_redacted(line: str, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    logsafety.install()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info("%s", line)
    (record,) = [r for r in caplog.records if r.name == "httpx"]
    assert secret not in record.getMessage()
    assert "REDACTED" in record.getMessage()


def test_plain_lines_are_unchanged() -> None:
    assert logsafety.redact("poll done: tenant=9f6a3d1e records=1200") == "poll done: tenant=9f6a3d1e records=1200"
