"""Consent to risky OAuth apps and to apps listed in the RogueApps feed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    consent_record,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.app_risky_consent import AppRiskyConsent
from shared.detection.testing import run_detector
from shared.enrich.rogueapps import parse_rogue_apps
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ALICE = "alice@contoso.com"
ADMIN = "it.admin@contoso.com"
ROGUE = "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd"
ROGUE_DICT = "ff8d92dc-3d82-41d6-bcbd-b9174d163620"
APP = "3c5b1a7e-2d4f-4e6a-9b8c-7d6e5f4a3b2c"
FEED = parse_rogue_apps(
    orjson.dumps(
        [
            {
                "appId": ROGUE,
                "appDisplayName": "eM Client",
                "appPublisherName": "eM Client s.r.o.",
                "tags": ["BEC", "email"],
                "dateAdded": "2024-08-05",
                "permissions": [
                    {"resource": "Microsoft Graph", "permission": "EWS.AccessAsUser.All", "type": "Delegated"}
                ],
            }
        ]
    )
).apps
ROGUE_APPS: dict[str, Any] = {
    **FEED,
    ROGUE_DICT: {"appDisplayName": "PerfectData Software", "appPublisherName": "PERFECTDATA", "tags": ["exfiltration"]},
}


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, AppRiskyConsent],
        records,
        tenant=TENANT,
        enricher=identity_enricher(),
        rogue_apps=ROGUE_APPS,
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def ctx(
    rec: dict[str, Any], app_id: str, name: str, scopes: list[str], risky: list[str], cats: list[str], **over: Any
) -> Any:
    base: dict[str, Any] = {
        "app_id": app_id,
        "app_display_name": name,
        "service_principal_id": rec["ObjectId"],
        "scopes": scopes,
        "risky_scopes": risky,
        "scope_categories": cats,
        "offline_access": False,
        "consent_type": "Principal",
        "is_admin_consent": False,
        "on_behalf_of_all": False,
        "rogue_app": None,
        "risk": None,
    }
    base.update(over)
    return base


def test_the_demo_consent_to_a_rogue_app_after_a_vpn_sign_in_is_critical() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    rec = consent_record(
        ALICE,
        app_id=ROGUE,
        app_name="eM Client",
        scopes="EWS.AccessAsUser.All IMAP.AccessAsUser.All Mail.ReadWrite offline_access openid email",
        when=at(minutes=33),
    )
    scopes = ["EWS.AccessAsUser.All", "IMAP.AccessAsUser.All", "Mail.ReadWrite", "offline_access", "openid", "email"]
    risky = ["EWS.AccessAsUser.All", "IMAP.AccessAsUser.All", "Mail.ReadWrite"]
    assert run([login, rec]) == [
        expected_alert(
            AppRiskyConsent,
            records=[rec],
            severity="critical",
            summary=f"{ALICE} gave consent to 'eM Client': EWS.AccessAsUser.All IMAP.AccessAsUser.All Mail.ReadWrite "
            f"offline_access; listed in RogueApps (BEC, email) after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{oid_of(ALICE)}|{ROGUE}",
            ip=None,
            context=ctx(
                rec,
                ROGUE,
                "eM Client",
                scopes,
                risky,
                ["mail"],
                offline_access=True,
                rogue_app={
                    "display_name": "eM Client",
                    "publisher": "eM Client s.r.o.",
                    "tags": ["BEC", "email"],
                    "date_added": "2024-08-05",
                },
                risk={
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            ),
        )
    ]


def test_a_rogue_app_from_a_plain_dict_feed_entry_is_critical_even_with_benign_scopes() -> None:
    rec = consent_record(ALICE, app_id=ROGUE_DICT.upper(), app_name="PerfectData Software", scopes="User.Read openid")
    got = run([rec])
    assert [(a["severity"], a["summary"], a["context"]["rogue_app"]) for a in got] == [
        (
            "critical",
            f"{ALICE} gave consent to 'PerfectData Software': no risky scopes; listed in RogueApps (exfiltration)",
            {
                "display_name": "PerfectData Software",
                "publisher": "PERFECTDATA",
                "tags": ["exfiltration"],
                "date_added": None,
            },
        )
    ]


@pytest.mark.parametrize(
    ("kwargs", "severity", "who", "text", "risky", "cats", "over"),
    [
        pytest.param(
            {"scopes": "Mail.ReadWrite offline_access User.Read"},
            "high",
            "consent",
            "Mail.ReadWrite offline_access",
            ["Mail.ReadWrite"],
            ["mail"],
            {"offline_access": True},
            id="user-mail-readwrite-offline",
        ),
        pytest.param(
            {"scopes": "Files.Read.All"},
            "medium",
            "consent",
            "Files.Read.All",
            ["Files.Read.All"],
            ["files"],
            {},
            id="user-files-read",
        ),
        pytest.param(
            {"scopes": "Mail.Read", "admin": True, "all_principals": True},
            "high",
            "admin consent for the whole tenant",
            "Mail.Read",
            ["Mail.Read"],
            ["mail"],
            {"consent_type": "AllPrincipals", "is_admin_consent": True, "on_behalf_of_all": True},
            id="tenant-wide-mail-read",
        ),
        pytest.param(
            {"scopes": "RoleManagement.ReadWrite.Directory Directory.Read.All", "admin": True, "all_principals": True},
            "critical",
            "admin consent for the whole tenant",
            "RoleManagement.ReadWrite.Directory Directory.Read.All",
            ["RoleManagement.ReadWrite.Directory", "Directory.Read.All"],
            ["directory", "role_management"],
            {"consent_type": "AllPrincipals", "is_admin_consent": True, "on_behalf_of_all": True},
            id="tenant-wide-role-management",
        ),
    ],
)
def test_risky_scopes(
    kwargs: dict[str, Any], severity: str, who: str, text: str, risky: list[str], cats: list[str], over: dict[str, Any]
) -> None:
    upn = ADMIN if kwargs.get("admin") else ALICE
    rec = consent_record(upn, app_id=APP, app_name="Mail Helper", **kwargs)
    scopes = kwargs["scopes"].split()
    assert run([rec]) == [
        expected_alert(
            AppRiskyConsent,
            records=[rec],
            severity=severity,
            summary=f"{upn} gave {who} to 'Mail Helper': {text}",
            dedup_key=f"{oid_of(upn)}|{APP}",
            ip=None,
            context=ctx(rec, APP, "Mail Helper", scopes, risky, cats, **over),
        )
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            consent_record(ALICE, app_id=APP, app_name="Zoom", scopes="User.Read openid profile email offline_access"),
            id="benign-user-read",
        ),
        pytest.param(
            consent_record(
                ALICE,
                app_id=APP,
                app_name="Mail Helper",
                scopes="Mail.Read User.Read",
                old_grants="[[Id: abc, ClientId: x, PrincipalId: y, ResourceId: z, ConsentType: Principal, Scope: Mail.Read]]",
            ),
            id="re-consent-adding-only-user-read",
        ),
        pytest.param(
            {
                **consent_record(ALICE, app_id=APP, app_name="Mail Helper", scopes="Mail.ReadWrite"),
                "ResultStatus": "Failure",
            },
            id="failed-consent",
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
