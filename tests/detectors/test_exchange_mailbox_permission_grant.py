"""FullAccess, SendAs and Default/Anonymous folder rights granted on mailboxes."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    RISKY_IP,
    SYSTEM_ACCOUNT,
    TEST_TENANT,
    VPN_NL,
    RiskySigninMarker,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    signin,
)

from detectors.exchange_mailbox_permission_grant import ExchangeMailboxPermissionGrant
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(ExchangeMailboxPermissionGrant, records, tenant=TENANT, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


CASES = [
    pytest.param(
        exchange_cmdlet(
            "Add-MailboxPermission",
            {
                "Identity": "ceo@contoso.com",
                "User": "mallory@contoso.com",
                "AccessRights": "FullAccess",
                "AutoMapping": "False",
            },
            ADMIN,
        ),
        HOME,
        "high",
        f"{ADMIN} granted mallory@contoso.com FullAccess on ceo@contoso.com (AutoMapping off: hidden from the "
        "grantee's Outlook)",
        "ceo@contoso.com|mallory@contoso.com|fullaccess",
        {
            "mailbox": "ceo@contoso.com",
            "grantee": "mallory@contoso.com",
            "permission": "FullAccess",
            "access_rights": ["FullAccess"],
            "reasons": ["AutoMapping off: hidden from the grantee's Outlook"],
            "risk": None,
        },
        id="full-access-hidden",
    ),
    pytest.param(
        exchange_cmdlet(
            "Add-RecipientPermission",
            {"Identity": "ceo@contoso.com", "Trustee": "helper@outlook.example", "AccessRights": "SendAs"},
            ADMIN,
            ip=VPN_NL,
            params_as_string=True,
        ),
        VPN_NL,
        "critical",
        f"{ADMIN} granted helper@outlook.example SendAs on ceo@contoso.com (grantee is outside the tenant) from a "
        "vpn address",
        "ceo@contoso.com|helper@outlook.example|sendas",
        {
            "mailbox": "ceo@contoso.com",
            "grantee": "helper@outlook.example",
            "permission": "SendAs",
            "access_rights": ["SendAs"],
            "reasons": ["grantee is outside the tenant"],
            "risk": {"source": "ip", "reason": "vpn", "ip": VPN_NL},
        },
        id="send-as-external-from-vpn",
    ),
    pytest.param(
        exchange_cmdlet(
            "Add-MailboxFolderPermission",
            {"Identity": "ceo@contoso.com:\\Inbox", "User": "Default", "AccessRights": "Reviewer"},
            ADMIN,
        ),
        HOME,
        "high",
        f"{ADMIN} gave Default Reviewer on ceo@contoso.com:\\Inbox: every user can read this mailbox folder",
        "ceo@contoso.com|inbox|default",
        {
            "mailbox": "ceo@contoso.com",
            "folder": "\\Inbox",
            "grantee": "Default",
            "permission": "FolderPermission",
            "access_rights": ["Reviewer"],
            "reasons": [],
            "risk": None,
        },
        id="default-reviewer-on-inbox",
    ),
    pytest.param(
        exchange_cmdlet(
            "Set-MailboxFolderPermission",
            {"Identity": "ceo@contoso.com:\\", "User": "Anonymous", "AccessRights": "ReadItems"},
            ADMIN,
        ),
        HOME,
        "high",
        f"{ADMIN} gave Anonymous ReadItems on ceo@contoso.com:\\: every user can read this mailbox folder without "
        "signing in",
        "ceo@contoso.com||anonymous",
        {
            "mailbox": "ceo@contoso.com",
            "folder": "\\",
            "grantee": "Anonymous",
            "permission": "FolderPermission",
            "access_rights": ["ReadItems"],
            "reasons": [],
            "risk": None,
        },
        id="anonymous-on-top-of-mailbox",
    ),
]


@pytest.mark.parametrize(("record", "ip", "severity", "summary", "dedup", "context"), CASES)
def test_grants(
    record: dict[str, Any], ip: str, severity: str, summary: str, dedup: str, context: dict[str, Any]
) -> None:
    assert run([record]) == [
        expected_alert(
            ExchangeMailboxPermissionGrant,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=dedup,
            user_key=ADMIN,
            ip=ip,
            context=context,
        )
    ]


def test_plain_full_access_for_a_shared_mailbox_inside_the_tenant_is_not_reported() -> None:
    """Tenant-aware: a delegation to a colleague (an assistant, a shared mailbox's team) without a risk signal."""
    rec = exchange_cmdlet(
        "Add-MailboxPermission",
        {"Identity": "support@contoso.com", "User": "bob@contoso.com", "AccessRights": "FullAccess"},
        ADMIN,
    )
    send_as = exchange_cmdlet(
        "Add-RecipientPermission",
        {"Identity": "ceo@contoso.com", "Trustee": "assistant@contoso.com", "AccessRights": "SendAs"},
        ADMIN,
        seq=1,
    )
    on_behalf = exchange_cmdlet(
        "Set-Mailbox", {"Identity": "ceo@contoso.com", "GrantSendOnBehalfTo": "assistant@contoso.com"}, ADMIN, seq=2
    )
    assert run([rec, send_as, on_behalf]) == []


def test_an_admin_giving_themselves_full_access_is_still_medium() -> None:
    rec = exchange_cmdlet(
        "Add-MailboxPermission",
        {"Identity": "ceo@contoso.com", "User": ADMIN, "AccessRights": "FullAccess"},
        ADMIN,
    )
    assert [(a["severity"], a["summary"]) for a in run([rec])] == [
        ("medium", f"{ADMIN} granted {ADMIN} FullAccess on ceo@contoso.com")
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            exchange_cmdlet(
                "Add-MailboxFolderPermission",
                {"Identity": "ceo@contoso.com:\\Calendar", "User": "Default", "AccessRights": "Reviewer"},
                ADMIN,
            ),
            id="calendar-sharing",
        ),
        pytest.param(
            exchange_cmdlet(
                "Set-MailboxFolderPermission",
                {"Identity": "ceo@contoso.com:\\Inbox", "User": "Default", "AccessRights": "None"},
                ADMIN,
            ),
            id="rights-removed",
        ),
        pytest.param(
            exchange_cmdlet(
                "Add-MailboxPermission",
                {"Identity": "ceo@contoso.com", "User": "bob@contoso.com", "AccessRights": "ReadPermission"},
                ADMIN,
            ),
            id="not-full-access",
        ),
        pytest.param(
            exchange_cmdlet(
                "Add-MailboxPermission",
                {"Identity": "ceo@contoso.com", "User": "NT AUTHORITY\\SELF", "AccessRights": "FullAccess"},
                SYSTEM_ACCOUNT,
                user_id=SYSTEM_ACCOUNT,
            ),
            id="system-account",
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []


# Named-user folder rights and SendOnBehalf (issue #20, item 7). Parameter names from Microsoft's
# Add-MailboxFolderPermission and Set-Mailbox references; record shape as records.exchange_cmdlet.
ALICE = "alice@contoso.com"


def run_after_risk(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExchangeMailboxPermissionGrant], records, tenant=TENANT, enricher=identity_enricher()
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_inbox_shared_with_an_outsider_from_a_taken_over_account_is_critical() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    grant = exchange_cmdlet(
        "Add-MailboxFolderPermission",
        {"Identity": f"{ALICE}:\\Inbox", "User": "collector@proton.me", "AccessRights": "Reviewer"},
        ALICE,
        when=at(minutes=7),
    )
    assert run_after_risk([login, grant]) == [
        expected_alert(
            ExchangeMailboxPermissionGrant,
            records=[grant],
            severity="critical",
            summary=f"{ALICE} gave collector@proton.me Reviewer on {ALICE}:\\Inbox (grantee is outside the tenant) "
            f"after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key=f"{ALICE}|inbox|collector@proton.me",
            ip=HOME,
            context={
                "mailbox": ALICE,
                "folder": "\\Inbox",
                "grantee": "collector@proton.me",
                "permission": "FolderPermission",
                "access_rights": ["Reviewer"],
                "reasons": ["grantee is outside the tenant"],
                "risk": {
                    "source": "risky_signin",
                    "reason": "vpn",
                    "ip": RISKY_IP,
                    "time": 1714550400.0,
                    "record_id": login["Id"],
                },
            },
        )
    ]


def test_ordinary_assistant_given_the_inbox_is_low_and_calendar_or_self_is_silent() -> None:
    assistant = exchange_cmdlet(
        "Add-MailboxFolderPermission",
        {"Identity": "ceo@contoso.com:\\Inbox", "User": "assistant@contoso.com", "AccessRights": "Editor"},
        ADMIN,
    )
    assert [(a["severity"], a["summary"]) for a in run([assistant])] == [
        ("low", f"{ADMIN} gave assistant@contoso.com Editor on ceo@contoso.com:\\Inbox")
    ]
    calendar = exchange_cmdlet(
        "Add-MailboxFolderPermission",
        {"Identity": "ceo@contoso.com:\\Calendar", "User": "assistant@contoso.com", "AccessRights": "Editor"},
        ADMIN,
    )
    availability = exchange_cmdlet(
        "Set-MailboxFolderPermission",
        {"Identity": "ceo@contoso.com:\\Inbox", "User": "bob@contoso.com", "AccessRights": "None"},
        ADMIN,
    )
    assert run([calendar, availability]) == []


def test_send_on_behalf_granted_after_a_risky_sign_in_is_high_and_cleared_is_silent() -> None:
    login = signin(ALICE, when=at(minutes=0), ip=RISKY_IP)
    grant = exchange_cmdlet(
        "Set-Mailbox", {"Identity": ALICE, "GrantSendOnBehalfTo": "mallory@contoso.com"}, ALICE, when=at(minutes=3)
    )
    got = run_after_risk([login, grant])
    assert [(a["severity"], a["summary"], a["dedup_key"]) for a in got] == [
        (
            "high",
            f"{ALICE} granted mallory@contoso.com SendOnBehalf on {ALICE} after a risky sign-in (vpn from {RISKY_IP})",
            f"{ALICE}|mallory@contoso.com|sendonbehalf",
        )
    ]
    cleared = exchange_cmdlet("Set-Mailbox", {"Identity": ALICE, "GrantSendOnBehalfTo": "$null"}, ADMIN)
    forwarding_only = exchange_cmdlet(
        "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:x@y.example"}, ADMIN
    )
    assert run([cleared, forwarding_only]) == []
