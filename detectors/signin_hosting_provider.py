"""A successful sign-in from a hosting or cloud provider that neither the user nor the tenant normally uses.

People sign in from homes, offices and phones; attackers from rented servers (AiTM proxies, password
spraying and token replay run on VPSs). Hosting is normal when the user has used that ASN for at least
three earlier sign-ins, or when at least five other users of the tenant use it (a company VPN or virtual
desktop hosted in Azure; see ``shared.detection.baseline.TenantPrevalence``). Microsoft's own service
endpoints, tenant trusted ranges and iCloud Private Relay are excluded, and an address that is also an
anonymiser is left to ``signin_anonymizer``.

Severity: MEDIUM; LOW when the user has used the ASN once or twice before; HIGH when the country is
also new for the (learned) user.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    OP_SIGNIN_SUCCESS,
    TenantPrevalence,
    home_country,
    is_successful_signin,
    observe_signin,
    signin_context,
)
from shared.detection.geo import anonymizer_kind, is_hosting, network_key
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

USER_NORMAL_SIGNINS = 3
"""Earlier sign-ins from the ASN after which hosting is this user's normal."""


class SigninHostingProvider(Detector):
    meta = DetectorMeta(
        id="signin_hosting_provider",
        title="Sign-in from an unusual hosting provider",
        description=(
            "A user signed in successfully from a datacenter or cloud provider address (AWS, Azure compute, "
            "DigitalOcean, OVH, M247...) on an ASN that neither this user nor the rest of the tenant normally "
            "uses. Adversary-in-the-middle phishing kits and token-replay tooling run on rented servers."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1583.003"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Look up the address and ASN (whois, the cloud provider's ranges): a VPS provider is not where people "
            "work. 2. Compare the user agent and application with the user's usual ones; python-requests, axios, "
            "Azure CLI or an unknown app from a VPS means tooling. 3. Check the session's actions after the sign-in "
            "(inbox rules, consent, MFA method changes, mail access). 4. If not sanctioned: revoke sessions, reset "
            "the password, review MFA methods and block the range with Conditional Access. 5. If it is a company "
            "service (VDI, VPN in a cloud), add its egress to the tenant's trusted ranges."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/07/12/from-cookie-theft-to-bec-attackers-use-aitm-phishing-sites-as-entry-point-to-further-financial-fraud/",
        false_positives=(
            "virtual desktops, company VPNs or proxies hosted in a cloud and not yet used by five users",
            "developers signing in from their own cloud machines",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None:
            return ()
        view = observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        if (
            info is None
            or not is_hosting(info)
            or anonymizer_kind(info) is not None
            or ctx.tenant.is_trusted_ip(event.ip)
        ):
            return ()
        asn = view.attributes.get("asn")
        prior = view.prior.get("asn")
        user_count = prior.count if prior is not None else 0
        if user_count >= USER_NORMAL_SIGNINS:
            return ()
        prevalence = TenantPrevalence.of(ctx)
        shared_asn = asn is not None and prevalence.is_shared("a", asn, now=event.time, excluding=event.user_key)
        shared_net = prevalence.is_shared("n", network_key(event.ip), now=event.time, excluding=event.user_key)
        if shared_asn or shared_net:
            return ()
        severity = Severity.MEDIUM
        reasons = ["hosting"]
        new_country = view.new_country(home_country(ctx.tenant, event))
        if user_count > 0:
            severity = Severity.LOW
            reasons.append("asn_used_before")
        elif new_country:
            severity = Severity.HIGH
            reasons.append("new_country")
        mark_risky_signin(ctx, event, "hosting")
        provider = info.cloud_provider or info.asn_org or "a hosting provider"
        where = view.attributes.get("country") or "an unknown country"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in from {provider} ({event.ip}, {where}), "
                f"a hosting network this user and tenant do not use",
                severity=severity,
                dedup_key=f"{event.user_key}|hosting|{asn or event.ip}",
                context={
                    **signin_context(event),
                    "cloud_provider": info.cloud_provider,
                    "cloud_service": info.cloud_service,
                    "user_asn_signins": user_count,
                    "tenant_asn_users": prevalence.users("a", asn, excluding=event.user_key),
                    "new_country": new_country,
                    "reasons": reasons,
                },
            ),
        )
