"""Correct password, failed MFA: someone else knows the user's password.

A ``UserLoginFailed`` with ErrorNumber 500121 means the first factor succeeded and strong authentication
failed or was denied. 50074/50076 (and 50140) are interruptions, *not* failures: the user was asked for
MFA and usually completes it (elastic/detection-rules#2278). 50158 (external challenge) is ambiguous and
ignored. A Conditional Access block (53003) also comes after a correct password, but is routine for
unmanaged devices, so it counts only from a risky source.

* From a risky source, HIGH at once: an anonymiser, a hosting provider (not shared by the tenant), a
  country new for the user, or a flagged password-spray source (``signin_password_spray``).
* A denial from a network the user's sign-in baseline knows (their home, office or carrier: a prompt declined by
  mistake, a phone left behind) is only kept in the user's state, for MFA-fatigue counting.
* Otherwise a LOW finding with ``report_only: true`` feeds the weekly compromised-credentials report
  (``shared.reports.credentials``): users whose password is known to someone, with location and VPN context.
  The facts are also kept in the user's state (last 10, 8 days).
* MFA fatigue: at least three 500121 within 60 minutes followed by a successful sign-in is HIGH (CRITICAL
  when the success itself comes from an anonymiser, hosting provider or new country) and marks the session
  risky.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from detectors.signin_password_spray import spray_source_of
from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    ERR_CA_BLOCKED,
    ERR_MFA_FAILED,
    OP_SIGNIN_FAILED,
    OP_SIGNIN_SUCCESS,
    TenantPrevalence,
    country_is_new,
    failed_signin_code,
    home_country,
    is_successful_signin,
    observe_signin,
    peek_baseline,
    signin_context,
)
from shared.detection.geo import anonymizer_kind, is_hosting
from shared.detection.signals import mark_risky_signin
from shared.detection.tenant_baseline import familiar_network
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

FATIGUE_FAILURES = 3
FATIGUE_WINDOW_S = 3600.0
FACT_MEMORY_S = 8 * 86400.0
MAX_FACTS = 10


class SigninMfaFailure(Detector):
    meta = DetectorMeta(
        id="signin_mfa_failure",
        title="Correct password, failed MFA",
        description=(
            "A sign-in passed the password step and then failed or denied multi-factor authentication (AADSTS "
            "500121): the password is known to whoever made the attempt. Alerts at once from an anonymiser, a "
            "hosting provider, a new country or a password-spray source, and on MFA fatigue (repeated denials "
            "followed by a success); otherwise recorded for the weekly compromised-credentials report."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH,
        mitre=("T1078.004", "T1621"),
        dedup_window=timedelta(days=7),
        operations=frozenset({OP_SIGNIN_FAILED, OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Ask the user (out of band) whether they made the attempt: a mistyped code on their own device is "
            "benign. 2. If not: the password is compromised; reset it now, revoke sessions, and check the MFA "
            "methods for ones the user did not register. 3. For MFA fatigue (several denied prompts then a "
            "success): treat the account as taken over, revoke sessions, and switch the user to number matching or "
            "phishing-resistant methods. 4. Review sign-ins from the same address for other users."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/08/26/cyber-signals-defending-against-cyber-threats-with-the-latest-research-insights-and-trends/",
        false_positives=(
            "a user mistyping a one-time code or declining an accidental prompt on a network new to them (report only; on their own network it is not reported)",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None:
            return ()
        if is_successful_signin(event):
            observe_signin(ctx, event)
            return self._success(event, ctx)
        code = failed_signin_code(event)
        if code not in (ERR_MFA_FAILED, ERR_CA_BLOCKED):
            return ()
        reasons = _risk_reasons(event, ctx)
        if code == ERR_CA_BLOCKED and not reasons:
            return ()
        info: IpInfo | None = event.ip_info
        kind = anonymizer_kind(info)
        country = info.country.upper() if info is not None and info.country else None
        sec = ctx.state(event, self.meta.id)
        facts = [f for f in sec.get("facts") or [] if _fact_time(f, event.time, FACT_MEMORY_S)]
        if not any(f[5] == event.record_id for f in facts):
            facts.append([int(event.time), event.ip or "", country or "", kind or "", code, event.record_id])
        sec["facts"] = facts[-MAX_FACTS:]
        familiar = country is not None and peek_baseline(ctx, event).get("country", country) is not None
        context = {
            **signin_context(event),
            "logon_error": event.record.LogonError,
            "anonymizer": kind,
            "vpn_operator": info.vpn_operator if info is not None else None,
            "hosting": is_hosting(info),
            "familiar_location": familiar,
            "reasons": reasons,
            "report_only": not reasons,
        }
        where = country or "an unknown country"
        what = "was blocked by Conditional Access" if code == ERR_CA_BLOCKED else "failed MFA"
        if reasons:
            return (
                self.finding(
                    event,
                    summary=f"{event.user_display}: correct password from {event.ip} ({where}, "
                    f"{', '.join(reasons)}), then {what}",
                    severity=Severity.HIGH,
                    dedup_key=f"{event.user_key}|risky|{event.ip}",
                    context=context,
                ),
            )
        if code == ERR_MFA_FAILED and familiar_network(ctx, event):
            return ()  # one denial on the user's own network (a prompt declined by mistake): the fact is kept only
        return (
            self.finding(
                event,
                summary=f"{event.user_display}: correct password from {event.ip} ({where}), then failed MFA "
                f"(recorded for the compromised-credentials report)",
                severity=Severity.LOW,
                dedup_key=f"{event.user_key}|report|{event.ip}",
                context=context,
            ),
        )

    def _success(self, event: Event, ctx: DetectionContext) -> list[Finding]:
        sec = ctx.peek_state(event, self.meta.id)
        if not sec.get("facts"):
            return []  # no MFA failures remembered: nothing to count
        facts = [
            f for f in sec.get("facts") or [] if _fact_time(f, event.time, FATIGUE_WINDOW_S) and f[4] == ERR_MFA_FAILED
        ]
        last_alert = sec.get("fatigue")
        if isinstance(last_alert, _NUMBER):
            facts = [f for f in facts if float(f[0]) > float(last_alert)]
        if len(facts) < FATIGUE_FAILURES:
            return []
        ctx.state(event, self.meta.id)["fatigue"] = int(event.time)
        reasons = _risk_reasons(event, ctx)
        mark_risky_signin(ctx, event, "mfa_fatigue")
        ips = list(dict.fromkeys(str(f[1]) for f in facts if f[1]))
        return [
            self.finding(
                event,
                summary=f"MFA fatigue: {len(facts)} failed or denied MFA prompts for {event.user_display} since "
                f"{iso(float(facts[0][0]))}, then a successful sign-in from {event.ip}",
                severity=Severity.CRITICAL if reasons else Severity.HIGH,
                dedup_key=f"{event.user_key}|fatigue",
                evidence=[*(str(f[5]) for f in facts[-5:]), event.record_id],
                first_seen=float(facts[0][0]),
                context={
                    **signin_context(event),
                    "mfa_failures": len(facts),
                    "failure_ips": ips,
                    "reasons": ["mfa_fatigue", *reasons],
                    "report_only": False,
                },
            )
        ]


def _risk_reasons(event: Event, ctx: DetectionContext) -> list[str]:
    """Why the source of this event is risky: anonymiser kind, hosting, new_country, spray_source."""
    info: IpInfo | None = event.ip_info
    reasons: list[str] = []
    if info is None or ctx.tenant.is_trusted_ip(event.ip) or info.is_microsoft_service:
        return reasons
    kind = anonymizer_kind(info)
    if kind is not None:
        reasons.append(kind)
    asn = str(info.asn) if info.asn else None
    if (
        kind is None
        and is_hosting(info)
        and not TenantPrevalence.of(ctx).is_shared("a", asn, now=event.time, excluding=event.user_key)
    ):
        reasons.append("hosting")
    home = home_country(ctx.tenant, event)
    if is_successful_signin(event):
        # the success is already in the baseline: ask whether its country was new *before* it
        new_country = observe_signin(ctx, event).new_country(home)
    else:
        country = info.country.upper() if info.country else None
        new_country = country_is_new(peek_baseline(ctx, event), country, now=event.time, home=home)
    if new_country:
        reasons.append("new_country")
    if spray_source_of(ctx, event) is not None:
        reasons.append("spray_source")
    return reasons


_NUMBER = (int, float)


def _fact_time(f: Any, now: float, within: float) -> bool:
    return isinstance(f, list) and len(f) == 6 and isinstance(f[0], _NUMBER) and 0 <= now - float(f[0]) <= within
