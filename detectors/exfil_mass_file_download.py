"""A burst of SharePoint/OneDrive downloads well above the user's own baseline.

Counts ``FileDownloaded`` records per user in hourly buckets (sync-client downloads,
``FileSyncDownloadedFull``, are a new device filling its cache and are judged by
``exfil_sync_new_client``). An hour alerts when it reaches ``max(FLOOR, MULTIPLIER × the user's usual
active hour)``; the bucket that alerted is kept out of the baseline. After a risky sign-in of the user (or
from an anonymous or hosting address) the floor drops to `RISKY_FLOOR`: a taken-over account's
download burst is smaller than a script's and still well above the user's own habit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.burst import add_volume
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import access_of
from shared.records.event import Event

FLOOR = 150
RISKY_FLOOR = 40
MULTIPLIER = 10.0


class ExfilMassFileDownload(Detector):
    meta = DetectorMeta(
        id="exfil_mass_file_download",
        title="Mass file download",
        description=(
            "A user downloaded far more SharePoint or OneDrive files in one hour than usual (at least 150, or 40 "
            "after a risky sign-in, and ten times their usual active hour)."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.HIGH,
        mitre=("T1530", "T1213.002"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"filedownloaded"}),
        needs=(Need.SHAREPOINT, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the user's FileDownloaded records of that hour: sites, file names, user agent and IP. 2. A script "
            "user agent, an unusual IP or a site the user rarely opens means exfiltration: revoke sessions, reset the "
            "password, and block the IP. 3. Ask the site owners which files are sensitive and whether sharing links "
            "were created in the same session (SharingSet, AnonymousLinkCreated)."
        ),
        reference="https://attack.mitre.org/techniques/T1530/",
        false_positives=("a user copying a project library to a new laptop through the browser",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None:
            return ()
        state = ctx.state(event, self.meta.id)
        risk = risk_of(ctx, event)
        floor = FLOOR if risk is None else RISKY_FLOOR
        burst = add_volume(
            state, time=event.time, volume=1, record_id=event.record_id, floor=floor, multiplier=MULTIPLIER
        )
        if burst is None:
            return ()
        access = access_of(event)
        base = Severity.CRITICAL if access.is_public_client_tool else Severity.HIGH
        severity = raise_for_risk(base, risk) if base is Severity.HIGH else base
        usual = f"usual {burst.baseline:.0f}" if burst.baseline is not None else "no baseline yet"
        return (
            self.finding(
                event,
                summary=f"{event.user_display} downloaded {burst.volume} files in under an hour ({usual})"
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|downloads",
                evidence=burst.evidence,
                first_seen=burst.start,
                context={
                    "files": burst.volume,
                    "threshold": round(burst.threshold, 1),
                    "baseline_per_hour": None if burst.baseline is None else round(burst.baseline, 1),
                    "hours_learned": burst.hours_learned,
                    "window_start": iso(burst.start),
                    "site": event.record.SiteUrl,
                    "user_agent": event.user_agent,
                    "user_agent_family": access.user_agent_family,
                    "risk": risk_context(risk),
                },
            ),
        )
