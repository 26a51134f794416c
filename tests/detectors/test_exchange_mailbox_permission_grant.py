"""FullAccess, SendAs and Default/Anonymous folder rights granted on mailboxes."""

from __future__ import annotations

from typing import Any

import pytest
from records import SYSTEM_ACCOUNT, TEST_TENANT, VPN_NL, exchange_cmdlet, expected_alert, identity_enricher

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


def test_plain_full_access_for_a_shared_mailbox_is_medium() -> None:
    rec = exchange_cmdlet(
        "Add-MailboxPermission",
        {"Identity": "support@contoso.com", "User": "bob@contoso.com", "AccessRights": "FullAccess"},
        ADMIN,
    )
    assert [(a["severity"], a["summary"]) for a in run([rec])] == [
        ("medium", f"{ADMIN} granted bob@contoso.com FullAccess on support@contoso.com")
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
