"""Legacy authentication that Conditional Access let through (Entra sign-in log).

Legacy protocols (IMAP, POP, SMTP AUTH, Exchange ActiveSync with basic auth, MAPI, "Other clients"...) send the
password itself and cannot do MFA, which is why Microsoft's baseline policy blocks them. The sign-in log names
the client (``clientAppUsed``) and whether Conditional Access applied; a *successful* legacy sign-in that no
policy applied to means the block is missing or excludes this user or app, and the password alone was enough:

* MEDIUM; HIGH from a risky place (anonymiser, hosting provider the tenant does not share, new country, Entra
  medium or high risk).

Not alerted: legacy attempts Conditional Access blocked (failure), legacy sign-ins where a policy applied and was
satisfied, modern clients (browser, mobile apps and desktop clients), the tenant's trusted ranges (documented
scanners and printers sending mail). One alert per user and client a day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.signin_log import context, risky_place
from shared.records.event import Event

LEGACY_CLIENTS = frozenset(
    {
        "exchange activesync",
        "imap",
        "imap4",
        "pop",
        "pop3",
        "smtp",
        "authenticated smtp",
        "mapi",
        "mapi over http",
        "other clients",
        "autodiscover",
        "exchange online powershell",
        "exchange web services",
        "offline address book",
        "outlook anywhere (rpc over http)",
        "reporting web services",
        "universal outlook",
    }
)
"""Entra's ``clientAppUsed`` values of legacy-authentication clients (the "Legacy Authentication Clients" group)."""


class SigninLegacyAuthUnblocked(Detector):
    meta = DetectorMeta(
        id="signin_legacy_auth_unblocked",
        title="Legacy authentication not blocked by Conditional Access",
        description=(
            "A successful sign-in used a legacy authentication client (IMAP, POP, SMTP AUTH, ActiveSync, other "
            "clients) and no Conditional Access policy applied: the password alone was enough, without MFA."
        ),
        category=Category.EVASIVE_ACCESS,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1110"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"userloggedin"}),
        needs=(Need.SIGNIN_LOG, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Identify the client and address in the alert; ask the user (or the owner of the device or service "
            "account) whether they use it. 2. If not: reset the password and revoke sessions. 3. Block legacy "
            "authentication with Conditional Access for every user (review exclusions), and disable the protocol "
            "on the mailbox (Set-CASMailbox -ImapEnabled/-PopEnabled $false, SMTP AUTH off)."
        ),
        reference="https://learn.microsoft.com/en-us/entra/identity/conditional-access/policy-block-legacy-authentication",
        false_positives=(
            "multifunction printers or scanners sending mail with SMTP AUTH (add their range as trusted)",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        detail = event.signin
        if detail is None or event.user_key is None or (event.error_number or 0) != 0:
            return ()
        client = (detail.client_app_used or "").strip().lower()
        if client not in LEGACY_CLIENTS or (detail.ca_status or "").strip().lower() != "notapplied":
            return ()
        if ctx.tenant.is_trusted_ip(event.ip):
            return ()
        reasons = risky_place(ctx, event)
        return (
            self.finding(
                event,
                summary=f"{event.user_display} signed in with legacy authentication ({detail.client_app_used}) from "
                f"{event.ip} and no Conditional Access policy applied"
                + (f" ({', '.join(reasons)})" if reasons else ""),
                severity=Severity.HIGH if reasons else Severity.MEDIUM,
                dedup_key=f"{event.user_key}|{client}",
                context={**context(event), "reasons": reasons},
            ),
        )
