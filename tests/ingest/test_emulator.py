"""The Management Activity API emulator, spoken to with plain httpx: the protocol, errors included."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
import pytest

from shared.emulators.management_api import EmulatorStats, ManagementApiEmulator

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
PUBLISHER = "46b472a7-c68e-4adf-8ade-3db49497518e"
GENERAL = "Audit.General"
H = timedelta(hours=1)
FMT = "%Y-%m-%dT%H:%M:%S"


class Api:
    """Raw calls on the emulator with a token and PublisherIdentifier unless told otherwise."""

    def __init__(self, emulator: ManagementApiEmulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(timeout=5)

    def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str = TENANT_A,
        params: Mapping[str, str] | None = None,
        token: str | None = "t",  # noqa: S107 - a test token
        publisher: bool = True,
        json: Any = None,
    ) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.emulator.api_root(tenant)}/{path}"
        query = {**(params or {}), **({"PublisherIdentifier": PUBLISHER} if publisher else {})}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, httpx.URL(url).copy_merge_params(query), headers=headers, json=json)

    def start(self, content_type: str = GENERAL, *, tenant: str = TENANT_A, json: Any = None) -> httpx.Response:
        return self.call("POST", "subscriptions/start", tenant=tenant, params={"contentType": content_type}, json=json)

    def content(self, start: str | None, end: str | None, *, tenant: str = TENANT_A, **extra: str) -> httpx.Response:
        params = {"contentType": GENERAL, **extra}
        if start is not None:
            params["startTime"] = start
        if end is not None:
            params["endTime"] = end
        return self.call("GET", "subscriptions/content", tenant=tenant, params=params)


@pytest.fixture
def api(emulator: ManagementApiEmulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.http.close()


def error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# ----------------------------------------------------------------------------- every call


def test_every_call_needs_a_token_a_publisher_and_a_guid_tenant(api: Api) -> None:
    assert api.call("GET", "subscriptions/list", token=None).status_code == 401
    assert error_code(api.call("GET", "subscriptions/list", publisher=False)) == (400, "AF20001")
    url = f"{api.emulator.base_url}/api/v1.0/contoso/activity/feed/subscriptions/list"
    assert error_code(api.call("GET", url)) == (400, "AF20013")
    assert api.call("GET", "subscriptions/unknown").status_code == 404
    assert api.call("GET", "subscriptions/list").json() == []
    assert [(r.authorization, r.status) for r in api.emulator.requests] == [
        (None, 401),
        ("Bearer t", 400),
        ("Bearer t", 400),
        ("Bearer t", 404),
        ("Bearer t", 200),
    ]


def test_revoked_tokens_get_401(api: Api) -> None:
    api.emulator.revoke_token("old")
    assert api.call("GET", "subscriptions/list", token="old").status_code == 401
    assert api.call("GET", "subscriptions/list", token="new").status_code == 200


def test_the_date_header_follows_the_emulator_clock(api: Api, clock) -> None:
    response = api.call("GET", "subscriptions/list")
    assert parsedate_to_datetime(response.headers["Date"]) == clock()


# ----------------------------------------------------------------------------- subscriptions


def test_subscription_lifecycle(api: Api) -> None:
    assert error_code(api.start("Audit.Nothing")) == (400, "AF20020")
    assert api.start().json() == {"contentType": GENERAL, "status": "enabled", "webhook": None}
    assert error_code(api.start()) == (400, "AF20024")  # already enabled, no change
    assert api.start("Audit.Exchange", tenant=TENANT_B).status_code == 200

    assert api.call("GET", "subscriptions/list").json() == [
        {"contentType": GENERAL, "status": "enabled", "webhook": None}
    ]
    stop = api.call("POST", "subscriptions/stop", params={"contentType": GENERAL})
    assert (stop.status_code, stop.content) == (200, b"")
    assert error_code(api.call("POST", "subscriptions/stop", params={"contentType": GENERAL})) == (400, "AF20022")
    assert api.call("GET", "subscriptions/list").json() == [
        {"contentType": GENERAL, "status": "disabled", "webhook": None}
    ]
    assert error_code(api.content(None, None)) == (400, "AF20022")

    api.emulator.disable_subscription(TENANT_B, "Audit.Exchange", by="a service admin")
    response = api.call("GET", "subscriptions/content", tenant=TENANT_B, params={"contentType": "Audit.Exchange"})
    assert response.json() == {
        "error": {"code": "AF20023", "message": "The subscription was disabled by a service admin."}
    }
    assert api.start("Audit.Exchange", tenant=TENANT_B).json()["status"] == "enabled"


def test_start_spacing_is_enforced_only_when_asked(clock) -> None:
    with ManagementApiEmulator(now=clock, enforce_start_spacing=True) as emulator:
        api = Api(emulator)
        assert api.start(GENERAL).status_code == 200
        second = api.start("Audit.Exchange")
        assert (second.status_code, second.json()["error"]["code"], second.headers["Retry-After"]) == (
            429,
            "AF429",
            "901",
        )
        clock.advance(minutes=15)
        assert api.start("Audit.Exchange").status_code == 200
        api.http.close()


# ----------------------------------------------------------------------------- listing


def test_listing_filters_on_content_created_with_an_inclusive_start_and_exclusive_end(api: Api, clock) -> None:
    api.start()
    start, end = clock() - 10 * H, clock() - 5 * H
    at_start = api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "a"}], created=start)
    api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "b"}], created=end)
    api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "c"}], created=start - timedelta(seconds=1))

    response = api.content(start.strftime(FMT), end.strftime(FMT))

    assert response.json() == [at_start]
    assert at_start == {
        "contentType": GENERAL,
        "contentId": at_start["contentId"],
        "contentUri": f"{api.emulator.api_root(TENANT_A)}/audit/{at_start['contentId']}",
        "contentCreated": "2025-03-10T05:00:00.000Z",
        "contentExpiration": "2025-03-17T05:00:00.000Z",
    }
    assert at_start["contentId"].count("$") == 4
    assert "NextPageUri" not in response.headers


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("2025-03-10T10:00:00", None, "AF20030"),  # both or neither
        (None, "2025-03-10T10:00:00", "AF20030"),
        ("2025-03-09T09:59:59", "2025-03-10T10:00:00", "AF20030"),  # more than 24 h
        ("2025-03-03T14:59:59", "2025-03-04T10:00:00", "AF20030"),  # more than 7 days back (now 03-10 15:00)
        ("2025-03-10T10:00:00", "2025-03-10T10:00:00", "AF20055"),  # start not before end
        ("2025-03-10T11:00:00", "2025-03-10T10:00:00", "AF20055"),
        ("10/03/2025 10:00", "2025-03-10T11:00:00", "AF20002"),
    ],
)
def test_window_errors(api: Api, start: str | None, end: str | None, code: str) -> None:
    api.start()
    assert error_code(api.content(start, end)) == (400, code)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-09T10:00:00", "2025-03-10T10:00:00"),  # exactly 24 h
        ("2025-03-03T15:00:00", "2025-03-04T15:00:00"),  # exactly 7 days back
        ("2025-03-10", "2025-03-11"),  # date only
        ("2025-03-10T10:00", "2025-03-10T11:00"),  # no seconds
        ("2025-03-10T14:00:00", "2025-03-11T12:00:00"),  # end in the future
    ],
)
def test_accepted_windows(api: Api, start: str, end: str) -> None:
    api.start()
    response = api.content(start, end)
    assert (response.status_code, response.json()) == (200, [])


def test_pagination_hands_out_next_page_uris(api: Api, clock) -> None:
    api.start()
    entries = [
        api.emulator.add_content(TENANT_A, GENERAL, [{"Id": str(i)}], created=clock() - H + i * timedelta(minutes=1))
        for i in range(5)
    ]
    pages, next_uri = [], None
    response = api.content((clock() - 2 * H).strftime(FMT), clock().strftime(FMT))
    while True:
        pages.append(response.json())
        next_uri = response.headers.get("NextPageUri")
        if next_uri is None:
            break
        assert next_uri.startswith(f"{api.emulator.base_url}/api/v1/{TENANT_A}/activity/feed/subscriptions/content?")
        assert "PublisherIdentifier" not in next_uri  # the client adds it
        response = api.call("GET", next_uri)
    assert pages == [entries[0:2], entries[2:4], entries[4:5]]

    assert error_code(api.content("2025-03-10T13:00:00", "2025-03-10T15:00:00", nextPage="garbage")) == (400, "AF20031")


def test_listing_without_a_window_covers_the_last_24_hours(api: Api, clock) -> None:
    api.emulator.page_size = 1
    api.start()
    old = api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "old"}], created=clock() - 25 * H)
    recent = [api.emulator.add_content(TENANT_A, GENERAL, [{"Id": str(i)}], created=clock() - i * H) for i in (3, 2)]

    response = api.content(None, None)

    assert response.json() == recent[:1]
    next_params = httpx.URL(response.headers["NextPageUri"]).params
    assert (next_params["startTime"], next_params["endTime"]) == ("2025-03-09T15:00:00", "2025-03-10T15:00:00")
    assert old not in response.json()


def test_tenants_do_not_see_each_other(api: Api, clock) -> None:
    api.start(tenant=TENANT_A)
    api.start(tenant=TENANT_B)
    entry = api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "a1"}], created=clock() - H)
    window = ((clock() - 2 * H).strftime(FMT), clock().strftime(FMT))

    assert api.content(*window, tenant=TENANT_B).json() == []
    via_b = f"{api.emulator.api_root(TENANT_B)}/audit/{entry['contentId']}"
    assert error_code(api.call("GET", via_b, tenant=TENANT_B)) == (404, "AF20050")
    assert api.emulator.served_record_ids == []


def test_the_same_content_id_listed_again_days_later(api: Api, clock) -> None:
    api.start()
    first = api.emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - 72 * H)
    again = api.emulator.add_content(
        TENANT_A, GENERAL, [{"Id": "r1"}], created=clock() - H, content_id=first["contentId"]
    )

    listed = api.content((clock() - 2 * H).strftime(FMT), clock().strftime(FMT)).json()

    assert listed == [again]
    assert again["contentId"] == first["contentId"]
    assert again["contentExpiration"] == first["contentExpiration"]  # 7 days after it was first available


# ----------------------------------------------------------------------------- content


def test_blobs_are_json_arrays_and_expire_after_seven_days(api: Api, clock) -> None:
    api.start()
    records = [{"Id": "r1", "Operation": "UserLoggedIn"}, {"Id": "r2", "Operation": "UserLoginFailed"}]
    entry = api.emulator.add_content(TENANT_A, GENERAL, records, created=clock() - H)

    response = api.call("GET", entry["contentUri"])
    assert (response.status_code, response.headers["Content-Type"], response.json()) == (
        200,
        "application/json; charset=utf-8",
        records,
    )
    assert error_code(api.call("GET", entry["contentUri"] + "x")) == (404, "AF20050")

    clock.advance(days=7)
    assert error_code(api.call("GET", entry["contentUri"])) == (400, "AF20051")
    assert api.emulator.served_record_ids == ["r1", "r2"]


def test_raw_bytes_are_served_as_given(api: Api, clock) -> None:
    api.start()
    entry = api.emulator.add_content(TENANT_A, GENERAL, b'[{"Id": "raw", "RecordType": "15"}]', created=clock())
    assert api.call("GET", entry["contentUri"]).content == b'[{"Id": "raw", "RecordType": "15"}]'
    assert api.emulator.served_record_ids == ["raw"]


# ----------------------------------------------------------------------------- faults


def test_one_shot_faults_match_their_filters_and_are_counted(api: Api, clock) -> None:
    api.start(tenant=TENANT_A)
    api.start(tenant=TENANT_B)
    entry = api.emulator.add_content(TENANT_B, GENERAL, [{"Id": "b1"}], created=clock() - H)
    api.emulator.inject("server_error", tenant=TENANT_B, operation="get_content", times=2)
    api.emulator.inject("throttle_403", content_type="Audit.Exchange", retry_after=None)

    assert api.call("GET", "subscriptions/list", tenant=TENANT_B).status_code == 200  # other operation
    assert api.call("GET", entry["contentUri"], tenant=TENANT_B).status_code == 500
    assert api.call("GET", entry["contentUri"], tenant=TENANT_B).status_code == 500
    assert api.call("GET", entry["contentUri"], tenant=TENANT_B).status_code == 200
    assert api.content(None, None).status_code == 200  # Audit.General: the 403 waits for Audit.Exchange
    throttled = api.start("Audit.Exchange")
    assert (throttled.status_code, throttled.json()["error"]["code"], "Retry-After" in throttled.headers) == (
        403,
        "AF429",
        False,
    )

    assert api.emulator.stats == EmulatorStats(
        requests=8,
        by_operation={"start_subscription": 3, "list_subscriptions": 1, "get_content": 3, "list_content": 1},
        faults={"server_error": 2, "throttle_403": 1},
    )


def test_fault_rates_are_repeatable_with_a_seed(clock) -> None:
    def run(seed: int) -> list[int]:
        with ManagementApiEmulator(now=clock) as emulator:
            emulator.set_fault_rates({"throttle_429": 0.3, "server_error": 0.3}, seed=seed)
            api = Api(emulator)
            statuses = [api.call("GET", "subscriptions/list").status_code for _ in range(30)]
            api.http.close()
            assert sum(emulator.stats.faults.values()) == sum(s != 200 for s in statuses)
            return statuses

    first = run(seed=11)
    assert first == run(seed=11)
    assert {429, 500, 200} == set(first)
    with pytest.raises(ValueError, match="bad fault rates"):
        ManagementApiEmulator().set_fault_rates({"meteor_strike": 0.1}, seed=1)


def test_blob_faults(api: Api, clock) -> None:
    api.start()
    entry = api.emulator.add_content(TENANT_A, GENERAL, [{"Id": f"r{i}"} for i in range(50)], created=clock() - H)

    api.emulator.inject("truncated_blob")
    with pytest.raises(httpx.RemoteProtocolError):
        api.call("GET", entry["contentUri"])
    api.emulator.inject("invalid_json_blob")
    garbled = api.call("GET", entry["contentUri"])
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(garbled.content)
    api.emulator.inject("expired_content")
    assert error_code(api.call("GET", entry["contentUri"])) == (400, "AF20051")

    assert api.emulator.served_record_ids == []  # nothing was served whole
    assert api.call("GET", entry["contentUri"]).json() == [{"Id": f"r{i}"} for i in range(50)]
    assert api.emulator.served_record_ids == [f"r{i}" for i in range(50)]


def test_subscription_disabled_fault_lasts_until_started_again(api: Api) -> None:
    api.start()
    api.emulator.inject("subscription_disabled")
    assert error_code(api.content(None, None)) == (400, "AF20023")
    assert error_code(api.content(None, None)) == (400, "AF20023")
    assert api.emulator.subscription(TENANT_A, GENERAL) == {
        "contentType": GENERAL,
        "status": "disabled",
        "webhook": None,
    }
    assert api.start().status_code == 200
    assert api.content(None, None).status_code == 200


# ----------------------------------------------------------------------------- webhooks


class Sender:
    """A webhook sender that records the POSTs and answers with scripted statuses."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[tuple[str, dict[str, str], Any]] = []

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        self.sent.append((url, dict(headers), orjson.loads(body)))
        return self.statuses.pop(0) if self.statuses else 200


