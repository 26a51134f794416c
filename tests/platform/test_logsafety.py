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
    with caplog.at_level(logging.DEBUG, logger="httpx"):  # below the level the app holds httpx at
        logging.getLogger("httpx").info("%s", line)
    (record,) = [r for r in caplog.records if r.name == "httpx"]
    assert secret not in record.getMessage()
    assert "REDACTED" in record.getMessage()


def test_plain_lines_are_unchanged() -> None:
    assert logsafety.redact("poll done: tenant=9f6a3d1e records=1200") == "poll done: tenant=9f6a3d1e records=1200"


def test_libraries_log_per_request_lines_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    logsafety.install()
    policy = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    ours = logging.getLogger("shared.pipeline.delivery")
    with caplog.at_level(logging.INFO):
        policy.info("Request URL: 'https://acct.table.core.windows.net/state'")
        logging.getLogger("httpx").info("HTTP Request: GET https://graph.microsoft.com/v1.0/users/x")
        policy.warning("Retrying after 503")
        ours.info("incident delivered")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("azure.core.pipeline.policies.http_logging_policy", "Retrying after 503"),
        ("shared.pipeline.delivery", "incident delivered"),
    ]
