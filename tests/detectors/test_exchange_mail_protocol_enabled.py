"""Set-CASMailbox enabling POP, IMAP, EWS, ActiveSync or MAPI.

Record shape: an Exchange admin record (RecordType 1) with ``Parameters`` as a Name/Value list as in
records.exchange_cmdlet (management-activity-api.md §10); parameter names from Microsoft's Set-CASMailbox
reference.
"""

from __future__ import annotations

from typing import Any

from records import (
    RISKY_IP,
    SYSTEM_ACCOUNT,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    oid_of,
    signin,
)

from detectors.exchange_mail_protocol_enabled import ExchangeMailProtocolEnabled
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, ExchangeMailProtocolEnabled],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_imap_and_pop_enabled_by_an_admin_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = exchange_cmdlet(
        "Set-CASMailbox",
        {"Identity": "ceo@contoso.com", "ImapEnabled": "True", "PopEnabled": "True"},
        ADMIN,
        when=at(minutes=12),
    )
    assert run([login, rec]) == [
        expected_alert(
            ExchangeMailProtocolEnabled,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} enabled POP, IMAP for ceo@contoso.com after a risky sign-in (vpn from {RISKY_IP})",
            dedup_key="ceo@contoso.com|imap,pop",
            ip=HOME,
            context={
                "mailbox": "ceo@contoso.com",
                "protocols": ["POP", "IMAP"],
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
    assert run([login, rec])[0]["user_key"] == oid_of(ADMIN)


def test_ordinary_activesync_for_a_new_phone_is_low_imap_alone_medium() -> None:
    phone = exchange_cmdlet("Set-CASMailbox", {"Identity": "bob@contoso.com", "ActiveSyncEnabled": "True"}, ADMIN)
    imap = exchange_cmdlet(
        "Set-CASMailbox", {"Identity": "scanner@contoso.com", "ImapEnabled": "True"}, ADMIN, when=at(minutes=5)
    )
    assert [(a["severity"], a["summary"]) for a in run([phone, imap])] == [
        ("low", f"{ADMIN} enabled ActiveSync for bob@contoso.com"),
        ("medium", f"{ADMIN} enabled IMAP for scanner@contoso.com"),
    ]


def test_disabling_protocols_and_system_changes_are_silent() -> None:
    off = exchange_cmdlet(
        "Set-CASMailbox", {"Identity": "bob@contoso.com", "PopEnabled": "False", "ImapEnabled": "False"}, ADMIN
    )
    system = exchange_cmdlet(
        "Set-CASMailbox", {"Identity": "bob@contoso.com", "EwsEnabled": "True"}, SYSTEM_ACCOUNT, user_id=SYSTEM_ACCOUNT
    )
    assert run([off, system]) == []
