"""Parsing consent records and judging scopes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.detection.consent import (
    Consent,
    PermissionGrant,
    consent_from_event,
    parse_permissions,
    scope_risk,
)
from shared.records.event import Event, parse_raw_record

TENANT = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
USER = "c3f3b8b0-1111-2222-3333-444455556666"
SP = "2a6b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
APP = "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd"
GRAPH_SP = "7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a"


def consent_event(permissions: str, **modified: str) -> Event:
    props = {
        "ConsentContext.IsAdminConsent": "False",
        "ConsentContext.IsAppOnly": "False",
        "ConsentContext.OnBehalfOfAll": "False",
        "ConsentContext.Tags": "WindowsAzureActiveDirectoryIntegratedApp",
        "ConsentAction.Permissions": permissions,
        "TargetId.ServicePrincipalNames": f"{APP};https://www.emclient.com/",
        **modified,
    }
    rec: dict[str, Any] = {
        "CreationTime": "2026-11-24T14:35:00",
        "Id": "7f1c9a6e-2f7e-4d55-9e53-0c7b0f3e2d77",
        "Operation": "Consent to application.",
        "OrganizationId": TENANT,
        "RecordType": 8,
        "ResultStatus": "Success",
        "UserKey": "10032001D6E1A2B3@contoso.com",
        "UserType": 0,
        "Workload": "AzureActiveDirectory",
        "ObjectId": SP,
        "UserId": "alice@contoso.com",
        "ModifiedProperties": [{"Name": k, "NewValue": v, "OldValue": ""} for k, v in props.items()],
        "Actor": [{"ID": "alice@contoso.com", "Type": 5}, {"ID": f"User_{USER}", "Type": 2}, {"ID": USER, "Type": 2}],
        "Target": [
            {"ID": f"ServicePrincipal_{SP}", "Type": 2},
            {"ID": SP, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
            {"ID": "eM Client", "Type": 1},
        ],
    }
    ev = parse_raw_record(orjson.dumps(rec))
    assert isinstance(ev, Event)
    return ev


GRANT = (
    f"[] => [[Id: mx3sYqB1nEyQh0X4, ClientId: {SP}, PrincipalId: {USER}, ResourceId: {GRAPH_SP}, "
    "ConsentType: Principal, Scope:  EWS.AccessAsUser.All Mail.ReadWrite offline_access openid, "
    "CreatedDateTime: , LastModifiedDateTime ]]; "
)


def test_consent_is_parsed_from_the_modified_properties() -> None:
    assert consent_from_event(consent_event(GRANT)) == Consent(
        app_id=APP,
        app_display_name="eM Client",
        service_principal_id=SP,
        scopes=("EWS.AccessAsUser.All", "Mail.ReadWrite", "offline_access", "openid"),
        added_scopes=("EWS.AccessAsUser.All", "Mail.ReadWrite", "offline_access", "openid"),
        consent_type="Principal",
        is_admin_consent=False,
        on_behalf_of_all=False,
        is_app_only=False,
        grants=(
            PermissionGrant(
                grant_id="mx3sYqB1nEyQh0X4",
                client_id=SP,
                principal_id=USER,
                resource_id=GRAPH_SP,
                consent_type="Principal",
                scopes=("EWS.AccessAsUser.All", "Mail.ReadWrite", "offline_access", "openid"),
            ),
        ),
        tags=("WindowsAzureActiveDirectoryIntegratedApp",),
    )


def test_admin_consent_for_all_with_two_resources_and_an_existing_grant() -> None:
    text = (
        f"[[Id: old1, ClientId: {SP}, PrincipalId: , ResourceId: {GRAPH_SP}, ConsentType: AllPrincipals, "
        "Scope: User.Read]] => "
        f"[[Id: old1, ClientId: {SP}, PrincipalId: , ResourceId: {GRAPH_SP}, ConsentType: AllPrincipals, "
        "Scope: User.Read Mail.Read], [Id: new2, ClientId: "
        f"{SP}, PrincipalId: , ResourceId: 00000002-0000-0ff1-ce00-000000000000, ConsentType: AllPrincipals, "
        "Scope: full_access_as_app]]"
    )
    got = consent_from_event(
        consent_event(text, **{"ConsentContext.IsAdminConsent": "True", "ConsentContext.OnBehalfOfAll": "True"})
    )
    assert got is not None
    assert (got.consent_type, got.tenant_wide, got.is_admin_consent, got.scopes, got.added_scopes) == (
        "AllPrincipals",
        True,
        True,
        ("User.Read", "Mail.Read", "full_access_as_app"),
        ("Mail.Read", "full_access_as_app"),
    )


def test_missing_permissions_text_gives_no_scopes() -> None:
    got = consent_from_event(consent_event(""))
    assert got is not None
    assert (got.scopes, got.grants, got.consent_type) == ((), (), None)


def test_parse_permissions_tolerates_missing_keys() -> None:
    before, after = parse_permissions("[[Id: a, Scope: Mail.Read]]")
    assert (before, after) == ((), (PermissionGrant("a", None, None, None, None, ("Mail.Read",)),))


@pytest.mark.parametrize(
    ("scopes", "risky", "categories", "offline", "level"),
    [
        (["User.Read", "openid", "profile", "email", "offline_access"], (), frozenset(), False, 0),
        (["Mail.Read"], ("Mail.Read",), frozenset({"mail"}), False, 1),
        (["Mail.Read", "offline_access"], ("Mail.Read",), frozenset({"mail"}), True, 2),
        (["Files.ReadWrite.All"], ("Files.ReadWrite.All",), frozenset({"files"}), False, 2),
        (["Sites.Read.All"], ("Sites.Read.All",), frozenset({"files"}), False, 1),
        (["MailboxSettings.ReadWrite"], ("MailboxSettings.ReadWrite",), frozenset({"mail"}), False, 2),
        (["EWS.AccessAsUser.All"], ("EWS.AccessAsUser.All",), frozenset({"mail"}), False, 2),
        (["full_access_as_app"], ("full_access_as_app",), frozenset({"exchange_app"}), False, 3),
        (["Directory.Read.All"], ("Directory.Read.All",), frozenset({"directory"}), False, 1),
        (["Directory.AccessAsUser.All"], ("Directory.AccessAsUser.All",), frozenset({"directory"}), False, 3),
        (
            ["RoleManagement.ReadWrite.Directory"],
            ("RoleManagement.ReadWrite.Directory",),
            frozenset({"role_management"}),
            False,
            3,
        ),
        (
            ["AppRoleAssignment.ReadWrite.All"],
            ("AppRoleAssignment.ReadWrite.All",),
            frozenset({"app_management"}),
            False,
            3,
        ),
        (["Calendars.Read", "Contacts.Read"], (), frozenset(), False, 0),
    ],
)
def test_scope_risk(
    scopes: list[str], risky: tuple[str, ...], categories: frozenset[str], offline: bool, level: int
) -> None:
    got = scope_risk(scopes)
    assert (got.risky_scopes, got.categories, got.offline_access, got.level) == (risky, categories, offline, level)
