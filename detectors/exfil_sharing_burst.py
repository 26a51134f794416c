"""A burst of anonymous links or sharing invitations to outsiders from one user.

Counts, per user and hour, ``AnonymousLinkCreated`` ("Anyone" links) and ``SharingInvitationCreated`` to a
guest or an address outside the tenant (``TargetUserOrGroupType`` Guest/Partner, or a domain that is not
internal). An hour alerts when it reaches ``max(FLOOR, MULTIPLIER × the user's usual active hour)`` (medium;
high when anonymous links are among them); after a risky sign-in of the user the floor drops to
`RISKY_FLOOR` and the severity is raised one step. One file shared with a partner is what sharing is for and
never alerts on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.burst import add_volume
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.records.event import Event

ANONYMOUS = "anonymouslinkcreated"
INVITATION = "sharinginvitationcreated"
EXTERNAL_TYPES = frozenset({"guest", "partner"})
FLOOR = 10
RISKY_FLOOR = 5
MULTIPLIER = 5.0
SECTION = "exfil_sharing_burst"


def _external_target(event: Event, ctx: DetectionContext) -> str | None:
    """The outside recipient of a sharing invitation, or None when it is internal (or unnamed and not a guest)."""
    target = (event.record.TargetUserOrGroupName or "").strip()
    kind = (event.record.TargetUserOrGroupType or "").strip().lower()
    if kind in EXTERNAL_TYPES:
        return target or kind
    if "@" in target and not is_internal_recipient(target, ctx.tenant, home_domains=home_domains_of(event.upn)):
        return target
    return None


class ExfilSharingBurst(Detector):
    meta = DetectorMeta(
        id="exfil_sharing_burst",
        title="Burst of anonymous links or external sharing",
        description=(
            "A user created far more Anyone links or sharing invitations to outsiders in one hour than usual (at "
            "least 10, or 5 after a risky sign-in, and five times their usual active hour)."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.MEDIUM,
        mitre=("T1567", "T1213.002"),
        dedup_window=timedelta(hours=24),
        needs=(Need.SHAREPOINT, Need.TENANT_CONFIG, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        operations=frozenset({ANONYMOUS, INVITATION}),
        runbook=(
            "1. List the user's AnonymousLinkCreated and SharingInvitationCreated records of that hour: files, link "
            "types, recipients, IP and user agent. 2. Ask the user (on a known channel) whether they shared these. "
            "3. If not: remove the links and guest permissions (site Sharing > Manage access, or "
            "Remove-PnPFileSharingLink), revoke the user's sessions, reset the password, and check whether the links "
            "were used (AnonymousLinkUsed, FileAccessed by guests) to scope the notification."
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-sharing",
        false_positives=("a project manager sharing a folder's files with a new partner one by one",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.succeeded:
            return ()
        if event.op == INVITATION:
            target = _external_target(event, ctx)
            if target is None:
                return ()
        else:
            target = "anyone"
        state = ctx.state(event, SECTION)
        targets: list[str] = state.setdefault("t", [])
        anon = int(state.get("a") or 0)
        bucket = state.get("b")
        if not isinstance(bucket, list) or len(bucket) != 5 or event.time - float(bucket[0]) >= 3600:
            targets.clear()
            anon = 0
        if target not in targets and len(targets) < 5:
            targets.append(target)
        state["a"] = anon + (1 if event.op == ANONYMOUS else 0)
        risk = risk_of(ctx, event)
        burst = add_volume(
            state,
            time=event.time,
            volume=1,
            record_id=event.record_id,
            floor=FLOOR if risk is None else RISKY_FLOOR,
            multiplier=MULTIPLIER,
        )
        if burst is None:
            return ()
        anonymous = int(state["a"])
        severity = Severity.HIGH if anonymous else self.meta.severity
        severity = raise_for_risk(severity, risk)
        usual = f"usual {burst.baseline:.0f}" if burst.baseline is not None else "no baseline yet"
        kinds = f"{anonymous} Anyone links" if anonymous else "no Anyone links"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} shared {burst.volume} items outside the tenant in under an hour "
                f"({kinds}; {usual})" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|sharing",
                evidence=burst.evidence,
                first_seen=burst.start,
                context={
                    "shares": burst.volume,
                    "anonymous_links": anonymous,
                    "recipients": list(targets),
                    "threshold": round(burst.threshold, 1),
                    "baseline_per_hour": None if burst.baseline is None else round(burst.baseline, 1),
                    "window_start": iso(burst.start),
                    "site": event.record.SiteUrl,
                    "risk": risk_context(risk),
                },
            ),
        )
