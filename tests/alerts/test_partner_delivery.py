"""Partner delivery to the Logic App trigger emulator: ledger, idempotency key, retries, permanent errors."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from shared.alert_model import Category
from shared.alerts.delivery import (
    CLAIM_LEASE_S,
    DeliveryRecord,
    DeliveryResult,
    InMemoryDeliveryLedger,
    PartnerDeliveryClient,
    RetryPolicy,
    TableDeliveryLedger,
    check_endpoint,
    retry_after_seconds,
)
from shared.alerts.incidents import InMemoryIncidentBook
from shared.alerts.payload import load_schema
from shared.alerts.triage import TriagePolicy, decide
from shared.emulators.partner import PartnerEndpoint
from shared.platform.errors import (
    BadInputError,
    ForbiddenTargetError,
    NotFoundError,
    PermanentError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
    TransientError,
)

T0 = 1_764_000_000.0
H = 3600.0
TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
NOW = T0 + 3 * H


@pytest.fixture
def endpoint() -> Iterator[PartnerEndpoint]:
    with PartnerEndpoint(schema=load_schema()) as ep:
        yield ep


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def incident(make_alert: Any) -> Any:
    book = InMemoryIncidentBook(now=lambda: NOW)
    (inc,) = book.add_alerts(
        [make_alert(Category.UNWANTED_LOGIN, at=T0), make_alert(Category.SHADOW_WORKFLOW, at=T0 + H)]
    )
    return inc


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(endpoint: PartnerEndpoint, http: httpx.Client, ledger: Any = None, **kw: Any) -> PartnerDeliveryClient:
    return PartnerDeliveryClient(
        kw.pop("url", endpoint.url),
        http=http,
        ledger=ledger if ledger is not None else InMemoryDeliveryLedger(),
        allowed_hosts=("127.0.0.1",),
        allow_insecure=True,
        rng=random.Random(7),
        now=kw.pop("now", lambda: NOW),
        **kw,
    )


def test_delivery_posts_the_documented_payload_with_the_idempotency_key(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any
) -> None:
    decision = decide(incident, TriagePolicy(), [], now=NOW)
    result = client(endpoint, http).deliver(incident, decision=decision)
    key = f"{incident.incident_id}-r1"
    assert result == DeliveryResult("delivered", incident.incident_id, 1, key, 1, 202)
    (post,) = endpoint.requests
    assert (post.method, post.path, post.status) == ("POST", endpoint.path, 202)
    assert {k: post.headers[k] for k in ("idempotency-key", "x-ms-client-tracking-id", "content-type")} == {
        "idempotency-key": key,
        "x-ms-client-tracking-id": key,
        "content-type": "application/json",
    }
    assert (post.headers["x-itdr-tenant-id"], post.headers["x-itdr-schema-version"]) == (TENANT, "1.1")
    body = post.json()
    jsonschema.Draft202012Validator(load_schema()).validate(body)
    assert (body["idempotency_key"], body["severity"], body["publish_reason"]) == (
        key,
        "high",
        "severity high is published at once (high, critical)",
    )


@pytest.mark.parametrize("ledger_kind", ["table", "memory"])
def test_a_replay_never_delivers_twice(
    request: pytest.FixtureRequest, endpoint: PartnerEndpoint, http: httpx.Client, incident: Any, ledger_kind: str
) -> None:
    if ledger_kind == "table":
        storage = request.getfixturevalue("storage")
        ledgers = [TableDeliveryLedger.from_storage(storage), TableDeliveryLedger.from_storage(storage)]
    else:
        shared = InMemoryDeliveryLedger()
        ledgers = [shared, shared]
    first = client(endpoint, http, ledgers[0]).deliver(incident)
    second = client(endpoint, http, ledgers[1]).deliver(incident)  # another instance, same ledger
    assert (first.outcome, second.outcome) == ("delivered", "already_delivered")
    assert len(endpoint.requests) == 1
    assert ledgers[1].list_deliveries(TENANT, incident.incident_id) == [
        DeliveryRecord(TENANT, incident.incident_id, 1, "delivered", NOW, 202, 1, f"{incident.incident_id}-r1", "itdr")
    ]
    incident.revision = 2
    assert client(endpoint, http, ledgers[0]).deliver(incident).outcome == "delivered"
    incident.revision = 1  # a stale message about revision 1 arrives late
    assert client(endpoint, http, ledgers[1]).deliver(incident).outcome == "superseded"
    assert [r.idempotency_key for r in endpoint.effective_deliveries] == [
        f"{incident.incident_id}-r1",
        f"{incident.incident_id}-r2",
    ]


def test_the_endpoint_fails_then_recovers_retry_then_deliver_once(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any
) -> None:
    endpoint.set_down(requests=2, status=503)
    sleeps = Sleeps()
    result = client(endpoint, http, sleep=sleeps, retry=RetryPolicy(base_delay=0.5)).deliver(incident)
    assert (result.outcome, result.attempts) == ("delivered", 3)
    assert [r.status for r in endpoint.requests] == [503, 503, 202]
    assert len(endpoint.effective_deliveries) == 1
    assert len({r.idempotency_key for r in endpoint.requests}) == 1
    # equal jitter: half of the exponential delay fixed, half random
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_throttling_honours_retry_after(endpoint: PartnerEndpoint, http: httpx.Client, incident: Any) -> None:
    endpoint.set_down(requests=1, status=429, retry_after=7)
    sleeps = Sleeps()
    result = client(endpoint, http, sleep=sleeps).deliver(incident)
    assert (result.outcome, result.attempts, sleeps) == ("delivered", 2, [7.0])


def test_a_long_retry_after_goes_back_to_the_bus(endpoint: PartnerEndpoint, http: httpx.Client, incident: Any) -> None:
    endpoint.set_down(status=429, retry_after=600)
    sleeps = Sleeps()
    with pytest.raises(ThrottledError) as err:
        client(endpoint, http, sleep=sleeps).deliver(incident)
    assert (err.value.retry_after, sleeps, len(endpoint.requests)) == (600.0, [], 1)


def test_an_endpoint_that_stays_down_raises_transient_after_the_bound(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any
) -> None:
    endpoint.set_down(status=500)
    sleeps = Sleeps()
    ledger = InMemoryDeliveryLedger()
    with pytest.raises(ServiceUnavailable) as err:
        client(endpoint, http, ledger, sleep=sleeps, retry=RetryPolicy(max_attempts=4)).deliver(incident)
    assert isinstance(err.value, TransientError)
    assert (len(endpoint.requests), len(sleeps), ledger.list_deliveries(TENANT, incident.incident_id)) == (4, 3, [])
    assert "sig=" not in str(err.value) and endpoint.signature not in str(err.value)
    endpoint.set_up()  # the bus redelivers later
    assert client(endpoint, http, ledger, sleep=sleeps).deliver(incident).outcome == "delivered"
    assert len(endpoint.effective_deliveries) == 1


@pytest.mark.parametrize("mode", ["reset", "refuse"])
def test_connection_failures_are_retried(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any, mode: str
) -> None:
    endpoint.set_down(mode=mode, **({"requests": 1} if mode == "reset" else {}))  # type: ignore[arg-type]
    calls = Sleeps()

    def sleep(seconds: float) -> None:
        calls(seconds)
        endpoint.set_up()

    result = client(endpoint, http, sleep=sleep).deliver(incident)
    assert (result.outcome, result.attempts, len(calls)) == ("delivered", 2, 1)
    assert [r.status for r in endpoint.requests] == ([0, 202] if mode == "reset" else [202])


def test_a_timeout_is_retried_and_the_double_post_is_one_in_effect(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any
) -> None:
    endpoint.set_down(mode="slow", delay=0.15, requests=1)
    sleeps = Sleeps()
    result = client(endpoint, http, sleep=sleeps, timeout=0.05).deliver(incident)
    assert (result.outcome, result.attempts, len(sleeps)) == ("delivered", 2, 1)
    deadline = time.monotonic() + 2
    while len(endpoint.requests) < 2 and time.monotonic() < deadline:  # the slow answer lands after the retry
        time.sleep(0.01)
    assert [r.status for r in endpoint.requests] == [202, 202]  # the Logic App accepted both...
    assert len(endpoint.effective_deliveries) == 1  # ...and de-duplicates them on the key


def test_an_outage_window_on_the_emulator_clock(http: httpx.Client, incident: Any) -> None:
    now = [0.0]
    with PartnerEndpoint(now=lambda: now[0]) as ep:
        ep.set_down(until=10.0, status=502)

        def sleep(seconds: float) -> None:
            now[0] += 6.0

        result = client(ep, http, sleep=sleep).deliver(incident)
        assert (result.attempts, [r.status for r in ep.requests]) == (3, [502, 502, 202])


@pytest.mark.parametrize(
    ("setup", "error", "reason"),
    [
        pytest.param({"status": 400}, BadInputError, "bad_input", id="400"),
        pytest.param({"status": 422}, BadInputError, "bad_input", id="422"),
        pytest.param({"status": 403}, PermissionError_, "missing_permission", id="403"),
        pytest.param({"status": 410}, PermanentError, "partner_rejected", id="410"),
        pytest.param({"url": "wrong-signature"}, PermissionError_, "missing_permission", id="bad-signature-401"),
        pytest.param({"url": "wrong-path"}, NotFoundError, "not_found", id="unknown-workflow-404"),
    ],
)
def test_permanent_rejections_are_not_retried(
    endpoint: PartnerEndpoint,
    http: httpx.Client,
    incident: Any,
    setup: dict[str, Any],
    error: type[Exception],
    reason: str,
) -> None:
    url = endpoint.url
    if setup.get("url") == "wrong-signature":
        url = url.replace(endpoint.signature, "forged")
    elif setup.get("url") == "wrong-path":
        url = url.replace("itdr-partner", "deleted-workflow")
    else:
        endpoint.set_down(status=setup["status"])
    sleeps = Sleeps()
    ledger = InMemoryDeliveryLedger()
    with pytest.raises(error) as err:
        client(endpoint, http, ledger, url=url, sleep=sleeps).deliver(incident)
    assert isinstance(err.value, PermanentError) and err.value.reason == reason
    assert (len(endpoint.requests), sleeps) == (1, [])
    (row,) = ledger.list_deliveries(TENANT, incident.incident_id)
    assert (row.status, row.reason, row.revision) == ("rejected", reason, 1)
    endpoint.set_up()
    assert client(endpoint, http, ledger).deliver(incident).outcome == "delivered"  # resubmitted after the fix


def test_the_emulator_rejects_a_payload_that_breaks_the_schema(http: httpx.Client, incident: Any) -> None:
    with PartnerEndpoint(schema=load_schema()) as ep:
        resp = http.post(ep.url, json={"schema_version": "1.0", "kind": "incident"})
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "TriggerInputSchemaMismatch"


class CrashAfterPost(InMemoryDeliveryLedger):
    """A ledger whose first write fails: the process died between the POST and the record."""

    crashed = False

    def record_delivery(self, record: DeliveryRecord) -> None:
        if not self.crashed:
            self.crashed = True
            raise ServiceUnavailable("storage down")
        super().record_delivery(record)


def test_a_crash_between_post_and_record_reposts_with_the_same_key(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any
) -> None:
    ledger = CrashAfterPost()
    with pytest.raises(ServiceUnavailable):
        client(endpoint, http, ledger).deliver(incident)
    # #25.5: the revision stays claimed for the lease: a redelivery at once does not post a second time...
    with pytest.raises(ServiceUnavailable) as busy:
        client(endpoint, http, ledger).deliver(incident)
    assert (busy.value.reason, busy.value.retry_after, len(endpoint.deliveries)) == (
        "delivery_in_flight",
        CLAIM_LEASE_S,
        1,
    )
    # ...after the lease the claim is taken over, and the partner drops the repeated key
    later = client(endpoint, http, ledger, now=lambda: NOW + CLAIM_LEASE_S + 1)
    assert later.deliver(incident).outcome == "delivered"
    assert len(endpoint.deliveries) == 2  # posted twice...
    assert len(endpoint.effective_deliveries) == 1  # ...one in effect, thanks to the idempotency key


def test_ocsf_format(http: httpx.Client, incident: Any) -> None:
    with PartnerEndpoint() as endpoint:  # no schema: the partner chose OCSF
        client(endpoint, http, format="ocsf").deliver(incident)
        (post,) = endpoint.requests
    body = post.json()
    assert (body["class_uid"], body["finding_info"]["uid"], post.headers["x-itdr-format"]) == (
        2004,
        incident.incident_id,
        "ocsf",
    )


def test_a_decision_not_to_publish_is_refused(endpoint: PartnerEndpoint, http: httpx.Client, make_alert: Any) -> None:
    (inc,) = InMemoryIncidentBook().add_alerts([make_alert(Category.UNWANTED_LOGIN)])
    decision = decide(inc, TriagePolicy(), [], now=NOW)
    assert decision.publish is False
    with pytest.raises(BadInputError):
        client(endpoint, http).deliver(inc, decision=decision)
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://prod-27.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=SECRET", True),
        ("https://contoso-itdr.azurewebsites.net/api/itdr/triggers/manual/invoke?sig=SECRET", True),
        ("https://prod-01.usgovarizona.logic.azure.us/workflows/x/triggers/manual/paths/invoke?sig=SECRET", True),
        ("http://prod-27.westeurope.logic.azure.com/workflows/abc?sig=SECRET", False),
        ("https://logic.azure.com.evil.example/workflows/abc?sig=SECRET", False),
        ("https://evillogic.azure.com/workflows/abc?sig=SECRET", False),
        ("https://user:pw@prod-1.westeurope.logic.azure.com/workflows/abc?sig=SECRET", False),
        ("https://169.254.169.254/metadata?sig=SECRET", False),
    ],
)
def test_only_logic_app_hosts_are_allowed(url: str, ok: bool) -> None:
    from shared.alerts.delivery import DEFAULT_ALLOWED_HOSTS

    if ok:
        check_endpoint(url, allowed_hosts=DEFAULT_ALLOWED_HOSTS)
        return
    with pytest.raises(ForbiddenTargetError) as err:
        check_endpoint(url, allowed_hosts=DEFAULT_ALLOWED_HOSTS)
    assert "SECRET" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("Mon, 24 Nov 2025 16:00:30 GMT", 30.0), ("soon", None), (None, None)],
)
def test_retry_after_forms(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, now=T0) == expected


def test_proof_of_life_notice_is_posted_once(endpoint: PartnerEndpoint, http: httpx.Client) -> None:
    notice = {
        "kind": "proof_of_life",
        "tenant_id": TENANT,
        "content_type": "Audit.Exchange",
        "first_record_time": "2025-11-24T15:58:00Z",
    }
    ledger = InMemoryDeliveryLedger()
    first = client(endpoint, http, ledger, format="ocsf").deliver_notice(notice)
    again = client(endpoint, http, ledger).deliver_notice(notice)
    assert (first.outcome, again.outcome, first.incident_id) == ("delivered", "already_delivered", again.incident_id)
    (post,) = endpoint.requests
    body = post.json()
    jsonschema.Draft202012Validator(load_schema()).validate(body)  # notices keep our format under OCSF too
    assert {k: body[k] for k in ("kind", "tenant_id", "content_type", "first_record_time", "revision")} == {
        "kind": "proof_of_life",
        "tenant_id": TENANT,
        "content_type": "Audit.Exchange",
        "first_record_time": "2025-11-24T15:58:00Z",
        "revision": 1,
    }
    assert post.headers["idempotency-key"] == f"{first.incident_id}-r1" == body["idempotency_key"]
    with pytest.raises(BadInputError):
        client(endpoint, http, ledger).deliver_notice({"kind": "hello", "tenant_id": TENANT})


def test_two_consumers_of_one_revision_post_it_once(
    endpoint: PartnerEndpoint, http: httpx.Client, incident: Any, storage: Any
) -> None:
    """#25.5: delivery checked the ledger, then posted, with no claim: two consumers both posted."""
    ledger = TableDeliveryLedger.from_storage(storage)
    first = DeliveryRecord(TENANT, incident.incident_id, 1, "claimed", NOW, 0, 0, f"{incident.incident_id}-r1", "itdr")
    assert ledger.claim(first)  # consumer A holds the revision (its POST in flight)
    with pytest.raises(ServiceUnavailable) as busy:
        client(endpoint, http, TableDeliveryLedger.from_storage(storage)).deliver(incident)  # consumer B
    assert (busy.value.reason, endpoint.requests) == ("delivery_in_flight", [])
    assert not ledger.claim(first)
    ledger.release(first)  # A's POST failed: the claim goes, B's retry posts
    assert client(endpoint, http, ledger).deliver(incident).outcome == "delivered"
    assert len(endpoint.requests) == 1
    assert [r.status for r in ledger.list_deliveries(TENANT, incident.incident_id)] == ["delivered"]


def test_a_notice_in_flight_is_not_posted_again(endpoint: PartnerEndpoint, http: httpx.Client) -> None:
    """#25.5: notices and weekly reports claim their row too (a duplicate message waits for the lease)."""
    notice = {"kind": "proof_of_life", "tenant_id": TENANT, "content_type": "Audit.Exchange"}
    ledger = CrashAfterPost()
    with pytest.raises(ServiceUnavailable):
        client(endpoint, http, ledger).deliver_notice(notice)  # posted, then died before the record
    with pytest.raises(ServiceUnavailable) as busy:
        client(endpoint, http, ledger).deliver_notice(notice)
    assert (busy.value.reason, len(endpoint.requests)) == ("delivery_in_flight", 1)
    later = client(endpoint, http, ledger, now=lambda: NOW + CLAIM_LEASE_S + 1).deliver_notice(notice)
    assert (later.outcome, len(endpoint.requests), len(endpoint.effective_deliveries)) == ("delivered", 2, 1)
