"""A successful sign-in from a country (or, with lower severity, a network) new for the user.

After the learning period (the earlier of 14 days or 10 sign-ins, never before 7 days;
``shared.detection.baseline``) a country the user never signed in from is MEDIUM, HIGH when the address
is also an anonymiser or a hosting provider. A new ASN in a known country is LOW. The user's home country
(Entra usageLocation) always counts as known.

Locations many users of the tenant share (at least five other users, first used more than a day ago:
the office, the company VPN) and countries of the user's unexpired travel exceptions are ignored for
*clean* addresses only; a shared country reached through an
anonymiser or a rented server still alerts. ASN novelty is skipped for carrier (mobile) networks, iCloud
Private Relay, Microsoft service endpoints, anonymisers and hosting (their own detectors speak for them).

Tenant-aware (``shared.detection.tenant_baseline``), for clean addresses: a network at least two colleagues used
(the venue of a conference abroad; one colleague is enough when the user's own device signs in) is not new; a new network in a country the user reached less than a week ago
(the hotel of the same trip) is not reported; a new country reached with the user's own device (OS and browser
known) is LOW, with an unfamiliar device MEDIUM. Trusted ranges are skipped whatever their geolocation says.
Learning (`LEARNING`): quiet until the user and the tenant are known.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    OP_SIGNIN_SUCCESS,
    TenantPrevalence,
    home_country,
    is_successful_signin,
    observe_signin,
    peek_baseline,
    signin_context,
    travel_countries,
)
from shared.detection.geo import ANONYMIZER_LABELS, anonymizer_kind, is_hosting
from shared.detection.signals import mark_risky_signin
from shared.detection.tenant_baseline import VENUE_MIN_USERS, familiar_device, shared_by_colleagues, trip_country
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

LEARNING = Learning(user_days=7, tenant_days=14)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class SigninNewLocation(Detector):
    meta = DetectorMeta(
        id="signin_new_location",
        title="Sign-in from a new country or network",
        description=(
            "A user signed in successfully from a country they have not used since monitoring began (after a "
            "learning period), or from a new network (ASN) in a known country. Locations that many users of the "
            "tenant share, and a venue colleagues used abroad, are ignored unless reached through an anonymiser or a hosting "
            "provider; a new country reached with the user's own device is LOW."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004",),
        dedup_window=timedelta(days=7),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        learning=LEARNING,
        runbook=(
            "1. Ask the user whether they are travelling (out of band). 2. Check the address: an anonymiser or a "
            "hosting provider in the new country makes takeover likely. 3. Compare device, browser and application "
            "with the user's usual ones, and look for sign-ins from the usual location at the same time (travel "
            "that is impossible). 4. Review the session's actions: inbox rules, forwarding, consent, MFA changes. "
            "5. If not the user: revoke sessions, reset the password, review MFA methods. If it is travel, add a "
            "travel exception for the user and country." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/entra/id-protection/concept-identity-protection-risks",
        false_positives=(
            "business travel with the user's own device (LOW; not reported once a colleague used the same venue, nor for further networks of the same trip)",
            "a new home broadband provider (LOW)",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None:
            return ()
        view = observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        if not view.learned or info is None or ctx.tenant.is_trusted_ip(event.ip):
            return ()
        if info.is_microsoft_service:
            return ()
        kind = anonymizer_kind(info)
        hosting = is_hosting(info)
        prevalence = TenantPrevalence.of(ctx)
        country = view.attributes.get("country")
        home = home_country(ctx.tenant, event)
        if view.new_country(home):
            risky = kind is not None or hosting
            if not risky and (
                country in travel_countries(ctx.tenant, event)
                or prevalence.is_shared("c", country, now=event.time, excluding=event.user_key)
            ):
                return ()  # a travel exception, or the tenant's own country
            known_device = familiar_device(view)
            if not risky and shared_by_colleagues(ctx, event, min_users=1 if known_device else VENUE_MIN_USERS):
                return ()  # colleagues at the same venue abroad
            reasons = ["new_country"] + ([kind] if kind else []) + (["hosting"] if hosting else [])
            mark_risky_signin(ctx, event, "new_country")
            via = " from a hosting provider" if hosting else ""
            if kind:
                via = f" through {ANONYMIZER_LABELS.get(kind, kind)}"
            return (
                self.finding(
                    event,
                    summary=f"{event.user_display} signed in from {country}{via} ({event.ip}): "
                    "a country this user has not used before",
                    severity=Severity.HIGH if risky else Severity.LOW if known_device else Severity.MEDIUM,
                    dedup_key=f"{event.user_key}|country|{country}",
                    context={
                        **signin_context(event),
                        "novelty": "country",
                        "known_countries": sorted(_known(ctx, event, "country", exclude=country)),
                        "home_country": home,
                        "signins_before": view.signins_before,
                        "anonymizer": kind,
                        "hosting": hosting,
                        "reasons": reasons,
                        "familiar_device": known_device,
                    },
                ),
            )
        asn = view.attributes.get("asn")
        if (
            asn is None
            or not view.is_new("asn")
            or kind is not None
            or hosting
            or info.is_mobile
            or info.is_icloud_relay
            or prevalence.is_shared("a", asn, now=event.time, excluding=event.user_key)
            or trip_country(view, event.time)
            or shared_by_colleagues(ctx, event)
        ):
            return ()
        org = info.asn_org
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in from a new network AS{asn}"
                + (f" ({org})" if org else "")
                + (f" in {country}" if country else ""),
                severity=Severity.LOW,
                dedup_key=f"{event.user_key}|asn|{asn}",
                context={
                    **signin_context(event),
                    "novelty": "asn",
                    "signins_before": view.signins_before,
                    "reasons": ["new_asn"],
                },
            ),
        )


def _known(ctx: DetectionContext, event: Event, attr: str, *, exclude: str | None) -> set[str]:
    return {v for v in peek_baseline(ctx, event).values(attr) if v != exclude}
