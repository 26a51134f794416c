"""GraphClient and SyncGraphClient through msgraph-sdk against the emulator, plus the pure inbox-rule logic."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.emulators.graph import Call, Effect, Fault, GraphEmulator
from shared.graph import (
    REQUIRED_PERMISSIONS,
    GraphClient,
    GraphUser,
    InboxRule,
    MatchOutcome,
    PermissionGrant,
    RuleActions,
    RuleConditions,
    ServicePrincipalInfo,
    SyncGraphClient,
    graph_id_to_rule_identity,
    is_graph_rule_id,
    match_rules,
    parse_rule_identity,
    rule_identity_to_graph_id,
)
from shared.graph.client import parse_retry_after
from shared.platform.errors import (
    BadInputError,
    ConcurrencyError,
    ConfigurationError,
    ForbiddenTargetError,
    ItdrError,
    NotFoundError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
)

if TYPE_CHECKING:
    from conftest import Seeded

EVIL_RULE = InboxRule(
    id="AQAAAAgmfug=",
    display_name=".",
    sequence=2,
    is_enabled=True,
    conditions=RuleConditions(body_or_subject_contains=("invoice", "payment")),
    actions=RuleActions(forward_to=("drop@evil.example",), delete=True, stop_processing_rules=True),
)


def benign_rule(rule_id: str) -> InboxRule:
    return InboxRule(
        id=rule_id,
        display_name=".",
        sequence=1,
        conditions=RuleConditions(sender_contains=("newsletter",)),
        actions=RuleActions(move_to_folder="AAMkAGI2TG93AAA=", mark_as_read=True),
    )


def read_only_rule(rule_id: str) -> InboxRule:
    return InboxRule(id=rule_id, display_name="Received before", sequence=3, is_read_only=True)


# --------------------------------------------------------------------------- construction


def test_production_defaults_send_the_token_only_to_graph() -> None:
    client = GraphClient.create("t", credential=GraphEmulator().credential("t"))
    us = GraphClient.create("t", credential=GraphEmulator().credential("t"), cloud_host="graph.microsoft.us")
    assert (client.base_url, client.allowed_hosts, client.tenant_id) == (
        "https://graph.microsoft.com/v1.0",
        ("graph.microsoft.com",),
        "t",
    )
    assert (us.base_url, us.allowed_hosts) == ("https://graph.microsoft.us/v1.0", ("graph.microsoft.us",))
    asyncio.run(client.close())
    asyncio.run(us.close())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "http://graph.example.com/v1.0"}, "plain http is allowed only for a loopback emulator"),
        ({"base_url": "ftp://127.0.0.1/v1.0"}, "invalid Graph base URL"),
        ({"base_url": "https://user:pw@graph.microsoft.com/v1.0"}, "invalid Graph base URL"),
        ({"cloud_host": "https://graph.microsoft.com"}, "cloud_host must be a bare host name"),
        ({"max_retries": 11}, "max_retries must be between 0 and 10"),
    ],
)
def test_create_rejects_unsafe_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        GraphClient.create("t", credential=GraphEmulator().credential("t"), **kwargs)


# --------------------------------------------------------------------------- users


async def test_get_user_by_id_and_upn(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    expected = GraphUser(
        id=seeded.alice,
        user_principal_name="alice@contoso.com",
        display_name="Alice Example",
        account_enabled=True,
        usage_location="US",
        on_premises_sync_enabled=None,
    )
    assert await graph.get_user(seeded.alice) == expected
    assert await graph.get_user("alice@contoso.com") == expected
    assert await graph.get_user(seeded.carol) == GraphUser(
        id=seeded.carol,
        user_principal_name="carol@contoso.com",
        display_name="Carol Hybrid",
        account_enabled=True,
        on_premises_sync_enabled=True,
    )
    assert [(c.method, c.path, c.query, c.tenant_id, c.status, c.token_present) for c in emulator.calls][1] == (
        "GET",
        "/v1.0/users/alice@contoso.com",
        "$select=id,userPrincipalName,displayName,accountEnabled,usageLocation,onPremisesSyncEnabled",
        seeded.tenant_a,
        200,
        True,
    )


async def test_list_users_follows_paging(emulator: GraphEmulator, seeded: Seeded) -> None:
    for i in range(4):
        emulator.add_user(seeded.tenant_a, user_principal_name=f"extra{i}@contoso.com")
    emulator.page_size = 2
    async with GraphClient.create(
        seeded.tenant_a, credential=emulator.credential(seeded.tenant_a), base_url=emulator.base_url
    ) as client:
        users = await client.list_users(select=("userPrincipalName",))
    assert [u.user_principal_name for u in users] == [
        "alice@contoso.com",
        "bob.admin@contoso.com",
        "carol@contoso.com",
        "extra0@contoso.com",
        "extra1@contoso.com",
        "extra2@contoso.com",
        "extra3@contoso.com",
    ]
    assert users[0] == GraphUser(id=seeded.alice, user_principal_name="alice@contoso.com")
    assert [c.query for c in emulator.calls_to("/users", method="GET")] == [
        "$select=id,userPrincipalName",
        "$select=id,userPrincipalName&$top=2&$skiptoken=2",
        "$select=id,userPrincipalName&$top=2&$skiptoken=4",
        "$select=id,userPrincipalName&$top=2&$skiptoken=6",
    ]


async def test_disable_enable_and_revoke(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    await graph.disable_user(seeded.alice)
    assert (await graph.get_user(seeded.alice)).account_enabled is False
    await graph.disable_user(seeded.alice)  # idempotent
    assert await graph.revoke_sessions(seeded.alice) is True
    await graph.enable_user(seeded.alice)
    assert emulator.state.effects(tenant_id=seeded.tenant_a) == [
        Effect(seeded.tenant_a, "user.disabled", seeded.alice),
        Effect(seeded.tenant_a, "user.disabled", seeded.alice),
        Effect(seeded.tenant_a, "user.sessions_revoked", seeded.alice),
        Effect(seeded.tenant_a, "user.enabled", seeded.alice),
    ]
    assert emulator.state.sign_in_revocations(seeded.tenant_a, seeded.alice) == 1


# --------------------------------------------------------------------------- inbox rules


async def test_list_inbox_rules_maps_every_field(graph: GraphClient, seeded: Seeded) -> None:
    rules = await graph.list_inbox_rules("alice@contoso.com")
    assert rules == [benign_rule(seeded.rule_benign), EVIL_RULE, read_only_rule(seeded.rule_read_only)]
    assert [r.rule_identity for r in rules][1] == 16752869479666417665


async def test_delete_inbox_rule_reports_already_gone(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator
) -> None:
    assert await graph.delete_inbox_rule(seeded.alice, seeded.rule_evil) is True
    assert await graph.delete_inbox_rule(seeded.alice, seeded.rule_evil) is False
    assert [r.id for r in await graph.list_inbox_rules(seeded.alice)] == [seeded.rule_benign, seeded.rule_read_only]
    assert emulator.state.effect_count("rule.deleted", tenant_id=seeded.tenant_a) == 1


@pytest.mark.parametrize("bad_id", ["alice\\.", "alice\\16752869479666417665", ".", "16752869479666417665", ""])
async def test_delete_inbox_rule_refuses_audit_identities(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator, bad_id: str
) -> None:
    with pytest.raises(BadInputError) as info:
        await graph.delete_inbox_rule(seeded.alice, bad_id)
    assert "match_rules" in str(info.value)
    assert emulator.calls == []


async def test_delete_inbox_rule_of_unknown_user_raises(graph: GraphClient, seeded: Seeded) -> None:
    with pytest.raises(NotFoundError) as info:
        await graph.delete_inbox_rule("ghost@contoso.com", seeded.rule_evil)
    assert info.value.context["graph_code"] == "ErrorInvalidUser"


async def test_read_only_rule_cannot_be_deleted(graph: GraphClient, seeded: Seeded) -> None:
    with pytest.raises(BadInputError) as info:
        await graph.delete_inbox_rule(seeded.alice, seeded.rule_read_only)
    assert (info.value.context["status"], info.value.context["graph_code"]) == (400, "ErrorInvalidRequest")


async def test_disable_then_restore_a_rule(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    disabled = await graph.disable_inbox_rule(seeded.alice, seeded.rule_evil)
    assert disabled == EVIL_RULE.model_copy(update={"is_enabled": False})
    assert await graph.delete_inbox_rule(seeded.alice, seeded.rule_benign) is True
    restored = await graph.create_inbox_rule(seeded.alice, benign_rule(seeded.rule_benign))
    assert restored.id != seeded.rule_benign
    assert is_graph_rule_id(restored.id)
    assert restored == benign_rule(restored.id)
    listed = await graph.list_inbox_rules(seeded.alice)
    assert [r.id for r in listed] == [restored.id, seeded.rule_evil, seeded.rule_read_only]
    assert emulator.state.inbox_rules(seeded.tenant_a, seeded.alice)[0]["actions"] == {
        "moveToFolder": "AAMkAGI2TG93AAA=",
        "markAsRead": True,
    }
    with pytest.raises(BadInputError, match="read-only"):
        await graph.create_inbox_rule(seeded.alice, read_only_rule("AQAAAAAAAAA="))


async def test_match_then_delete_the_malicious_rule_among_duplicates(graph: GraphClient, seeded: Seeded) -> None:
    """The resolution of docs §2 end to end: list, match by name and signature, delete by Graph id, re-list."""
    candidates = await graph.list_inbox_rules(seeded.alice)
    result = match_rules(
        candidates,
        name=".",
        rule_identity=None,
        forward_to={"Drop@Evil.example"},
        redirect_to=set(),
        move_to_folder=None,
        delete=True,
        mark_as_read=None,
        words={"invoice"},
    )
    assert result.outcome is MatchOutcome.MATCHED
    assert result.rule == EVIL_RULE
    assert await graph.delete_inbox_rule(seeded.alice, EVIL_RULE.id) is True
    assert EVIL_RULE.id not in {r.id for r in await graph.list_inbox_rules(seeded.alice)}


# --------------------------------------------------------------------------- grants and service principals


async def test_permission_grants(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    grants = await graph.list_permission_grants(client_id=seeded.rogue_app_sp)
    assert grants == [
        PermissionGrant(
            id="grant-all-principals",
            client_id=seeded.rogue_app_sp,
            consent_type="AllPrincipals",
            principal_id=None,
            resource_id="00000003-resource-graph",
            scope="Mail.Read offline_access",
        ),
        PermissionGrant(
            id="grant-alice",
            client_id=seeded.rogue_app_sp,
            consent_type="Principal",
            principal_id=seeded.alice,
            resource_id="00000003-resource-graph",
            scope="Mail.ReadWrite",
        ),
    ]
    assert grants[0].scopes == ("Mail.Read", "offline_access")
    assert emulator.calls[-1].query == f"$filter=clientId%20eq%20%27{seeded.rogue_app_sp}%27"
    assert await graph.list_permission_grants(client_id="o'brien") == []
    assert [await graph.delete_permission_grant(g.id) for g in grants] == [True, True]
    assert await graph.delete_permission_grant("grant-alice") is False
    assert await graph.list_permission_grants(client_id=seeded.rogue_app_sp) == []
    assert [g["id"] for g in emulator.state.permission_grants(seeded.tenant_a)] == ["grant-other-app"]


async def test_service_principal(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    info = ServicePrincipalInfo(
        id=seeded.rogue_app_sp,
        app_id="aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa",
        display_name="Rogue Mail Reader",
        account_enabled=True,
    )
    assert await graph.get_service_principal(seeded.rogue_app_sp) == info
    await graph.disable_service_principal(seeded.rogue_app_sp)
    assert await graph.get_service_principal(seeded.rogue_app_sp) == info.model_copy(update={"account_enabled": False})
    await graph.enable_service_principal(seeded.rogue_app_sp)
    assert [e.kind for e in emulator.state.effects()] == ["sp.disabled", "sp.enabled"]


# --------------------------------------------------------------------------- tenant isolation and the token


async def test_tenant_a_cannot_read_tenant_b(graph: GraphClient, graph_b: GraphClient, seeded: Seeded) -> None:
    with pytest.raises(NotFoundError) as info:
        await graph.get_user(seeded.dave_b)
    assert info.value.context["graph_code"] == "Request_ResourceNotFound"
    assert info.value.context["tenant"] == seeded.tenant_a
    with pytest.raises(NotFoundError):
        await graph.get_service_principal(seeded.sp_b)
    assert (await graph_b.get_user(seeded.dave_b)).user_principal_name == "dave@fabrikam.com"
    with pytest.raises(NotFoundError):
        await graph_b.get_user("alice@contoso.com")
    assert [u.user_principal_name for u in await graph_b.list_users()] == ["dave@fabrikam.com"]
    assert await graph_b.list_permission_grants(client_id=seeded.rogue_app_sp) == []


@pytest.mark.parametrize(
    ("base_url", "granted", "refused"),
    [
        (None, "https://graph.microsoft.com/v1.0/users", "https://evil.example/v1.0/users"),
        (None, "https://graph.microsoft.com/v1.0/users", "https://graph.microsoft.com.evil.example/v1.0/users"),
        ("http://127.0.0.1:1/v1.0", "http://127.0.0.1:1/v1.0/users", "http://localhost:1/v1.0/users"),
        ("http://127.0.0.1:1/v1.0", "http://127.0.0.1:1/v1.0/users", "https://graph.microsoft.com/v1.0/users"),
    ],
)
async def test_kiota_token_provider_only_serves_the_allowed_host(
    base_url: str | None, granted: str, refused: str
) -> None:
    """White-box: kiota's default is allowed_hosts=[] (every host gets the token); ours is the one Graph host."""
    client = GraphClient.create("t", credential=GraphEmulator().credential("t"), base_url=base_url)
    provider = client._sdk.request_adapter._authentication_provider.access_token_provider
    assert await provider.get_authorization_token(granted) == "fake-token:t"
    assert await provider.get_authorization_token(refused) == ""
    await client.close()