ADDRESS = "https://webhook.itdr.example/api/webhook"


@pytest.fixture
def sender() -> Sender:
    return Sender()


@pytest.fixture
def hooked(clock, sender: Sender) -> Iterator[Api]:
    with ManagementApiEmulator(now=clock, webhook_sender=sender, webhook_failure_limit=2) as emulator:
        client = Api(emulator)
        yield client
        client.http.close()


def test_webhook_handshake_and_notifications(hooked: Api, sender: Sender, clock) -> None:
    webhook = {"address": ADDRESS, "authId": "auth-a", "expiration": ""}
    response = hooked.start(json={"webhook": webhook})
    assert response.json() == {
        "contentType": GENERAL,
        "status": "enabled",
        "webhook": {"status": "enabled", "address": ADDRESS, "authId": "auth-a", "expiration": None},
    }
    [(url, headers, body)] = sender.sent
    assert (url, headers["Webhook-AuthID"], body) == (
        ADDRESS,
        "auth-a",
        {"validationCode": headers["Webhook-ValidationCode"]},
    )

    entry = hooked.emulator.add_content(TENANT_A, GENERAL, [{"Id": "r1"}], created=clock())
    hooked.emulator.add_content(TENANT_A, "Audit.Exchange", [{"Id": "x1"}], created=clock())  # not subscribed
    assert sender.sent[1:] == [
        (
            ADDRESS,
            {"Content-Type": "application/json; charset=utf-8", "Webhook-AuthID": "auth-a"},
            [{"tenantId": TENANT_A, "clientId": hooked.emulator.client_id, **entry}],
        )
    ]
    assert [c.kind for c in hooked.emulator.webhook_calls] == ["validation", "notification"]


