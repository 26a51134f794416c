"""The Graph emulator on the wire (plain httpx, no SDK): shapes, errors, tenants, paging, faults, concurrency."""

from __future__ import annotations

import base64
import struct
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from shared.emulators.graph import Call, Effect, Fault, GraphEmulator

if TYPE_CHECKING:
    from conftest import Seeded


def http(emulator: GraphEmulator, tenant: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {emulator.token_for(tenant)}"} if tenant else {}
    return httpx.Client(base_url=emulator.base_url, headers=headers, timeout=5.0)


def assert_graph_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    err = body["error"]
    assert set(err) == {"code", "message", "innerError"}
    assert err["code"] == code
    assert isinstance(err["message"], str)
    assert err["message"]
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    uuid.UUID(err["innerError"]["request-id"])
    return body


# --------------------------------------------------------------------------- authentication and tenants


@pytest.mark.parametrize(
    ("authorization", "message", "token_present"),
    [
        (None, "Access token is empty.", False),
        ("Bearer not-a-fake-token", "IDX14100: JWT is not well formed.", True),
        ("Basic fake-token:x", "IDX14100: JWT is not well formed.", False),
        ("Bearer fake-token:unknown-tenant", "Access token validation failure. Invalid audience.", True),
    ],
)
def test_requests_without_a_valid_tenant_token_get_401(
    emulator: GraphEmulator, seeded: Seeded, authorization: str | None, message: str, token_present: bool
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=emulator.base_url, headers=headers) as c:
        resp = c.get(f"/users/{seeded.alice}")
    body = assert_graph_error(resp, 401, "InvalidAuthenticationToken")
    assert body["error"]["message"] == message
    assert emulator.calls == [Call("GET", f"/v1.0/users/{seeded.alice}", "", None, 401, token_present)]


def test_a_tenant_never_sees_another_tenants_objects(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_b) as b, http(emulator, seeded.tenant_a) as a:
        assert_graph_error(b.get(f"/users/{seeded.alice}"), 404, "Request_ResourceNotFound")
        assert_graph_error(b.get("/users/alice@contoso.com"), 404, "Request_ResourceNotFound")
        assert_graph_error(
            b.patch(f"/users/{seeded.alice}", json={"accountEnabled": False}), 404, "Request_ResourceNotFound"
        )
        assert_graph_error(b.get(f"/users/{seeded.alice}/mailFolders/inbox/messageRules"), 404, "ErrorInvalidUser")
        assert_graph_error(b.delete(f"/oauth2PermissionGrants/{seeded.grant_all}"), 404, "Request_ResourceNotFound")
        assert_graph_error(b.get(f"/servicePrincipals/{seeded.rogue_app_sp}"), 404, "Request_ResourceNotFound")
        assert [u["userPrincipalName"] for u in b.get("/users").json()["value"]] == ["dave@fabrikam.com"]
        assert b.get("/oauth2PermissionGrants").json()["value"] == []
        assert_graph_error(a.get(f"/users/{seeded.dave_b}"), 404, "Request_ResourceNotFound")
    assert emulator.state.user(seeded.tenant_a, seeded.alice)["accountEnabled"] is True  # type: ignore[index]
    assert emulator.state.effects() == []
    assert {c.tenant_id for c in emulator.calls} == {seeded.tenant_a, seeded.tenant_b}


# --------------------------------------------------------------------------- users


def test_get_user_by_id_or_upn_with_select(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        by_upn = c.get(
            "/users/ALICE@contoso.com",
            params={"$select": "id,userPrincipalName,accountEnabled,usageLocation,onPremisesSyncEnabled"},
        )
        default = c.get(f"/users/{seeded.alice}")
    assert by_upn.status_code == 200
    assert by_upn.json() == {
        "@odata.context": f"{emulator.base_url}/$metadata#users/$entity",
        "id": seeded.alice,
        "userPrincipalName": "alice@contoso.com",
        "accountEnabled": True,
        "usageLocation": "US",
        "onPremisesSyncEnabled": None,
    }
    # Without $select Graph returns its default property set, which lacks accountEnabled.
    assert sorted(default.json()) == sorted(
        [
            "@odata.context",
            "businessPhones",
            "displayName",
            "givenName",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName",
            "id",
        ]
    )


def test_unknown_select_property_is_400(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        assert_graph_error(c.get(f"/users/{seeded.alice}", params={"$select": "id,nope"}), 400, "Request_BadRequest")


def test_patch_user_answers_204_and_counts_each_disable(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        first = c.patch(
            f"/users/{seeded.alice}", json={"@odata.type": "#microsoft.graph.user", "accountEnabled": False}
        )
        again = c.patch(f"/users/{seeded.alice}", json={"accountEnabled": False})
        back = c.patch(f"/users/{seeded.alice}", json={"accountEnabled": True})
        bad = c.patch(f"/users/{seeded.alice}", json={"passwordPolicies": "x"})
    assert [first.status_code, again.status_code, back.status_code] == [204, 204, 204]
    assert first.content == b""
    assert_graph_error(bad, 400, "Request_BadRequest")
    assert emulator.state.effects(tenant_id=seeded.tenant_a) == [
        Effect(seeded.tenant_a, "user.disabled", seeded.alice),
        Effect(seeded.tenant_a, "user.disabled", seeded.alice),
        Effect(seeded.tenant_a, "user.enabled", seeded.alice),
    ]
    assert emulator.state.effect_count("user.disabled", tenant_id=seeded.tenant_a, target=seeded.alice) == 2
    assert emulator.state.user(seeded.tenant_a, seeded.alice)["accountEnabled"] is True  # type: ignore[index]


def test_privileged_user_needs_a_higher_role(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        resp = c.patch(f"/users/{seeded.bob}", json={"accountEnabled": False})
    assert_graph_error(resp, 403, "Authorization_RequestDenied")
    assert emulator.state.user(seeded.tenant_a, seeded.bob)["accountEnabled"] is True  # type: ignore[index]
    emulator.add_tenant("privileged-ok", can_manage_privileged=True)
    admin = emulator.add_user("privileged-ok", user_principal_name="root@x.example", privileged=True)
    with http(emulator, "privileged-ok") as c:
        assert c.patch(f"/users/{admin}", json={"accountEnabled": False}).status_code == 204


def test_revoke_sign_in_sessions(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        r1 = c.post(f"/users/{seeded.alice}/revokeSignInSessions")
        r2 = c.post("/users/alice@contoso.com/revokeSignInSessions")
    assert r1.json() == {"@odata.context": f"{emulator.base_url}/$metadata#Edm.Boolean", "value": True}
    assert r2.status_code == 200
    assert emulator.state.sign_in_revocations(seeded.tenant_a, seeded.alice) == 2
    assert emulator.state.sign_in_revocations(seeded.tenant_a, seeded.carol) == 0


def test_list_users_pages_with_next_link() -> None:
    with GraphEmulator(page_size=2) as emu:
        for i in range(5):
            emu.add_user("t", user_principal_name=f"user{i}@contoso.com")
        pages: list[list[str]] = []
        links: list[str | None] = []
        with http(emu, "t") as c:
            url: str | None = f"{emu.base_url}/users?$select=id,userPrincipalName"
            while url:
                body = c.get(url).json()
                pages.append([u["userPrincipalName"] for u in body["value"]])
                assert all(set(u) == {"id", "userPrincipalName"} for u in body["value"])
                url = body.get("@odata.nextLink")
                links.append(url)
        base = emu.base_url
    assert pages == [
        ["user0@contoso.com", "user1@contoso.com"],
        ["user2@contoso.com", "user3@contoso.com"],
        ["user4@contoso.com"],
    ]
    assert links[0] == f"{base}/users?$select=id,userPrincipalName&$top=2&$skiptoken=2"
    assert links[-1] is None


# --------------------------------------------------------------------------- message rules


def rules_path(user: str, rule: str | None = None) -> str:
    # Graph ids are standard base64 and may hold "/" or "+": always percent-encode the segment.
    return f"/users/{user}/mailFolders/inbox/messageRules" + (f"/{quote(rule, safe='')}" if rule else "")


def test_rule_listing_hides_hidden_rules_and_blanks_read_only_ones(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        body = c.get(rules_path("alice@contoso.com")).json()
    assert body["@odata.context"] == (
        f"{emulator.base_url}/$metadata#users('{seeded.alice}')/mailFolders('inbox')/messageRules"
    )
    assert body["value"] == [
        {
            "id": seeded.rule_benign,
            "displayName": ".",
            "sequence": 1,
            "isEnabled": True,
            "hasError": False,
            "isReadOnly": False,
            "conditions": {"senderContains": ["newsletter"]},
            "actions": {"moveToFolder": "AAMkAGI2TG93AAA=", "markAsRead": True},
        },
        {
            "id": "AQAAAAgmfug=",
            "displayName": ".",
            "sequence": 2,
            "isEnabled": True,
            "hasError": False,
            "isReadOnly": False,
            "conditions": {"bodyOrSubjectContains": ["invoice", "payment"]},
            "actions": {
                "forwardTo": [{"emailAddress": {"address": "drop@evil.example", "name": "drop"}}],
                "delete": True,
                "stopProcessingRules": True,
            },
        },
        {
            "id": seeded.rule_read_only,
            "displayName": "Received before",
            "sequence": 3,
            "isEnabled": True,
            "hasError": False,
            "isReadOnly": True,
        },
    ]
    assert seeded.rule_evil == "AQAAAAgmfug="


def test_generated_rule_ids_have_graphs_shape(emulator: GraphEmulator, seeded: Seeded) -> None:
    for rid in (seeded.rule_benign, seeded.rule_read_only, seeded.rule_hidden):
        raw = base64.b64decode(rid, validate=True)
        assert (len(raw), raw[:4]) == (8, b"\x01\x00\x00\x00"), rid
    assert len({seeded.rule_benign, seeded.rule_read_only, seeded.rule_hidden, seeded.rule_evil}) == 4


def test_delete_rule_then_404_and_audit_identities_are_404(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        ok = c.delete(rules_path(seeded.alice, seeded.rule_evil))
        again = c.delete(rules_path(seeded.alice, seeded.rule_evil))
        by_name = c.delete(rules_path(seeded.alice, "alice\\."))
        by_identity = c.delete(rules_path(seeded.alice, "alice\\16752869479666417665"))
        hidden = c.delete(rules_path(seeded.alice, seeded.rule_hidden))
        read_only = c.delete(rules_path(seeded.alice, seeded.rule_read_only))
    assert (ok.status_code, ok.content) == (204, b"")
    for resp in (again, by_name, by_identity, hidden):
        assert_graph_error(resp, 404, "ErrorItemNotFound")
    assert_graph_error(read_only, 400, "ErrorInvalidRequest")
    assert [r["id"] for r in emulator.state.inbox_rules(seeded.tenant_a, seeded.alice)] == [
        seeded.rule_benign,
        seeded.rule_read_only,
        seeded.rule_hidden,
    ]
    assert emulator.state.effects() == [Effect(seeded.tenant_a, "rule.deleted", "AQAAAAgmfug=")]


def test_deleting_a_disabled_rule_can_answer_404_like_ews() -> None:
    with GraphEmulator(disabled_rule_delete_404=True) as emu:
        uid = emu.add_user("t", user_principal_name="x@contoso.com")
        rid = emu.add_inbox_rule("t", uid, display_name="off", is_enabled=False)
        with http(emu, "t") as c:
            assert_graph_error(c.delete(rules_path(uid, rid)), 404, "ErrorItemNotFound")
            assert c.patch(rules_path(uid, rid), json={"isEnabled": True}).json()["isEnabled"] is True
            assert c.delete(rules_path(uid, rid)).status_code == 204
        assert emu.state.inbox_rules("t", uid) == []


def test_create_and_patch_rule(emulator: GraphEmulator, seeded: Seeded) -> None:
    new_rule = {
        "displayName": "restored",
        "sequence": 9,
        "isEnabled": True,
        "conditions": {"@odata.type": "#microsoft.graph.messageRulePredicates", "subjectContains": ["x"]},
        "actions": {"moveToFolder": "AAMk="},
    }
    with http(emulator, seeded.tenant_a) as c:
        created = c.post(rules_path(seeded.carol), json=new_rule)
        rid = created.json()["id"]
        patched = c.patch(rules_path(seeded.carol, rid), json={"isEnabled": False})
        got = c.get(rules_path(seeded.carol, rid))
        missing = c.post(rules_path(seeded.carol), json={"sequence": 1})
    assert created.status_code == 201
    expected = {
        "id": rid,
        "displayName": "restored",
        "sequence": 9,
        "isEnabled": False,
        "hasError": False,
        "isReadOnly": False,
        "conditions": {"subjectContains": ["x"]},
        "actions": {"moveToFolder": "AAMk="},
    }
    assert {k: v for k, v in patched.json().items() if k != "@odata.context"} == expected
    assert {k: v for k, v in got.json().items() if k != "@odata.context"} == expected
    assert_graph_error(missing, 400, "ErrorInvalidRequest")
    assert [e.kind for e in emulator.state.effects()] == ["rule.created", "rule.disabled"]


# --------------------------------------------------------------------------- grants and service principals


def test_grants_filter_and_delete(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        listed = c.get("/oauth2PermissionGrants", params={"$filter": f"clientId eq '{seeded.rogue_app_sp}'"})
        bad = c.get("/oauth2PermissionGrants", params={"$filter": "startswith(clientId,'x')"})
        deleted = c.delete(f"/oauth2PermissionGrants/{seeded.grant_all}")
        gone = c.delete(f"/oauth2PermissionGrants/{seeded.grant_all}")
    assert [g["id"] for g in listed.json()["value"]] == [seeded.grant_all, seeded.grant_alice]
    assert listed.json()["value"][1] == {
        "id": "grant-alice",
        "clientId": seeded.rogue_app_sp,
        "consentType": "Principal",
        "principalId": seeded.alice,
        "resourceId": "00000003-resource-graph",
        "scope": "Mail.ReadWrite",
    }
    assert_graph_error(bad, 400, "Request_UnsupportedQuery")
    assert deleted.status_code == 204
    assert_graph_error(gone, 404, "Request_ResourceNotFound")
    assert [g["id"] for g in emulator.state.permission_grants(seeded.tenant_a)] == ["grant-alice", "grant-other-app"]


def test_service_principal_get_and_patch(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        got = c.get(f"/servicePrincipals/{seeded.rogue_app_sp}", params={"$select": "id,appId,accountEnabled"})
        patched = c.patch(f"/servicePrincipals/{seeded.rogue_app_sp}", json={"accountEnabled": False})
        wrong = c.patch(f"/servicePrincipals/{seeded.rogue_app_sp}", json={"displayName": "x"})
    assert got.json() == {
        "@odata.context": f"{emulator.base_url}/$metadata#servicePrincipals/$entity",
        "id": seeded.rogue_app_sp,
        "appId": "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa",
        "accountEnabled": True,
    }
    assert patched.status_code == 204
    assert_graph_error(wrong, 400, "Request_BadRequest")
    assert emulator.state.service_principal(seeded.tenant_a, seeded.rogue_app_sp) == {
        "id": seeded.rogue_app_sp,
        "appId": "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa",
        "displayName": "Rogue Mail Reader",
        "accountEnabled": False,
    }


# --------------------------------------------------------------------------- permissions and routing


@pytest.mark.parametrize(
    ("method", "path", "granted", "status", "code"),
    [
        ("GET", "/users/alice@contoso.com", {"MailboxSettings.Read"}, 403, "Authorization_RequestDenied"),
        ("GET", "/users/alice@contoso.com", {"User.Read.All"}, 200, None),
        ("PATCH", "/users/alice@contoso.com", {"User.Read.All"}, 403, "Authorization_RequestDenied"),
        ("PATCH", "/users/alice@contoso.com", {"User.EnableDisableAccount.All"}, 204, None),
        (
            "POST",
            "/users/alice@contoso.com/revokeSignInSessions",
            {"User.Read.All"},
            403,
            "Authorization_RequestDenied",
        ),
        ("GET", "/users/alice@contoso.com/mailFolders/inbox/messageRules", {"User.Read.All"}, 403, "ErrorAccessDenied"),
        ("GET", "/users/alice@contoso.com/mailFolders/inbox/messageRules", {"MailboxSettings.Read"}, 200, None),
        (
            "DELETE",
            "/users/alice@contoso.com/mailFolders/inbox/messageRules/AQAAAAgmfug=",
            {"MailboxSettings.Read"},
            403,
            "ErrorAccessDenied",
        ),
        (
            "DELETE",
            "/oauth2PermissionGrants/grant-alice",
            {"DelegatedPermissionGrant.Read.All"},
            403,
            "Authorization_RequestDenied",
        ),
        (
            "PATCH",
            "/servicePrincipals/5e5e5e5e-0000-4000-8000-000000000005",
            {"Application.Read.All"},
            403,
            "Authorization_RequestDenied",
        ),
    ],
)
def test_application_permissions_are_enforced(
    emulator: GraphEmulator, seeded: Seeded, method: str, path: str, granted: set[str], status: int, code: str | None
) -> None:
    emulator.set_permissions(seeded.tenant_a, granted)
    body = {"accountEnabled": False} if method == "PATCH" else None
    with http(emulator, seeded.tenant_a) as c:
        resp = c.request(method, path, json=body)
    if code is None:
        assert resp.status_code == status, resp.text
    else:
        assert_graph_error(resp, status, code)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2.0/users", 400, "BadRequest"),
        ("GET", "/v1.0/groups", 400, "BadRequest"),
        ("DELETE", "/v1.0/users", 405, "Request_BadRequest"),
        ("GET", "/v1.0/users/alice@contoso.com/mailFolders/drafts/messageRules", 404, "ErrorItemNotFound"),
    ],
)
def test_unknown_routes(
    emulator: GraphEmulator, seeded: Seeded, method: str, path: str, status: int, code: str
) -> None:
    with httpx.Client(
        base_url=emulator.root_url, headers={"Authorization": f"Bearer fake-token:{seeded.tenant_a}"}
    ) as c:
        assert_graph_error(c.request(method, path), status, code)


def test_error_echoes_client_request_id(emulator: GraphEmulator, seeded: Seeded) -> None:
    with http(emulator, seeded.tenant_a) as c:
        resp = c.get("/users/nobody@contoso.com", headers={"client-request-id": "abc-123"})
    body = assert_graph_error(resp, 404, "Request_ResourceNotFound")
    assert body["error"]["innerError"]["client-request-id"] == "abc-123"
    assert resp.headers["client-request-id"] == "abc-123"
    assert resp.headers["request-id"] == body["error"]["innerError"]["request-id"]


# --------------------------------------------------------------------------- faults


def test_one_shot_faults_by_path_and_tenant(emulator: GraphEmulator, seeded: Seeded) -> None:
    throttle = emulator.inject(
        Fault(429, retry_after=7, path_prefix=f"/users/{seeded.alice}", tenant_id=seeded.tenant_a)
    )
    emulator.inject(Fault(503, count=2, method="DELETE"))
    with http(emulator, seeded.tenant_a) as a, http(emulator, seeded.tenant_b) as b:
        other_user = a.get(f"/users/{seeded.carol}")
        other_tenant = b.get(f"/users/{seeded.dave_b}")
        first = a.get(f"/users/{seeded.alice}")
        second = a.get(f"/users/{seeded.alice}")
        deletes = [a.delete(f"/oauth2PermissionGrants/{seeded.other_grant}").status_code for _ in range(3)]
    assert (other_user.status_code, other_tenant.status_code) == (200, 200)
    assert_graph_error(first, 429, "TooManyRequests")
    assert first.headers["Retry-After"] == "7"
    assert second.status_code == 200
    assert deletes == [503, 503, 204]
    assert throttle.hits == 1
    assert [c.fault for c in emulator.calls] == [None, None, "429", None, "503", "503", None]


def test_rate_faults_are_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[int]:
        with GraphEmulator(seed=seed) as emu:
            uid = emu.add_user("t", user_principal_name="x@contoso.com")
            emu.inject(Fault(500, count=None, rate=0.3))
            with http(emu, "t") as c:
                return [c.get(f"/users/{uid}").status_code for _ in range(30)]

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other
    assert set(first) == {200, 500}
    assert 3 <= first.count(500) <= 18


def test_fault_after_the_effect_loses_the_response(emulator: GraphEmulator, seeded: Seeded) -> None:
    emulator.inject(Fault(504, after=True, method="DELETE"))
    with http(emulator, seeded.tenant_a) as c:
        lost = c.delete(rules_path(seeded.alice, seeded.rule_evil))
        retried = c.delete(rules_path(seeded.alice, seeded.rule_evil))
    assert_graph_error(lost, 504, "GatewayTimeout")
    assert_graph_error(retried, 404, "ErrorItemNotFound")
    assert emulator.state.effect_count("rule.deleted", tenant_id=seeded.tenant_a) == 1
    assert [c.fault for c in emulator.calls] == ["504 after", None]


def test_dropped_connection_and_html_gateway_page(emulator: GraphEmulator, seeded: Seeded) -> None:
    emulator.inject(Fault(0))
    emulator.inject(Fault(502, html=True))
    with http(emulator, seeded.tenant_a) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get(f"/users/{seeded.alice}")
        page = c.get(f"/users/{seeded.alice}")
        ok = c.get(f"/users/{seeded.alice}")
    assert page.status_code == 502
    assert page.headers["Content-Type"] == "text/html"
    assert b"Gateway error" in page.content
    assert ok.status_code == 200


def test_redirect_fault(emulator: GraphEmulator, seeded: Seeded) -> None:
    emulator.inject(Fault(307, redirect_to="http://localhost:1/v1.0/users/x"))
    with http(emulator, seeded.tenant_a) as c:
        resp = c.get(f"/users/{seeded.alice}")
    assert (resp.status_code, resp.headers["Location"]) == (307, "http://localhost:1/v1.0/users/x")


def test_mailbox_concurrency_cap_answers_429() -> None:
    with GraphEmulator(mailbox_concurrency_limit=4, mailbox_retry_after=2) as emu:
        uid = emu.add_user("t", user_principal_name="x@contoso.com")
        other = emu.add_user("t", user_principal_name="y@contoso.com")
        hold = emu.hold(path_prefix=f"/users/{uid}/mailFolders")
        statuses: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            with http(emu, "t") as c:
                code = c.get(rules_path(uid)).status_code
            with lock:
                statuses.append(code)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            assert hold.wait_until_waiting(4)
            with http(emu, "t") as c:
                fifth = c.get(rules_path("x@contoso.com"))  # the same mailbox by UPN
                other_mailbox = c.get(rules_path(other))
                directory = c.get(f"/users/{uid}")
        finally:
            hold.release()
            for t in threads:
                t.join(timeout=5)
    assert_graph_error(fifth, 429, "ApplicationThrottled")
    assert fifth.headers["Retry-After"] == "2"
    assert (other_mailbox.status_code, directory.status_code) == (200, 200)
    assert statuses == [200, 200, 200, 200]


def test_state_accessors_return_copies(emulator: GraphEmulator, seeded: Seeded) -> None:
    rules = emulator.state.inbox_rules(seeded.tenant_a, seeded.alice, include_hidden=False)
    rules[0]["actions"]["delete"] = True
    user = emulator.state.user(seeded.tenant_a, "alice@contoso.com")
    assert user is not None
    user["accountEnabled"] = False
    assert [r["displayName"] for r in rules] == [".", ".", "Received before"]
    assert emulator.state.inbox_rules(seeded.tenant_a, seeded.alice)[0]["actions"] == {
        "moveToFolder": "AAMkAGI2TG93AAA=",
        "markAsRead": True,
    }
    assert emulator.state.user(seeded.tenant_a, seeded.alice)["accountEnabled"] is True  # type: ignore[index]
    assert emulator.state.tenant_ids() == sorted([seeded.tenant_a, seeded.tenant_b])


def test_add_inbox_rule_with_rule_identity_uses_graph_encoding(emulator: GraphEmulator, seeded: Seeded) -> None:
    rid = emulator.add_inbox_rule(seeded.tenant_a, seeded.carol, display_name="x", rule_identity=(7 << 32) | 1)
    assert rid == base64.b64encode(struct.pack("<Q", (7 << 32) | 1)).decode()
    with pytest.raises(ValueError, match="already exists"):
        emulator.add_inbox_rule(seeded.tenant_a, seeded.carol, display_name="y", rule_id=rid)


def test_stop_is_idempotent_and_frees_the_port() -> None:
    emu = GraphEmulator().start()
    url = emu.base_url
    with httpx.Client() as c:
        assert c.get(f"{url}/users").status_code == 401
    emu.stop()
    emu.stop()
    with httpx.Client() as c, pytest.raises(httpx.ConnectError):
        c.get(f"{url}/users")
    with pytest.raises(RuntimeError, match="not started"):
        _ = emu.port