async def test_token_scope_and_next_link_host(emulator: GraphEmulator, seeded: Seeded) -> None:
    emulator.page_size = 1
    emulator.next_link_base = f"http://localhost:{emulator.port}/v1.0"
    cred = emulator.credential(seeded.tenant_a)
    async with GraphClient.create(seeded.tenant_a, credential=cred, base_url=emulator.base_url) as client:
        assert client.allowed_hosts == ("127.0.0.1",)
        with pytest.raises(ForbiddenTargetError) as info:
            await client.list_users()
    assert info.value.context == {"tenant": seeded.tenant_a, "operation": "list_users", "host": "localhost"}
    assert cred.scopes_requested == [("https://graph.microsoft.com/.default",)]
    assert len(emulator.calls) == 1  # the foreign page was never requested


async def test_token_is_dropped_on_a_cross_host_redirect(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator
) -> None:
    target = f"http://localhost:{emulator.port}/v1.0/users/{seeded.alice}"
    emulator.inject(Fault(307, redirect_to=target))
    with pytest.raises(PermissionError_) as info:
        await graph.get_user(seeded.alice)
    assert info.value.context["graph_code"] == "InvalidAuthenticationToken"
    assert [(c.status, c.tenant_id, c.token_present) for c in emulator.calls] == [
        (307, seeded.tenant_a, True),
        (401, None, False),
    ]