def test_webhook_validation_failures(hooked: Api, sender: Sender) -> None:
    sender.statuses = [500]
    failed = hooked.start(json={"webhook": {"address": ADDRESS, "authId": "a"}})
    assert failed.json()["error"] == {
        "code": "AF20021",
        "message": f"The webhook endpoint {ADDRESS} could not be validated. The endpoint did not return HTTP 200.",
    }
    assert hooked.emulator.subscription(TENANT_A, GENERAL) is None  # not created

    assert error_code(hooked.start(json={"webhook": {"address": "http://webhook.itdr.example/"}})) == (400, "AF20021")
    assert error_code(hooked.start(json={"webhook": {"address": ADDRESS, "expiration": "2025-03-01T00:00:00Z"}})) == (
        400,
        "AF20003",
    )
    assert len(sender.sent) == 1  # neither of the last two was POSTed to

    # adding a webhook to an existing subscription that fails validation leaves it unchanged
    assert hooked.start().status_code == 200
    sender.statuses = [404]
    assert error_code(hooked.start(json={"webhook": {"address": ADDRESS}})) == (400, "AF20021")
    assert hooked.emulator.subscription(TENANT_A, GENERAL) == {
        "contentType": GENERAL,
        "status": "enabled",
        "webhook": None,
    }


