"""MFA fatigue in progress: repeated push denials and unanswered prompts (Entra sign-in log).

The audit log says only that strong authentication failed (500121); the sign-in log says how: "MFA denied; user
declined the authentication", "MFA denied; user did not respond to mobile app notification", "MFA denied; Phone
App Reported Fraud" (in ``status.additionalDetails``, ``authenticationDetails[].authenticationStepResultDetail`` or
the portal's "Multifactor authentication result"). An attacker with the password sends prompt after prompt until
the user gives in:

* `FATIGUE_PROMPTS` denied or unanswered push prompts within `FATIGUE_WINDOW_S`: HIGH, before any prompt is
  accepted (``signin_mfa_failure`` alerts when one finally is);
* the user reports a prompt as fraud: HIGH at once, they did not start the sign-in.

Ordinary cases do not alert: one declined or missed prompt, a wrong one-time code (not a push), prompts the user
answers. Prompts are counted per user, kept `FATIGUE_WINDOW_S`, and counted once per sign-in (request id).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.signals import mark_risky_signin
from shared.detection.signin_log import context
from shared.records.event import Event
from shared.records.model import SignInDetail

FATIGUE_PROMPTS = 3
FATIGUE_WINDOW_S = 15 * 60.0
MAX_PROMPTS = 10
_DENIED = ("declined", "denied the authentication", "user denied")
_UNANSWERED = ("did not respond", "not responded", "timed out", "timeout", "no response")
_FRAUD = ("fraud",)


def prompt_outcome(detail: SignInDetail) -> str | None:
    """``fraud``, ``denied`` or ``unanswered`` for a push prompt the user did not accept, else None."""
    texts = [detail.additional_details or "", detail.failure_reason or "", detail.mfa_detail or ""]
    texts += [s.detail or "" for s in detail.auth_steps or () if s.succeeded is not True]
    low = " | ".join(t.lower() for t in texts if t)
    if not low:
        return None
    if any(w in low for w in _FRAUD):
        return "fraud"
    if any(w in low for w in _DENIED):
        return "denied"
    if any(w in low for w in _UNANSWERED):
        return "unanswered"
    return None


class SigninMfaPushFatigue(Detector):
    meta = DetectorMeta(
        id="signin_mfa_push_fatigue",
        title="MFA push fatigue: repeated denied or unanswered prompts",
        description=(
            "Several MFA push prompts for one user were declined or left unanswered within minutes, or the user "
            "reported a prompt as fraud (Entra sign-in log details): someone with the password is bombarding the "
            "user with prompts until one is accepted."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH,
        mitre=("T1621", "T1078.004"),
        dedup_window=timedelta(hours=6),
        operations=frozenset({"userloginfailed"}),
        needs=(Need.SIGNIN_LOG, Need.USER_HISTORY),
        runbook=(
            "1. Call the user (not by mail or Teams): tell them not to accept prompts they did not start. 2. The "
            "password is known to the sender: reset it and revoke sessions. 3. Check whether a prompt was accepted "
            "afterwards (signin_mfa_failure alerts on that) and what that session did. 4. Enable number matching / "
            "phishing-resistant methods; block the source addresses in the alert."
        ),
        reference="https://attack.mitre.org/techniques/T1621/",
        false_positives=("a user ignoring prompts from a device left signed in elsewhere (repeated silent retries)",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        detail = event.signin
        if detail is None or event.user_key is None:
            return ()
        outcome = prompt_outcome(detail)
        if outcome is None:
            return ()
        sec = ctx.state(event, self.meta.id)
        prompts: list[list[Any]] = [
            p
            for p in sec.get("p") or []
            if isinstance(p, list) and len(p) == 4 and 0 <= event.time - float(p[0]) <= FATIGUE_WINDOW_S
        ]
        if not any(p[3] == event.record_id for p in prompts):
            prompts.append([int(event.time), event.ip or "", outcome, event.record_id])
        sec["p"] = prompts[-MAX_PROMPTS:]
        last = sec.get("alerted")
        fresh = [p for p in prompts if not isinstance(last, (int, float)) or float(p[0]) > float(last)]
        if outcome != "fraud" and len(fresh) < FATIGUE_PROMPTS:
            return ()
        sec["alerted"] = int(event.time)
        mark_risky_signin(ctx, event, "mfa_fatigue")
        counted = fresh if outcome != "fraud" else [p for p in fresh if p[3] == event.record_id] or fresh[-1:]
        kinds = sorted({str(p[2]) for p in counted})
        what = (
            "reported an MFA prompt as fraud"
            if outcome == "fraud"
            else f"received {len(counted)} MFA prompts it declined or left unanswered since {iso(float(counted[0][0]))}"
        )
        return (
            self.finding(
                event,
                summary=f"MFA push fatigue: {event.user_display} {what} (sign-ins from "
                f"{', '.join(dict.fromkeys(str(p[1]) for p in counted if p[1])) or 'unknown addresses'})",
                severity=Severity.HIGH,
                dedup_key=f"{event.user_key}|push_fatigue",
                evidence=[str(p[3]) for p in counted[-5:]],
                first_seen=float(counted[0][0]),
                context={**context(event), "prompts": len(counted), "outcomes": kinds},
            ),
        )