# --------------------------------------------------------------------------- error mapping


ERROR_CASES = [
    pytest.param(Fault(429, retry_after=7), ThrottledError, 429, "TooManyRequests", 7.0, id="429-retry-after"),
    pytest.param(Fault(503, retry_after=3), ServiceUnavailable, 503, "ServiceNotAvailable", 3.0, id="503-retry-after"),
    pytest.param(Fault(503), ServiceUnavailable, 503, "ServiceNotAvailable", None, id="503-bare"),
    pytest.param(Fault(504), ServiceUnavailable, 504, "GatewayTimeout", None, id="504"),
    pytest.param(Fault(500), ServiceUnavailable, 500, "UnknownError", None, id="500"),
    pytest.param(Fault(502, html=True), ServiceUnavailable, 502, None, None, id="502-html"),
    pytest.param(Fault(403), PermissionError_, 403, "Authorization_RequestDenied", None, id="403"),
    pytest.param(Fault(401), PermissionError_, 401, "InvalidAuthenticationToken", None, id="401"),
    pytest.param(Fault(404), NotFoundError, 404, "Request_ResourceNotFound", None, id="404"),
    pytest.param(Fault(404, code="ErrorItemNotFound"), NotFoundError, 404, "ErrorItemNotFound", None, id="404-item"),
    pytest.param(Fault(400), BadInputError, 400, "BadRequest", None, id="400"),
    pytest.param(Fault(409), ConcurrencyError, 409, "Conflict", None, id="409"),
]


