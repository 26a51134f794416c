"""ManagementActivityClient through real HTTP against the local emulator (and a MockTransport for the
error table the emulator does not serve)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest

from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.client import (
    ContentBlob,
    ContentNotification,
    ManagementActivityClient,
    Subscription,
    WebhookConfig,
    format_api_time,
    parse_content_blob,
    split_window,
)
from shared.ingest.clouds import (
    ApiEndpoint,
    Cloud,
    api_root,
    cloud_profile,
    is_allowed_content_uri,
    is_allowed_next_page_uri,
)
from shared.platform.errors import (
    BadInputError,
    ConfigurationError,
    ExpiredContentError,
    ForbiddenTargetError,
    NotFoundError,
    PermissionError_,
    ServiceUnavailable,
    SubscriptionError,
    ThrottledError,
)

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"  # the conftest's default tenant
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
PUBLISHER = "46b472a7-c68e-4adf-8ade-3db49497518e"
GENERAL = "Audit.General"
H = timedelta(hours=1)


def ids(blobs: Any) -> list[str]:
    return [b.content_id for b in blobs]


def add_blobs(emulator: ManagementApiEmulator, created: list[datetime], *, tenant: str = TENANT_A) -> list[str]:
    """One blob per creation time, each with one record ``r{i}``; returns the content ids."""
    return [
        emulator.add_content(tenant, GENERAL, [{"Id": f"r{i}", "Operation": "Test"}], created=when)["contentId"]
        for i, when in enumerate(created)
    ]


def list_requests(emulator: ManagementApiEmulator) -> list[tuple[str, str, str]]:
    return [
        (r.path.split("/")[2], r.query.get("startTime", ""), r.query.get("endTime", ""))
        for r in emulator.requests
        if r.operation == "list_content"
    ]


# ----------------------------------------------------------------------------- clouds


@pytest.mark.parametrize(
    ("cloud", "host", "authority", "scope"),
    [
        (Cloud.COMMERCIAL, "manage.office.com", "login.microsoftonline.com", "https://manage.office.com/.default"),
        (Cloud.GCC, "manage-gcc.office.com", "login.microsoftonline.com", "https://manage-gcc.office.com/.default"),
        (Cloud.GCC_HIGH, "manage.office365.us", "login.microsoftonline.us", "https://manage.office365.us/.default"),
        (
            Cloud.DOD,
            "manage.protection.apps.mil",
            "login.microsoftonline.us",
            "https://manage.protection.apps.mil/.default",
        ),
    ],
)
def test_cloud_hosts_authorities_and_scopes(cloud: Cloud, host: str, authority: str, scope: str) -> None:
    profile = cloud_profile(cloud)
    assert (profile.api_host, profile.authority_host, profile.scope) == (host, authority, scope)
    assert api_root(cloud, TENANT_A.upper()) == f"https://{host}/api/v1.0/{TENANT_A}/activity/feed"
    assert ApiEndpoint.for_cloud(cloud) == ApiEndpoint("https", host, 443)


def test_api_root_with_an_emulator_endpoint_and_bad_inputs() -> None:
    endpoint = ApiEndpoint.parse("http://127.0.0.1:8081/")
    assert endpoint == ApiEndpoint("http", "127.0.0.1", 8081, "")
    assert api_root("gcc", TENANT_A, endpoint=endpoint) == f"http://127.0.0.1:8081/api/v1.0/{TENANT_A}/activity/feed"
    with pytest.raises(ConfigurationError) as bad_tenant:
        api_root(Cloud.COMMERCIAL, "contoso.onmicrosoft.com/../x")
    assert bad_tenant.value.reason == "tenant_id_invalid"
    with pytest.raises(ConfigurationError) as bad_cloud:
        cloud_profile("china")
    assert bad_cloud.value.reason == "unknown_cloud"
    with pytest.raises(ConfigurationError):
        ApiEndpoint.parse("ftp://127.0.0.1:21")


ROOT = f"https://manage.office.com/api/v1.0/{TENANT_A}/activity/feed"


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        (f"{ROOT}/audit/123$456$audit_general$Audit_General$emea0001", True),
        (f"https://MANAGE.office.com:443/api/v1.0/{TENANT_A.upper()}/activity/feed/audit/x", True),
        (f"http://manage.office.com/api/v1.0/{TENANT_A}/activity/feed/audit/x", False),  # scheme
        (f"https://manage.office.com:8443/api/v1.0/{TENANT_A}/activity/feed/audit/x", False),  # port
        (f"https://manage.office365.us/api/v1.0/{TENANT_A}/activity/feed/audit/x", False),  # another cloud
        (f"https://manage.office.com.evil.example/api/v1.0/{TENANT_A}/activity/feed/audit/x", False),
        (f"https://user@manage.office.com/api/v1.0/{TENANT_A}/activity/feed/audit/x", False),  # credentials
        (f"https://manage.office.com/api/v1.0/{TENANT_B}/activity/feed/audit/x", False),  # another tenant
        (f"{ROOT}/audit/../../../{TENANT_B}/activity/feed/audit/x", False),  # dot segments
        (f"{ROOT}/audit/%2e%2e/%2e%2e/x", False),  # encoded dot segments
        (f"{ROOT}/audit%2F..%2Fx", False),  # encoded slash
        (f"{ROOT}/audit%2Fx", False),  # encoded slash alone (no dot segment to give it away)
        (f"{ROOT}/audit%2fx", False),
        (f"{ROOT}/audit%5Cx", False),  # encoded backslash
        (f"{ROOT}/audit\\x", False),  # raw backslash
        (f"https://manage.office.com/api/v1.0/{TENANT_A}/activity/feedx/audit/x", False),
        (f"{ROOT}/", False),  # nothing under the feed
        (f"{ROOT}/audit/./x", True),  # httpx removes a "." segment itself: the URL fetched is .../audit/x
        (f"{ROOT}/audit/x?PublisherIdentifier=a%2Fb", True),  # an encoded slash in the query is not in the path
        (f"{ROOT}/audit/x?a=%2F?b=1", True),  # the path ends at the first "?"
        ("https://[::1", False),  # httpx cannot parse it
        ("not a url", False),
    ],
)
def test_content_uri_allowlist(uri: str, allowed: bool) -> None:
    assert is_allowed_content_uri(uri, tenant_id=TENANT_A, endpoint=ApiEndpoint.for_cloud(Cloud.COMMERCIAL)) is allowed


def test_uri_guards_refuse_everything_for_a_tenant_id_that_is_not_a_guid() -> None:
    endpoint = ApiEndpoint.for_cloud(Cloud.COMMERCIAL)
    uri = "https://manage.office.com/api/v1.0/not-a-guid/activity/feed/audit/x"
    assert is_allowed_content_uri(uri, tenant_id="not-a-guid", endpoint=endpoint) is False
    page = "https://manage.office.com/api/v1.0/not-a-guid/activity/feed/subscriptions/content?nextPage=1"
    assert is_allowed_next_page_uri(page, tenant_id="not-a-guid", endpoint=endpoint) is False


NEXT = f"{ROOT}/subscriptions/content?contentType=Audit.General&nextPage=2024050108"


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        (NEXT, True),
        (f"https://manage.office.com/api/v1/{TENANT_A}/activity/feed/subscriptions/content?nextPage=x", True),  # REF
        (NEXT.replace("https://", "http://"), False),
        (NEXT.replace("manage.office.com", "manage.office.com.evil.example"), False),
        (NEXT.replace(TENANT_A, TENANT_B), False),
        (NEXT + "#frag", False),
        (f"{ROOT}/subscriptions/../../{TENANT_B}/activity/feed/subscriptions/content", False),
        (f"{ROOT}/subscriptions%2Fcontent", False),
        (f"{ROOT}/audit/x", False),  # not the listing
        ("https://[::1", False),
    ],
)
def test_next_page_uri_allowlist(uri: str, allowed: bool) -> None:
    endpoint = ApiEndpoint.for_cloud(Cloud.COMMERCIAL)
    assert is_allowed_next_page_uri(uri, tenant_id=TENANT_A, endpoint=endpoint) is allowed


# ----------------------------------------------------------------------------- time windows

NOW = datetime(2025, 3, 10, 15, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (NOW - 2 * H, NOW, [(NOW - 2 * H, NOW)]),
        (NOW - 24 * H, NOW, [(NOW - 24 * H, NOW)]),
        (NOW - 60 * H, NOW, [(NOW - 60 * H, NOW - 36 * H), (NOW - 36 * H, NOW - 12 * H), (NOW - 12 * H, NOW)]),
        (NOW - H + timedelta(microseconds=900), NOW, [(NOW - H, NOW)]),  # whole seconds
        (NOW, NOW, []),
        (NOW, NOW - H, []),
        # catch-up after 10 days down: the start is clamped to now - 167h55m
        (
            NOW - timedelta(days=10),
            NOW - timedelta(days=6),
            [(NOW - timedelta(hours=167, minutes=55), NOW - timedelta(days=6))],
        ),
        (NOW - timedelta(days=10), NOW - timedelta(days=8), []),
    ],
)
def test_split_window(start: datetime, end: datetime, expected: list[tuple[datetime, datetime]]) -> None:
    assert split_window(start, end, now=NOW) == expected


def test_times_are_formatted_on_a_24_hour_clock_in_utc() -> None:
    assert format_api_time(datetime(2025, 3, 10, 15, 4, 5, 999999, tzinfo=UTC)) == "2025-03-10T15:04:05"
    plus_two = datetime(2025, 3, 10, 15, 0, tzinfo=UTC).astimezone(timezone(2 * H))  # 17:00+02:00
    assert format_api_time(plus_two) == "2025-03-10T15:00:00"
    with pytest.raises(BadInputError):
        format_api_time(datetime(2025, 3, 10, 15, 0))


# ----------------------------------------------------------------------------- listing


def test_pagination_follows_next_page_uri_over_more_than_three_pages(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    created = [clock() - 10 * H + i * timedelta(minutes=5) for i in range(7)]
    expected = add_blobs(emulator, created)

    blobs = list(client.list_content(GENERAL, start=clock() - 12 * H, end=clock()))

    assert ids(blobs) == expected
    assert [b.content_created for b in blobs] == created
    window = (format_api_time(clock() - 12 * H), format_api_time(clock()))
    # page 1 on /api/v1.0/, pages 2-4 on the /api/v1/ URL the service hands out, same window on each
    assert list_requests(emulator) == [("v1.0", *window)] + [("v1", *window)] * 3


def test_content_pages_carry_the_cursor_and_resume_from_it(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    expected = add_blobs(emulator, [clock() - 5 * H + i * timedelta(minutes=1) for i in range(5)])
    start, end = clock() - 6 * H, clock()

    pages = list(client.list_content_pages(GENERAL, start=start, end=end))

    assert [ids(p.items) for p in pages] == [expected[0:2], expected[2:4], expected[4:5]]
    assert [(p.window_start, p.window_end) for p in pages] == [(start, end)] * 3
    assert pages[-1].next_page_uri is None
    cursor = pages[0].next_page_uri
    assert cursor is not None
    assert "nextPage=" in cursor

    resumed = list(client.list_content_pages(GENERAL, start=start, end=end, resume_page_uri=cursor))
    assert [ids(p.items) for p in resumed] == [expected[2:4], expected[4:5]]

    # a cursor of another window is ignored: the slice is listed from page 1
    again = list(client.list_content_pages(GENERAL, start=start - H, end=end, resume_page_uri=cursor))
    assert [ids(p.items) for p in again] == [expected[0:2], expected[2:4], expected[4:5]]


def test_windows_longer_than_24_hours_are_split(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    now = clock()
    expected = add_blobs(emulator, [now - 59 * H, now - 36 * H, now - 35 * H, now - H])

    blobs = list(client.list_content(GENERAL, start=now - 60 * H, end=now))

    assert ids(blobs) == expected
    slices = [(now - 60 * H, now - 36 * H), (now - 36 * H, now - 12 * H), (now - 12 * H, now)]
    first_pages = [r for r in list_requests(emulator) if r[0] == "v1.0"]
    assert first_pages == [("v1.0", format_api_time(a), format_api_time(b)) for a, b in slices]


def test_seven_day_catch_up_clamps_the_start(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    now = clock()
    add_blobs(emulator, [now - timedelta(hours=167, minutes=56)])  # older than the clamp: not asked for
    expected = add_blobs(emulator, [now - timedelta(hours=167, minutes=50), now - 100 * H, now - H])

    blobs = list(client.list_content(GENERAL, start=now - timedelta(days=9), end=now))

    assert ids(blobs) == expected
    firsts = [r for r in list_requests(emulator) if r[0] == "v1.0"]
    assert firsts[0] == ("v1.0", "2025-03-03T15:05:00", "2025-03-04T15:05:00")
    assert firsts[-1][2] == "2025-03-10T15:00:00"
    assert len(firsts) == 7  # 167h55m in 24 h slices


def test_tenants_are_isolated(emulator, make_client, clock) -> None:
    a, b = make_client(TENANT_A), make_client(TENANT_B)
    a.start_subscription(GENERAL)
    b.start_subscription(GENERAL)
    a_ids = add_blobs(emulator, [clock() - H], tenant=TENANT_A)
    window = {"start": clock() - 2 * H, "end": clock()}

    a_blobs = list(a.list_content(GENERAL, **window))
    assert ids(a_blobs) == a_ids
    assert list(b.list_content(GENERAL, **window)) == []
    with pytest.raises(ForbiddenTargetError):
        b.get_content(a_blobs[0].content_uri)


# ----------------------------------------------------------------------------- content retrieval


def test_get_content_returns_the_raw_blob(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    records = [{"Id": "r1", "CreationTime": "2025-03-10T14:00:00"}, {"Id": "r2", "CreationTime": "2025-03-10T14:01:00"}]
    entry = emulator.add_content(TENANT_A, GENERAL, records, created=clock() - H)

    data = client.get_content(entry["contentUri"])

    assert parse_content_blob(data) == records
    assert emulator.served_record_ids == ["r1", "r2"]


def test_publisher_identifier_is_on_every_request(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    client.list_subscriptions()
    add_blobs(emulator, [clock() - H + i * timedelta(minutes=1) for i in range(5)])
    for blob in client.list_content(GENERAL, start=clock() - 2 * H, end=clock()):
        client.get_content(blob.content_uri)
    client.stop_subscription(GENERAL)

    requests = emulator.requests
    assert {r.operation for r in requests} == {
        "start_subscription",
        "list_subscriptions",
        "list_content",
        "get_content",
        "stop_subscription",
    }
    assert len(requests) == 1 + 1 + 3 + 5 + 1
    assert [r.query.get("PublisherIdentifier") for r in requests] == [PUBLISHER] * len(requests)


def test_token_is_cached_per_tenant_until_near_expiry(emulator, make_client, clock, credential) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    client.list_subscriptions()
    clock.advance(minutes=54)  # 6 minutes left: still used
    client.list_subscriptions()
    clock.advance(minutes=2)  # 4 minutes left: refreshed
    client.list_subscriptions()

    assert credential.calls == [("https://manage.office.com/.default",)] * 2
    assert [r.authorization for r in emulator.requests] == ["Bearer token-1"] * 3 + ["Bearer token-2"]


def test_401_refreshes_the_token_once(emulator, make_client, credential, sleeps) -> None:
    client = make_client()
    client.list_subscriptions()
    emulator.revoke_token("token-1")

    assert client.list_subscriptions() == []
    assert [(r.authorization, r.status) for r in emulator.requests] == [
        ("Bearer token-1", 200),
        ("Bearer token-1", 401),
        ("Bearer token-2", 200),
    ]
    assert sleeps.delays == []

    emulator.revoke_token("token-2")
    emulator.revoke_token("token-3")
    with pytest.raises(PermissionError_) as err:
        client.list_subscriptions()
    assert (err.value.reason, err.value.context["status"]) == ("unauthorized", 401)
    assert len(credential.calls) == 3


@pytest.mark.parametrize(
    "uri_of",
    [
        lambda e, cid: f"{e.base_url.replace('127.0.0.1', 'localhost')}/api/v1.0/{TENANT_A}/activity/feed/audit/{cid}",
        lambda e, cid: f"{e.base_url.replace('http:', 'https:')}/api/v1.0/{TENANT_A}/activity/feed/audit/{cid}",
        lambda e, cid: f"http://127.0.0.2:{e.base_url.rsplit(':', 1)[1]}/api/v1.0/{TENANT_A}/activity/feed/audit/{cid}",
        lambda e, cid: f"{e.base_url}/api/v1.0/{TENANT_B}/activity/feed/audit/{cid}",
        lambda e, cid: f"{e.base_url}/api/v1.0/{TENANT_A}/activity/feed/audit/%2e%2e/%2e%2e/%2e%2e/{TENANT_B}/x",
        lambda e, cid: f"https://manage.office.com/api/v1.0/{TENANT_A}/activity/feed/audit/{cid}",
    ],
    ids=["other-host", "other-scheme", "other-ip", "other-tenant", "encoded-dots", "real-cloud-host"],
)
def test_content_uri_off_the_endpoint_is_refused_before_any_request(
    emulator, make_client, clock, credential, uri_of
) -> None:
    client = make_client()
    cid = add_blobs(emulator, [clock() - H])[0]

    with pytest.raises(ForbiddenTargetError):
        client.get_content(uri_of(emulator, cid))

    assert credential.calls == []  # no token was even requested
    assert emulator.requests == []
    assert emulator.served_record_ids == []


def test_next_page_uri_on_another_host_is_refused(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    add_blobs(emulator, [clock() - H])
    emulator.inject("foreign_next_page", host="localhost")

    with pytest.raises(ForbiddenTargetError):
        list(client.list_content(GENERAL, start=clock() - 2 * H, end=clock()))

    assert [r.operation for r in emulator.requests] == ["start_subscription", "list_content"]


# ----------------------------------------------------------------------------- faults


def test_429_retry_after_seconds_is_honoured(emulator, make_client, sleeps) -> None:
    client = make_client()
    emulator.inject("throttle_429", retry_after=7)

    assert client.list_subscriptions() == []
    assert sleeps.delays == [7.0]
    assert [r.status for r in emulator.requests] == [429, 200]


def test_429_retry_after_http_date_is_honoured(emulator, make_client, clock, sleeps) -> None:
    client = make_client()
    emulator.inject("throttle_429", retry_after=format_datetime(clock() + timedelta(seconds=30), usegmt=True))

    client.list_subscriptions()
    assert sleeps.delays == [30.0]


def test_af429_in_a_403_is_throttling_not_a_permission_error(emulator, make_client, clock, sleeps) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    entry = emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - H)
    emulator.inject("throttle_403", retry_after=3, operation="get_content")

    assert parse_content_blob(client.get_content(entry["contentUri"])) == [{"Id": "r1"}]
    assert sleeps.delays == [3.0]
    assert [r.status for r in emulator.requests if r.operation == "get_content"] == [403, 200]


def test_throttling_that_outlasts_the_retries_raises(emulator, make_client, sleeps) -> None:
    client = make_client(max_retries=2)
    emulator.inject("throttle_429", times=10, retry_after=1)

    with pytest.raises(ThrottledError) as err:
        client.list_subscriptions()
    assert (err.value.retry_after, err.value.context["code"], err.value.context["tenant"]) == (1.0, "AF429", TENANT_A)
    assert sleeps.delays == [1.0, 1.0]
    assert emulator.stats.faults == {"throttle_429": 3}


def test_a_retry_after_beyond_the_cap_is_left_to_the_caller(emulator, make_client, sleeps) -> None:
    client = make_client(max_retry_delay=60)
    emulator.inject("throttle_429", retry_after=300)

    with pytest.raises(ThrottledError) as err:
        client.list_subscriptions()
    assert err.value.retry_after == 300.0
    assert sleeps.delays == []


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_with_backoff(emulator, make_client, sleeps, status: int) -> None:
    client = make_client(retry_backoff=0.5)
    emulator.inject("server_error", times=2, status=status)

    assert client.list_subscriptions() == []
    assert sleeps.delays == [0.5, 1.0]
    assert [r.status for r in emulator.requests] == [status, status, 200]


def test_persistent_server_errors_raise_service_unavailable(emulator, make_client, sleeps) -> None:
    client = make_client(max_retries=1)
    emulator.inject("server_error", times=5)

    with pytest.raises(ServiceUnavailable) as err:
        client.list_subscriptions()
    assert (err.value.context["code"], err.value.context["status"]) == ("AF50000", 500)
    assert sleeps.delays == [2.0]


def test_a_slow_answer_times_out_and_is_retried(emulator, make_client, sleeps) -> None:
    client = make_client(timeout=0.1)
    emulator.inject("slow", delay=0.2)

    assert client.list_subscriptions() == []
    assert sleeps.delays == [2.0]
    assert emulator.stats.faults == {"slow": 1}


def test_a_truncated_blob_is_retried(emulator, make_client, clock, sleeps) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    records = [{"Id": f"r{i}", "Operation": "x" * 50} for i in range(20)]
    entry = emulator.add_content(TENANT_A, GENERAL, records, created=clock() - H)
    emulator.inject("truncated_blob")

    assert parse_content_blob(client.get_content(entry["contentUri"])) == records
    assert sleeps.delays == [2.0]
    assert emulator.served_record_ids == [f"r{i}" for i in range(20)]


def test_an_invalid_json_blob_is_bad_input(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    entry = emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - H)
    emulator.inject("invalid_json_blob")

    data = client.get_content(entry["contentUri"])
    with pytest.raises(BadInputError) as err:
        parse_content_blob(data, tenant_id=TENANT_A, content_id=entry["contentId"])
    assert (err.value.reason, err.value.context) == (
        "invalid_blob",
        {"tenant": TENANT_A, "content_id": entry["contentId"]},
    )


def test_expired_and_missing_content(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    entry = emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - H)

    emulator.inject("expired_content")
    with pytest.raises(ExpiredContentError) as injected:
        client.get_content(entry["contentUri"])
    assert injected.value.context["code"] == "AF20051"

    with pytest.raises(NotFoundError) as missing:
        client.get_content(entry["contentUri"].replace("emu0001", "emu9999"))
    assert (missing.value.context["code"], missing.value.context["status"]) == ("AF20050", 404)

    clock.advance(days=7)  # created an hour ago + 7 days: past its expiry
    with pytest.raises(ExpiredContentError):
        client.get_content(entry["contentUri"])
    assert emulator.served_record_ids == []


def test_duplicate_content_is_listed_as_the_service_lists_it(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    first = add_blobs(emulator, [clock() - 30 * H])
    emulator.inject("duplicate_content")
    later = add_blobs(emulator, [clock() - H])

    blobs = list(client.list_content(GENERAL, start=clock() - 2 * H, end=clock()))

    assert ids(blobs) == [later[0], first[0]]  # the older blob shows up again in a later window


def test_disabled_and_missing_subscriptions(emulator, make_client, clock) -> None:
    client = make_client()
    window = {"start": clock() - 2 * H, "end": clock()}
    with pytest.raises(SubscriptionError) as missing:
        list(client.list_content(GENERAL, **window))
    assert (missing.value.reason, missing.value.context["code"]) == ("subscription_not_enabled", "AF20022")

    client.start_subscription(GENERAL)
    emulator.inject("subscription_disabled")
    for _ in range(2):  # stays disabled until started again
        with pytest.raises(SubscriptionError) as disabled:
            list(client.list_content(GENERAL, **window))
        assert (disabled.value.reason, disabled.value.context["code"]) == ("subscription_disabled", "AF20023")

    assert client.start_subscription(GENERAL).enabled
    assert list(client.list_content(GENERAL, **window)) == []


def test_long_page_chain(emulator, make_client, clock) -> None:
    emulator.page_size = 100
    client = make_client()
    client.start_subscription(GENERAL)
    expected = add_blobs(emulator, [clock() - H + i * timedelta(minutes=1) for i in range(5)])
    emulator.inject("long_page_chain")

    pages = list(client.list_content_pages(GENERAL, start=clock() - 2 * H, end=clock()))

    assert [ids(p.items) for p in pages] == [[cid] for cid in expected]


def test_a_refused_next_page_restarts_the_window_once(emulator, make_client, clock) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    expected = add_blobs(emulator, [clock() - H + i * timedelta(minutes=1) for i in range(3)])
    emulator.inject("invalid_next_page")

    blobs = list(client.list_content(GENERAL, start=clock() - 2 * H, end=clock()))
    # page 1, AF20031 on page 2, page 1 again, page 2: duplicates are the caller's contentId dedupe
    assert ids(blobs) == expected[:2] + expected

    emulator.inject("invalid_next_page", times=2)
    with pytest.raises(BadInputError) as err:
        list(client.list_content(GENERAL, start=clock() - 2 * H, end=clock()))
    assert (err.value.reason, err.value.context["code"]) == ("bad_next_page", "AF20031")


def test_random_faults_with_retries_lose_nothing(emulator, make_client, clock) -> None:
    client = make_client(max_retries=8, retry_backoff=0.0)
    client.start_subscription(GENERAL)
    for i in range(12):
        emulator.add_content(
            TENANT_A, GENERAL, [{"Id": f"r{i}a"}, {"Id": f"r{i}b"}], created=clock() - H + i * timedelta(minutes=1)
        )
    emulator.set_fault_rates({"throttle_429": 0.2, "server_error": 0.2, "truncated_blob": 0.2}, seed=7)

    for blob in client.list_content(GENERAL, start=clock() - 2 * H, end=clock()):
        parse_content_blob(client.get_content(blob.content_uri))

    assert sorted(emulator.served_record_ids) == sorted(f"r{i}{s}" for i in range(12) for s in "ab")
    assert sum(emulator.stats.faults.values()) > 0


# ----------------------------------------------------------------------------- subscriptions and webhooks


def test_start_subscription_is_idempotent(emulator, make_client) -> None:
    client = make_client()
    expected = Subscription(content_type=GENERAL, status="enabled", webhook=None)

    assert client.start_subscription(GENERAL) == expected
    assert client.start_subscription(GENERAL) == expected  # AF20024: already enabled
    assert client.list_subscriptions() == [expected]
    assert [(r.operation, r.status) for r in emulator.requests] == [
        ("start_subscription", 200),
        ("start_subscription", 400),
        ("list_subscriptions", 200),
        ("list_subscriptions", 200),
    ]


def test_stop_subscription_succeeds_when_already_stopped(emulator, make_client) -> None:
    client = make_client()
    client.start_subscription(GENERAL)
    client.stop_subscription(GENERAL)
    client.stop_subscription(GENERAL)  # AF20022: nothing to stop
    assert client.list_subscriptions() == [Subscription(content_type=GENERAL, status="disabled")]


def test_webhook_validation_handshake(emulator, make_client, webhook_listener) -> None:
    client = make_client()
    sub = client.start_subscription(GENERAL, webhook=WebhookConfig(address=webhook_listener.url, auth_id="auth-a"))

    assert sub == Subscription(
        content_type=GENERAL,
        status="enabled",
        webhook=WebhookConfig(address=webhook_listener.url, auth_id="auth-a", status="enabled"),
    )
    [(headers, body)] = webhook_listener.received
    assert headers["webhook-authid"] == "auth-a"
    assert body == {"validationCode": headers["webhook-validationcode"]}


def test_webhook_validation_failure_leaves_no_subscription(emulator, make_client, webhook_listener) -> None:
    client = make_client()
    webhook_listener.status = 500

    with pytest.raises(ConfigurationError) as err:
        client.start_subscription(GENERAL, webhook=WebhookConfig(address=webhook_listener.url, auth_id="auth-a"))

    assert (err.value.reason, err.value.context["code"]) == ("webhook_validation_failed", "AF20021")
    assert len(webhook_listener.received) == 1
    assert client.list_subscriptions() == []


def test_notifications_are_sent_and_their_uris_pass_the_guard(emulator, make_client, clock, webhook_listener) -> None:
    client = make_client()
    client.start_subscription(GENERAL, webhook=WebhookConfig(address=webhook_listener.url, auth_id="auth-a"))
    entry = emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - H)
    emulator.add_content(TENANT_A, GENERAL, [{"Id": "r2"}], created=clock(), notify=False)

    assert len(webhook_listener.received) == 2  # the validation, then one notification
    headers, body = webhook_listener.received[1]
    assert headers["webhook-authid"] == "auth-a"
    [note] = [ContentNotification.model_validate(item) for item in body]
    assert note == ContentNotification(
        tenant_id=TENANT_A,
        client_id=emulator.client_id,
        content_type=GENERAL,
        content_id=entry["contentId"],
        content_uri=entry["contentUri"],
        content_created=clock() - H,
        content_expiration=clock() - H + timedelta(days=7),
    )
    assert client.is_allowed_content_uri(note.content_uri)
    assert parse_content_blob(client.get_content(note.content_uri)) == [{"Id": "r1"}]


# ----------------------------------------------------------------------------- error table (MockTransport)


def _mock_client(
    responses: list[httpx.Response], clock, credential, sleeps, **options: Any
) -> tuple[ManagementActivityClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    client = ManagementActivityClient(
        TENANT_A,
        cloud=Cloud.GCC_HIGH,
        publisher_id=PUBLISHER,
        credential=credential,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleeps,
        clock=clock,
        max_retries=0,
        **options,
    )
    return client, seen


def _af(status: int, code: str, message: str = "m", **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps({"error": {"code": code, "message": message}}), headers=headers)


@pytest.mark.parametrize(
    ("response", "error", "reason"),
    [
        (_af(401, "AF10001", "permission set (x) lacks ActivityFeed.Read"), PermissionError_, "missing_permission"),
        (_af(403, "AF10001"), PermissionError_, "missing_permission"),
        (httpx.Response(403, text="Forbidden"), PermissionError_, "forbidden"),
        (_af(403, "AF429", **{"Retry-After": "5"}), ThrottledError, "throttled"),
        (_af(400, "AF20022"), SubscriptionError, "subscription_not_enabled"),
        (_af(400, "AF20023"), SubscriptionError, "subscription_disabled"),
        (_af(400, "AF20051"), ExpiredContentError, "content_expired"),
        (_af(400, "AF20050"), NotFoundError, "not_found"),
        (httpx.Response(404, text="nope"), NotFoundError, "not_found"),
        (_af(400, "AF20030"), BadInputError, "bad_window"),
        (_af(400, "AF20055"), BadInputError, "bad_window"),
        (_af(400, "AF20001"), BadInputError, "bad_request"),
        (_af(400, "AF20010"), ConfigurationError, "tenant_mismatch"),
        (_af(400, "AF20011"), ConfigurationError, "tenant_not_found"),
        (_af(400, "AF20052"), ConfigurationError, "invalid_content_id"),
        (_af(500, "AF50000"), ServiceUnavailable, "service_unavailable"),
        (_af(400, "AF50005"), ServiceUnavailable, "service_unavailable"),
        (_af(400, "AF50006"), ServiceUnavailable, "service_unavailable"),
        (httpx.Response(408), ServiceUnavailable, "service_unavailable"),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServiceUnavailable, "service_unavailable"),
        (
            _af(500, "AF50000", "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant x does not exist."),
            ConfigurationError,
            "audit_log_disabled",
        ),
    ],
)
def test_error_mapping(response, error, reason, clock, credential, sleeps) -> None:
    client, seen = _mock_client([response], clock, credential, sleeps)
    with pytest.raises(error) as raised:
        client.list_subscriptions()
    assert type(raised.value) is error
    assert raised.value.reason == reason
    assert raised.value.context["tenant"] == TENANT_A
    assert len(seen) == 1


def test_mock_requests_go_to_the_cloud_host_with_its_token(clock, credential, sleeps) -> None:
    client, seen = _mock_client([httpx.Response(200, json=[])], clock, credential, sleeps)
    assert client.list_subscriptions() == []
    assert str(seen[0].url) == (
        f"https://manage.office365.us/api/v1.0/{TENANT_A}/activity/feed/subscriptions/list?PublisherIdentifier={PUBLISHER}"
    )
    assert credential.calls == [("https://manage.office365.us/.default",)]


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"contentType": "Audit.General"}', b'[{"contentType": "Audit.General"}]'],
)
def test_malformed_api_answers_are_bad_input(body: bytes, clock, credential, sleeps) -> None:
    client, _ = _mock_client([httpx.Response(200, content=body)], clock, credential, sleeps)
    with pytest.raises(BadInputError) as err:
        list(client.list_content(GENERAL, start=clock() - H, end=clock()))
    assert err.value.reason == "invalid_response"


def test_a_connection_error_is_transient(clock, credential, sleeps) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = ManagementActivityClient(
        TENANT_A,
        cloud="commercial",
        publisher_id=PUBLISHER,
        credential=credential,
        http_client=httpx.Client(transport=httpx.MockTransport(refuse)),
        sleep=sleeps,
        clock=clock,
        max_retries=2,
    )
    with pytest.raises(ServiceUnavailable):
        client.list_subscriptions()
    assert sleeps.delays == [2.0, 4.0]


def test_next_page_uri_header_name_is_case_insensitive(clock, credential, sleeps) -> None:
    root = f"https://manage.office365.us/api/v1/{TENANT_A}/activity/feed/subscriptions/content"
    blob = {
        "contentType": GENERAL,
        "contentId": "c1",
        "contentUri": f"https://manage.office365.us/api/v1.0/{TENANT_A}/activity/feed/audit/c1",
        "contentCreated": "2025-03-10T14:00:00.000Z",
        "contentExpiration": "2025-03-17T14:00:00.000Z",
    }
    responses = [
        httpx.Response(200, json=[blob], headers={"nextpageuri": f"{root}?nextPage=2"}),
        httpx.Response(200, json=[blob], headers={"NEXTPAGEURI": f"{root}?nextPage=3"}),
        httpx.Response(200, json=[]),
    ]
    client, seen = _mock_client(responses, clock, credential, sleeps)

    blobs = list(client.list_content(GENERAL, start=clock() - H, end=clock()))

    assert blobs == [ContentBlob.model_validate(blob)] * 2
    assert [str(r.url) for r in seen[1:]] == [
        f"{root}?nextPage=2&PublisherIdentifier={PUBLISHER}",
        f"{root}?nextPage=3&PublisherIdentifier={PUBLISHER}",
    ]


@pytest.mark.parametrize(
    ("tenant", "options", "reason"),
    [
        ("not-a-guid", {}, "tenant_id_invalid"),
        (TENANT_A, {"cloud": "china"}, "unknown_cloud"),
        (TENANT_A, {"publisher_id": "ITDR Inc."}, "publisher_id_invalid"),
        (TENANT_A, {"base_url": "http://127.0.0.1:1/?x=1"}, "invalid_base_url"),
    ],
)
def test_construction_refuses_bad_configuration(tenant: str, options: dict[str, Any], reason: str, credential) -> None:
    kwargs: dict[str, Any] = {"cloud": "commercial", "publisher_id": PUBLISHER, "credential": credential, **options}
    with pytest.raises(ConfigurationError) as err:
        ManagementActivityClient(tenant, **kwargs)
    assert err.value.reason == reason


def test_same_origin_takes_strings_and_refuses_what_does_not_parse() -> None:
    endpoint = ApiEndpoint.for_cloud(Cloud.COMMERCIAL)
    assert endpoint.same_origin("https://manage.office.com/api/v1.0/x") is True
    assert endpoint.same_origin("https://manage.office.com:443/x") is True
    assert endpoint.same_origin("https://[::1") is False
    assert endpoint.same_origin("https://manage.office.com:8443/x") is False


@pytest.mark.parametrize(
    ("base_url", "parts"),
    [
        ("https://manage.example.test/base/", ("https", "manage.example.test", 443, "/base")),
        ("https://manage.example.test", ("https", "manage.example.test", 443, "")),
        ("http://127.0.0.1", ("http", "127.0.0.1", 80, "")),
        ("http://127.0.0.1:8081/emu//", ("http", "127.0.0.1", 8081, "/emu")),
    ],
)
def test_base_url_override_is_parsed_into_scheme_host_port_and_path(base_url: str, parts: tuple[object, ...]) -> None:
    endpoint = ApiEndpoint.parse(base_url)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.base_path) == parts


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("https://[::1", "invalid Management API base URL"),
        ("ftp://127.0.0.1:21", "Management API base URL must be http(s)://host[:port][/path]"),
        ("https://127.0.0.1/#x", "Management API base URL must be http(s)://host[:port][/path]"),
        ("https://user@127.0.0.1/", "Management API base URL must be http(s)://host[:port][/path]"),
        ("https://127.0.0.1/?a=1", "Management API base URL must be http(s)://host[:port][/path]"),
    ],
)
def test_a_bad_base_url_is_a_configuration_error_that_says_why(base_url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        ApiEndpoint.parse(base_url)
    assert (str(err.value).split(" [")[0], err.value.reason) == (message, "invalid_base_url")


def test_a_tenant_id_that_is_not_a_guid_is_named_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as err:
        api_root(Cloud.COMMERCIAL, "../other")
    assert (err.value.args[0], err.value.reason, err.value.context) == (
        "tenant id is not a GUID",
        "tenant_id_invalid",
        {"tenant": "../other"},
    )
    with pytest.raises(ConfigurationError) as bad_cloud:
        cloud_profile("china")
    assert bad_cloud.value.args[0] == "unknown cloud 'china'"
