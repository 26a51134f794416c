"""A successful sign-in from a country the tenant does not allow for this user.

Two modes:

* **Allowlist** (the tenant, one of the user's groups or the user has allowed countries): any successful
  sign-in from another country alerts, MEDIUM, HIGH when the address is also an anonymiser or a hosting
  provider or the country is new for the learned user. Unexpired travel exceptions
  (``TenantConfig.travel_exceptions``) and tenant trusted ranges are allowed.
* **Home country** (no allowlist, but onboarding seeded the user's home country from Entra
  ``usageLocation``): while the user is still learning (``signin_new_location`` is quiet then), the first
  sign-in from each country other than home alerts at LOW, MEDIUM through an anonymiser or hosting
  provider. This gives every user a baseline from day one; once learned, ``signin_new_location`` takes over.

No allowlist and no home country: nothing. A sign-in whose country is unknown is not judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    OP_SIGNIN_SUCCESS,
    home_country,
    is_successful_signin,
    observe_signin,
    signin_context,
)
from shared.detection.geo import anonymizer_kind, is_hosting
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event
from shared.tenant_config import TenantConfig


def allowed_countries(tenant: TenantConfig, event: Event, *, at: datetime | None) -> frozenset[str]:
    """Tenant, group and user allowed countries for the event's user (UPN and object ID), plus travel at ``at``."""
    if (
        not tenant.allowed_countries
        and not tenant.group_allowed_countries
        and not tenant.user_allowed_countries
        and (at is None or not tenant.travel_exceptions)
    ):
        return frozenset()  # nothing configured: what the lookups below would find
    allowed: set[str] = set(tenant.allowed_countries)
    for key in (event.upn, event.object_id):
        if key:
            allowed |= tenant.allowed_countries_for(key, at=at)
    return frozenset(c.upper() for c in allowed)


class SigninGeoAllowlist(Detector):
    meta = DetectorMeta(
        id="signin_geo_allowlist",
        title="Sign-in from a country outside the allowlist",
        description=(
            "A user signed in successfully from a country that is not allowed for them (tenant, group or user "
            "allowlist, plus unexpired travel exceptions). Without an allowlist, a sign-in outside the user's home "
            "country (Entra usageLocation) before their sign-in baseline exists alerts at low severity."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Ask the user (out of band) whether they are in that country. 2. If travelling: add a travel exception "
            "for the user, country and end date. 3. If not: revoke sessions, reset the password, review MFA methods "
            "and the session's actions (inbox rules, forwarding, consent), and consider a Conditional Access "
            "location policy that enforces the allowlist. 4. If the country should be allowed for a whole group, "
            "extend the group's allowlist instead of dismissing alerts one by one."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/conditional-access/concept-assignment-network",
        false_positives=("travel without a recorded travel exception",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None:
            return ()
        view = observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        country = view.attributes.get("country")
        if country is None or info is None or ctx.tenant.is_trusted_ip(event.ip):
            return ()
        if info.is_microsoft_service:
            return ()
        kind = anonymizer_kind(info)
        hosting = is_hosting(info)
        risky = kind is not None or hosting
        home = home_country(ctx.tenant, event)
        base_allowed = allowed_countries(ctx.tenant, event, at=None)
        reasons = ([kind] if kind else []) + (["hosting"] if hosting else [])
        if base_allowed:
            allowed = allowed_countries(ctx.tenant, event, at=datetime.fromtimestamp(event.time, UTC))
            if country in allowed:
                return ()
            new_country = view.new_country(home)
            severity = Severity.HIGH if risky or new_country else Severity.MEDIUM
            mark_risky_signin(ctx, event, "disallowed_country")
            return (
                self.finding(
                    event,
                    summary=f"{event.user_display} signed in from {country} ({event.ip}), "
                    f"outside the allowed countries {', '.join(sorted(allowed))}",
                    severity=severity,
                    dedup_key=f"{event.user_key}|{country}",
                    context={
                        **signin_context(event),
                        "mode": "allowlist",
                        "allowed_countries": sorted(allowed),
                        "home_country": home,
                        "new_country": new_country,
                        "reasons": ["disallowed_country", *reasons],
                    },
                ),
            )
        if home is None or view.learned or country == home or not view.is_new("country"):
            return ()
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in from {country} ({event.ip}) outside their home country "
                f"{home}, before a sign-in baseline exists",
                severity=Severity.MEDIUM if risky else Severity.LOW,
                dedup_key=f"{event.user_key}|{country}",
                context={
                    **signin_context(event),
                    "mode": "home_country",
                    "home_country": home,
                    "signins_before": view.signins_before,
                    "reasons": ["outside_home_country", *reasons],
                },
            ),
        )
