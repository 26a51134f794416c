"""Identity and access policies weakened: Conditional Access, security defaults, trusted locations, Temporary
Access Passes.

Read from Entra directory records (RecordType 8) of the unified audit log:

* "Delete conditional access policy." (high); "Update conditional access policy." whose
  ``ModifiedProperties`` show the policy's ``state`` going from enabled to ``disabled`` (high) or to
  ``enabledForReportingButNotEnforced`` (report-only: medium);
* security defaults turned off: "Update policy." (or "Disable security defaults") about the security
  defaults policy with ``isEnabled`` now false (high);
* named locations added or changed ("Add named location." / "Update named location."): marked trusted, from
  ranges the actor is not in, medium; any other named location (an administrator adding the office they sit
  in, an untrusted location) only after a risky sign-in of the actor (low raised to medium); MFA trusted IPs (a ``ModifiedProperties`` entry naming the MFA trusted-IP list) medium;
* a Temporary Access Pass issued to a user ("Admin registered security info" whose text names the temporary
  access pass) medium: a sign-in credential an admin account can mint for any user.

A risky sign-in of the actor shortly before (or a risky address) raises each one step. The security-defaults and
trusted-IP record shapes are taken from the Microsoft Graph policy resources and the audit activity reference,
not from a captured live record.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

CA_DELETE = "delete conditional access policy"
CA_UPDATE = "update conditional access policy"
POLICY_UPDATE = "update policy"
SD_DISABLE = "disable security defaults"
NAMED_LOCATION_OPS = frozenset({"add named location", "update named location"})
TAP_OPS = frozenset({"admin registered security info", "admin updated security info"})
OFF_STATES = {"disabled": "disabled", "enabledforreportingbutnotenforced": "report_only"}
_STATE = re.compile(r'"state"\s*:\s*"([A-Za-z]+)"', re.I)
_NAME = re.compile(r'"displayName"\s*:\s*"([^"]{1,200})"', re.I)
_CIDR = re.compile(r'"cidrAddress"\s*:\s*"([0-9A-Fa-f:.]+/\d{1,3})"', re.I)
_TRUSTED = re.compile(r'"isTrusted"\s*:\s*true', re.I)
_SD_ENABLED = re.compile(r'"isEnabled"\s*:\s*(true|false)', re.I)
BASE = {
    "ca_deleted": Severity.HIGH,
    "ca_disabled": Severity.HIGH,
    "ca_report_only": Severity.MEDIUM,
    "security_defaults_disabled": Severity.HIGH,
    "trusted_location_added": Severity.MEDIUM,
    "named_location_changed": Severity.LOW,
    "mfa_trusted_ips_changed": Severity.MEDIUM,
    "temporary_access_pass": Severity.MEDIUM,
}


def _policy_name(event: Event, text: str) -> str:
    m = _NAME.search(text)
    if m:
        return m.group(1)
    for t in event.targets:
        ident = (t.ID or "").strip()
        if ident and not re.fullmatch(r"[0-9a-fA-F-]{36}", ident) and "_" not in ident and ident.lower() != "policy":
            return ident
    return (event.record.ObjectId or "").strip() or "(unnamed)"


def _state(text: str) -> str | None:
    m = _STATE.search(text)
    return m.group(1).lower() if m else None


def _inside(ip: str | None, cidrs: list[str]) -> bool:
    if not ip:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for c in cidrs:
        try:
            if addr in ipaddress.ip_network(c, strict=False):
                return True
        except ValueError:
            continue
    return False


def _all_text(event: Event) -> str:
    parts = [v for pair in event.modified_properties.values() for v in pair]
    parts += list(event.extended_properties.values())
    return "\n".join(parts)


class DefenseIdentityPolicyTampering(Detector):
    meta = DetectorMeta(
        id="defense_identity_policy_tampering",
        title="Identity protection policy weakened",
        description=(
            "A Conditional Access policy was deleted, disabled or put in report-only mode, security defaults were "
            "turned off, a trusted named location or MFA trusted IP range was added, or a Temporary Access Pass was "
            "issued: the attacker removes the checks that would stop their sign-ins, or mints a credential."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.HIGH,
        mitre=("T1556.009", "T1562.001", "T1098"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({CA_DELETE, CA_UPDATE, POLICY_UPDATE, SD_DISABLE}) | NAMED_LOCATION_OPS | TAP_OPS,
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Open Entra ID > Conditional Access (policies, named locations) or the user's Authentication methods "
            "and compare with the alert. 2. Ask the identity team whether the change was planned; check the actor's "
            "sign-ins just before (VPN, hosting, new country). 3. If not: restore the policy (re-enable it, remove "
            "the trusted range, turn security defaults back on, delete the Temporary Access Pass), revoke the "
            "actor's sessions, reset their password, and review sign-ins that the weakened policy let through."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/monitoring-health/reference-audit-activities",
        false_positives=(
            "planned Conditional Access changes, usually first in report-only mode",
            "new office ranges added as named locations by the identity team",
            "Temporary Access Passes issued by the help desk for onboarding or lost phones",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        got = self._judge(event)
        if got is None:
            return ()
        kind, target, details = got
        risk = risk_of(ctx, event)
        if kind == "named_location_changed" and risk is None:
            return ()  # an untrusted location, or the office the administrator sits in: the tenant's ordinary work
        severity = raise_for_risk(BASE[kind], risk)
        what = {
            "ca_deleted": "deleted Conditional Access policy",
            "ca_disabled": "disabled Conditional Access policy",
            "ca_report_only": "put Conditional Access policy in report-only mode:",
            "security_defaults_disabled": "turned off security defaults:",
            "trusted_location_added": "added a trusted named location",
            "named_location_changed": "added or changed named location",
            "mfa_trusted_ips_changed": "changed the MFA trusted IPs:",
            "temporary_access_pass": "issued a Temporary Access Pass to",
        }[kind]
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} {what} {target!r}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{kind}|{target.lower()}",
                context={
                    "change": kind,
                    "target": target,
                    "operation": event.record.Operation,
                    **details,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _judge(event: Event) -> tuple[str, str, dict[str, object]] | None:
        op = event.op
        mp = event.modified_properties
        if op == CA_DELETE:
            old = "\n".join(v[0] for v in mp.values())
            return "ca_deleted", _policy_name(event, old), {}
        if op == CA_UPDATE:
            old = "\n".join(v[0] for v in mp.values())
            new = "\n".join(v[1] for v in mp.values())
            before, after = _state(old), _state(new)
            if after in OFF_STATES and before != after and before not in ("disabled",):
                kind = "ca_disabled" if OFF_STATES[after] == "disabled" else "ca_report_only"
                return kind, _policy_name(event, new or old), {"state_before": before, "state_after": after}
            return None
        if op in (POLICY_UPDATE, SD_DISABLE):
            text = _all_text(event) + "\n" + "\n".join(t.ID or "" for t in event.targets)
            low = text.lower()
            if "securitydefaults" in low.replace(" ", ""):
                states = _SD_ENABLED.findall(text)
                if op == SD_DISABLE or (states and states[-1].lower() == "false"):
                    return "security_defaults_disabled", "Security Defaults", {}
                return None
            if any("trustedip" in name.replace(" ", "") for name in mp):
                return "mfa_trusted_ips_changed", "MFA trusted IPs", {}
            return None
        if op in NAMED_LOCATION_OPS:
            new = "\n".join(v[1] for v in mp.values())
            cidrs = _CIDR.findall(new)
            trusted = _TRUSTED.search(new) is not None
            name = _policy_name(event, new)
            details: dict[str, object] = {"ip_ranges": cidrs, "trusted": trusted}
            if trusted and not _inside(event.ip, cidrs):
                return "trusted_location_added", name, details
            return "named_location_changed", name, details
        text = _all_text(event).lower()
        if "temporary access pass" in text or "temporaryaccesspass" in text.replace(" ", ""):
            user = next((t.ID for t in event.targets if t.ID and "@" in t.ID), None)
            return "temporary_access_pass", (user or event.record.ObjectId or "a user").lower(), {}
        return None
