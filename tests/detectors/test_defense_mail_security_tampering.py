"""Mail-security protections disabled, removed or bypassed (issue #20, item 11).

Records are ExchangeAdmin (RecordType 1) records in the documented shape (office-365-management-activity-api-schema,
"Exchange Admin schema": Parameters as Name/Value pairs); the cmdlets and their parameters are those of the
Exchange Online PowerShell reference (Disable-AntiPhishRule, Set-SafeLinksPolicy -EnableSafeLinksForEmail,
Set-DkimSigningConfig -Enabled, New-TransportRule -SetSCL, Set-HostedOutboundSpamFilterPolicy -AutoForwardingMode).
"""

from __future__ import annotations

from typing import Any

import pytest
from records import (
    RISKY_IP,
    TEST_TENANT,
    RiskySigninMarker,
    at,
    exchange_cmdlet,
    expected_alert,
    identity_enricher,
    signin,
)

from detectors.defense_mail_security_tampering import DefenseMailSecurityTampering
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
HOME = "198.51.100.10"  # exchange_cmdlet's default address (ClientIP carries it with a port)


def run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    got = run_detector(
        [RiskySigninMarker, DefenseMailSecurityTampering],
        records,
        tenant=TenantConfig(tenant_id=TEST_TENANT, internal_domains=["contoso.com"]),
        enricher=identity_enricher(),
    )
    assert got.quarantined == []
    return [a.to_dict() for a in got.alerts]