@pytest.mark.parametrize(("fault", "error", "status", "code", "retry_after"), ERROR_CASES)
async def test_error_mapping(
    graph: GraphClient,
    seeded: Seeded,
    emulator: GraphEmulator,
    fault: Fault,
    error: type[ItdrError],
    status: int,
    code: str | None,
    retry_after: float | None,
) -> None:
    emulator.inject(fault)
    with pytest.raises(ItdrError) as info:
        await graph.get_user(seeded.alice)
    exc = info.value
    assert type(exc) is error
    assert getattr(exc, "retry_after", None) == retry_after
    ctx = dict(exc.context)
    uuid.UUID(str(ctx.pop("request_id")))
    expected: dict[str, object] = {"tenant": seeded.tenant_a, "operation": "get_user", "target": seeded.alice}
    expected["status"] = status
    if code is not None:
        expected["graph_code"] = code
    if error is PermissionError_:
        expected["permission"] = "User.Read.All"
    assert ctx == expected
    assert len(emulator.calls) == 1  # no SDK retry, whatever the status


async def test_one_503_is_exactly_one_request(graph: GraphClient, seeded: Seeded, emulator: GraphEmulator) -> None:
    emulator.inject(Fault(503, method="PATCH"))
    with pytest.raises(ServiceUnavailable):
        await graph.disable_user(seeded.alice)
    emulator.inject(Fault(429, retry_after=1, method="DELETE"))
    with pytest.raises(ThrottledError):
        await graph.delete_inbox_rule(seeded.alice, seeded.rule_evil)
    assert [(c.method, c.status) for c in emulator.calls] == [("PATCH", 503), ("DELETE", 429)]
    assert emulator.state.effects() == []


GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
"""The Global Administrator role template id (the same in every tenant)."""


async def test_role_members_and_the_apps_own_service_principal(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator
) -> None:
    itdr_sp = emulator.add_service_principal(seeded.tenant_a, app_id="itdr-app-id", display_name="m365-itdr")
    emulator.add_role_member(seeded.tenant_a, GLOBAL_ADMIN, seeded.alice)
    emulator.add_role_member(seeded.tenant_a, GLOBAL_ADMIN, itdr_sp)
    members = await graph.list_role_members(GLOBAL_ADMIN)
    alice = await graph.get_user(seeded.alice)
    assert [(m.id, m.user_principal_name, m.app_id) for m in members] == [
        (seeded.alice, alice.user_principal_name, None),
        (itdr_sp, None, "itdr-app-id"),
    ]
    assert await graph.list_role_members("e8611ab8-c189-46e8-94e1-60213ab1f814") == []  # not activated
    found = await graph.find_service_principal("ITDR-APP-ID")
    assert found is not None and found.id == itdr_sp
    assert await graph.find_service_principal("no-such-app") is None
    assert [c.path for c in emulator.calls if c.path.startswith("/v1.0/directoryRoles")][:2] == [
        "/v1.0/directoryRoles",
        f"/v1.0/directoryRoles/{emulator.state.tenant(seeded.tenant_a).roles[GLOBAL_ADMIN][0]}/members",  # type: ignore[union-attr]
    ]