def test_failing_notifications_disable_the_webhook_and_start_re_enables_it(hooked: Api, sender: Sender, clock) -> None:
    hooked.start(json={"webhook": {"address": ADDRESS}})
    sender.statuses = [500, 500]
    for i in range(3):
        hooked.emulator.add_content(TENANT_A, GENERAL, [{"Id": str(i)}], created=clock())

    assert [c.status for c in hooked.emulator.webhook_calls] == [200, 500, 500]  # the third was not sent
    assert hooked.emulator.subscription(TENANT_A, GENERAL)["webhook"]["status"] == "disabled"
    assert hooked.content(None, None).status_code == 200  # listing still works

    hooked.start(json={"webhook": {"address": ADDRESS}})
    assert hooked.emulator.subscription(TENANT_A, GENERAL)["webhook"]["status"] == "enabled"


def test_an_expired_webhook_sends_nothing(hooked: Api, sender: Sender, clock) -> None:
    expiration = (clock() + H).strftime("%Y-%m-%dT%H:%M:%SZ")
    hooked.start(json={"webhook": {"address": ADDRESS, "expiration": expiration}})
    clock.advance(hours=2)
    hooked.emulator.add_content(TENANT_A, GENERAL, [{"Id": "late"}], created=clock())

    assert [c.kind for c in hooked.emulator.webhook_calls] == ["validation"]
    assert hooked.emulator.subscription(TENANT_A, GENERAL)["webhook"]["status"] == "expired"


