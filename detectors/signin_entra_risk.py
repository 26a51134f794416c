"""A successful sign-in Entra ID Protection itself rated risky (Entra sign-in log).

Entra rates each sign-in (``riskLevelDuringSignIn`` in real time, ``riskLevelAggregated`` with offline
detections) and keeps the risk's state (``riskState``). A sign-in that succeeded although Entra rated it medium or
high, and whose risk nobody has remediated or dismissed, is the identity provider's own warning; it is passed on
with the risk detections it names (``riskEventTypes_v2``: anonymizedIPAddress, unfamiliarFeatures,
maliciousIPAddress, ...):

* high: HIGH; medium: MEDIUM; either raised one step when the sign-in also comes from an anonymiser or hosting
  provider the tenant does not share, or a new country;
* ``riskState`` confirmedCompromised: CRITICAL.

Not alerted: low risk, ``hidden`` (no Entra ID P2: the level is not shown), ``none``, a risk already
``remediated``, ``dismissed`` or ``confirmedSafe``, and failed sign-ins (a risk policy that blocked the sign-in did
its job). The sign-in is remembered as risky for the detectors of later stages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.signals import mark_risky_signin
from shared.detection.signin_log import context, entra_risk, risky_place
from shared.records.event import Event

CLOSED_STATES = frozenset({"remediated", "dismissed", "confirmedsafe"})


class SigninEntraRisk(Detector):
    meta = DetectorMeta(
        id="signin_entra_risk",
        title="Successful sign-in Entra rated risky",
        description=(
            "A sign-in succeeded although Entra ID Protection rated it medium or high risk (real-time or aggregated) "
            "and the risk is still open, or Entra confirmed the user compromised."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH,
        mitre=("T1078.004",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin"}),
        needs=(Need.SIGNIN_LOG, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY),
        runbook=(
            "1. Open the sign-in in Entra (request id in the alert) and the user's risk detections in ID Protection: "
            "which detections (risk event types) fired and from where. 2. Ask the user whether they signed in. "
            "3. If not: confirm the user compromised in ID Protection, revoke sessions, reset the password and "
            "review MFA methods, inbox rules and consents. 4. If it was the user: dismiss the risk so it stops "
            "raising alerts, and consider a sign-in risk policy that requires MFA."
        ),
        reference="https://learn.microsoft.com/en-us/entra/id-protection/concept-identity-protection-risks",
        false_positives=("travel or a new VPN that ID Protection has not learned yet (unfamiliar features)",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        detail = event.signin
        if detail is None or event.user_key is None or (event.error_number or 0) != 0:
            return ()
        state = (detail.risk_state or "").strip().lower()
        if state in CLOSED_STATES:
            return ()
        level = entra_risk(detail)
        compromised = state == "confirmedcompromised"
        if level is None and not compromised:
            return ()
        reasons = [r for r in risky_place(ctx, event) if not r.startswith("entra_risk_")]
        if compromised:
            severity = Severity.CRITICAL
        else:
            severity = Severity.HIGH if level == "high" else Severity.MEDIUM
            if reasons:
                severity = severity.upgrade(1)
        mark_risky_signin(ctx, event, f"entra_risk_{level or 'compromised'}")
        detections = ", ".join(detail.risk_event_types or ()) or "no detection named"
        what = "confirmed compromised" if compromised else f"{level} risk"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in from {event.ip} although Entra rated the sign-in {what} "
                f"({detections})" + (f"; {', '.join(reasons)}" if reasons else ""),
                severity=severity,
                dedup_key=f"{event.user_key}|{level or 'compromised'}",
                context={**context(event), "reasons": reasons},
            ),
        )
