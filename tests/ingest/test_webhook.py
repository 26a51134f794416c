"""The webhook: validation handshake during onboarding, notifications from the emulator, refused spoofs.

The emulator's webhook sender calls :func:`handle_webhook` in-process (what the Functions host would do for
the ``o365_webhook`` HTTP function), so the handshake and the notifications are the emulator's real ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.app import Services
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.checkpoints import FEED_CONTENT_TYPES
from shared.ingest.onboarding import onboard_tenant
from shared.ingest.poller import poll_tenants
from shared.ingest.webhook import MAX_BODY, handle_webhook
from shared.platform import names
from shared.platform.bus import InProcessBus
from shared.tenants import hash_secret

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
WEBHOOK = "https://itdr.example/api/o365/webhook"
AAD = "Audit.AzureActiveDirectory"


class Router:
    """The emulator's webhook sender: POSTs go to handle_webhook of the Services set later."""

    svc: Services | None = None
    answers: list[tuple[int, bytes]]

    def __init__(self) -> None:
        self.answers = []

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        assert self.svc is not None and url == WEBHOOK
        answer = handle_webhook(self.svc, headers=headers, body=body)
        self.answers.append(answer)
        return answer[0]


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def hooked(clock: Any, router: Router) -> Iterator[ManagementApiEmulator]:
    with ManagementApiEmulator(now=clock, page_size=2, webhook_sender=router) as emu:
        yield emu


@pytest.fixture
def svc(make_services: Any, hooked: ManagementApiEmulator, router: Router) -> Services:
    """Services with ITDR_WEBHOOK_URL set; tenant A onboarded (its handshakes went through handle_webhook)."""
    services: Services = make_services(hooked, webhook_url=WEBHOOK)
    router.svc = services
    onboard_tenant(services, tenant_id=TENANT_A, name="Contoso")
    return services


def queued(svc: Services) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(svc.bus, InProcessBus)
    out = []
    while got := svc.bus.receive(names.QUEUE_CONTENT, max_messages=50):
        for m in got:
            out.append((m.message_id, orjson.loads(m.body)))
            svc.bus.complete(m)
    return out


def auth_of(emulator: ManagementApiEmulator, tenant: str = TENANT_A) -> str:
    sub = emulator.subscription(tenant, AAD)
    assert sub is not None and sub["webhook"] is not None
    return str(sub["webhook"]["authId"])


def notification(emulator: ManagementApiEmulator, clock: Any, **override: Any) -> dict[str, Any]:
    entry = emulator.add_content(TENANT_A, AAD, [{"Id": "r1"}], created=clock() - timedelta(minutes=5), notify=False)
    return {"tenantId": TENANT_A, "clientId": emulator.client_id, **entry, **override}


def test_onboarding_passes_the_handshake_and_stores_only_the_hash(svc: Services, hooked, router: Router) -> None:
    assert [c.kind for c in hooked.webhook_calls] == ["validation"] * 4
    assert router.answers == [(200, b"{}")] * 4
    auth = auth_of(hooked)
    record = svc.tenants.get(TENANT_A)
    assert record is not None and record.webhook_auth_hash == hash_secret(auth)
    assert auth not in record.model_dump_json()
    assert {hooked.subscription(TENANT_A, ct)["webhook"]["authId"] for ct in FEED_CONTENT_TYPES} == {auth}
    assert svc.webhook_stats.to_dict() == {"handshakes": 4, "accepted": 0, "refused": {}}


def test_a_notification_enqueues_content_and_polling_adds_no_duplicate(svc: Services, hooked, clock) -> None:
    entry = hooked.add_content(TENANT_A, AAD, [{"Id": "r1"}], created=clock() - timedelta(minutes=5))
    call = hooked.webhook_calls[-1]
    assert (call.kind, call.status) == ("notification", 200)
    assert queued(svc) == [
        (
            entry["contentId"],
            {
                "tenant_id": TENANT_A,
                "content_type": AAD,
                "content_id": entry["contentId"],
                "content_uri": entry["contentUri"],
                "content_created": "2025-03-10T14:55:00Z",
                "content_expiration": "2025-03-17T14:55:00Z",
                "source": "webhook",
            },
        )
    ]
    poll_tenants(svc)
    assert queued(svc) == []  # same MessageId: the queue dropped the poller's copy
    assert svc.webhook_stats.to_dict() == {"handshakes": 4, "accepted": 1, "refused": {}}


