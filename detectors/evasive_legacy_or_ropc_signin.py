"""Successful sign-ins that bypass interactive MFA: ROPC (``BAV2ROPC``), legacy authentication, device code.

* ROPC and legacy protocols (IMAP, POP, SMTP AUTH, "other clients") send the password itself and
  skip interactive MFA; a few service accounts still use them from fixed places. The detector
  learns per user where each protocol is used from: the first use alerts, and so does use from
  an address not seen with it before; the same scanner from the same office does not alert daily.
  Sign-ins from the tenant's trusted ranges are not reported.
* Device-code sign-ins (``RequestType`` ``Cmsi:Cmsi``) are how device-code phishing (Storm-2372)
  gets tokens: every new app/address alerts, high for users the tenant does not list as admins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import is_admin_user, raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import access_of
from shared.records.event import Event

PROTOCOLS = {"ropc": "ROPC (password grant)", "legacy": "legacy authentication", "device_code": "device code"}
MAX_KEYS = 8
MAX_IPS = 6
FORGET_AFTER_S = 90 * 86400


LEARNING = Learning(user_days=7, tenant_days=14)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class EvasiveLegacyOrRopcSignin(Detector):
    meta = DetectorMeta(
        id="evasive_legacy_or_ropc_signin",
        title="ROPC, legacy or device-code sign-in",
        description=(
            "A successful sign-in used the resource-owner password flow (BAV2ROPC), a legacy protocol, or the "
            "device-code flow: each gets tokens without the interactive MFA a browser sign-in would face."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1528"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin"}),
        needs=(Need.SIGNINS, Need.USER_HISTORY, Need.TENANT_CONFIG, Need.RISKY_SIGNIN),
        learning=LEARNING,
        runbook=(
            "1. Identify the client: the app id and user agent in the alert (BAV2ROPC is a password grant; a "
            "device-code sign-in is a code the user typed at microsoft.com/devicelogin). 2. Ask the user whether they "
            "entered a code or run such a client; service accounts should be documented. 3. If not: revoke sessions "
            "(refresh tokens survive password resets), reset the password, and block the flow with Conditional "
            "Access (authentication flows: device code; block legacy authentication)." + " " + LEARNING.describe()
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2025/02/13/storm-2372-conducts-device-code-phishing-campaign/",
        false_positives=("documented service accounts using ROPC", "admins signing in to CLIs with a device code"),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or (event.error_number or 0) != 0:
            return ()
        access = access_of(event)
        protocol = access.protocol
        if protocol not in PROTOCOLS:
            return ()
        if protocol != "device_code" and ctx.tenant.is_trusted_ip(event.ip):
            return ()
        app = access.client_app_id or "-"
        state = ctx.state(event, self.meta.id)
        seen: dict[str, Any] = state.setdefault("seen", {})
        key = f"{protocol}|{app}"
        prior = seen.get(key)
        ips: list[str] = list(prior[1]) if isinstance(prior, list) and len(prior) == 2 else []
        fresh = not isinstance(prior, list) or event.time - float(prior[0]) > FORGET_AFTER_S
        new_ip = (event.ip or "-") not in ips
        ips = ([*ips, event.ip or "-"] if new_ip else ips)[-MAX_IPS:]
        seen[key] = [event.time, ips]
        _trim(seen, event.time)
        if not (fresh or new_ip):
            return ()
        risk = risk_of(ctx, event)
        admin = is_admin_user(ctx, event)
        base = Severity.HIGH if protocol == "device_code" and not admin else Severity.MEDIUM
        severity = raise_for_risk(base, risk)
        what = PROTOCOLS[protocol]
        name = access.client_app_name or app
        why = "first use" if fresh else "from a new address"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in with {what} to {name} ({why})" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{protocol}|{app}",
                context={
                    "protocol": protocol,
                    "client_app_id": access.client_app_id,
                    "client_app_name": access.client_app_name,
                    "user_agent": event.user_agent,
                    "request_type": event.extended_properties.get("requesttype"),
                    "first_use": fresh,
                    "known_addresses": [i for i in ips if i != (event.ip or "-")],
                    "tenant_admin": admin,
                    "risk": risk_context(risk),
                },
            ),
        )


def _trim(seen: dict[str, Any], now: float) -> None:
    stale = [k for k, v in seen.items() if not isinstance(v, list) or now - float(v[0]) > FORGET_AFTER_S]
    for k in stale:
        seen.pop(k)
    if len(seen) > MAX_KEYS:
        for k, _ in sorted(seen.items(), key=lambda kv: float(kv[1][0]))[: len(seen) - MAX_KEYS]:
            seen.pop(k)
