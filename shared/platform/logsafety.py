"""Keep secrets and per-request noise out of log lines, including the lines third-party libraries write.

httpx logs every request URL at INFO; the partner's Logic App URL carries a SAS signature
(``sig=``) and Key Vault or storage URLs can carry SAS tokens, and exception messages and tracebacks
can carry any of them. :func:`install` makes every log record redacted as it is created (message,
exception text, stack), whichever logger writes it, and filters the root handlers (extras too).

The same libraries log every request at INFO (the Azure SDK's HTTP logging policy writes the URL and
the headers of each storage call), and in Application Insights every line is a billed trace item: in the
benchmark's sample they wrote about 0.02 lines per audit record, more than everything else the app
sends. They are held at WARNING, so their retries, throttling and failures still show.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_PATTERNS = (
    (
        re.compile(r"(?i)(\b(?:sig|signature|client_secret|access_token|refresh_token)=|[?&]code=)[^&\s\"';]+"),
        r"\1REDACTED",
    ),
    (re.compile(r"(?i)((?:AccountKey|SharedAccessKey|SharedAccessSignature)=)[^;\s\"']+"), r"\1REDACTED"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=:-]+"), r"\1REDACTED"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "REDACTED.JWT"),
    # the webhook's AuthID (a /subscriptions/list answer, a header dump) and the admin key header
    (
        re.compile(r"(?i)((?:auth_?id|webhook-authid|x-itdr-admin-key)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;&}]+"),
        r"\1REDACTED",
    ),
)
LOGGERS = ("", "httpx", "httpcore", "azure", "msal", "kiota_http", "kiota_abstractions", "itdr")
"""Loggers the filter is attached to as well (records created before :func:`install` replaced the factory)."""
QUIET_LIBRARIES = ("azure", "httpx", "httpcore", "msal", "kiota_http", "kiota_abstractions", "urllib3")
"""Loggers of libraries that log per request at INFO, held at WARNING unless a level was set for them."""

_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place: its rendered message, its exception (as formatted text), its stack.

    The exception is rendered to ``exc_text`` (redacted) and ``exc_info`` dropped, so that no handler
    formats the live exception, whose message or traceback may carry a token, again.
    """
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    clean = redact(message)
    if clean != message or record.args:
        record.msg = clean
        record.args = None
    if record.exc_info:
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """Redacts each record a handler (or logger) sees: message, exception text, stack and string extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        for key, value in list(record.__dict__.items()):
            if key not in _STD_ATTRS and isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


_installed = False


def install() -> None:
    """Redact every record of every logger, and quiet the libraries (idempotent).

    Three layers: the log record factory scrubs each record as it is made (whatever logger makes it and
    whichever handler, present or added later, gets it); a :class:`RedactingFilter` on every handler of
    the root logger (at install time) also redacts ``extra`` values; the filter on :data:`LOGGERS`
    covers records of a factory installed over ours.
    """
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub(base(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    f = RedactingFilter()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(f)
    for handler in logging.getLogger().handlers:
        handler.addFilter(f)
    for name in QUIET_LIBRARIES:
        lib = logging.getLogger(name)
        if lib.level == logging.NOTSET:
            lib.setLevel(logging.WARNING)
    _installed = True