def test_a_body_validation_code_is_a_handshake_too(svc: Services, hooked) -> None:
    body = orjson.dumps({"validationCode": "abc"})
    assert handle_webhook(svc, headers={"Webhook-AuthID": auth_of(hooked)}, body=body) == (200, b"{}")
    assert handle_webhook(svc, headers={"Webhook-AuthID": "guess"}, body=body)[0] == 401


SPOOFS: list[tuple[str, Any, int, str]] = [
    # (name, how to build (headers, body) from a valid pair, status, reason)
    ("bad AuthID", lambda h, items: ({**h, "Webhook-AuthID": "x" * 43}, items), 401, "bad_auth_id"),
    ("no AuthID", lambda h, items: ({"Content-Type": "application/json"}, items), 401, "bad_auth_id"),
    ("unknown tenant", lambda h, items: (h, [{**items[0], "tenantId": TENANT_B}]), 401, "unknown_tenant"),
    ("not a tenant id", lambda h, items: (h, [{**items[0], "tenantId": "../x"}]), 401, "unknown_tenant"),
    (
        "unknown content type",
        lambda h, items: (h, [{**items[0], "contentType": "DLP.All"}]),
        400,
        "unknown_content_type",
    ),
    (
        "content URL on another host",
        lambda h, items: (h, [{**items[0], "contentUri": items[0]["contentUri"].replace("127.0.0.1", "evil.example")}]),
        403,
        "forbidden_content_uri",
    ),
    (
        "content URL of another tenant",
        lambda h, items: (h, [{**items[0], "contentUri": items[0]["contentUri"].replace(TENANT_A, TENANT_B)}]),
        403,
        "forbidden_content_uri",
    ),
    (
        "one bad item among good ones",
        lambda h, items: (h, [items[0], {**items[0], "tenantId": TENANT_B}]),
        401,
        "unknown_tenant",
    ),
    ("not an array", lambda h, items: (h, items[0]), 400, "invalid_body"),
    (
        # #25.1: another blob's URI under this blob's id would mark this one done with the other's records
        "contentId of one blob with the contentUri of another",
        lambda h, items: (h, [{**items[0], "contentUri": items[0]["contentUri"].replace("emu", "emv")}]),
        403,
        "forbidden_content_uri",
    ),
    (
        # #25.1/#25.2: any path under /activity/feed/ was accepted, /subscriptions/list carries the AuthID
        "contentUri of the tenant's subscription list",
        lambda h, items: (
            h,
            [{**items[0], "contentUri": items[0]["contentUri"].split("/audit/")[0] + "/subscriptions/list"}],
        ),
        403,
        "forbidden_content_uri",
    ),
    (
        "contentId naming another content type",
        lambda h, items: (h, [{**items[0], "contentType": "Audit.Exchange"}]),
        403,
        "forbidden_content_uri",
    ),
]


@pytest.mark.parametrize(("name", "spoof", "status", "reason"), SPOOFS, ids=[s[0] for s in SPOOFS])
def test_spoofed_notifications_are_refused_and_counted(
    svc: Services, hooked, clock, name: str, spoof: Any, status: int, reason: str
) -> None:
    headers = {"Webhook-AuthID": auth_of(hooked), "Content-Type": "application/json"}
    bad_headers, bad_body = spoof(headers, [notification(hooked, clock)])
    answer = handle_webhook(svc, headers=bad_headers, body=orjson.dumps(bad_body))
    # #25.6: an unknown tenant and a wrong AuthID get the same answer (no oracle for onboarded tenants)
    public = "unauthorized" if reason in ("bad_auth_id", "unknown_tenant") else reason
    assert answer == (status, orjson.dumps({"error": public}))
    assert queued(svc) == []
    assert svc.webhook_stats.to_dict()["refused"] == {reason: 1}