def op_calls(s: Seeded) -> dict[str, Callable[[GraphClient], Awaitable[object]]]:
    return {
        "get_user": lambda g: g.get_user(s.alice),
        "list_users": lambda g: g.list_users(),
        "disable_user": lambda g: g.disable_user(s.alice),
        "enable_user": lambda g: g.enable_user(s.alice),
        "revoke_sessions": lambda g: g.revoke_sessions(s.alice),
        "list_inbox_rules": lambda g: g.list_inbox_rules(s.alice),
        "delete_inbox_rule": lambda g: g.delete_inbox_rule(s.alice, s.rule_evil),
        "disable_inbox_rule": lambda g: g.disable_inbox_rule(s.alice, s.rule_evil),
        "create_inbox_rule": lambda g: g.create_inbox_rule(s.alice, EVIL_RULE),
        "list_permission_grants": lambda g: g.list_permission_grants(client_id=s.rogue_app_sp),
        "delete_permission_grant": lambda g: g.delete_permission_grant(s.grant_all),
        "get_service_principal": lambda g: g.get_service_principal(s.rogue_app_sp),
        "disable_service_principal": lambda g: g.disable_service_principal(s.rogue_app_sp),
        "enable_service_principal": lambda g: g.enable_service_principal(s.rogue_app_sp),
        "find_service_principal": lambda g: g.find_service_principal("app-1"),
        "list_role_members": lambda g: g.list_role_members(GLOBAL_ADMIN),
    }


@pytest.mark.parametrize(
    ("operation", "permission", "graph_code"),
    [
        ("get_user", "User.Read.All", "Authorization_RequestDenied"),
        ("list_users", "User.Read.All", "Authorization_RequestDenied"),
        ("disable_user", "User.EnableDisableAccount.All", "Authorization_RequestDenied"),
        ("enable_user", "User.EnableDisableAccount.All", "Authorization_RequestDenied"),
        ("revoke_sessions", "User.RevokeSessions.All", "Authorization_RequestDenied"),
        ("list_inbox_rules", "MailboxSettings.Read", "ErrorAccessDenied"),
        ("delete_inbox_rule", "MailboxSettings.ReadWrite", "ErrorAccessDenied"),
        ("disable_inbox_rule", "MailboxSettings.ReadWrite", "ErrorAccessDenied"),
        ("create_inbox_rule", "MailboxSettings.ReadWrite", "ErrorAccessDenied"),
        ("list_permission_grants", "DelegatedPermissionGrant.ReadWrite.All", "Authorization_RequestDenied"),
        ("delete_permission_grant", "DelegatedPermissionGrant.ReadWrite.All", "Authorization_RequestDenied"),
        ("get_service_principal", "Application.Read.All", "Authorization_RequestDenied"),
        ("disable_service_principal", "Application.ReadWrite.All", "Authorization_RequestDenied"),
        ("enable_service_principal", "Application.ReadWrite.All", "Authorization_RequestDenied"),
        ("find_service_principal", "Application.Read.All", "Authorization_RequestDenied"),
        ("list_role_members", "RoleManagement.Read.Directory", "Authorization_RequestDenied"),
    ],
)
async def test_403_names_the_missing_permission(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator, operation: str, permission: str, graph_code: str
) -> None:
    emulator.set_permissions(seeded.tenant_a, set())
    with pytest.raises(PermissionError_) as info:
        await op_calls(seeded)[operation](graph)
    exc = info.value
    assert (exc.context["operation"], exc.context["permission"], exc.context["graph_code"]) == (
        operation,
        permission,
        graph_code,
    )
    assert f"the app needs the application permission {permission}" in str(exc)
    assert exc.reason == "missing_permission"
    assert set(REQUIRED_PERMISSIONS) == set(op_calls(seeded))


async def test_privileged_target_403_mentions_the_role(graph: GraphClient, seeded: Seeded) -> None:
    with pytest.raises(PermissionError_) as info:
        await graph.disable_user(seeded.bob)
    assert "higher Entra role" in str(info.value)
    assert info.value.context["permission"] == "User.EnableDisableAccount.All"


@pytest.mark.parametrize(
    ("operation", "graph_code"),
    [
        ("get_user", "Request_ResourceNotFound"),
        ("disable_user", "Request_ResourceNotFound"),
        ("revoke_sessions", "Request_ResourceNotFound"),
        ("list_inbox_rules", "ErrorInvalidUser"),
        ("disable_inbox_rule", "ErrorItemNotFound"),
        ("get_service_principal", "Request_ResourceNotFound"),
        ("disable_service_principal", "Request_ResourceNotFound"),
    ],
)
async def test_404_keeps_graphs_code(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator, operation: str, graph_code: str
) -> None:
    if operation == "disable_inbox_rule":
        ghost = dataclasses.replace(seeded, rule_evil="AQAAAAAAAAA=")
    else:
        ghost = dataclasses.replace(seeded, alice="ghost@contoso.com", rogue_app_sp="0" * 8)
    with pytest.raises(NotFoundError) as info:
        await op_calls(ghost)[operation](graph)
    assert (info.value.context["operation"], info.value.context["graph_code"]) == (operation, graph_code)


