"""Brute force against one user: at least 10 wrong-password failures within 10 minutes (Panther's threshold).

Counted failures: 50126 (wrong password) and 50053 (smart lockout). MFA interrupts (50074/50076) prove the
password was right and are never counted. Failures are grouped by the real user key (Entra object ID, else
the lower-cased UPN); a failure with ``UserId`` "Not Available" and no Actor has no user and is skipped, so
unknown users are never lumped together (elastic/detection-rules#3838).

Severity: MEDIUM, HIGH when the threshold-crossing failure comes through an anonymiser or a hosting
provider. A successful sign-in within 60 minutes of the alert raises it to HIGH when it comes from an
unfamiliar place for the user (a new ASN, an anonymiser or a hosting provider); a success from a network
the user knows is the user getting it right at last (a phone retrying an old password is the classic false
positive) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    BRUTE_FORCE_FAILURES,
    OP_SIGNIN_FAILED,
    OP_SIGNIN_SUCCESS,
    failed_signin_code,
    is_successful_signin,
    observe_signin,
    signin_context,
)
from shared.detection.geo import anonymizer_kind, is_hosting
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

THRESHOLD = 10
WINDOW_S = 600.0
SUCCESS_WINDOW_S = 3600.0
MAX_IPS = 3


def _risky_ip(event: Event) -> str | None:
    info: IpInfo | None = event.ip_info
    if info is None or info.is_microsoft_service:
        return None
    kind = anonymizer_kind(info)
    if kind is not None:
        return kind
    return "hosting" if is_hosting(info) else None


class SigninBruteForce(Detector):
    meta = DetectorMeta(
        id="signin_brute_force",
        title="Brute force against a user's password",
        description=(
            "At least ten sign-ins of one user failed with a wrong password or lockout within ten minutes; a "
            "later success from a place the user does not know means the password was guessed."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.MEDIUM,
        mitre=("T1110.001",),
        dedup_window=timedelta(hours=1),
        operations=frozenset({OP_SIGNIN_FAILED, OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Look at the failing addresses and user agents: one known device retrying an old password (a phone "
            "mail app after a password change) is benign; fix the device. 2. Unknown addresses, Tor, hosting or "
            "scripted agents mean guessing: confirm smart lockout engaged and block the source. 3. If a success "
            "followed from an unfamiliar place: revoke sessions, reset the password, review MFA methods and the "
            "session's actions. 4. Check whether other users were targeted from the same source (password spray)."
        ),
        reference="https://attack.mitre.org/techniques/T1110/001/",
        false_positives=("a device or service retrying an old password after a password change",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None:
            return ()
        if is_successful_signin(event):
            view = observe_signin(ctx, event)
            sec = ctx.state(event, self.meta.id)
            return self._success(event, ctx, sec, known_asn=view.prior.get("asn") is not None)
        if failed_signin_code(event) not in BRUTE_FORCE_FAILURES:
            return ()
        sec = ctx.state(event, self.meta.id)
        fails = [f for f in sec.get("f") or [] if _recent(f, event.time)]
        if not fails:
            sec["r0"] = event.record_id
        fails.append([int(event.time), event.ip or ""])
        sec["f"] = fails[-THRESHOLD:]
        hit = sec.get("hit")
        active = isinstance(hit, dict) and 0 <= event.time - float(hit.get("t") or 0) <= SUCCESS_WINDOW_S
        if len(fails) < THRESHOLD or active:
            return ()
        first = str(sec.get("r0") or event.record_id)
        ips = list(dict.fromkeys(str(f[1]) for f in fails if f[1]))[:MAX_IPS]
        sec["hit"] = {"t": int(event.time), "r": first, "ips": ips}
        risky = _risky_ip(event)
        return (
            self.finding(
                event,
                summary=f"{len(fails)} failed sign-ins for {event.user_display} within 10 minutes from "
                + ", ".join(ips or ["unknown addresses"]),
                severity=Severity.HIGH if risky else Severity.MEDIUM,
                dedup_key=f"{event.user_key}|brute_force",
                evidence=(first, event.record_id) if first != event.record_id else (event.record_id,),
                first_seen=float(fails[0][0]),
                context={
                    **signin_context(event),
                    "failures": len(fails),
                    "window_minutes": int(WINDOW_S // 60),
                    "failure_ips": ips,
                    "anonymizer_or_hosting": risky,
                    "followed_by_success": False,
                },
            ),
        )

    def _success(self, event: Event, ctx: DetectionContext, sec: dict[str, Any], *, known_asn: bool) -> list[Finding]:
        hit = sec.get("hit")
        if (
            not isinstance(hit, dict)
            or hit.get("ok")
            or not 0 <= event.time - float(hit.get("t") or 0) <= (SUCCESS_WINDOW_S)
        ):
            return []
        hit["ok"] = True
        risky = _risky_ip(event)
        familiar = ctx.tenant.is_trusted_ip(event.ip) or (known_asn and risky is None)
        if familiar:
            return []
        mark_risky_signin(ctx, event, "brute_force_success")
        return [
            self.finding(
                event,
                summary=f"{event.user_display} signed in from {event.ip} after a brute-force attempt at "
                f"{iso(float(hit['t']))} (unfamiliar network)",
                severity=Severity.HIGH,
                dedup_key=f"{event.user_key}|brute_force_success",
                evidence=(str(hit.get("r") or event.record_id), event.record_id),
                first_seen=float(hit["t"]),
                context={
                    **signin_context(event),
                    "failure_ips": list(hit.get("ips") or []),
                    "anonymizer_or_hosting": risky,
                    "followed_by_success": True,
                },
            )
        ]


def _recent(f: Any, now: float) -> bool:
    return isinstance(f, list) and len(f) == 2 and isinstance(f[0], int | float) and 0 <= now - float(f[0]) <= WINDOW_S
