"""A sign-in whose network *and* device are both unfamiliar for the user.

Each successful sign-in is compared with the user's learned baseline (``shared.detection.baseline``) on
five attributes: country, ASN, OS family, browser family and client (the access method's kind, else the
application ID). Score:

=====================  ======  ==================================================================
attribute              points  note
=====================  ======  ==================================================================
network                2 / 1   2 for a new country, else 1 for a new ASN (counted once: a new country
                               nearly always brings a new ASN)
OS family              1
browser family         1
client                 1
=====================  ======  ==================================================================

It alerts when the score is at least 3 **and** the network part is new: one new attribute alone
(a new phone, a hotel network, a new country) stays quiet, and device-only changes on a known network
(a new laptop at home) never alert. Score 3 is MEDIUM, 4 or more HIGH. Unknown values are never new;
a trusted range, a tenant-shared network and iCloud Private Relay count as a known network. Quiet
while the user learns.
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
)
from shared.detection.geo import network_key
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

WEIGHTS = {"os": 1, "browser": 1, "client": 1}
NEW_COUNTRY_POINTS = 2
NEW_ASN_POINTS = 1
ALERT_SCORE = 3
HIGH_SCORE = 4


LEARNING = Learning(user_days=7, tenant_days=14)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class SigninUnfamiliarFingerprint(Detector):
    meta = DetectorMeta(
        id="signin_unfamiliar_fingerprint",
        title="Sign-in with unfamiliar network and device",
        description=(
            "A successful sign-in combined a network (country or ASN) and a device (OS, browser or client "
            "application) that the user has not used before, after the user's learning period. One new property "
            "alone is normal; several at once is what a stranger with the user's password looks like."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        learning=LEARNING,
        runbook=(
            "1. Read the alert's new attributes against the user's known ones (context new_attributes and known). "
            "2. Ask the user whether they signed in from that device and place (out of band). 3. Look for concurrent "
            "sign-ins from "
            "the usual device: two live fingerprints at once means a stolen session. 4. Review the session's "
            "actions. 5. If not the user: revoke sessions, reset the password, review MFA methods and registered "
            "devices." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/entra/id-protection/concept-identity-protection-risks",
        false_positives=("a new device used on a new network (travel with a new laptop)",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None:
            return ()
        view = observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        if not view.learned or (info is not None and info.is_microsoft_service):
            return ()
        network_known = (
            ctx.tenant.is_trusted_ip(event.ip)
            or (info is not None and bool(info.is_icloud_relay))
            or TenantPrevalence.of(ctx).is_shared("n", network_key(event.ip), now=event.time, excluding=event.user_key)
        )
        new: list[str] = []
        score = 0
        if not network_known:
            if view.new_country(home_country(ctx.tenant, event)):
                new.append("country")
                score += NEW_COUNTRY_POINTS
                if view.is_new("asn"):
                    new.append("asn")
            elif view.is_new("asn"):
                new.append("asn")
                score += NEW_ASN_POINTS
        if score == 0:
            return ()
        for attr, points in WEIGHTS.items():
            if view.is_new(attr):
                new.append(attr)
                score += points
        if score < ALERT_SCORE:
            return ()
        mark_risky_signin(ctx, event, "unfamiliar_fingerprint")
        base = peek_baseline(ctx, event)
        shown = ", ".join(f"{a} {view.attributes.get(a)}" for a in new)
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in with an unfamiliar fingerprint: new {shown}",
                severity=Severity.HIGH if score >= HIGH_SCORE else Severity.MEDIUM,
                dedup_key=f"{event.user_key}|fingerprint",
                context={
                    **signin_context(event),
                    "score": score,
                    "new_attributes": new,
                    "fingerprint": {a: view.attributes.get(a) for a in ("country", "asn", "os", "browser", "client")},
                    "known": {a: sorted(v for v in base.values(a) if v != view.attributes.get(a)) for a in new},
                    "signins_before": view.signins_before,
                },
            ),
        )
