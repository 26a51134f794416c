"""A burst of guest invitations by one account: outsiders let in wholesale.

An attacker with a user's session invites their own accounts as guests (to keep access after the password reset,
to share files out, or to phish colleagues from "inside"). One invitation is ordinary; many from one account in an
hour are not. Read from "Invite external user." (and "Add user." of a user whose type becomes Guest) in the Entra
directory records; the invitee is the ``Target`` address.

`MIN_INVITES` invitations by one account within `WINDOW_S` are medium, `HIGH_INVITES` high; a risky sign-in of
the inviter shortly before (or a risky address) raises one step. The alert names the invitees (up to ten) and
grows while the burst goes on. State: the inviter's recent invitations (bounded).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import actor_display, raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

INVITE_OP = "invite external user"
ADD_USER_OP = "add user"
WINDOW_S = 3600
MIN_INVITES = 10
HIGH_INVITES = 25
MAX_KEPT = 30


def _invitee(event: Event) -> str:
    for t in event.targets:
        if t.ID and "@" in t.ID:
            return t.ID.lower()
    return (event.record.ObjectId or "").strip().lower() or "unknown"


def _is_guest_add(event: Event) -> bool:
    new = event.modified_properties.get("usertype", ("", ""))[1]
    return "guest" in new.lower()


class PrivilegeGuestInvitationBurst(Detector):
    meta = DetectorMeta(
        id="privilege_guest_invitation_burst",
        title="Burst of guest invitations",
        description=(
            f"One account invited at least {MIN_INVITES} external guests within an hour: outside accounts let into "
            "the tenant wholesale, to keep access, share data out or phish users from inside."
        ),
        category=Category.PRIVILEGE_CHANGE,
        severity=Severity.MEDIUM,
        mitre=("T1136.003", "T1098"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({INVITE_OP, ADD_USER_OP}),
        needs=(Need.DIRECTORY, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the guests the account invited (Entra ID > Users, filter User type = Guest, sort by creation "
            "time; or the audit log for 'Invite external user' by the inviter). 2. Ask the inviter and their manager "
            "whether a project needs them; check the inviter's sign-ins just before. 3. If not: delete or block the "
            "guests, revoke the inviter's sessions and reset the password, and review what was shared with the "
            "guests (SharePoint sharing, Teams membership)."
        ),
        reference="https://learn.microsoft.com/en-us/entra/external-id/external-collaboration-settings-configure",
        false_positives=("an event or project onboarding many partner users at once",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or event.user_key is None:
            return ()
        if event.op == ADD_USER_OP and not _is_guest_add(event):
            return ()
        state = ctx.state(event, self.meta.id)
        kept: list[Any] = [
            e
            for e in state.get("invites") or []
            if isinstance(e, list) and len(e) == 3 and event.time - float(e[0]) <= WINDOW_S
        ]
        kept.append([event.time, event.record_id, _invitee(event)])
        state["invites"] = kept[-MAX_KEPT:]
        count = len(kept)
        if count < MIN_INVITES:
            return ()
        risk = risk_of(ctx, event)
        base = Severity.HIGH if count >= HIGH_INVITES else Severity.MEDIUM
        severity = raise_for_risk(base, risk)
        invitees = list(dict.fromkeys(str(e[2]) for e in kept))
        recent = kept[-10:]
        return (
            self.finding(
                event,
                summary=f"{actor_display(event)} invited {count} guests within an hour" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|guest_burst",
                evidence=[str(e[1]) for e in recent],
                first_seen=float(kept[0][0]),
                context={"invitations": count, "invitees": invitees[:10], "risk": risk_context(risk)},
            ),
        )
