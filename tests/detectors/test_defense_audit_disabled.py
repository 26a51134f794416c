"""Unified audit log, organisation and mailbox auditing turned off, and audit bypass."""

from __future__ import annotations

from typing import Any

import pytest
from records import SYSTEM_ACCOUNT, TEST_TENANT, exchange_cmdlet, expected_alert, identity_enricher

from detectors.defense_audit_disabled import DefenseAuditDisabled
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        DefenseAuditDisabled, records, tenant=TenantConfig(tenant_id=TEST_TENANT), enricher=identity_enricher()
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


@pytest.mark.parametrize(
    ("cmdlet", "params", "severity", "what", "target"),
    [
        pytest.param(
            "Set-AdminAuditLogConfig",
            {"UnifiedAuditLogIngestionEnabled": "False"},
            "critical",
            "turned off unified audit log ingestion",
            "the tenant",
            id="unified-audit-log-off",
        ),
        pytest.param(
            "Set-OrganizationConfig",
            {"AuditDisabled": "True"},
            "critical",
            "disabled mailbox auditing for the organisation",
            "the tenant",
            id="org-mailbox-auditing-off",
        ),
        pytest.param(
            "Set-Mailbox",
            {"Identity": "ceo@contoso.com", "AuditEnabled": "False"},
            "high",
            "disabled mailbox auditing on ceo@contoso.com",
            "ceo@contoso.com",
            id="mailbox-auditing-off",
        ),
        pytest.param(
            "Set-MailboxAuditBypassAssociation",
            {"Identity": "svc-backup@contoso.com", "AuditBypassEnabled": "True"},
            "high",
            "set svc-backup@contoso.com to bypass mailbox auditing",
            "svc-backup@contoso.com",
            id="audit-bypass",
        ),
    ],
)
def test_audit_disabled(cmdlet: str, params: dict[str, str], severity: str, what: str, target: str) -> None:
    rec = exchange_cmdlet(cmdlet, params, ADMIN, object_id="")
    assert run([rec]) == [
        expected_alert(
            DefenseAuditDisabled,
            records=[rec],
            severity=severity,
            summary=f"{ADMIN} {what}",
            dedup_key=f"{cmdlet.lower()}|{target}",
            user_key=ADMIN,
            ip=HOME,
            context={"cmdlet": cmdlet, "target": target, "risk": None},
        )
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            exchange_cmdlet("Set-AdminAuditLogConfig", {"UnifiedAuditLogIngestionEnabled": "True"}, ADMIN), id="on"
        ),
        pytest.param(
            exchange_cmdlet("Set-Mailbox", {"Identity": "ceo@contoso.com", "AuditEnabled": "True"}, ADMIN), id="mbx-on"
        ),
        pytest.param(
            exchange_cmdlet(
                "Set-Mailbox",
                {"Identity": "ceo@contoso.com", "AuditEnabled": "False"},
                SYSTEM_ACCOUNT,
                user_id=SYSTEM_ACCOUNT,
            ),
            id="exchange-system-account",
        ),
        pytest.param(
            exchange_cmdlet(
                "Set-AdminAuditLogConfig", {"UnifiedAuditLogIngestionEnabled": "False"}, ADMIN, result="False"
            ),
            id="failed",
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