async def test_transport_errors_are_service_unavailable(seeded: Seeded) -> None:
    emu = GraphEmulator().start()
    base = emu.base_url
    emu.stop()
    async with GraphClient.create("t", credential=GraphEmulator().credential("t"), base_url=base) as client:
        with pytest.raises(ServiceUnavailable) as info:
            await client.get_user("x")
    assert (info.value.context["cause"], info.value.retry_after) == ("transport", None)


async def test_dropped_connection_is_service_unavailable(
    graph: GraphClient, seeded: Seeded, emulator: GraphEmulator
) -> None:
    emulator.inject(Fault(0))
    with pytest.raises(ServiceUnavailable) as info:
        await graph.revoke_sessions(seeded.alice)
    assert info.value.context["cause"] == "transport"


async def test_timeouts_are_service_unavailable(emulator: GraphEmulator, seeded: Seeded) -> None:
    hold = emulator.hold(path_prefix="/users")
    try:
        async with httpx.AsyncClient(timeout=0.1) as http:
            client = GraphClient.create(
                seeded.tenant_a,
                credential=emulator.credential(seeded.tenant_a),
                base_url=emulator.base_url,
                http_client=http,
            )
            with pytest.raises(ServiceUnavailable) as info:
                await client.get_user(seeded.alice)
            await client.close()  # does not close the caller's client
            assert not http.is_closed
    finally:
        hold.release()
    assert info.value.context["cause"] == "timeout"


async def test_mailbox_concurrency_cap_surfaces_as_throttling(seeded: Seeded) -> None:
    with GraphEmulator(mailbox_concurrency_limit=4, mailbox_retry_after=2) as emu:
        uid = emu.add_user("t", user_principal_name="x@contoso.com")
        hold = emu.hold(path_prefix=f"/users/{uid}/mailFolders")
        async with GraphClient.create("t", credential=emu.credential("t"), base_url=emu.base_url) as client:
            tasks = [asyncio.ensure_future(client.list_inbox_rules(uid)) for _ in range(5)]
            try:
                for _ in range(500):
                    if hold.waiting == 4 and any(c.status == 429 for c in emu.calls):
                        break
                    await asyncio.sleep(0.01)
            finally:
                hold.release()
            results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["ThrottledError", "list", "list", "list", "list"]
    throttled = next(r for r in results if isinstance(r, ThrottledError))
    assert (throttled.retry_after, throttled.context["graph_code"]) == (2.0, "ApplicationThrottled")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Mon, 10 Mar 2025 15:02:00 GMT", 120.0),
        ("Mon, 10 Mar 2025 14:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
        ("", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)) == seconds


# --------------------------------------------------------------------------- the sync facade


def test_sync_facade(emulator: GraphEmulator, seeded: Seeded) -> None:
    with SyncGraphClient.create(
        seeded.tenant_a, credential=emulator.credential(seeded.tenant_a), base_url=emulator.base_url
    ) as client:
        assert client.tenant_id == seeded.tenant_a
        assert client.allowed_hosts == ("127.0.0.1",)
        assert client.get_user("alice@contoso.com").id == seeded.alice
        assert [u.id for u in client.list_users()] == [seeded.alice, seeded.bob, seeded.carol]
        client.disable_user(seeded.alice)
        assert client.revoke_sessions(seeded.alice) is True
        assert client.list_inbox_rules(seeded.alice)[1] == EVIL_RULE
        assert client.disable_inbox_rule(seeded.alice, seeded.rule_evil).is_enabled is False
        assert client.delete_inbox_rule(seeded.alice, seeded.rule_evil) is True
        assert client.create_inbox_rule(seeded.alice, EVIL_RULE).display_name == "."
        assert [g.id for g in client.list_permission_grants(client_id=seeded.rogue_app_sp)] == [
            "grant-all-principals",
            "grant-alice",
        ]
        assert client.delete_permission_grant(seeded.grant_all) is True
        client.disable_service_principal(seeded.rogue_app_sp)
        assert client.get_service_principal(seeded.rogue_app_sp).account_enabled is False
        client.enable_service_principal(seeded.rogue_app_sp)
        client.enable_user(seeded.alice)
        emulator.inject(Fault(429, retry_after=5))
        with pytest.raises(ThrottledError) as info:
            client.get_user(seeded.alice)
        assert info.value.retry_after == 5.0
    assert [e.kind for e in emulator.state.effects()] == [
        "user.disabled",
        "user.sessions_revoked",
        "rule.disabled",
        "rule.deleted",
        "rule.created",
        "grant.deleted",
        "sp.disabled",
        "sp.enabled",
        "user.enabled",
    ]
    with pytest.raises(RuntimeError, match="closed"):
        client.get_user(seeded.alice)
    client.close()  # idempotent


