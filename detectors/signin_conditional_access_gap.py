"""Conditional Access that failed, or never applied, for a sign-in from a risky place (Entra sign-in log).

The sign-in log says per sign-in whether Conditional Access applied (``conditionalAccessStatus``) and what each
policy did. Two cases matter when the place is risky (an anonymiser, a hosting provider the tenant's users do not
share, a country new for a learned user, or Entra's own medium/high risk):

* **notApplied on a successful sign-in**: no policy covered it, so the tenant's policies have a gap (an excluded
  user or app, a location condition, a missing platform) and someone used it: HIGH;
* **failure**: a policy stopped the sign-in after the first factor, so whoever tried knows the password: MEDIUM.
  Error 53003 (blocked by Conditional Access) is left to ``signin_mfa_failure``, which already alerts on it from
  risky places; the other CA failures (53000 non-compliant device, 53001, 53002, 53004, 530032...) are reported
  here with the policies that failed.

Ordinary sign-ins do not alert: a policy that applied and was satisfied (success), notApplied from the user's
usual places, the tenant's trusted ranges and Microsoft's own addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import ERR_CA_BLOCKED
from shared.detection.signals import mark_risky_signin
from shared.detection.signin_log import context, risky_place
from shared.records.event import Event


class SigninConditionalAccessGap(Detector):
    meta = DetectorMeta(
        id="signin_conditional_access_gap",
        title="Conditional Access failed or not applied from a risky place",
        description=(
            "An Entra sign-in log entry from a risky place (anonymiser, hosting provider, new country, Entra risk) "
            "where Conditional Access did not apply to a successful sign-in (a gap in the policies that was used), "
            "or where a policy failed it after the password was accepted."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH,
        mitre=("T1078.004", "T1556"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin", "userloginfailed"}),
        needs=(Need.SIGNIN_LOG, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Open the sign-in in Entra (request id in the alert) and read the Conditional Access tab: which "
            "policies were evaluated and why none applied (excluded user, app, platform or location). 2. Ask the user "
            "whether they signed in from that place. 3. If not: revoke sessions, reset the password, review MFA "
            "methods. 4. Close the gap: extend the policy to the excluded user/app/platform, or block the location."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/monitoring-health/concept-sign-in-log-activity-details",
        false_positives=(
            "break-glass accounts excluded from every policy by design",
            "a new office or travel not yet in the tenant's named locations",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        detail = event.signin
        if detail is None or event.user_key is None:
            return ()
        status = (detail.ca_status or "").strip().lower()
        error = event.error_number or 0
        if status == "notapplied" and error == 0:
            gap = True
        elif status == "failure" and error != 0 and error != ERR_CA_BLOCKED:
            gap = False
        else:
            return ()
        reasons = risky_place(ctx, event)
        if not reasons:
            return ()
        if gap:
            mark_risky_signin(ctx, event, "ca_not_applied")
        failed = [p.name or p.id or "?" for p in detail.ca_policies or () if (p.result or "").lower() == "failure"]
        where = f"{event.ip} ({', '.join(reasons)})"
        summary = (
            f"{event.user_display} signed in from {where} and no Conditional Access policy applied"
            if gap
            else f"{event.user_display}: password accepted from {where}, then Conditional Access failed the sign-in"
            + (f" ({', '.join(failed)})" if failed else "")
        )
        return (
            self.finding(
                event,
                summary=summary,
                severity=Severity.HIGH if gap else Severity.MEDIUM,
                dedup_key=f"{event.user_key}|{'gap' if gap else 'failure'}|{event.ip}",
                context={**context(event), "reasons": reasons, "failed_policies": failed, "not_applied": gap},
            ),
        )
