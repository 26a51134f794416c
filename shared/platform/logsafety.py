"""Keep secrets and per-request noise out of log lines, including the lines third-party libraries write.

httpx logs every request URL at INFO; the partner's Logic App URL carries a SAS signature
(``sig=``) and Key Vault or storage URLs can carry SAS tokens. A filter on the libraries' loggers
(and on ours) rewrites such values before any handler sees them.

The same libraries log every request at INFO (the Azure SDK's HTTP logging policy writes the URL and
the headers of each storage call), and in Application Insights every line is a billed trace item: in the
benchmark's sample they wrote about 0.02 lines per audit record, more than everything else the app
sends. They are held at WARNING, so their retries, throttling and failures still show.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (
        re.compile(r"(?i)([?&](?:sig|signature|code|client_secret|access_token|refresh_token)=)[^&\s\"']+"),
        r"\1REDACTED",
    ),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=:-]+"), r"\1REDACTED"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "REDACTED.JWT"),
)
LOGGERS = ("", "httpx", "httpcore", "azure", "msal", "kiota_http", "kiota_abstractions", "itdr")
QUIET_LIBRARIES = ("azure", "httpx", "httpcore", "msal", "kiota_http", "kiota_abstractions", "urllib3")
"""Loggers of libraries that log per request at INFO, held at WARNING unless a level was set for them."""


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message once with its arguments, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        clean = redact(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        return True


_installed = False


def install() -> None:
    """Attach the filter to the root logger and the libraries' loggers, and quiet the libraries (idempotent)."""
    global _installed
    if _installed:
        return
    f = RedactingFilter()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(f)
    for name in QUIET_LIBRARIES:
        lib = logging.getLogger(name)
        if lib.level == logging.NOTSET:
            lib.setLevel(logging.WARNING)
    _installed = True