def test_closing_the_client_closes_its_connections(emulator: GraphEmulator, seeded: Seeded) -> None:
    # garbage earlier tests left (tests/e2e leaves an unclosed TLS socket to one of its local stand-ins) is
    # collected first, outside the record: only what this client leaves can warn below
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with SyncGraphClient.create(
            seeded.tenant_a, credential=emulator.credential(seeded.tenant_a), base_url=emulator.base_url
        ) as client:
            assert client.get_user(seeded.alice).id == seeded.alice
        del client
        gc.collect()  # a socket left open warns when it is collected
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_sync_facade_calls_are_logged_with_the_tenant(emulator: GraphEmulator, seeded: Seeded) -> None:
    with (
        SyncGraphClient.create(
            seeded.tenant_b, credential=emulator.credential(seeded.tenant_b), base_url=emulator.base_url
        ) as client,
        pytest.raises(NotFoundError),
    ):
        client.get_user(seeded.alice)
    assert emulator.calls == [
        Call(
            "GET",
            f"/v1.0/users/{seeded.alice}",
            "$select=id,userPrincipalName,displayName,accountEnabled,usageLocation,onPremisesSyncEnabled",
            seeded.tenant_b,
            404,
            True,
        )
    ]


# --------------------------------------------------------------------------- rule identities (pure)


@pytest.mark.parametrize(
    ("identity", "graph_id"),
    [
        (16752869479666417665, "AQAAAAgmfug="),  # Get-InboxRule.md example ↔ docs §2
        (0x9F665D9E00000001, "AQAAAJ5dZp8="),  # the messageRule doc example id
        (0xB8A81FE400000001, "AQAAAOQfqLg="),  # microsoft-graph-docs-contrib#3336
        (0, "AAAAAAAAAAA="),
        ((1 << 64) - 1, "//////////8="),
    ],
)
def test_rule_identity_known_answers(identity: int, graph_id: str) -> None:
    assert rule_identity_to_graph_id(identity) == graph_id
    assert graph_id_to_rule_identity(graph_id) == identity


@pytest.mark.parametrize("bad", [-1, 1 << 64, True])
def test_rule_identity_out_of_range(bad: int) -> None:
    with pytest.raises(BadInputError):
        rule_identity_to_graph_id(bad)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("AQAAAAgmfug=", True),
        ("AgAACObC9Yw=", True),
        ("AQAAAAgmfug", False),
        ("AQAAAAgmfu==", False),
        ("AQAAAAgmfugA", False),
        ("alice\\.", False),
        ("alice\\16752869479666417665", False),
        ("16752869479666417665", False),
        ("", False),
        ("AQAAAAgm-ug=", False),
    ],
)
def test_is_graph_rule_id(value: str, ok: bool) -> None:
    assert is_graph_rule_id(value) is ok
    if not ok:
        with pytest.raises(BadInputError):
            graph_id_to_rule_identity(value)


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("rzaher\\16752869479666417665", 16752869479666417665),
        ("16752869479666417665", 16752869479666417665),
        ("alice\\.", None),
        ("alice\\123", None),  # a rule named "123", not a RuleIdentity
        ("alice\\18446744073709551616", None),  # > uint64
        ("alice\\Forward all", None),
        (None, None),
    ],
)
def test_parse_rule_identity(identity: str | None, expected: int | None) -> None:
    assert parse_rule_identity(identity) == expected


# --------------------------------------------------------------------------- rule matching (pure)

BENIGN = benign_rule("AQAAABMWeug=")
EVIL_COPY = EVIL_RULE.model_copy(update={"id": "AQAAANnc6zc=", "sequence": 5})
READ_ONLY = read_only_rule("AQAAABpxpyM=")
INVOICE = InboxRule(
    id="AQAAAHv4gxQ=",
    display_name="Invoice",
    sequence=4,
    conditions=RuleConditions(subject_contains=("Invoice",), from_addresses=("ceo@contoso.com",)),
    actions=RuleActions(redirect_to=("Drop@Evil.Example",), mark_as_read=True),
)


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": None,
        "rule_identity": None,
        "forward_to": set(),
        "redirect_to": set(),
        "move_to_folder": None,
        "delete": None,
        "mark_as_read": None,
        "words": set(),
    }
    base.update(overrides)
    return base


