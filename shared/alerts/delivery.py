"""Partner delivery: POST each published incident to the partner's Logic App HTTP trigger, once in effect.

Protocol of one delivery (:meth:`PartnerDeliveryClient.deliver`):

1. the ledger (``TABLE_DELIVERIES``: PartitionKey = tenant ID or ``partner:<id>``, RowKey =
   ``<incident_id>|<revision>``) is checked first: a revision already delivered, or superseded by a
   later delivered revision, is not posted again;
2. the body (our payload, :mod:`shared.alerts.payload`, or OCSF, :mod:`shared.alerts.ocsf`) is
   POSTed with ``Idempotency-Key`` and ``x-ms-client-tracking-id`` = ``<incident_id>-r<revision>``;
3. after a 2xx the ledger records ``delivered`` with the time and the status code.

A crash between 2 and 3 re-posts the same revision with the same key on the next attempt: the
Logic App must de-duplicate on the key (docs/partner-integration.md shows how). The ledger makes a
replay harmless; the key makes the rare double post harmless.

Failures: 429, 408, 425, 5xx, timeouts and connection errors are retried with exponential backoff
and jitter through the injectable ``sleep``, waiting at least what ``Retry-After`` asks; after
``max_attempts``, or when ``Retry-After`` asks for more than ``max_retry_after``, the client raises
:class:`~shared.platform.errors.ThrottledError` or :class:`~shared.platform.errors.ServiceUnavailable`
(``retry_after`` set) so the bus retries later. Any other 4xx (and a redirect) is permanent:
:class:`~shared.platform.errors.PermanentError` (401/403 ``PermissionError_``, 404
``NotFoundError``, 400/413/422 ``BadInputError``), recorded in the ledger as ``rejected`` with the
reason, for the caller to dead-letter. A rejected revision is posted again if it comes back (an
operator resubmitting a dead-letter after fixing the Logic App).

Notices and weekly reports (:meth:`PartnerDeliveryClient.deliver_notice`,
:meth:`PartnerDeliveryClient.deliver_weekly_report`) use the same ledger with revision 1: one
delivery per tenant (proof of life) or per tenant and ISO week (weekly report). A weekly report that
could not be delivered is recorded as ``failed`` (transient) or ``rejected`` (permanent) and the error
raised; the timer that sends it posts it again if it runs again in the same week.

The trigger URL carries a SAS signature (``sig=``): it is never logged nor put in an error, only
its scheme, host and path. Only ``https`` URLs on Logic App hosts are accepted unless the caller
allows other hosts (the local emulator on 127.0.0.1).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.alerts.crosstenant import PartnerIncident
from shared.alerts.incidents import Incident
from shared.alerts.ocsf import incident_to_ocsf, partner_incident_to_ocsf
from shared.alerts.payload import (
    SCHEMA_VERSION,
    build_notice_payload,
    build_partner_payload,
    build_payload,
    build_weekly_report_payload,
    idempotency_key,
    product_version,
)
from shared.alerts.store import storage_error
from shared.alerts.triage import Decision
from shared.platform import names
from shared.platform.errors import (
    BadInputError,
    ConfigurationError,
    ForbiddenTargetError,
    NotFoundError,
    PermanentError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
    TransientError,
)
from shared.platform.faults import crash_point
from shared.platform.storage import StorageClients, encode_key
from shared.reports.credentials import CredentialsReport

log = logging.getLogger(__name__)

DEFAULT_ALLOWED_HOSTS = (
    "logic.azure.com",
    "logic.azure.us",
    "logic.azure.cn",
    "azurewebsites.net",
    "azurewebsites.us",
    "chinacloudsites.cn",
)
"""Host suffixes of Logic App triggers: Consumption (``prod-NN.<region>.logic.azure.com``) and Standard
(``<app>.azurewebsites.net``), commercial, US Government and China clouds."""

RETRYABLE_STATUS = frozenset({408, 425, 429})
STATUS_DELIVERED = "delivered"
STATUS_REJECTED = "rejected"
STATUS_FAILED = "failed"
STATUS_CLAIMED = "claimed"
"""A delivery in flight: the row is claimed before the POST, so a second consumer of the same revision waits."""
CLAIM_LEASE_S = 300.0
"""How long a claim holds: after it, a delivery that died after its claim (or after its POST) is taken over."""
"""A weekly report whose delivery gave up on a transient failure (the report stays stored)."""


class DeliveryFormat(StrEnum):
    """The body format a partner chose (setting ``ITDR_PARTNER_FORMAT``)."""

    ITDR = "itdr"
    OCSF = "ocsf"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry bounds of one delivery call (the bus adds its own retries on top)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    """A Retry-After longer than this is not slept through: the bus is asked to retry later."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt ``attempt + 1``: exponential, capped, with "equal jitter" (half fixed, half random)."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay / 2 + rng.uniform(0, delay / 2)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One ledger row: what happened to one revision of one incident."""

    scope: str
    """Tenant ID, or ``partner:<id>`` for cross-tenant incidents."""
    incident_id: str
    revision: int
    status: str
    at: float
    http_status: int
    attempts: int
    idempotency_key: str
    format: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "incident_id": self.incident_id,
            "revision": self.revision,
            "status": self.status,
            "at": self.at,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "idempotency_key": self.idempotency_key,
            "format": self.format,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What :meth:`PartnerDeliveryClient.deliver` did: ``delivered``, ``already_delivered`` or ``superseded``."""

    outcome: str
    incident_id: str
    revision: int
    idempotency_key: str
    attempts: int = 0
    http_status: int | None = None


