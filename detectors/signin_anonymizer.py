"""A successful sign-in through Tor, a proxy or an anonymous VPN: how stolen passwords and tokens are used.

Severity by kind: Tor, residential proxies and public proxies are HIGH (a normal employee has no reason
to use them, and residential/callback proxies are the tool of AiTM and token-replay crews); a commercial
VPN is MEDIUM (privacy VPNs are common on personal devices). A VPN sign-in from a country the learned
user never used is HIGH; a VPN on an ASN the user has used for more than a week (at least three earlier
sign-ins) is LOW. A tenant trusted range is never anonymous, and Apple iCloud Private Relay is not an
anonymiser alert (it keeps the user's region and Microsoft does not flag it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    DAY_S,
    OP_SIGNIN_SUCCESS,
    home_country,
    is_successful_signin,
    observe_signin,
    signin_context,
)
from shared.detection.geo import ANONYMIZER_LABELS, anonymizer_kind
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

KIND_SEVERITY: dict[str, Severity] = {
    "tor": Severity.HIGH,
    "residential_proxy": Severity.HIGH,
    "public_proxy": Severity.HIGH,
    "vpn": Severity.MEDIUM,
}
HABITUAL_SIGNINS = 3
HABITUAL_AGE_S = 7 * DAY_S


class SigninAnonymizer(Detector):
    meta = DetectorMeta(
        id="signin_anonymizer",
        title="Sign-in through an anonymiser (VPN, Tor or proxy)",
        description=(
            "A user signed in successfully through a Tor exit node, a residential or public proxy, or an anonymous "
            "VPN. Attackers replaying stolen passwords or session tokens hide behind these services; Entra ID "
            "Protection's 'anonymous IP address' detection covers the same ground for P2 tenants only."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.HIGH,
        mitre=("T1078.004", "T1090.003"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Ask the user (out of band, not by mail) whether they use this VPN or proxy; a Tor or residential proxy "
            "sign-in is almost never the user. 2. List the user's sign-ins of the last 7 days: a new country, ASN, "
            "OS or browser at the same time points to takeover. 3. Check what the session did afterwards: inbox "
            "rules, forwarding, consent grants, MFA method changes, mass mail access. 4. If not the user: revoke "
            "sessions (revokeSignInSessions), reset the password, review MFA methods, and block the address with a "
            "Conditional Access named location. 5. If it is a sanctioned corporate VPN, add its egress ranges to the "
            "tenant's trusted ranges."
        ),
        reference="https://learn.microsoft.com/en-us/entra/id-protection/concept-identity-protection-risks",
        false_positives=(
            "users running a personal privacy VPN (downgraded once habitual)",
            "a corporate VPN whose ranges are not yet listed as trusted",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None:
            return ()
        view = observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        kind = anonymizer_kind(info)
        if info is None or kind is None or ctx.tenant.is_trusted_ip(event.ip) or info.is_microsoft_service:
            return ()
        severity = KIND_SEVERITY.get(kind, Severity.HIGH)
        country = view.attributes.get("country")
        new_country = view.new_country(home_country(ctx.tenant, event))
        asn_seen = view.prior.get("asn")
        habitual = (
            kind == "vpn"
            and asn_seen is not None
            and asn_seen.count >= HABITUAL_SIGNINS
            and event.time - asn_seen.first_seen >= HABITUAL_AGE_S
        )
        reasons = [kind]
        if new_country:
            severity = Severity.HIGH
            reasons.append("new_country")
        elif habitual:
            severity = Severity.LOW
            reasons.append("habitual_vpn")
        mark_risky_signin(ctx, event, kind)
        label = ANONYMIZER_LABELS.get(kind, kind)
        operator = info.vpn_operator
        where = country or "an unknown country"
        via = f"{label} ({operator})" if operator else label
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in through {via} from {where} ({event.ip})",
                severity=severity,
                dedup_key=f"{event.user_key}|{kind}",
                context={
                    **signin_context(event),
                    "anonymizer": kind,
                    "vpn_operator": operator,
                    "new_country": new_country,
                    "habitual": habitual,
                    "reasons": reasons,
                },
            ),
        )