def test_per_tenant_rate_limit_and_tenant_conditions() -> None:
    import httpx as _httpx

    from shared.emulators.management_api import ManagementApiEmulator as Emu

    a, b = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01", "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
    with Emu(tenant_rate_limit=3) as emu, _httpx.Client() as http:

        def listing(tenant: str) -> _httpx.Response:
            return http.get(
                f"{emu.api_root(tenant)}/subscriptions/list",
                params={"PublisherIdentifier": a},
                headers={"Authorization": "Bearer t"},
            )

        assert [listing(a).status_code for _ in range(4)] == [200, 200, 200, 429]
        throttled = listing(a)
        assert throttled.json()["error"]["code"] == "AF429" and int(throttled.headers["Retry-After"]) >= 1
        assert listing(b).status_code == 200  # per tenant: another tenant is not held up
        assert (emu.throttled, emu.peak_per_minute) == (2, {a: 3, b: 1})
    with Emu() as emu, _httpx.Client() as http:
        emu.set_tenant_condition(a, "audit_off")
        emu.set_tenant_condition(b, "no_exchange")
        off = http.get(
            f"{emu.api_root(a)}/subscriptions/list",
            params={"PublisherIdentifier": a},
            headers={"Authorization": "Bearer t"},
        )
        assert off.status_code == 500 and "DataServiceException" in off.json()["error"]["message"]
        none = http.get(
            f"{emu.api_root(b)}/subscriptions/list",
            params={"PublisherIdentifier": a},
            headers={"Authorization": "Bearer t"},
        )
        assert (none.status_code, none.json()["error"]["code"]) == (400, "AF20011")
