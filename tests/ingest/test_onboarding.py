"""Onboarding and the admin API through the real client against the emulator (and the Graph emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.app import Services
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.checkpoints import FEED_CONTENT_TYPES
from shared.ingest.onboarding import (
    START_SPACING,
    handle_admin_request,
    onboard_tenant,
    tenant_status,
)
from shared.platform import names
from shared.platform.errors import ConfigurationError
from shared.tenants import hash_secret

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
PUBLISHER = "46b472a7-c68e-4adf-8ade-3db49497518e"
ADMIN_KEY = "correct horse battery staple"
AAD = "Audit.AzureActiveDirectory"


@pytest.fixture
def make_svc(make_services: Any) -> Any:
    """Build Services on Azurite, the bus and a Management API emulator; optional Graph emulator and transport."""

    def build(
        emulator: ManagementApiEmulator,
        *,
        graph: GraphEmulator | None = None,
        http: httpx.Client | None = None,
        **settings: Any,
    ) -> Services:
        svc: Services = make_services(
            emulator, graph=graph, http=http, admin_api_key_hash=hash_secret(ADMIN_KEY), **settings
        )
        return svc

    return build


@pytest.fixture
def svc(make_svc: Any, emulator: ManagementApiEmulator) -> Services:
    return make_svc(emulator)  # type: ignore[no-any-return]


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(seed=7) as emu:
        emu.add_tenant(TENANT_A)
        emu.add_user(
            TENANT_A,
            id="a1a1a1a1-0000-4000-8000-000000000001",
            user_principal_name="alice@contoso.com",
            usage_location="us",
        )
        emu.add_user(
            TENANT_A,
            id="b2b2b2b2-0000-4000-8000-000000000002",
            user_principal_name="bob@contoso.com",
            usage_location="DE",
        )
        emu.add_user(TENANT_A, id="c3c3c3c3-0000-4000-8000-000000000003", user_principal_name="svc@contoso.com")
        yield emu


def feeds(status: Any) -> list[tuple[str, str, str, str | None]]:
    return [(f.content_type, f.action, f.subscription, f.error) for f in status.feeds]


def starts(emulator: ManagementApiEmulator) -> int:
    return emulator.stats.by_operation.get("start_subscription", 0)


def test_onboarding_registers_the_tenant_and_starts_every_feed(svc: Services, emulator, clock, sleeps) -> None:
    status = onboard_tenant(
        svc,
        tenant_id=TENANT_A.upper(),
        name="Contoso",
        partner_id="p1",
        detection={"internal_domains": ["contoso.com"]},
    )
    assert feeds(status) == [(ct, "started", "enabled", None) for ct in FEED_CONTENT_TYPES]
    assert (status.status, status.state, status.needs_human) == ("active", "waiting_for_first_content", [])
    # Graph is unreachable here (no emulator): seeding is best effort and says why it did not happen
    assert (status.identity["seeded"], status.identity["error"]) == (False, "service_unavailable")
    record = svc.tenants.get(TENANT_A)
    assert record is not None
    assert (record.name, record.partner_id, record.cloud, record.status, record.onboarded_at) == (
        "Contoso",
        "p1",
        "commercial",
        "active",
        clock(),
    )
    assert record.detection == {"internal_domains": ["contoso.com"]}
    assert record.webhook_auth_hash is not None and len(record.webhook_auth_hash) == 64
    assert [emulator.subscription(TENANT_A, ct)["status"] for ct in FEED_CONTENT_TYPES] == ["enabled"] * 4
    assert sleeps.delays == []  # nothing waited: onboarding is a handful of requests


def test_onboarding_again_is_idempotent(svc: Services, emulator, clock) -> None:
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    first = svc.tenants.get(TENANT_A)
    before = starts(emulator)
    clock.advance(hours=1)
    again = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso Ltd")
    assert feeds(again) == [(ct, "ok", "enabled", None) for ct in FEED_CONTENT_TYPES]
    assert starts(emulator) == before
    record = svc.tenants.get(TENANT_A)
    assert first is not None and record is not None
    assert (record.name, record.webhook_auth_hash, record.onboarded_at) == (
        "Contoso Ltd",
        first.webhook_auth_hash,
        first.onboarded_at,
    )


def test_already_enabled_counts_as_started_when_the_list_is_unavailable(svc: Services, emulator, clock) -> None:
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    clock.advance(minutes=20)
    emulator.inject("server_error", times=4, operation="list_subscriptions")  # the client's retries run out
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert feeds(status) == [(ct, "started", "enabled", None) for ct in FEED_CONTENT_TYPES]
    codes = [r.status for r in emulator.requests if r.operation == "start_subscription"]
    assert codes == [200] * 4 + [400] * 4  # the second round answered AF20024 "already enabled"


def test_start_spacing_defers_and_the_next_run_catches_up(make_svc, clock) -> None:
    with ManagementApiEmulator(now=clock, enforce_start_spacing=True) as strict:
        svc = make_svc(strict)
        status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
        assert [(f.action, f.error) for f in status.feeds] == [("started", None)] + [("deferred", "throttled")] * 3
        assert status.status == "onboarding"
        # within 15 minutes nothing is started again (no request at all)
        clock.advance(minutes=10)
        before = strict.stats.by_operation["start_subscription"]
        status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
        assert [f.action for f in status.feeds] == ["ok", "deferred", "deferred", "deferred"]
        assert status.feeds[1].next_start_at == clock() - timedelta(minutes=10) + START_SPACING
        assert strict.stats.by_operation["start_subscription"] == before
        for _ in range(3):
            clock.advance(minutes=16)
            status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
        assert [f.subscription for f in status.feeds] == ["enabled"] * 4
        assert status.status == "active"


def test_identity_is_seeded_from_usage_location(make_svc, emulator, graph) -> None:
    svc = make_svc(emulator, graph=graph)
    status = onboard_tenant(
        svc, tenant_id=TENANT_A, name="Contoso", detection={"home_countries": {"x@contoso.com": "FR"}}
    )
    assert status.identity == {"seeded": True, "users": 3, "home_countries": 2}
    record = svc.tenants.get(TENANT_A)
    assert record is not None
    assert record.config().home_countries == {
        "x@contoso.com": "FR",
        "a1a1a1a1-0000-4000-8000-000000000001": "US",
        "b2b2b2b2-0000-4000-8000-000000000002": "DE",
    }
    row = svc.storage.table(names.TABLE_FEED_HEALTH).get_entity(TENANT_A, "identity")
    assert orjson.loads(row["body"]) == status.identity


GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"


def test_protected_identities_are_read_from_graph_and_refreshed(make_svc, emulator, graph) -> None:
    itdr = graph.add_service_principal(TENANT_A, app_id="0f1e2d3c-itdr-app", display_name="m365-itdr")
    graph.add_role_member(TENANT_A, GLOBAL_ADMIN, "a1a1a1a1-0000-4000-8000-000000000001")
    svc = make_svc(emulator, graph=graph, app_client_id="0F1E2D3C-itdr-app")
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert status.protected == {"refreshed": True, "roles": 2, "identities": 4}
    record = svc.tenants.get(TENANT_A)
    assert record is not None
    assert record.protected_identities == sorted(
        ["a1a1a1a1-0000-4000-8000-000000000001", "alice@contoso.com", "0f1e2d3c-itdr-app", itdr.lower()]
    )
    # bob becomes Privileged Role Administrator: onboarding again refreshes the list
    graph.add_role_member(TENANT_A, PRIVILEGED_ROLE_ADMIN, "b2b2b2b2-0000-4000-8000-000000000002")
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    record = svc.tenants.get(TENANT_A)
    assert record is not None and "bob@contoso.com" in record.protected_identities
    assert len(record.protected_identities) == 6


def test_a_graph_failure_does_not_fail_onboarding(make_svc, emulator, graph) -> None:
    graph.set_permissions(TENANT_A, [])
    svc = make_svc(emulator, graph=graph)
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert (status.status, status.identity["seeded"], status.identity["error"]) == (
        "active",
        False,
        "missing_permission",
    )
    row = svc.storage.table(names.TABLE_FEED_HEALTH).get_entity(TENANT_A, "identity")
    assert orjson.loads(row["body"])["error"] == "missing_permission"


def test_audit_logging_off_is_reported_for_a_human(make_svc, emulator) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant x does not exist."
        return httpx.Response(500, json={"error": {"code": "AF50000", "message": message}})

    svc = make_svc(emulator, http=httpx.Client(transport=httpx.MockTransport(handler)))
    status = onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    assert status.state == "action_required"
    assert status.needs_human == [
        "Unified audit logging is off in the tenant: turn it on in Microsoft Purview (Audit)."
    ]
    assert {f.error for f in status.feeds} == {"audit_log_disabled"}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"tenant_id": "contoso.onmicrosoft.com"}, "tenant_id_invalid"),
        ({"tenant_id": TENANT_A, "cloud": "china"}, "unknown_cloud"),
        ({"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ["not a cidr"]}}, "configuration"),
        ({"tenant_id": TENANT_A, "detection": {"no_such_setting": 1}}, "configuration"),
    ],
)
def test_bad_onboarding_input(svc: Services, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigurationError) as bad:
        onboard_tenant(svc, name="x", **kwargs)
    assert bad.value.reason == reason
    assert svc.tenants.list() == []


def test_tenant_status_reads_the_api_and_the_checkpoints(svc: Services, emulator) -> None:
    onboard_tenant(svc, tenant_id=TENANT_A, name="Contoso")
    emulator.disable_subscription(TENANT_A, AAD)
    status = tenant_status(svc, TENANT_A)
    assert [f.subscription for f in status.feeds] == ["disabled", "enabled", "enabled", "enabled"]
    offline = tenant_status(svc, TENANT_A, live=False)
    assert [f.subscription for f in offline.feeds] == ["unknown"] * 4
    with pytest.raises(ConfigurationError):
        tenant_status(svc, TENANT_B)


# ----------------------------------------------------------------------------- admin API


def admin(svc: Services, method: str, body: Any = b"", key: str | None = ADMIN_KEY) -> tuple[int, Any]:
    headers = {"X-ITDR-Admin-Key": key} if key is not None else {}
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    status, out = handle_admin_request(svc, method=method, headers=headers, body=raw)
    return status, orjson.loads(out)


def test_the_admin_api_onboards_and_lists(svc: Services) -> None:
    status, body = admin(
        svc,
        "POST",
        {
            "tenant_id": TENANT_A,
            "name": "Contoso",
            "partner_id": "p1",
            "cloud": "commercial",
            "detection": {"allowed_countries": ["us"]},
        },
    )
    assert status == 200
    assert (body["tenant_id"], body["status"], body["state"]) == (TENANT_A, "active", "waiting_for_first_content")
    assert [f["action"] for f in body["feeds"]] == ["started"] * 4
    status, listing = admin(svc, "GET")
    assert status == 200
    assert [(t["tenant_id"], t["name"], t["partner_id"], t["status"]) for t in listing["tenants"]] == [
        (TENANT_A, "Contoso", "p1", "active")
    ]


@pytest.mark.parametrize(
    ("method", "body", "key", "status", "error"),
    [
        ("GET", b"", None, 401, "unauthorized"),
        ("GET", b"", "wrong key", 401, "unauthorized"),
        ("DELETE", b"", ADMIN_KEY, 405, "method_not_allowed"),
        ("POST", b"not json", ADMIN_KEY, 400, "invalid_request"),
        ("POST", {"tenant_id": TENANT_A, "surprise": 1}, ADMIN_KEY, 400, "invalid_request"),
        ("POST", {"tenant_id": "nope"}, ADMIN_KEY, 400, "tenant_id_invalid"),
        ("POST", b"{" + b" " * 70000 + b"}", ADMIN_KEY, 413, "body_too_large"),
    ],
)
def test_the_admin_api_refuses(svc: Services, method: str, body: Any, key: str | None, status: int, error: str) -> None:
    got_status, got = admin(svc, method, body, key)
    assert (got_status, got["error"]) == (status, error)
    assert svc.tenants.list() == []


def test_the_admin_api_is_closed_without_a_configured_key(make_services: Any, emulator) -> None:
    svc = make_services(emulator)  # no ITDR_ADMIN_KEY_SHA256
    assert admin(svc, "GET", key="")[0] == 401
    assert admin(svc, "GET", key="anything")[0] == 401


def test_the_tenants_commands(svc: Services, emulator, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.app import configure
    from shared.cli.main import main

    detection = tmp_path / "detection.json"
    detection.write_bytes(orjson.dumps({"allowed_countries": ["US", "CA"]}))
    configure(svc)
    try:
        rc = main(["tenants", "add", "--tenant", TENANT_A, "--name", "Contoso", "--detection", str(detection)])
        added = orjson.loads(capsys.readouterr().out)
        assert (rc, added["tenant_id"], added["state"]) == (0, TENANT_A, "waiting_for_first_content")
        assert main(["tenants", "list"]) == 0
        listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(t["tenant_id"], t["name"], t["status"]) for t in listed] == [(TENANT_A, "Contoso", "active")]
        emulator.disable_subscription(TENANT_A, AAD)
        assert main(["tenants", "status", "--tenant", TENANT_A]) == 0
        status = orjson.loads(capsys.readouterr().out)
        assert [f["subscription"] for f in status["feeds"]] == ["disabled", "enabled", "enabled", "enabled"]
        assert main(["tenants", "status", "--tenant", TENANT_B]) == 2  # not onboarded: a usage error
        assert main(["tenants", "add", "--tenant", TENANT_B, "--detection", str(tmp_path / "missing.json")]) == 2
    finally:
        configure(None)
    record = svc.tenants.get(TENANT_A)
    assert record is not None and record.detection == {"allowed_countries": ["US", "CA"]}


# ----------------------------------------------------------------------------- #25.6: sizes, ranges, scoped admins


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({"tenant_id": TENANT_A, "name": "n" * 40_000}, "invalid_request"),  # was an unhandled 500 (row too large)
        ({"tenant_id": TENANT_A, "name": "x" * 257}, "invalid_request"),
        ({"tenant_id": TENANT_A, "partner_id": "p" * 65}, "invalid_request"),
        ({"tenant_id": TENANT_A, "partner_id": "../other"}, "invalid_request"),
        ({"tenant_id": TENANT_A + "0" * 100}, "invalid_request"),
        ({"tenant_id": TENANT_A, "detection": {"internal_domains": ["d" * 60] * 120}}, "invalid_request"),
        ({"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ["0.0.0.0/0"]}}, "trusted_range_too_wide"),
        ({"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ["::/0"]}}, "trusted_range_too_wide"),
        ({"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ["10.0.0.0/7"]}}, "trusted_range_too_wide"),
        ({"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ["2001:db8::/31"]}}, "trusted_range_too_wide"),
    ],
)
def test_the_admin_api_bounds_sizes_and_ranges(svc: Services, request_body: dict[str, Any], error: str) -> None:
    status, body = admin(svc, "POST", request_body)
    assert (status, body["error"]) == (400, error)
    assert svc.tenants.list() == []


def test_the_widest_accepted_trusted_ranges(svc: Services) -> None:
    ranges = ["10.0.0.0/8", "2001:db8::/32"]
    status, _ = admin(svc, "POST", {"tenant_id": TENANT_A, "detection": {"trusted_ip_ranges": ranges}})
    assert status == 200
    record = svc.tenants.get(TENANT_A)
    assert record is not None and record.detection["trusted_ip_ranges"] == ranges


def principal(*claims: tuple[str, str]) -> str:
    """An App Service Authentication X-MS-CLIENT-PRINCIPAL header (base64 JSON, the documented shape:
    https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities)."""
    import base64

    body = {
        "auth_typ": "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
        "claims": [{"typ": t, "val": v} for t, v in claims],
    }
    return base64.b64encode(orjson.dumps(body)).decode()


def as_principal(svc: Services, method: str, header: str, body: Any = b"") -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    status, out = handle_admin_request(svc, method=method, headers={"X-MS-CLIENT-PRINCIPAL": header}, body=raw)
    return status, orjson.loads(out)


def test_admin_principals_are_scoped_to_their_partner(make_services: Any, emulator: ManagementApiEmulator) -> None:
    svc: Services = make_services(
        emulator, admin_api_key_hash=hash_secret(ADMIN_KEY), admin_principal_auth="appservice"
    )
    p1 = principal(("roles", "PartnerAdmin"), ("partner", "p1"))
    assert as_principal(svc, "POST", p1, {"tenant_id": TENANT_A, "partner_id": "p1"})[0] == 200
    # another partner's tenant: neither onboarded for it, nor taken over, nor listed
    assert as_principal(svc, "POST", p1, {"tenant_id": TENANT_B, "partner_id": "p2"}) == (403, {"error": "forbidden"})
    assert admin(svc, "POST", {"tenant_id": TENANT_B, "partner_id": "p2"})[0] == 200  # the key covers every tenant
    assert as_principal(svc, "POST", p1, {"tenant_id": TENANT_B, "partner_id": "p1"}) == (403, {"error": "forbidden"})
    listed = as_principal(svc, "GET", p1)[1]["tenants"]
    assert [(t["tenant_id"], t["partner_id"]) for t in listed] == [(TENANT_A, "p1")]
    everyone = as_principal(svc, "GET", principal(("roles", "Admin")))[1]["tenants"]
    assert sorted(t["tenant_id"] for t in everyone) == sorted([TENANT_A, TENANT_B])
    record = svc.tenants.get(TENANT_B)
    assert record is not None and record.partner_id == "p2"
    for bad in (
        principal(("roles", "PartnerAdmin")),  # no partner named
        principal(("roles", "Reader"), ("partner", "p1")),
        principal(("partner", "p1")),
        "not base64 !!",
        "",
    ):
        assert as_principal(svc, "GET", bad) == (401, {"error": "unauthorized"})


def test_a_principal_header_is_ignored_without_app_service_authentication(svc: Services) -> None:
    # without App Service Authentication in front, anyone can send the header: only the key counts
    assert as_principal(svc, "GET", principal(("roles", "Admin"))) == (401, {"error": "unauthorized"})


def test_tenant_views_span_every_tenant_with_names(svc: Services, emulator, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.app import configure
    from shared.cli.main import main

    configure(svc)
    try:
        assert main(["tenants", "add", "--tenant", TENANT_A, "--name", "Contoso", "--partner", "p1"]) == 0
        assert main(["tenants", "add", "--tenant", TENANT_B, "--name", "Fabrikam", "--partner", "p2"]) == 0
        capsys.readouterr()
        assert main(["tenants", "status", "--format", "json"]) == 0  # every tenant, live
        statuses = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(s["name"], [f["subscription"] for f in s["feeds"]]) for s in statuses] == [
            ("Fabrikam", ["enabled"] * 4),
            ("Contoso", ["enabled"] * 4),
        ]
        assert main(["tenants", "list", "--format", "table", "--partner", "p1"]) == 0
        table = capsys.readouterr().out
        assert "Contoso" in table and "Fabrikam" not in table and "1 tenants" in table
        assert main(["tenants", "status", "--tenant", TENANT_B, "--format", "table"]) == 0
        table = capsys.readouterr().out
        assert "Fabrikam" in table and "AzureActiveDirectory enabled" in table
        assert main(["deadletters", "list", "--format", "table"]) == 0
        assert "0 dead letters" in capsys.readouterr().out
    finally:
        configure(None)


def test_tenants_import_through_the_command_line(
    svc: Services, emulator, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.app import configure
    from shared.cli.main import main

    csv = tmp_path / "customers.csv"
    csv.write_text(
        "tenant,name,partner,allowed_countries\n"
        f"{TENANT_A},Contoso,p1,US;CA\n"
        f"{TENANT_B},Fabrikam,p2,\n"
        "not a tenant,Nobody,p2,\n",
        encoding="utf-8",
    )
    configure(svc)
    try:
        assert main(["tenants", "import", str(csv), "--format", "json", "-q"]) == 1  # one row failed
        first = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(r["tenant_id"], r["result"]) for r in first] == [
            (TENANT_A, "created"),
            (TENANT_B, "created"),
            (None, "failed"),
        ]
        assert "not a tenant id or domain" in first[2]["detail"]
        csv.write_text("\n".join(csv.read_text().splitlines()[:3]) + "\n", encoding="utf-8")
        before = starts(emulator)
        assert main(["tenants", "import", str(csv), "--format", "table", "-q"]) == 0
        out = capsys.readouterr()
        assert out.out.count("unchanged") == 2 and "2 rows" in out.err and "2 unchanged" in out.err
        assert starts(emulator) == before
        assert main(["tenants", "import", str(tmp_path / "missing.csv")]) == 2
        bad = tmp_path / "bad.csv"
        bad.write_text("tenant,colour\nx,blue\n", encoding="utf-8")
        assert main(["tenants", "import", str(bad)]) == 2
        assert "unknown column(s): colour" in capsys.readouterr().err
    finally:
        configure(None)
    record = svc.tenants.get(TENANT_A)
    assert record is not None and record.detection["allowed_countries"] == ["US", "CA"]
