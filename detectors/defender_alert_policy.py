"""Microsoft's own alerts in the audit log, mapped to the user and to this product's categories.

The default alert policies of the Microsoft Defender portal (and Defender for Cloud Apps alerts) are written to
the unified audit log as ``AlertTriggered`` / ``AlertEntityGenerated`` records (Security and Compliance Alerts
schema). Those that speak of an account takeover are relayed as findings about the user the alert names, with
the category and severity of `POLICIES` (mail-flow restrictions mean the account sent spam or phishing:
credential compromise; forwarding alerts: shadow workflow; unusual sharing: exfiltration...), so they join the
user's incident. A risky sign-in of the same user within a day raises a relayed alert one step. Alerts of other
policies (malware campaigns, delayed messages...), status updates (``AlertUpdated``) and alerts no longer active
are not relayed. One finding per Microsoft alert and user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note
from shared.detection.signals import recent_risky_signin
from shared.records.alerts import security_alert_of
from shared.records.event import Event

RELAYED_OPS = frozenset({"alerttriggered", "alertentitygenerated"})
INACTIVE = frozenset({"resolved", "dismissed"})
RISK_WINDOW_S = 24 * 3600

POLICIES: Mapping[str, tuple[Category, Severity]] = {
    # Mail flow: Exchange Online Protection restricted or flagged the account's sending.
    "user restricted from sending email": (Category.CREDENTIAL_COMPROMISE, Severity.HIGH),
    "user restricted from sharing forms and collecting responses": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "suspicious email sending patterns detected": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "email sending limit exceeded": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "tenant restricted from sending email": (Category.CREDENTIAL_COMPROMISE, Severity.HIGH),
    "tenant restricted from sending unprovisioned email": (Category.CREDENTIAL_COMPROMISE, Severity.HIGH),
    "suspicious tenant sending patterns observed": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "a potentially malicious url click was detected": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "form blocked due to potential phishing attempt": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    "form flagged and confirmed phishing": (Category.CREDENTIAL_COMPROMISE, Severity.MEDIUM),
    # Forwarding and connectors.
    "creation of forwarding/redirect rule": (Category.SHADOW_WORKFLOW, Severity.MEDIUM),
    "suspicious email forwarding activity": (Category.SHADOW_WORKFLOW, Severity.HIGH),
    "suspicious connector activity": (Category.SHADOW_WORKFLOW, Severity.HIGH),
    "suspicious inbox manipulation rule": (Category.SHADOW_WORKFLOW, Severity.HIGH),
    "suspicious inbox forwarding": (Category.SHADOW_WORKFLOW, Severity.HIGH),
    # Data.
    "ediscovery search started or exported": (Category.DATA_EXFILTRATION, Severity.MEDIUM),
    "unusual external user file activity": (Category.DATA_EXFILTRATION, Severity.MEDIUM),
    "unusual volume of external file sharing": (Category.DATA_EXFILTRATION, Severity.MEDIUM),
    "mass download by a single user": (Category.DATA_EXFILTRATION, Severity.MEDIUM),
    "unusual volume of file deletion": (Category.DEFENSE_EVASION, Severity.MEDIUM),
    # Privilege and sign-in (Defender for Cloud Apps).
    "elevation of exchange admin privilege": (Category.PRIVILEGE_CHANGE, Severity.MEDIUM),
    "impossible travel activity": (Category.UNWANTED_LOGIN, Severity.MEDIUM),
    "activity from anonymous ip addresses": (Category.UNWANTED_LOGIN, Severity.MEDIUM),
}


class DefenderAlertPolicy(Detector):
    meta = DetectorMeta(
        id="defender_alert_policy",
        title="Microsoft alert about a user",
        description=(
            "A Microsoft Defender alert policy fired for a user (restricted from sending email, suspicious sending, "
            "forwarding rules, unusual sharing...), read from the AlertTriggered / AlertEntityGenerated records of "
            "the audit log and folded into the user's incident."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1114.003", "T1534"),
        dedup_window=timedelta(hours=24),
        needs=(Need.GENERAL, Need.RISKY_SIGNIN),
        operations=RELAYED_OPS,
        runbook=(
            "1. Open the alert in the Microsoft Defender portal (Alerts, search the alert id) and read its evidence. "
            "2. For sending restrictions: check the user's recent sent items, inbox rules and sign-ins, then release "
            "the user under Restricted entities only after the account is secured. 3. For forwarding or sharing "
            "alerts: remove the rule or links, revoke sessions and reset the password if the user did not make them."
        ),
        reference="https://learn.microsoft.com/en-us/defender-office-365/alert-policies-defender-portal",
        false_positives=("bulk senders (newsletters, ticket systems) hitting sending limits",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        alert = security_alert_of(event)
        if alert is None or alert.status.lower() in INACTIVE:
            return ()
        policy = POLICIES.get(alert.name.lower().rstrip("."))
        if policy is None:
            return ()
        category, severity = policy
        mark = recent_risky_signin(ctx, event, within_s=RISK_WINDOW_S) if event.user_key else None
        risk = {"source": "risky_signin", **mark} if mark is not None else None
        severity = raise_for_risk(severity, risk)
        who = alert.subject or "the tenant"
        return (
            self.finding(
                event,
                summary=f"Microsoft alert '{alert.name}' ({alert.severity or 'no severity'}) for {who}"
                + risk_note(risk),
                severity=severity,
                category=category,
                dedup_key=f"{alert.alert_id or alert.name.lower()}|{alert.subject or 'tenant'}",
                context={
                    "alert_id": alert.alert_id or None,
                    "alert_name": alert.name,
                    "microsoft_severity": alert.severity or None,
                    "microsoft_category": alert.category or None,
                    "source": alert.source or None,
                    "entity_type": alert.entity_type or None,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
