"""The registry of detectors: an explicit list, guarded by tests/detectors/test_registry.py.

Each entry is one module of this package whose file name equals the detector's id.
"""

from __future__ import annotations

from detectors.app_credential_added import AppCredentialAdded
from detectors.app_persistence_change import AppPersistenceChange
from detectors.app_privileged_role_assignment import AppPrivilegedRoleAssignment
from detectors.app_risky_consent import AppRiskyConsent
from detectors.defender_alert_policy import DefenderAlertPolicy
from detectors.defense_audit_disabled import DefenseAuditDisabled
from detectors.defense_device_registration import DefenseDeviceRegistration
from detectors.defense_identity_policy_tampering import DefenseIdentityPolicyTampering
from detectors.defense_mail_deletion import DefenseMailDeletion
from detectors.defense_mail_security_tampering import DefenseMailSecurityTampering
from detectors.defense_mfa_method_change import DefenseMfaMethodChange
from detectors.evasive_attack_tool_user_agent import EvasiveAttackToolUserAgent
from detectors.evasive_legacy_or_ropc_signin import EvasiveLegacyOrRopcSignin
from detectors.evasive_mailbox_access_unusual_client import EvasiveMailboxAccessUnusualClient
from detectors.evasive_public_client_first_use import EvasivePublicClientFirstUse
from detectors.exchange_application_impersonation import ExchangeApplicationImpersonation
from detectors.exchange_forwarding_harvest import ExchangeForwardingHarvest
from detectors.exchange_mail_protocol_enabled import ExchangeMailProtocolEnabled
from detectors.exchange_mailbox_forwarding import ExchangeMailboxForwarding
from detectors.exchange_mailbox_permission_grant import ExchangeMailboxPermissionGrant
from detectors.exchange_suspicious_inbox_rule import ExchangeSuspiciousInboxRule
from detectors.exchange_transport_rule_forwarding import ExchangeTransportRuleForwarding
from detectors.exfil_app_mailbox_sweep import ExfilAppMailboxSweep
from detectors.exfil_ediscovery_export import ExfilEdiscoveryExport
from detectors.exfil_mass_file_download import ExfilMassFileDownload
from detectors.exfil_mass_mail_access import ExfilMassMailAccess
from detectors.exfil_sharing_burst import ExfilSharingBurst
from detectors.exfil_sync_new_client import ExfilSyncNewClient
from detectors.privilege_admin_role_grant import PrivilegeAdminRoleGrant
from detectors.privilege_domain_federation import PrivilegeDomainFederation
from detectors.privilege_guest_invitation_burst import PrivilegeGuestInvitationBurst
from detectors.privilege_pim_role_assignment import PrivilegePimRoleAssignment
from detectors.privilege_role_group_member import PrivilegeRoleGroupMember
from detectors.signin_adversary_infrastructure import SigninAdversaryInfrastructure
from detectors.signin_anonymizer import SigninAnonymizer
from detectors.signin_brute_force import SigninBruteForce
from detectors.signin_conditional_access_gap import SigninConditionalAccessGap
from detectors.signin_entra_risk import SigninEntraRisk
from detectors.signin_geo_allowlist import SigninGeoAllowlist
from detectors.signin_hosting_provider import SigninHostingProvider
from detectors.signin_impossible_travel import SigninImpossibleTravel
from detectors.signin_legacy_auth_unblocked import SigninLegacyAuthUnblocked
from detectors.signin_mfa_failure import SigninMfaFailure
from detectors.signin_mfa_push_fatigue import SigninMfaPushFatigue
from detectors.signin_new_location import SigninNewLocation
from detectors.signin_password_spray import SigninPasswordSpray
from detectors.signin_session_replay import SigninSessionReplay
from detectors.signin_sp_new_network import SigninSpNewNetwork
from detectors.signin_unfamiliar_fingerprint import SigninUnfamiliarFingerprint
from detectors.teams_external_access_opened import TeamsExternalAccessOpened
from shared.detection.base import Detector, Registry

ALL_DETECTORS: tuple[type[Detector], ...] = (
    ExchangeSuspiciousInboxRule,
    ExchangeMailboxForwarding,
    ExchangeTransportRuleForwarding,
    ExchangeMailboxPermissionGrant,
    ExchangeApplicationImpersonation,
    EvasivePublicClientFirstUse,
    EvasiveMailboxAccessUnusualClient,
    EvasiveAttackToolUserAgent,
    EvasiveLegacyOrRopcSignin,
    AppRiskyConsent,
    AppCredentialAdded,
    AppPrivilegedRoleAssignment,
    DefenseAuditDisabled,
    DefenseMfaMethodChange,
    PrivilegeAdminRoleGrant,
    ExfilMassMailAccess,
    ExfilMassFileDownload,
    SigninAnonymizer,
    SigninHostingProvider,
    SigninNewLocation,
    SigninImpossibleTravel,
    SigninGeoAllowlist,
    SigninUnfamiliarFingerprint,
    SigninPasswordSpray,
    SigninBruteForce,
    SigninMfaFailure,
    # Detection wave 2, items 1-7 (issue #20)
    SigninSessionReplay,
    DefenseDeviceRegistration,
    ExfilSyncNewClient,
    ExfilSharingBurst,
    ExfilAppMailboxSweep,
    ExfilEdiscoveryExport,
    ExchangeMailProtocolEnabled,
    DefenseMailDeletion,
    DefenderAlertPolicy,
    # Detection wave 2, issue #20 items 8-15
    DefenseMailSecurityTampering,
    DefenseIdentityPolicyTampering,
    PrivilegeRoleGroupMember,
    PrivilegePimRoleAssignment,
    ExchangeForwardingHarvest,
    PrivilegeDomainFederation,
    AppPersistenceChange,
    SigninAdversaryInfrastructure,
    TeamsExternalAccessOpened,
    PrivilegeGuestInvitationBurst,
    # Entra sign-in logs as a second source (issue #23)
    SigninConditionalAccessGap,
    SigninMfaPushFatigue,
    SigninEntraRisk,
    SigninSpNewNetwork,
    SigninLegacyAuthUnblocked,
)


def default_registry() -> Registry:
    """A registry of every detector (validated on construction)."""
    return Registry(ALL_DETECTORS)
