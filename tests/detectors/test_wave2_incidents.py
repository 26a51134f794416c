"""Issue #20 wave 2: the new detectors' alerts fold into the user's incident after the risky sign-in.

A sign-in from adversary infrastructure, then (same session) an Exchange role-group grant and a mail-security
change: one incident for the user, told sign-in → privilege → defence evasion, raised to critical (three attack
stages). Every category a detector declares maps to an incident stage.
"""

from __future__ import annotations

from records import TEST_TENANT, at, epoch, exchange_cmdlet, identity_enricher, ip_info, oid_of, signin

from detectors import ALL_DETECTORS
from detectors.defense_mail_security_tampering import DefenseMailSecurityTampering
from detectors.privilege_role_group_member import PrivilegeRoleGroupMember
from detectors.signin_adversary_infrastructure import SigninAdversaryInfrastructure
from shared.alert_model import Severity
from shared.alerts.incidents import STAGE_OF, InMemoryIncidentBook, Stage
from shared.detection.testing import run_detector
from shared.tenant_config import TenantConfig

ADMIN = "it.admin@contoso.com"
STARK_IP = "45.80.208.9"
STARK = ip_info(STARK_IP, country="NL", asn=44477, asn_org="STARK INDUSTRIES SOLUTIONS LTD", is_hosting=True)


def test_every_declared_category_has_a_stage() -> None:
    assert {cls.meta.category for cls in ALL_DETECTORS} <= set(STAGE_OF)


def test_wave_two_alerts_join_the_users_incident_after_the_risky_sign_in() -> None:
    login = signin(ADMIN, when=at(minutes=0), ip=STARK_IP)
    grant = exchange_cmdlet(
        "Add-RoleGroupMember",
        {"Identity": "Organization Management", "Member": "mallory@contoso.com"},
        ADMIN,
        when=at(minutes=10),
        ip=STARK_IP,
    )
    scl = exchange_cmdlet(
        "New-TransportRule",
        {"Name": "Partner mail", "SenderDomainIs": "evil-invoices.com", "SetSCL": "-1"},
        ADMIN,
        when=at(minutes=12),
        ip=STARK_IP,
    )
    got = run_detector(
        [SigninAdversaryInfrastructure, PrivilegeRoleGroupMember, DefenseMailSecurityTampering],
        [login, grant, scl],
        tenant=TenantConfig(tenant_id=TEST_TENANT),
        enricher=identity_enricher({STARK_IP: STARK}),
    )
    assert {(a.detector, a.severity) for a in got.alerts} == {
        ("signin_adversary_infrastructure", Severity.HIGH),
        ("privilege_role_group_member", Severity.CRITICAL),
        ("defense_mail_security_tampering", Severity.CRITICAL),
    }
    book = InMemoryIncidentBook(now=lambda: epoch(at(hours=1)))
    incidents = book.add_alerts(got.alerts)
    assert len(incidents) == 1
    inc = incidents[0]
    assert inc.user_key == oid_of(ADMIN)
    assert inc.stages == [Stage.SIGN_IN, Stage.CONSENT, Stage.DEFENSE_EVASION]
    assert inc.severity is Severity.CRITICAL
