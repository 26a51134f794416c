"""Mail-security controls turned off or routed around: the attacker clears the way for their own phishing.

Read from Exchange Online Protection and Security & Compliance cmdlets in the unified audit log (admin
records with ``Parameters``, in any shape ``Event.parameters`` reads):

* anti-phishing, Safe Links, Safe Attachments, malware filter and outbound spam policies or rules
  removed (``Remove-AntiPhishPolicy``, ``Remove-SafeLinksRule``...) or disabled (``Disable-MalwareFilterRule``,
  ``Set-SafeAttachmentPolicy -Enable $false``, ``Set-SafeLinksPolicy -EnableSafeLinksForEmail $false``);
* automatic external forwarding allowed (``Set-HostedOutboundSpamFilterPolicy -AutoForwardingMode On``);
* a DLP policy removed or switched off (``Remove-DlpCompliancePolicy``, ``Set-DlpCompliancePolicy -Mode Disable``);
* DKIM signing turned off (``Set-DkimSigningConfig -Enabled $false``), a new inbound connector
  (``New-InboundConnector``: mail from a server of the attacker's choice is trusted);
* transport rules that bypass filtering: ``SetSCL -1`` or a header that skips Safe Links / Safe Attachments
  processing (``X-MS-Exchange-Organization-SkipSafeLinksProcessing``...).

Removing or disabling a protection is high; DKIM off, a new inbound connector and a bypass rule in audit mode
are medium. A risky sign-in of the actor shortly before (or a risky address) raises each one step. Enabling
things (DKIM on, a policy switched on) and changes by the Exchange system account are not alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event
from shared.records.exchange import is_system_account

PROTECTIONS = {
    "antiphish": "anti-phishing",
    "safelinks": "Safe Links",
    "safeattachment": "Safe Attachments",
    "malwarefilter": "malware filter",
    "hostedoutboundspamfilter": "outbound spam",
    "dlpcompliance": "DLP",
}
REMOVE_OPS = {f"remove-{p}{kind}": (label, kind) for p, label in PROTECTIONS.items() for kind in ("policy", "rule")}
DISABLE_OPS = {f"disable-{p}rule": (label, "rule") for p, label in PROTECTIONS.items()}
FALSE = frozenset({"false", "$false", "0"})
SETTINGS_OFF: Mapping[str, tuple[str, str, frozenset[str], str]] = {
    # operation: (protection, parameter, values that switch it off, what that means)
    "set-antiphishpolicy": ("anti-phishing", "enabled", FALSE, "disabled anti-phishing policy"),
    "set-safelinkspolicy": ("Safe Links", "enablesafelinksforemail", FALSE, "turned off Safe Links for email in"),
    "set-safeattachmentpolicy": ("Safe Attachments", "enable", FALSE, "disabled Safe Attachments policy"),
    "set-hostedoutboundspamfilterpolicy": (
        "outbound spam",
        "autoforwardingmode",
        frozenset({"on"}),
        "allowed automatic external forwarding in outbound spam policy",
    ),
    "set-dlpcompliancepolicy": ("DLP", "mode", frozenset({"disable"}), "disabled DLP policy"),
}
DKIM_OP = "set-dkimsigningconfig"
CONNECTOR_OP = "new-inboundconnector"
TRANSPORT_OPS = frozenset({"new-transportrule", "set-transportrule"})
BYPASS_HEADERS = frozenset(
    {
        "x-ms-exchange-organization-skipsafelinksprocessing",
        "x-ms-exchange-organization-skipsafeattachmentprocessing",
        "x-ms-exchange-organization-bypassclutter",
    }
)


def _name(event: Event) -> str:
    p = event.parameters
    return p.get("identity") or p.get("name") or event.record.ObjectId or "(unnamed)"


def _transport_bypass(p: Mapping[str, str]) -> list[str]:
    reasons: list[str] = []
    if (p.get("setscl") or "").strip() == "-1":
        reasons.append("sets SCL -1 (spam filtering bypassed)")
    header = (p.get("setheadername") or "").strip().lower()
    if header in BYPASS_HEADERS:
        reasons.append(f"sets header {p.get('setheadername')} (filtering skipped)")
    return reasons


class DefenseMailSecurityTampering(Detector):
    meta = DetectorMeta(
        id="defense_mail_security_tampering",
        title="Mail-security protection disabled or bypassed",
        description=(
            "Anti-phishing, Safe Links, Safe Attachments, malware filter, outbound spam or DLP protection was removed "
            "or disabled, DKIM signing turned off, a new inbound connector created, automatic external forwarding "
            "allowed, or a transport rule set SCL -1 or a filter-skipping header: the attacker clears the way for "
            "their own mail."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.HIGH,
        mitre=("T1562.001", "T1562.008"),
        dedup_window=timedelta(hours=24),
        operations=frozenset(REMOVE_OPS)
        | frozenset(DISABLE_OPS)
        | frozenset(SETTINGS_OFF)
        | {DKIM_OP, CONNECTOR_OP}
        | TRANSPORT_OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.GENERAL, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open the named policy, rule, connector or transport rule in the Defender portal or with the matching "
            "Get- cmdlet (Get-AntiPhishRule, Get-TransportRule '<name>' | Format-List SetSCL,SetHeaderName,Conditions). "
            "2. Ask the mail administrators whether the change was planned (a migration, a phishing simulation "
            "vendor); check the actor's sign-ins in the hour before for VPN, hosting or a new country. 3. If not: "
            "restore the protection (Enable-...Rule, re-create the policy, Set-DkimSigningConfig -Enabled $true, "
            "remove the connector or rule), revoke the actor's sessions, reset the password, and search mail "
            "delivered since the change for phishing."
        ),
        reference="https://learn.microsoft.com/en-us/defender-office-365/secure-by-default",
        false_positives=(
            "a phishing-simulation or third-party mail filter that needs SCL -1 or skip headers (documented by "
            "its vendor)",
            "a mail migration or a change of mail filtering provider",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        got = self._judge(event)
        if got is None:
            return ()
        kind, what, severity, settings = got
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        name = _name(event)
        summary = f"{event.user_display} {what} {name!r}" + risk_note(risk)
        return (
            self.finding(
                event,
                summary=summary,
                severity=severity,
                dedup_key=f"{event.op}|{name.lower()}",
                context={
                    "change": kind,
                    "object": name,
                    "operation": event.record.Operation,
                    "settings": settings,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _judge(event: Event) -> tuple[str, str, Severity, dict[str, str]] | None:
        """(kind, what was done, base severity, the parameters that matter) or None when nothing was weakened."""
        op, p = event.op, event.parameters
        if op in REMOVE_OPS:
            label, kind = REMOVE_OPS[op]
            return "removed", f"removed {label} {kind}", Severity.HIGH, {}
        if op in DISABLE_OPS:
            label, kind = DISABLE_OPS[op]
            return "disabled", f"disabled {label} {kind}", Severity.HIGH, {}
        if op in SETTINGS_OFF:
            _, param, off, what = SETTINGS_OFF[op]
            value = p.get(param)
            if value is None or value.strip().lower() not in off:
                return None
            return "disabled", what, Severity.HIGH, {param: value}
        if op == DKIM_OP:
            value = p.get("enabled")
            if value is None or value.strip().lower() not in FALSE:
                return None
            return "disabled", "turned off DKIM signing for", Severity.MEDIUM, {"enabled": value}
        if op == CONNECTOR_OP:
            keys = ("connectortype", "senderdomains", "senderipaddresses", "requiretls", "restrictdomainstoipaddresses")
            return "created", "created inbound connector", Severity.MEDIUM, {k: p[k] for k in keys if k in p}
        reasons = _transport_bypass(p)
        if not reasons:
            return None
        mode = (p.get("mode") or "").strip().lower()
        inactive = mode in ("audit", "auditandnotify") or (p.get("enabled") or "").strip().lower() in FALSE
        verb = "created" if op == "new-transportrule" else "changed"
        settings = {k: p[k] for k in ("setscl", "setheadername", "setheadervalue", "mode", "enabled") if k in p}
        what = f"{verb} a transport rule that " + " and ".join(reasons) + ":"
        return "filter_bypass", what, Severity.MEDIUM if inactive else Severity.HIGH, settings