class DeliveryLedger:
    """Where deliveries are recorded. Use :class:`InMemoryDeliveryLedger` or :class:`TableDeliveryLedger`."""

    def list_deliveries(self, scope: str, incident_id: str) -> list[DeliveryRecord]:
        """Every recorded revision of an incident (oldest revision first)."""
        raise NotImplementedError

    def record_delivery(self, record: DeliveryRecord) -> None:
        raise NotImplementedError

    def claim(self, record: DeliveryRecord, *, lease_s: float = CLAIM_LEASE_S) -> bool:
        """Claim a revision before posting it (``record`` has status :data:`STATUS_CLAIMED` and ``at`` = now).

        True when this caller may post: no row, a failed or rejected row, or a claim older than ``lease_s``.
        False when the revision is delivered or another claim is live.
        """
        raise NotImplementedError

    def release(self, record: DeliveryRecord) -> None:
        """Drop the claim ``record`` when it is still the row (a POST that failed: the retry may claim at once)."""
        raise NotImplementedError

    def delivered_revision(self, scope: str, incident_id: str) -> int:
        """The highest revision delivered (0 when none)."""
        done = [r.revision for r in self.list_deliveries(scope, incident_id) if r.status == STATUS_DELIVERED]
        return max(done, default=0)


class InMemoryDeliveryLedger(DeliveryLedger):
    """Deliveries in memory (``itdr scan``, the demo and tests)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, int], DeliveryRecord] = {}
        self._lock = threading.Lock()

    def list_deliveries(self, scope: str, incident_id: str) -> list[DeliveryRecord]:
        with self._lock:
            rows = [r for (s, i, _), r in self._rows.items() if s == scope and i == incident_id]
        return sorted(rows, key=lambda r: r.revision)

    def record_delivery(self, record: DeliveryRecord) -> None:
        with self._lock:
            current = self._rows.get((record.scope, record.incident_id, record.revision))
            if current is not None and current.status == STATUS_DELIVERED:
                return  # a delivered revision stays delivered
            self._rows[(record.scope, record.incident_id, record.revision)] = record

    def claim(self, record: DeliveryRecord, *, lease_s: float = CLAIM_LEASE_S) -> bool:
        key = (record.scope, record.incident_id, record.revision)
        with self._lock:
            if not _claimable(self._rows.get(key), record.at, lease_s):
                return False
            self._rows[key] = record
            return True

    def release(self, record: DeliveryRecord) -> None:
        key = (record.scope, record.incident_id, record.revision)
        with self._lock:
            if self._rows.get(key) == record:
                del self._rows[key]


class TableDeliveryLedger(DeliveryLedger):
    """Deliveries in ``TABLE_DELIVERIES``: PartitionKey = scope, RowKey = ``<incident_id>|<revision>``."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @classmethod
    def from_storage(cls, storage: StorageClients) -> TableDeliveryLedger:
        return cls(storage.table(names.TABLE_DELIVERIES))

    @staticmethod
    def _row_key(incident_id: str, revision: int) -> str:
        return encode_key(f"{incident_id}|{revision:06d}")

    def list_deliveries(self, scope: str, incident_id: str) -> list[DeliveryRecord]:
        try:
            ents = list(
                self._table.query_entities(
                    "PartitionKey eq @pk and incident_id eq @id",
                    parameters={"pk": encode_key(scope), "id": incident_id},
                )
            )
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="list_deliveries", tenant=scope, incident=incident_id) from exc
        rows = [
            DeliveryRecord(
                scope=str(e["scope"]),
                incident_id=str(e["incident_id"]),
                revision=int(e["revision"]),
                status=str(e["status"]),
                at=float(e["at"]),
                http_status=int(e["http_status"]),
                attempts=int(e["attempts"]),
                idempotency_key=str(e["idempotency_key"]),
                format=str(e["format"]),
                reason=str(e.get("reason", "")),
            )
            for e in ents
        ]
        return sorted(rows, key=lambda r: r.revision)

    def record_delivery(self, record: DeliveryRecord) -> None:
        ent: dict[str, Any] = {
            "PartitionKey": encode_key(record.scope),
            "RowKey": self._row_key(record.incident_id, record.revision),
        }
        ent.update({k: v for k, v in record.to_dict().items()})
        ent["at"] = float(record.at)
        try:
            if record.status == STATUS_DELIVERED:
                self._table.upsert_entity(ent, mode=UpdateMode.REPLACE)
                return
            try:
                current = self._table.get_entity(ent["PartitionKey"], ent["RowKey"])
            except ResourceNotFoundError:
                current = None
            if current is None or current.get("status") != STATUS_DELIVERED:
                self._table.upsert_entity(ent, mode=UpdateMode.REPLACE)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(
                exc, action="record_delivery", tenant=record.scope, incident=record.incident_id
            ) from exc

    def claim(self, record: DeliveryRecord, *, lease_s: float = CLAIM_LEASE_S) -> bool:
        ent: dict[str, Any] = {
            "PartitionKey": encode_key(record.scope),
            "RowKey": self._row_key(record.incident_id, record.revision),
        }
        ent.update(record.to_dict())
        ent["at"] = float(record.at)
        try:
            return _table_claim(self._table, ent, record, lease_s)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise storage_error(exc, action="claim_delivery", tenant=record.scope, incident=record.incident_id) from exc

    def release(self, record: DeliveryRecord) -> None:
        pk, rk = encode_key(record.scope), self._row_key(record.incident_id, record.revision)
        try:
            row = self._table.get_entity(pk, rk)
            if row.get("status") == STATUS_CLAIMED and float(row.get("at") or 0.0) == float(record.at):
                self._table.delete_entity(
                    pk, rk, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass  # gone or taken over: nothing of ours to release
        except (HttpResponseError, ServiceRequestError):
            pass  # the claim then expires after its lease


def _claimable(current: DeliveryRecord | None, now: float, lease_s: float) -> bool:
    if current is None:
        return True
    if current.status == STATUS_DELIVERED:
        return False
    return not (current.status == STATUS_CLAIMED and current.at + lease_s > now)


def _table_claim(table: TableClient, ent: dict[str, Any], record: DeliveryRecord, lease_s: float) -> bool:
    """Conditional create of the claim row, or an ETag-matched takeover of a claimable one."""
    try:
        table.create_entity(ent)
        return True
    except ResourceExistsError:
        pass
    try:
        row = table.get_entity(ent["PartitionKey"], ent["RowKey"])
    except ResourceNotFoundError:
        return False  # deleted meanwhile: let the retry decide
    current = DeliveryRecord(
        scope=record.scope,
        incident_id=record.incident_id,
        revision=record.revision,
        status=str(row.get("status")),
        at=float(row.get("at") or 0.0),
        http_status=int(row.get("http_status") or 0),
        attempts=int(row.get("attempts") or 0),
        idempotency_key=str(row.get("idempotency_key") or ""),
        format=str(row.get("format") or ""),
    )
    if not _claimable(current, record.at, lease_s):
        return False
    try:
        table.update_entity(
            ent, mode=UpdateMode.REPLACE, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


def safe_endpoint(url: str) -> str:
    """Scheme, host and path of a URL: what may appear in logs and errors (never the SAS query)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def check_endpoint(url: str, *, allowed_hosts: Sequence[str], allow_insecure: bool = False) -> None:
    """ForbiddenTargetError unless ``url`` is https (http when allowed) on an allowed host or a subdomain of one."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" and not (allow_insecure and parts.scheme == "http"):
        raise ForbiddenTargetError("partner endpoint must use https", endpoint=safe_endpoint(url))
    if not host or not any(host == h or host.endswith("." + h) for h in (a.lower() for a in allowed_hosts)):
        raise ForbiddenTargetError("partner endpoint host is not allowed", endpoint=safe_endpoint(url))
    if parts.username or parts.password:
        raise ForbiddenTargetError("partner endpoint must not carry credentials", endpoint=safe_endpoint(url))


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds asked by a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class PartnerDeliveryClient:
    """Delivers published incidents to one partner endpoint (a Logic App HTTP trigger URL)."""

    def __init__(
        self,
        endpoint: str,
        *,
        http: httpx.Client,
        ledger: DeliveryLedger,
        format: DeliveryFormat | str = DeliveryFormat.ITDR,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.time,
        allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
        allow_insecure: bool = False,
        timeout: float = 15.0,
    ) -> None:
        if not endpoint:
            raise ConfigurationError("no partner endpoint configured (ITDR_PARTNER_ENDPOINT)")
        check_endpoint(endpoint, allowed_hosts=allowed_hosts, allow_insecure=allow_insecure)
        try:
            self.format = DeliveryFormat(format)
        except ValueError as exc:
            raise ConfigurationError(f"unknown partner format {format!r} (itdr or ocsf)") from exc
        self._endpoint = endpoint
        self._http = http
        self._ledger = ledger
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now = now
        self._timeout = timeout

    @property
    def endpoint(self) -> str:
        """The endpoint without its query (safe to show)."""
        return safe_endpoint(self._endpoint)

    def body_for(self, incident: Incident | PartnerIncident, *, decision: Decision | None = None) -> dict[str, Any]:
        """The JSON body this client would post for an incident, in its format."""
        if isinstance(incident, PartnerIncident):
            if self.format is DeliveryFormat.OCSF:
                return partner_incident_to_ocsf(incident)
            return build_partner_payload(incident, generated_at=self._now())
        if self.format is DeliveryFormat.OCSF:
            return incident_to_ocsf(incident, decision=decision)
        return build_payload(incident, decision=decision, generated_at=self._now())

    def delivered_revision(self, scope: str, incident_id: str) -> int:
        """The highest revision of an incident delivered to the partner (0 when none)."""
        return self._ledger.delivered_revision(scope, incident_id)

    def deliver(self, incident: Incident | PartnerIncident, *, decision: Decision | None = None) -> DeliveryResult:
        """Post one revision of an incident unless the ledger shows it (or a later revision) delivered."""
        if isinstance(incident, PartnerIncident):
            scope, tenant = incident.scope, incident.scope
        else:
            if decision is not None and not decision.publish:
                raise BadInputError("triage decided not to publish this incident", tenant=incident.tenant_id)
            scope, tenant = incident.tenant_id, incident.tenant_id
        key = idempotency_key(incident.incident_id, incident.revision)
        done = self._ledger.delivered_revision(scope, incident.incident_id)
        if done >= incident.revision:
            outcome = "already_delivered" if done == incident.revision else "superseded"
            log.info(
                "delivery skipped",
                extra={
                    "tenant_id": tenant,
                    "incident": incident.incident_id,
                    "revision": incident.revision,
                    "outcome": outcome,
                },
            )
            return DeliveryResult(outcome, incident.incident_id, incident.revision, key)
        claim = DeliveryRecord(
            scope, incident.incident_id, incident.revision, STATUS_CLAIMED, self._now(), 0, 0, key, self.format.value
        )
        if not self._ledger.claim(claim):
            # another consumer is posting this revision (a duplicate delivery of the message): try again after
            # its claim's lease, when the ledger says delivered (or the claim is free because it failed)
            raise ServiceUnavailable(
                "delivery of this revision is in flight elsewhere",
                reason="delivery_in_flight",
                retry_after=CLAIM_LEASE_S,
                tenant=tenant,
                incident=incident.incident_id,
            )
        body = orjson.dumps(self.body_for(incident, decision=decision))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "x-ms-client-tracking-id": key,
            "User-Agent": f"m365-itdr/{product_version()}",
            "x-itdr-format": self.format.value,
            "x-itdr-schema-version": SCHEMA_VERSION if self.format is DeliveryFormat.ITDR else "ocsf-1.3.0",
            "x-itdr-tenant-id": tenant,
        }
        try:
            status, attempts = self._post(
                body, headers, scope=scope, incident_id=incident.incident_id, revision=incident.revision, key=key
            )
        except Exception:
            self._ledger.release(claim)
            raise
        crash_point("delivery.after_post")
        self._ledger.record_delivery(
            DeliveryRecord(
                scope,
                incident.incident_id,
                incident.revision,
                STATUS_DELIVERED,
                self._now(),
                status,
                attempts,
                key,
                self.format.value,
            )
        )
        log.info(
            "incident delivered",
            extra={
                "tenant_id": tenant,
                "incident": incident.incident_id,
                "revision": incident.revision,
                "attempts": attempts,
            },
        )
        return DeliveryResult("delivered", incident.incident_id, incident.revision, key, attempts, status)

    def deliver_notice(self, notice: Mapping[str, Any]) -> DeliveryResult:
        """Post a ``proof_of_life`` notice once per tenant (ledger and idempotency key as for incidents).

        Notices always use m365-itdr's own format, also for partners who chose OCSF (a notice is
        not a finding).
        """
        if notice.get("kind") != "proof_of_life" or not notice.get("tenant_id"):
            raise BadInputError("not a proof_of_life notice", reason="invalid_message")
        body = build_notice_payload(dict(notice), generated_at=self._now())
        return self._deliver_once(body, what="notice")

    def deliver_weekly_report(self, report: CredentialsReport, incidents: Sequence[Incident]) -> DeliveryResult:
        """Post a tenant's ``weekly_report`` once per tenant and ISO week (key ``wr-…-r1`` from tenant and week).

        Always in m365-itdr's own format (a report is not a finding). A failure is recorded in the ledger
        (``failed`` for a transient one, ``rejected`` for a permanent one) and raised; a later call in the
        same week posts it again, a call after a delivery does not.
        """
        body = build_weekly_report_payload(report, incidents, generated_at=self._now())
        return self._deliver_once(body, what="weekly report", record_failure=True)

    def _deliver_once(self, body: Mapping[str, Any], *, what: str, record_failure: bool = False) -> DeliveryResult:
        tenant, item_id, key = str(body["tenant_id"]), str(body["incident_id"]), str(body["idempotency_key"])
        if self._ledger.delivered_revision(tenant, item_id) >= 1:
            log.info("%s already delivered", what, extra={"tenant_id": tenant, "incident": item_id})
            return DeliveryResult("already_delivered", item_id, 1, key)
        claim = DeliveryRecord(tenant, item_id, 1, STATUS_CLAIMED, self._now(), 0, 0, key, DeliveryFormat.ITDR.value)
        if not self._ledger.claim(claim):
            raise ServiceUnavailable(
                f"delivery of this {what} is in flight elsewhere",
                reason="delivery_in_flight",
                retry_after=CLAIM_LEASE_S,
                tenant=tenant,
                incident=item_id,
            )
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "x-ms-client-tracking-id": key,
            "User-Agent": f"m365-itdr/{product_version()}",
            "x-itdr-format": DeliveryFormat.ITDR.value,
            "x-itdr-schema-version": SCHEMA_VERSION,
            "x-itdr-tenant-id": tenant,
        }
        try:
            status, attempts = self._post(
                orjson.dumps(body), headers, scope=tenant, incident_id=item_id, revision=1, key=key
            )
        except Exception as exc:
            self._ledger.release(claim)
            if not isinstance(exc, TransientError):
                raise
            if record_failure:
                http_status = exc.context.get("status")
                tries = exc.context.get("attempts")
                self._ledger.record_delivery(
                    DeliveryRecord(
                        tenant,
                        item_id,
                        1,
                        STATUS_FAILED,
                        self._now(),
                        http_status if isinstance(http_status, int) else 0,
                        tries if isinstance(tries, int) else 0,
                        key,
                        DeliveryFormat.ITDR.value,
                        exc.reason,
                    )
                )
            raise
        self._ledger.record_delivery(
            DeliveryRecord(
                tenant, item_id, 1, STATUS_DELIVERED, self._now(), status, attempts, key, DeliveryFormat.ITDR.value
            )
        )
        log.info("%s delivered", what, extra={"tenant_id": tenant, "incident": item_id, "attempts": attempts})
        return DeliveryResult("delivered", item_id, 1, key, attempts, status)

    def _post(
        self, body: bytes, headers: Mapping[str, str], *, scope: str, incident_id: str, revision: int, key: str
    ) -> tuple[int, int]:
        last_error: TransientError | None = None
        for attempt in range(1, self._retry.max_attempts + 1):
            retry_after: float | None = None
            kind: type[TransientError] = ServiceUnavailable
            status: int | None = None
            cause: BaseException | None = None
            try:
                resp = self._http.post(self._endpoint, content=body, headers=dict(headers), timeout=self._timeout)
            except httpx.TimeoutException as exc:
                message, cause = "partner endpoint timed out", exc
            except httpx.TransportError as exc:
                message, cause = f"partner endpoint unreachable: {type(exc).__name__}", exc
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    return status, attempt
                if status < 500 and status not in RETRYABLE_STATUS:
                    raise self._rejected(
                        resp, attempt=attempt, key=key, scope=scope, incident_id=incident_id, revision=revision
                    )
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"), now=self._now())
                kind = ThrottledError if status == 429 else ServiceUnavailable
                message = f"partner endpoint answered {status}"
            last_error = kind(
                message,
                retry_after=retry_after,
                tenant=scope,
                incident=incident_id,
                endpoint=self.endpoint,
                attempts=attempt,
                status=status,
            )
            last_error.__cause__ = cause
            log.warning(
                "delivery attempt failed",
                extra={"tenant_id": scope, "incident": incident_id, "attempt": attempt, "reason": last_error.reason},
            )
            if retry_after is not None and retry_after > self._retry.max_retry_after:
                raise last_error
            if attempt < self._retry.max_attempts:
                self._sleep(max(self._retry.backoff(attempt, self._rng), retry_after or 0.0))
        assert last_error is not None
        raise last_error

    def _rejected(
        self, resp: httpx.Response, *, attempt: int, key: str, scope: str, incident_id: str, revision: int
    ) -> PermanentError:
        status = resp.status_code
        detail = resp.text[:200].replace("\n", " ") if resp.content else ""
        ctx: dict[str, Any] = {"tenant": scope, "incident": incident_id, "endpoint": self.endpoint, "status": status}
        exc: PermanentError
        if status in (401, 403):
            exc = PermissionError_(
                f"partner endpoint refused the call ({status}): check the trigger URL signature", **ctx
            )
        elif status == 404:
            exc = NotFoundError("partner endpoint not found (404): the workflow or trigger is gone", **ctx)
        elif status in (400, 413, 415, 422):
            exc = BadInputError(f"partner endpoint rejected the payload ({status}): {detail}", **ctx)
        elif 300 <= status < 400:
            exc = PermanentError(
                f"partner endpoint redirected ({status}); redirects are not followed", reason="redirect_refused", **ctx
            )
        else:
            exc = PermanentError(f"partner endpoint answered {status}: {detail}", reason="partner_rejected", **ctx)
        self._ledger.record_delivery(
            DeliveryRecord(
                scope,
                incident_id,
                revision,
                STATUS_REJECTED,
                self._now(),
                status,
                attempt,
                key,
                self.format.value,
                exc.reason,
            )
        )
        return exc