def test_oversized_and_malformed_bodies(svc: Services, hooked) -> None:
    headers = {"webhook-authid": auth_of(hooked)}
    assert handle_webhook(svc, headers=headers, body=b"[" + b" " * MAX_BODY + b"]")[0] == 413
    assert handle_webhook(svc, headers=headers, body=b"[{")[0] == 400
    assert svc.webhook_stats.to_dict()["refused"] == {"too_large": 1, "invalid_body": 1}


def test_header_names_are_case_insensitive_and_an_empty_array_is_fine(svc: Services, hooked, clock) -> None:
    item = notification(hooked, clock)
    assert handle_webhook(svc, headers={"WEBHOOK-AUTHID": auth_of(hooked)}, body=orjson.dumps([item])) == (
        200,
        b'{"accepted":1}',
    )
    assert handle_webhook(svc, headers={"webhook-authid": auth_of(hooked)}, body=b"[]") == (200, b'{"accepted":0}')


def test_an_offboarded_tenant_is_refused(svc: Services, hooked, clock) -> None:
    directory = svc.tenants
    record = directory.get(TENANT_A)
    assert record is not None
    directory.upsert(record.model_copy(update={"status": "offboarded"}))
    body = orjson.dumps([notification(hooked, clock)])
    assert handle_webhook(svc, headers={"Webhook-AuthID": auth_of(hooked)}, body=body)[0] == 401
    assert (
        handle_webhook(svc, headers={"Webhook-ValidationCode": "c", "Webhook-AuthID": auth_of(hooked)}, body=b"")[0]
        == 401
    )


def test_unknown_tenants_grow_no_unbounded_cache_and_handshakes_scan_no_table(
    make_services: Any, hooked: ManagementApiEmulator, router: Router, clock: Any
) -> None:
    """#25.6: random tenant ids filled the directory cache without bound; each anonymous handshake listed every tenant."""
    import uuid

    from shared.tenants import TenantDirectory

    svc: Services = make_services(hooked, webhook_url=WEBHOOK)
    router.svc = svc
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    directory = TenantDirectory(svc.storage, max_entries=16)
    for _ in range(200):
        assert directory.get(str(uuid.uuid4())) is None
    assert directory.cached_entries() == 16
    record = directory.get(TENANT_A)
    assert record is not None and directory.cached_entries() == 16

    listed: list[int] = []
    original = TenantDirectory.list

    def counting_list(self: TenantDirectory) -> list[Any]:
        listed.append(1)
        return original(self)

    TenantDirectory.list = counting_list  # type: ignore[method-assign]
    try:
        for n in range(20):
            code = handle_webhook(svc, headers={"Webhook-ValidationCode": "v", "Webhook-AuthID": f"guess{n}"}, body=b"")
            assert code == (401, b'{"error":"unauthorized"}')
        assert (
            handle_webhook(svc, headers={"Webhook-ValidationCode": "v", "Webhook-AuthID": auth_of(hooked)}, body=b"")[0]
            == 200
        )
    finally:
        TenantDirectory.list = original  # type: ignore[method-assign]
    assert len(listed) <= 1  # at most one (cached) list for rows older than the AuthID index


def test_a_handshake_on_another_instance_sees_a_freshly_rotated_auth_id(svc: Services) -> None:
    """Onboarding on instance 1 rotates the AuthID; the /start handshake may land on instance 2 with a cached row."""
    from shared.ingest.onboarding import rotate_webhook_auth
    from shared.tenants import TenantDirectory

    other = TenantDirectory(svc.storage)
    before = other.get(TENANT_A)  # instance 2 caches the row
    assert before is not None
    _, fresh_auth = rotate_webhook_auth(svc, before)
    found = other.find_by_webhook_auth(fresh_auth)
    assert found is not None and found.tenant_id == TENANT_A
    assert other.find_by_webhook_auth("x" * 43) is None
