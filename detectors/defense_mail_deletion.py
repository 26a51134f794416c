"""Mail destroyed after a takeover: sent mail, security notices or a burst of messages deleted.

After a business-email-compromise send, attackers delete what the victim could notice: the phishing mail in
Sent Items, the replies, the "new sign-in", "MFA method added" and "inbox rule created" notices. Mailbox audit
writes ``HardDelete``, ``SoftDelete`` and ``MoveToDeletedItems`` with the folder (``Folder.Path``) and the
messages (``AffectedItems``: subject and parent folder). Per user:

* messages from Sent Items, or whose subject reads like a security notice (sign-in, verification code,
  password, MFA, security info, suspicious activity, new rule, new device...);
* a burst: `FLOOR` messages in an hour and ten times the user's usual deleting hour.

Each is low on its own (people clean their mailbox and empty newsletters) and high when the user had a risky
sign-in within `RISK_WINDOW_S`. Retention-policy deletions by the mailbox assistants are ignored. One alert per
user and day, raised to the worst of what followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.burst import add_volume
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

DELETE_OPS = frozenset({"harddelete", "softdelete", "movetodeleteditems"})
FLOOR = 50
MULTIPLIER = 10.0
RISK_WINDOW_S = 24 * 3600
NOTICE = re.compile(
    r"sign[- ]?in|log[- ]?in|verification code|verify|security|password|multi[- ]?factor|\bmfa\b|\b2fa\b|"
    r"authenticator|one[- ]time|passcode|unusual|suspicious|new (inbox )?rule|forwarding|account (activity|alert)|"
    r"new device|device (was )?(registered|added)",
    re.IGNORECASE,
)
SYSTEM_CLIENTS = re.compile(r"mailboxassistants|client=tba|managedfolderassistant", re.IGNORECASE)
SECTION = "defense_mail_deletion"


def _is_sent(path: str | None) -> bool:
    return bool(path) and (path or "").strip().strip("\\/").lower().endswith("sent items")


class DefenseMailDeletion(Detector):
    meta = DetectorMeta(
        id="defense_mail_deletion",
        title="Mail deleted after a risky sign-in",
        description=(
            "Messages were deleted from Sent Items, security notices (sign-in, MFA, password, new rule) were deleted, "
            "or a burst of mail was deleted; high when the user had a risky sign-in within a day: an attacker hiding "
            "the phishing they sent and the warnings the victim would see."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.LOW,
        mitre=("T1070.008",),
        dedup_window=timedelta(hours=24),
        needs=(Need.MAILBOX_AUDIT, Need.RISKY_SIGNIN),
        operations=DELETE_OPS,
        runbook=(
            "1. List the user's HardDelete/SoftDelete/MoveToDeletedItems records of the period: subjects, folders, "
            "client and IP, and compare the IP with the risky sign-in. 2. Recover the messages (Recoverable Items, "
            "or a content search) and read what was hidden: mail sent to customers, MFA or rule notices. 3. If the "
            "deletions were not the user's: revoke sessions, reset the password, warn the recipients of the deleted "
            "sent mail, and review inbox rules and MFA methods."
        ),
        reference="https://attack.mitre.org/techniques/T1070/008/",
        false_positives=("a user emptying newsletters or clearing their Sent Items",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.succeeded:
            return ()
        if SYSTEM_CLIENTS.search(event.record.ClientInfoString or ""):
            return ()
        items = event.affected_items
        folder = event.folder_path
        sent = [i for i in items if _is_sent(i.ParentFolder.Path if i.ParentFolder else folder)]
        sent_count = 1 if not items and _is_sent(folder) else len(sent)
        notices = [i.Subject for i in items if i.Subject and NOTICE.search(i.Subject)]
        state = ctx.state(event, SECTION)
        burst = add_volume(
            state,
            time=event.time,
            volume=max(1, len(items)),
            record_id=event.record_id,
            floor=FLOOR,
            multiplier=MULTIPLIER,
        )
        risk = risk_of(ctx, event, within_s=RISK_WINDOW_S)
        reasons: list[str] = []
        if burst is not None:
            reasons.append(f"{burst.volume} messages deleted in under an hour")
        if notices:
            reasons.append(f"{len(notices)} security notice" + ("s" if len(notices) > 1 else ""))
        if sent_count and risk is not None:
            reasons.append(f"{sent_count} messages from Sent Items")
        if not reasons:
            return ()
        severity = raise_for_risk(self.meta.severity, risk, steps=2)
        evidence = burst.evidence if burst is not None else (event.record_id,)
        return (
            self.finding(
                event,
                summary=f"{event.user_display} deleted mail ({event.record.Operation}): "
                + "; ".join(reasons)
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|mail_deletion",
                evidence=evidence,
                first_seen=burst.start if burst is not None else None,
                context={
                    "operation": event.record.Operation,
                    "folder": folder,
                    "messages": max(1, len(items)),
                    "burst": burst.volume if burst is not None else None,
                    "sent_items": sent_count,
                    "notice_subjects": notices[:5],
                    "client": event.record.ClientInfoString,
                    "risk": risk_context(risk),
                },
            ),
        )
