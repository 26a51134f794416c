"""One Entra sign-in session used from a second network: a stolen session cookie or token replayed (AiTM).

An adversary-in-the-middle phishing kit relays the victim's sign-in and keeps the session cookie; the
attacker then uses the same session from their own network. Every sign-in record names its session
(``DeviceProperties`` SessionId; the Entra sign-in log's ``sessionId`` of interactive and non-interactive sign-ins
is read into the same field by ``shared.records.signins``, so a token refreshed from the attacker's network is
seen too) and so do workload records made with a token of it
(``AppAccessContext.AADSessionId`` on SharePoint, OneDrive and Exchange records). The first network a
session is seen from (ASN and country of the address) is kept per user; a later use of the same
session from another network alerts:

* another country, or an anonymiser or hosting address (not Microsoft's own): high;
* another ASN in the same country: medium, low when either network is a mobile carrier (a laptop
  moving from Wi-Fi to a phone hotspot keeps its session);

raised one step when the user had a risky sign-in shortly before, and remembered as a risky sign-in
(``session_replay``) for the detectors of later stages. Sessions are kept for `SESSION_TTL_S`, at most
`MAX_SESSIONS` per user; addresses without intelligence are not compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import ip_risk, raise_for_risk, risk_context, risk_note
from shared.detection.signals import mark_risky_signin, recent_risky_signin
from shared.records.event import Event

SIGNIN_OPS = frozenset({"userloggedin"})
WORKLOAD_OPS = frozenset(
    {
        "filedownloaded",
        "filesyncdownloadedfull",
        "anonymouslinkcreated",
        "sharinginvitationcreated",
        "mailitemsaccessed",
        "updateinboxrules",
        "new-inboxrule",
        "set-inboxrule",
        "set-mailbox",
    }
)
"""Workload operations other detectors route already: the session check adds no routing, enrichment or state load
for high-volume records no detector reads (FileAccessed, FilePreviewed, Send)."""
SESSION_TTL_S = 7 * 86400
MAX_SESSIONS = 12
SECTION = "signin_session_replay"


def _network(event: Event) -> tuple[int | None, str | None] | None:
    """(ASN, country) of the event's address; None when unknown or a Microsoft service address."""
    info = event.ip_info
    if info is None or event.ip is None:
        return None
    if getattr(info, "is_microsoft_service", None) is True:
        return None
    asn = getattr(info, "asn", None)
    country = getattr(info, "country", None)
    if asn is None and country is None:
        return None
    return (asn if isinstance(asn, int) else None, country if isinstance(country, str) else None)


def _is_mobile(event: Event) -> bool:
    return getattr(event.ip_info, "is_mobile", None) is True


class SigninSessionReplay(Detector):
    meta = DetectorMeta(
        id="signin_session_replay",
        title="Sign-in session reused from another network",
        description=(
            "The same Entra sign-in session (SessionId of a sign-in in the audit or sign-in log, interactive or "
            "non-interactive; AADSessionId of a workload record) was used from "
            "a second network (another country, ASN, anonymiser or hosting provider) within its lifetime: a session "
            "cookie or token stolen by adversary-in-the-middle phishing and replayed."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.HIGH,
        mitre=("T1550.004", "T1557", "T1539"),
        dedup_window=timedelta(hours=24),
        needs=(Need.SIGNINS, Need.MAILBOX_AUDIT, Need.IP_CONTEXT, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        operations=SIGNIN_OPS | WORKLOAD_OPS,
        runbook=(
            "1. Compare the two networks in the alert (first use and reuse): ASN, country, user agent; ask the user "
            "whether they travelled or switched to a VPN or hotspot. 2. If not: revoke the user's sessions "
            "(Revoke-MgUserSignInSession), reset the password and re-register MFA, since the phished session "
            "bypassed it. 3. Search the audit log for the session id to list everything the second network did "
            "(mail read, inbox rules, downloads, MFA or device registrations) and undo it; block the address."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/11/16/token-tactics-how-to-prevent-detect-and-respond-to-cloud-token-theft/",
        false_positives=(
            "a laptop moving between networks of different providers (home broadband to a hotspot) within a session",
            "split-tunnel VPNs sending some traffic through the company's egress",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.succeeded:
            return ()
        if event.op in SIGNIN_OPS and (event.error_number or 0) != 0:
            return ()
        sid = event.aad_session_id
        if sid is None:
            return ()
        net = _network(event)
        if net is None:
            return ()
        state = ctx.state(event, SECTION)
        sessions: dict[str, list[Any]] = state.setdefault("s", {})
        entry = sessions.get(sid)
        if entry is not None and event.time - float(entry[1]) > SESSION_TTL_S:
            entry = None
        if entry is None:
            sessions[sid] = [
                event.time,
                event.time,
                net[0],
                net[1],
                event.ip,
                event.record_id,
                0,
                1 if _is_mobile(event) else 0,
            ]
            self._trim(sessions, event.time)
            return ()
        entry[1] = max(float(entry[1]), event.time)
        first_asn, first_country = entry[2], entry[3]
        asn, country = net
        other_country = bool(country and first_country and country != first_country)
        other_asn = asn is not None and first_asn is not None and asn != first_asn
        if not (other_country or other_asn) or entry[6]:
            return ()
        anon = ip_risk(event)
        if other_country or anon is not None:
            severity = Severity.HIGH
        elif _is_mobile(event) or entry[7]:
            severity = Severity.LOW
        else:
            severity = Severity.MEDIUM
        entry[6] = 1
        prior = recent_risky_signin(ctx, event)
        if prior is not None and prior.get("record_id") == event.record_id:
            prior = None  # this very sign-in, marked by another sign-in detector: not an earlier sign
        risk = {"source": "risky_signin", **prior} if prior is not None else None
        severity = raise_for_risk(severity, risk)
        if severity.rank >= Severity.MEDIUM.rank:
            mark_risky_signin(ctx, event, "session_replay")
        change = "another country" if other_country else "another network"
        if anon is not None:
            change += f" ({anon})"
        summary = (
            f"Sign-in session of {event.user_display} first used from {entry[4]} ({first_country or '?'}, AS{first_asn}) "
            f"reused from {change}: {event.ip} ({country or '?'}, AS{asn}) by {event.record.Operation}"
        )
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{sid}",
                evidence=(str(entry[5]), event.record_id),
                first_seen=float(entry[0]),
                context={
                    "session_id": sid,
                    "first_ip": entry[4],
                    "first_asn": first_asn,
                    "first_country": first_country,
                    "first_seen": iso(float(entry[0])),
                    "reuse_ip": event.ip,
                    "reuse_asn": asn,
                    "reuse_country": country,
                    "reuse_ip_risk": anon,
                    "reuse_operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _trim(sessions: dict[str, list[Any]], now: float) -> None:
        for sid in [k for k, v in sessions.items() if now - float(v[1]) > SESSION_TTL_S]:
            sessions.pop(sid)
        while len(sessions) > MAX_SESSIONS:
            oldest = min(sessions, key=lambda k: float(sessions[k][1]))
            sessions.pop(oldest)