MATCH_CASES = [
    pytest.param(
        [BENIGN, EVIL_RULE, READ_ONLY],
        record(name=".", forward_to={"drop@evil.example"}),
        MatchOutcome.MATCHED,
        [(EVIL_RULE.id, 70), (BENIGN.id, -10)],
        id="duplicate-names-only-one-forwards",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(name=".", forward_to={"drop@evil.example"}, delete=True, words={"invoice", "payment"}),
        MatchOutcome.MATCHED,
        [(EVIL_RULE.id, 105), (BENIGN.id, -45)],
        id="full-signature",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(name="."),
        MatchOutcome.WEAK,
        [(BENIGN.id, 30), (EVIL_RULE.id, 30)],
        id="name-alone-is-weak",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(rule_identity=16752869479666417665),
        MatchOutcome.WEAK,
        [(EVIL_RULE.id, 60)],
        id="identity-alone-is-weak",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(rule_identity=16752869479666417665, name="."),
        MatchOutcome.MATCHED,
        [(EVIL_RULE.id, 90), (BENIGN.id, 30)],
        id="identity-and-name",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE, EVIL_COPY],
        record(name=".", forward_to={"drop@evil.example"}),
        MatchOutcome.AMBIGUOUS,
        [(EVIL_RULE.id, 70), (EVIL_COPY.id, 70), (BENIGN.id, -10)],
        id="two-identical-malicious-rules",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE, EVIL_COPY],
        record(name=".", forward_to={"drop@evil.example"}, rule_identity=16752869479666417665),
        MatchOutcome.MATCHED,
        [(EVIL_RULE.id, 130), (EVIL_COPY.id, 70), (BENIGN.id, -10)],
        id="identity-breaks-the-tie",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(name=".", rule_identity=graph_id_to_rule_identity(BENIGN.id), forward_to={"drop@evil.example"}),
        MatchOutcome.AMBIGUOUS,
        [(EVIL_RULE.id, 70), (BENIGN.id, 50)],
        id="identity-points-at-a-contradicted-rule",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE, INVOICE],
        record(name="invoice", redirect_to={"drop@evil.example"}, words={"ceo@contoso.com"}),
        MatchOutcome.MATCHED,
        [(INVOICE.id, 75), (EVIL_RULE.id, -5)],  # EVIL forwards to the address, but under forwardTo
        id="case-insensitive-name-and-addresses",
    ),
    pytest.param(
        [INVOICE],
        record(name="Invoice", forward_to={"drop@evil.example"}),
        MatchOutcome.WEAK,
        [(INVOICE.id, 45)],
        id="address-under-another-action",
    ),
    pytest.param(
        [BENIGN, READ_ONLY],
        record(name="Received before", forward_to={"x@evil.example"}, delete=True),
        MatchOutcome.WEAK,
        [(READ_ONLY.id, 30)],
        id="read-only-rule-hides-its-actions",
    ),
    pytest.param(
        [BENIGN, READ_ONLY],
        record(name="Received before", rule_identity=graph_id_to_rule_identity(READ_ONLY.id)),
        MatchOutcome.MATCHED,
        [(READ_ONLY.id, 90)],
        id="read-only-rule-matched-by-identity-and-name",
    ),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(name="..", forward_to={"someone@else.example"}),
        MatchOutcome.NONE,
        [],
        id="nothing-in-common",
    ),
    pytest.param([], record(name="."), MatchOutcome.NONE, [], id="empty-mailbox"),
    pytest.param(
        [BENIGN, EVIL_RULE],
        record(move_to_folder="AAMkAGI2TG93AAA=", mark_as_read=True),
        MatchOutcome.WEAK,
        [(BENIGN.id, 25)],
        id="folder-and-flag-without-name-is-weak",
    ),
]


@pytest.mark.parametrize(("rules", "rec", "outcome", "scores"), MATCH_CASES)
def test_match_rules(
    rules: list[InboxRule], rec: dict[str, Any], outcome: MatchOutcome, scores: list[tuple[str, int]]
) -> None:
    result = match_rules(rules, **rec)
    assert result.outcome is outcome
    assert [(c.rule.id, c.score) for c in result.candidates] == scores
    if outcome is MatchOutcome.MATCHED:
        assert result.rule is not None
        assert result.rule.id == scores[0][0]
    else:
        assert result.rule is None


def test_match_reasons_explain_the_decision() -> None:
    result = match_rules([BENIGN, EVIL_RULE, READ_ONLY], **record(name=".", forward_to={"drop@evil.example"}))
    assert [(c.rule.id, c.reasons, c.agreeing, c.contradictions, c.strong) for c in result.candidates] == [
        (
            EVIL_RULE.id,
            ("+30 displayName is exactly '.'", "+40 forwardTo has ['drop@evil.example']"),
            frozenset({"name", "forwarding"}),
            frozenset(),
            True,
        ),
        (
            BENIGN.id,
            ("+30 displayName is exactly '.'", "-40 forwardTo expected ['drop@evil.example'], rule has nothing"),
            frozenset({"name"}),
            frozenset({"forwarding"}),
            False,
        ),
    ]
    assert result.strong == (result.candidates[0],)
    assert result.best == result.candidates[0]


def test_match_read_only_reason() -> None:
    result = match_rules([READ_ONLY], **record(name="Received before", forward_to={"x@evil.example"}))
    assert result.candidates[0].reasons == (
        "+30 displayName is exactly 'Received before'",
        "±0 forwardTo expected ['x@evil.example'], rule has nothing "
        "(read-only rule: its conditions and actions are not visible)",
        "±0 read-only: Graph cannot change or delete it (use Exchange)",
    )


def test_inbox_rule_round_trips_through_json() -> None:
    assert InboxRule.model_validate_json(EVIL_RULE.model_dump_json()) == EVIL_RULE
    with pytest.raises(ValueError, match="frozen"):
        EVIL_RULE.display_name = "x"  # type: ignore[misc]
