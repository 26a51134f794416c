"""A burst of mail read well above the user's own baseline, or mail-access logging throttled.

Counts the message items of ``MailItemsAccessed`` Bind records (a Sync by Outlook, OWA or
ActiveSync is the client caching a folder and is not counted; a Sync by any other client counts
as one item per folder) in hourly buckets per user. An hour alerts when it reaches
``max(FLOOR, MULTIPLIER × the user's usual active hour)``. Purview stops logging
MailItemsAccessed for a mailbox for 24 hours after more than 1,000 records in a day and marks
the last records ``IsThrottled``: the real volume is then unknown and larger, so a throttled
mailbox is reported on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.burst import add_volume
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import access_of
from shared.records.event import Event, as_bool

FLOOR = 500
MULTIPLIER = 10.0
CLIENT_CACHE_VIAS = frozenset({"outlook", "owa", "activesync"})
THROTTLE_RENOTIFY_S = 24 * 3600


class ExfilMassMailAccess(Detector):
    meta = DetectorMeta(
        id="exfil_mass_mail_access",
        title="Mass mailbox access",
        description=(
            "A user's mailbox was read far above their normal volume in one hour (at least 500 items and ten times "
            "their usual active hour), or MailItemsAccessed logging was throttled for the mailbox."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.HIGH,
        mitre=("T1114.002",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"mailitemsaccessed"}),
        needs=(Need.MAILBOX_AUDIT, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. Group the user's MailItemsAccessed records of that hour by ClientInfoString, AppId, SessionId and "
            "ClientIPAddress to find the client that read. 2. A Graph/EWS client, an unknown app or an unusual IP "
            "means export: revoke the user's sessions, remove the app's consent, reset the password. 3. List the "
            "InternetMessageIds read to scope the notification; if logging was throttled, use a Purview audit search "
            "or message trace to fill the gap."
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-investigate-accounts",
        false_positives=("a new device or Outlook profile downloading the mailbox through a non-Outlook client",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None:
            return ()
        access = access_of(event)
        state = ctx.state(event, self.meta.id)
        out: list[Finding] = []
        props = event.operation_properties
        throttled = as_bool(props.get("isthrottled")) is True
        if throttled:
            last = state.get("throttled")
            state["throttled"] = event.time
            if not (isinstance(last, int | float) and event.time - float(last) <= THROTTLE_RENOTIFY_S):
                out.append(self._throttled(event, ctx, access.via, access.client_app_name or access.client_app_id))
        access_type = (props.get("mailaccesstype") or "").lower()
        folders = event.record.Folders or []
        if access_type == "sync":
            volume = 0 if access.via in CLIENT_CACHE_VIAS else max(1, len(folders))
        else:
            volume = 0
            for f in folders:
                items = f.FolderItems
                if items:
                    volume += len(items)
        if volume <= 0:
            return out
        burst = add_volume(
            state, time=event.time, volume=volume, record_id=event.record_id, floor=FLOOR, multiplier=MULTIPLIER
        )
        if burst is None:
            return out
        risk = risk_of(ctx, event)
        severity = Severity.CRITICAL if access.is_public_client_tool else Severity.HIGH
        severity = raise_for_risk(severity, risk) if severity is Severity.HIGH else severity
        usual = f"usual {burst.baseline:.0f}" if burst.baseline is not None else "no baseline yet"
        out.append(
            self.finding(
                event,
                summary=(
                    f"{burst.volume} mail items read from {event.record.MailboxOwnerUPN or event.user_display} in "
                    f"under an hour ({usual}) via {access.via}" + risk_note(risk)
                ),
                severity=severity,
                dedup_key=f"{event.user_key}|volume",
                evidence=burst.evidence,
                first_seen=burst.start,
                context={
                    "items": burst.volume,
                    "threshold": round(burst.threshold, 1),
                    "baseline_per_hour": None if burst.baseline is None else round(burst.baseline, 1),
                    "hours_learned": burst.hours_learned,
                    "window_start": iso(burst.start),
                    "via": access.via,
                    "client_app_id": access.client_app_id,
                    "client_app_name": access.client_app_name,
                    "risk": risk_context(risk),
                },
            )
        )
        return out

    def _throttled(self, event: Event, ctx: DetectionContext, via: str, client: str | None) -> Finding:
        risk = risk_of(ctx, event)
        severity = Severity.HIGH if via in ("rest", "ews", "graph") else Severity.MEDIUM
        severity = raise_for_risk(severity, risk)
        return self.finding(
            event,
            summary=(
                f"MailItemsAccessed logging throttled for {event.record.MailboxOwnerUPN or event.user_display} "
                f"(over 1,000 mail-access records in 24 hours; last client {via})" + risk_note(risk)
            ),
            severity=severity,
            dedup_key=f"{event.user_key}|throttled",
            context={"via": via, "client": client, "risk": risk_context(risk)},
        )
