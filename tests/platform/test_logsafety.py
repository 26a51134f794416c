"""Secrets never reach log lines, whoever writes them."""

from __future__ import annotations

import logging

import pytest

from shared.platform import logsafety


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            'HTTP Request: POST https://prod-1.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers&sv=1.0&sig=ujzQgqPNNM1D6I9BsYcd1a "HTTP/1.1 202"',
            "ujzQgqPNNM1D6I9BsYcd1a",
        ),
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
    ours = logging.getLogger("shared.functions.deliver_alerts")
    with caplog.at_level(logging.INFO):
        policy.info("Request URL: 'https://acct.table.core.windows.net/state'")
        logging.getLogger("httpx").info("HTTP Request: GET https://graph.microsoft.com/v1.0/users/x")
        policy.warning("Retrying after 503")
        ours.info("incident delivered")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("azure.core.pipeline.policies.http_logging_policy", "Retrying after 503"),
        ("shared.functions.deliver_alerts", "incident delivered"),
    ]


SAS = "https://prod-1.westeurope.logic.azure.com/workflows/x/invoke?api-version=2016-10-01&sp=%2F&sv=1.0&sig=Pl4nt3dS1g"
TOKEN = "Bearer fake-token:planted-9f6a"


class Collect(logging.Handler):
    """A handler added after install(), as the Functions host or Application Insights would add theirs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


# #25.3: the filter was attached to a few named loggers; records of their children and of other loggers
# (httpcore.http11, azure.core.pipeline..., msal.application, itdr.ingest, shared.*) and tracebacks were not redacted
@pytest.mark.parametrize(
    "logger",
    [
        "httpcore.http11",
        "azure.core.pipeline.policies.http_logging_policy",
        "msal.application",
        "itdr.ingest",
        "shared.alerts.delivery",
        "some.library.nobody.thought.of",
    ],
)
def test_every_logger_every_handler_and_every_traceback_is_redacted(logger: str) -> None:
    logsafety.install()
    collect = Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    log = logging.getLogger(logger)
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        log.debug("request %s with %s", SAS, TOKEN)
        try:
            raise RuntimeError(f"delivery to {SAS} failed; Authorization: {TOKEN}")
        except RuntimeError:
            log.exception("delivery failed")
        try:
            raise ValueError('listing said {"webhook": {"authId": "Pl4nt3dAuth1d"}}')
        except ValueError as exc:
            log.warning("subscriptions", exc_info=exc)
    finally:
        root.removeHandler(collect)
        log.setLevel(old)
    text = "\n".join(collect.lines)
    assert len(collect.lines) == 3
    assert "Traceback (most recent call last)" in text and "RuntimeError: delivery to" in text
    for secret in ("Pl4nt3dS1g", "fake-token:planted-9f6a", "Pl4nt3dAuth1d"):
        assert secret not in text
    assert text.count("sig=REDACTED") == 2


def test_connection_strings_and_auth_ids_are_redacted() -> None:
    line = (
        'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=Zm9vYmFy==;x "authId": "s3cr3t", Webhook-AuthID: h3ad3r'
    )
    assert logsafety.redact(line) == (
        'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=REDACTED;x "authId": "REDACTED", Webhook-AuthID: REDACTED'
    )
