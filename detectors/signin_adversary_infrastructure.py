"""A successful sign-in from a network known for harbouring adversary workloads.

Some hosting providers are not merely "a datacenter": public reporting and sanctions document them as
bulletproof hosts with a high share of malicious activity (the curated list in
``shared/detection/adversary_asns.json``, each entry with its source). Nobody's employees work from them, and
unlike plain hosting (``signin_hosting_provider``, medium, quiet when the tenant uses the ASN) a sign-in from one
is high whatever the user's or tenant's history, and critical when the user had already signed in from a risky
place shortly before (a chain of anonymisers and bulletproof hosts). The ASN comes from the IP enrichment.
Tenant trusted ranges are never reported; the sign-in is remembered as risky for the user's later actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.adversary_infra import adversary_asn
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import OP_SIGNIN_SUCCESS, is_successful_signin, signin_context
from shared.detection.helpers import risk_context
from shared.detection.signals import RISK_MEMORY_S, RISK_SECTION, mark_risky_signin
from shared.records.event import Event


def _earlier_risky_signin(ctx: DetectionContext, event: Event) -> dict[str, Any] | None:
    """The latest risky sign-in of the user before this one (another detector may already have marked this one)."""
    for m in reversed(ctx.peek_state(event, RISK_SECTION).get("marks") or []):
        if m[3] != event.record_id and 0 <= event.time - float(m[0]) <= RISK_MEMORY_S:
            return {"source": "risky_signin", "time": float(m[0]), "ip": m[1], "reason": m[2], "record_id": m[3]}
    return None


class SigninAdversaryInfrastructure(Detector):
    meta = DetectorMeta(
        id="signin_adversary_infrastructure",
        title="Sign-in from known adversary infrastructure",
        description=(
            "A user signed in successfully from a network on the curated list of hosting providers documented as "
            "harbouring adversary workloads (bulletproof or sanctioned hosting, each entry with its public source)."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.HIGH,
        mitre=("T1078.004", "T1583.003"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.TENANT_CONFIG, Need.RISKY_SIGNIN),
        runbook=(
            "1. Read the alert's provider and source: the network is documented as bulletproof or sanctioned "
            "hosting. 2. Treat the session as an attacker's unless the user can show otherwise: revoke sessions, "
            "reset the password, review MFA methods, and check what the session did next (inbox rules, consent, "
            "MFA changes, mail and file access). 3. Block the ASN's ranges with a Conditional Access named location."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/07/12/from-cookie-theft-to-bec-attackers-use-aitm-phishing-sites-as-entry-point-to-further-financial-fraud/",
        false_positives=("a stale ASN entry after a provider changed hands (check the entry's source date)",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None or event.ip_info is None:
            return ()
        entry = adversary_asn(getattr(event.ip_info, "asn", None))
        if entry is None or ctx.tenant.is_trusted_ip(event.ip):
            return ()
        prior = _earlier_risky_signin(ctx, event)
        severity = Severity.CRITICAL if prior is not None else Severity.HIGH
        mark_risky_signin(ctx, event, "adversary_asn")
        summary = f"{event.user_display} signed in from {entry.provider} (AS{entry.asn}, {event.ip}), {entry.kind.replace('_', ' ')}"
        if prior is not None:
            summary += f", after a risky sign-in ({prior.get('reason')} from {prior.get('ip') or 'unknown address'})"
        return (
            self.finding(
                event,
                summary=summary,
                severity=severity,
                dedup_key=f"{event.user_key}|adversary_asn|{entry.asn}",
                context={
                    **signin_context(event),
                    "provider": entry.provider,
                    "kind": entry.kind,
                    "source": entry.source,
                    "source_url": entry.url,
                    "risk": risk_context(prior),
                },
            ),
        )
