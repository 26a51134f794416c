"""The error tree of m365-itdr. An error's class decides a message's fate.

    ItdrError
    ├── TransientError            retry: abandon the message, back off, try again
    │   ├── ThrottledError        429 / AF429 (also when it arrives as 403); carries retry_after
    │   ├── ServiceUnavailable    5xx, AF50000, timeouts, connection resets
    │   └── ConcurrencyError      an ETag conflict or a lost lock: reload and replay
    └── PermanentError            never retried: dead-letter or quarantine with `reason`
        ├── BadInputError         a record, blob, message or request that cannot be parsed
        ├── NotFoundError         the thing is not there (404, AF20050)
        ├── ExpiredContentError   content older than 7 days (AF20051)
        ├── SubscriptionError     subscription missing or disabled (AF20022 / AF20023)
        ├── PermissionError_      401/403 that is not throttling: a missing permission
        ├── ConfigurationError    settings or tenant configuration that cannot work
        └── ForbiddenTargetError  a URL outside the allowed hosts (SSRF guard)

Every error names what caused it (tenant, record, detector) in `context`, and keeps
a short machine-readable `reason` that lands in dead-letters and quarantine counts.
Chain with ``raise ... from exc``.
"""

from __future__ import annotations


class ItdrError(Exception):
    """Base of every error m365-itdr raises on purpose."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None, **context: object) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.context: dict[str, object] = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        base = super().__str__()
        if not self.context:
            return base
        ctx = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{base} ({ctx})"


class TransientError(ItdrError):
    """Worth retrying later; the message goes back to the bus."""

    reason = "transient"

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after: float | None = None, **context: object
    ) -> None:
        super().__init__(message, reason=reason, **context)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    reason = "throttled"


class ServiceUnavailable(TransientError):
    reason = "service_unavailable"


class ConcurrencyError(TransientError):
    reason = "concurrency_conflict"


class PermanentError(ItdrError):
    """Retrying cannot help; dead-letter or quarantine with the reason."""

    reason = "permanent"


class BadInputError(PermanentError):
    reason = "bad_input"


class NotFoundError(PermanentError):
    reason = "not_found"


class ExpiredContentError(PermanentError):
    reason = "content_expired"


class SubscriptionError(PermanentError):
    reason = "subscription_disabled"


class PermissionError_(PermanentError):  # noqa: N801 - avoid shadowing the builtin
    reason = "missing_permission"


class ConfigurationError(PermanentError):
    reason = "configuration"


class ForbiddenTargetError(PermanentError):
    reason = "forbidden_target"


def is_transient(exc: BaseException) -> bool:
    """True when the error says: try again later."""
    return isinstance(exc, TransientError)