def test_anti_phishing_rule_disabled_after_a_risky_sign_in_is_critical() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=RISKY_IP)
    rec = exchange_cmdlet(
        "Disable-AntiPhishRule",
        {"Identity": "Standard Preset Security Policy", "Confirm": "False"},
        ADMIN,
        when=at(minutes=9),
        ip=RISKY_IP,
    )
    assert run([login, rec]) == [
        expected_alert(
            DefenseMailSecurityTampering,
            records=[rec],
            severity="critical",
            summary=f"{ADMIN} disabled anti-phishing rule 'Standard Preset Security Policy' after a risky sign-in "
            f"(vpn from {RISKY_IP})",
            dedup_key="disable-antiphishrule|standard preset security policy",
            ip=RISKY_IP,
            context={
                "change": "disabled",
                "object": "Standard Preset Security Policy",
                "operation": "Disable-AntiPhishRule",
                "settings": {},
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


@pytest.mark.parametrize(
    ("operation", "params", "severity", "summary", "change", "settings"),
    [
        pytest.param(
            "New-TransportRule",
            {"Name": "Partner mail", "SenderDomainIs": "evil-invoices.com", "SetSCL": "-1"},
            "high",
            f"{ADMIN} created a transport rule that sets SCL -1 (spam filtering bypassed): 'Partner mail'",
            "filter_bypass",
            {"setscl": "-1"},
            id="transport-rule-scl-minus-one",
        ),
        pytest.param(
            "Set-TransportRule",
            {
                "Identity": "Sim",
                "SetHeaderName": "X-MS-Exchange-Organization-SkipSafeLinksProcessing",
                "SetHeaderValue": "1",
                "Mode": "Audit",
            },
            "medium",
            f"{ADMIN} changed a transport rule that sets header X-MS-Exchange-Organization-SkipSafeLinksProcessing "
            "(filtering skipped): 'Sim'",
            "filter_bypass",
            {
                "setheadername": "X-MS-Exchange-Organization-SkipSafeLinksProcessing",
                "setheadervalue": "1",
                "mode": "Audit",
            },
            id="skip-safe-links-header-in-audit-mode",
        ),
        pytest.param(
            "Set-SafeLinksPolicy",
            {"Identity": "Built-In Protection Policy", "EnableSafeLinksForEmail": "False"},
            "high",
            f"{ADMIN} turned off Safe Links for email in 'Built-In Protection Policy'",
            "disabled",
            {"enablesafelinksforemail": "False"},
            id="safe-links-off",
        ),
        pytest.param(
            "Remove-SafeAttachmentPolicy",
            {"Identity": "Contoso Safe Attachments"},
            "high",
            f"{ADMIN} removed Safe Attachments policy 'Contoso Safe Attachments'",
            "removed",
            {},
            id="safe-attachments-removed",
        ),
        pytest.param(
            "Remove-MalwareFilterRule",
            {"Identity": "Contoso Malware"},
            "high",
            f"{ADMIN} removed malware filter rule 'Contoso Malware'",
            "removed",
            {},
            id="malware-filter-rule-removed",
        ),
        pytest.param(
            "Set-HostedOutboundSpamFilterPolicy",
            {"Identity": "Default", "AutoForwardingMode": "On"},
            "high",
            f"{ADMIN} allowed automatic external forwarding in outbound spam policy 'Default'",
            "disabled",
            {"autoforwardingmode": "On"},
            id="outbound-spam-forwarding-on",
        ),
        pytest.param(
            "Remove-DlpCompliancePolicy",
            {"Identity": "PCI DSS"},
            "high",
            f"{ADMIN} removed DLP policy 'PCI DSS'",
            "removed",
            {},
            id="dlp-policy-removed",
        ),
        pytest.param(
            "Set-DkimSigningConfig",
            {"Identity": "contoso.com", "Enabled": "False"},
            "medium",
            f"{ADMIN} turned off DKIM signing for 'contoso.com'",
            "disabled",
            {"enabled": "False"},
            id="dkim-off",
        ),
        pytest.param(
            "New-InboundConnector",
            {"Name": "Relay", "ConnectorType": "Partner", "SenderIPAddresses": "203.0.113.99"},
            "medium",
            f"{ADMIN} created inbound connector 'Relay'",
            "created",
            {"connectortype": "Partner", "senderipaddresses": "203.0.113.99"},
            id="new-inbound-connector",
        ),
    ],
)
def test_each_weakening_alerts(
    operation: str, params: dict[str, str], severity: str, summary: str, change: str, settings: dict[str, str]
) -> None:
    rec = exchange_cmdlet(operation, params, ADMIN)
    name = params.get("Identity") or params["Name"]
    assert run([rec]) == [
        expected_alert(
            DefenseMailSecurityTampering,
            records=[rec],
            severity=severity,
            summary=summary,
            dedup_key=f"{operation.lower()}|{name.lower()}",
            ip=HOME,
            user_key=ADMIN,  # no sign-in in the batch: the state key is the UPN
            context={"change": change, "object": name, "operation": operation, "settings": settings, "risk": None},
        )
    ]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        pytest.param("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": "True"}, id="dkim-enabled"),
        pytest.param(
            "New-TransportRule",
            {
                "Name": "External disclaimer",
                "SentToScope": "NotInOrganization",
                "ApplyHtmlDisclaimerText": "<p>Confidential</p>",
                "ApplyHtmlDisclaimerLocation": "Append",
            },
            id="normal-transport-rule",
        ),
        pytest.param(
            "Set-SafeLinksPolicy", {"Identity": "Contoso", "EnableSafeLinksForEmail": "True"}, id="safe-links-on"
        ),
        pytest.param(
            "Set-HostedOutboundSpamFilterPolicy", {"Identity": "Default", "AutoForwardingMode": "Off"}, id="fwd-off"
        ),
    ],
)
def test_ordinary_administration_does_not_alert(operation: str, params: dict[str, str]) -> None:
    assert run([exchange_cmdlet(operation, params, ADMIN)]) == []


def test_changes_by_the_exchange_system_account_are_ignored() -> None:
    rec = exchange_cmdlet(
        "Remove-AntiPhishRule",
        {"Identity": "Standard Preset Security Policy"},
        ADMIN,
        user_id="NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)",
    )
    assert run([rec]) == []


def test_the_scl_rule_reads_the_same_when_parameters_are_one_command_line() -> None:
    pairs = {"Name": "Partner mail", "SenderDomainIs": "evil-invoices.com", "SetSCL": "-1"}
    as_pairs = exchange_cmdlet("New-TransportRule", pairs, ADMIN)
    as_text = {**as_pairs, "Parameters": '-Name "Partner mail" -SenderDomainIs "evil-invoices.com" -SetSCL -1'}
    assert run([as_text]) == run([as_pairs]) != []
