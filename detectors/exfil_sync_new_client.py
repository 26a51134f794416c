"""A whole library or mailbox synced to a device or client new to the user.

Two records say a store is being copied wholesale to a client:

* ``FileSyncDownloadedFull``: the OneDrive sync client downloading a file to a machine (``MachineId``; the
  user agent when the record has none);
* ``MailItemsAccessed`` with ``MailAccessType`` Sync: a mail client caching a folder, by any client but
  Outlook and Outlook on the web (the application id, else the client protocol from ``ClientInfoString``).

Each user's clients are remembered (`MAX_CLIENTS`, for `FORGET_S`). A client seen for the first time opens a
`NEW_WINDOW_S` window; when it syncs `FILE_FLOOR` files or `FOLDER_FLOOR` mail folders inside it, the detector
reports once. On its own this is how a new laptop or phone starts (low); a risky sign-in of the user within
`RISK_WINDOW_S` raises it two steps (high), and a command-line or attack tool starts at high. The user's first
`LEARN_S` of sync activity teaches their existing clients and only reports when there is risk.
``exfil_mass_file_download`` leaves sync downloads out on purpose; ``exfil_mass_mail_access`` counts reads, not
the first sync of a new client: this detector covers what they leave.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.enrich.access import access_of
from shared.records.apps import KNOWN_APPS
from shared.records.event import Event

FILE_SYNC = "filesyncdownloadedfull"
MAIL_READ = "mailitemsaccessed"
FILE_FLOOR = 200
FOLDER_FLOOR = 8
NEW_WINDOW_S = 24 * 3600
RISK_WINDOW_S = 24 * 3600
LEARN_S = 3 * 86400
FORGET_S = 60 * 86400
MAX_CLIENTS = 10
MAX_EVIDENCE = 3
MICROSOFT_MAIL_VIAS = frozenset({"outlook", "owa"})
MICROSOFT_MAIL_KINDS = frozenset({"outlook", "web", "office", "teams"})
SECTION = "exfil_sync_new_client"


def _client(event: Event) -> tuple[str, str, str] | None:
    """(store, client key, client shown) of a sync record; None when the record is not a sync by a client we judge."""
    if event.op == FILE_SYNC:
        machine = (event.record.MachineId or "").strip().lower()
        ua = event.user_agent.strip()
        if machine:
            return "files", f"m:{machine}", f"machine {machine}" + (f" ({ua})" if ua else "")
        if ua:
            return "files", f"ua:{ua.lower()[:80]}", ua
        return None
    if (event.operation_properties.get("mailaccesstype") or "").strip().lower() != "sync":
        return None
    access = access_of(event)
    if access.via in MICROSOFT_MAIL_VIAS:
        return None
    app = access.client_app_id
    known = KNOWN_APPS.get(app) if app else None
    if known is not None and known.kind in MICROSOFT_MAIL_KINDS:
        return None
    name = access.tool or access.client_app_name or (known.name if known else None)
    if app:
        return "mail", f"app:{app}", f"{name or app} via {access.via}"
    info = (event.record.ClientInfoString or "").strip()
    return "mail", f"via:{access.via}", f"{access.via} client" + (f" ({info[:80]})" if info else "")


LEARNING = Learning(user_days=3, tenant_days=3)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class ExfilSyncNewClient(Detector):
    meta = DetectorMeta(
        id="exfil_sync_new_client",
        title="Library or mailbox synced to a new client",
        description=(
            "A device or mail client new to the user synced a whole library (OneDrive sync FileSyncDownloadedFull of "
            "200 files) or mailbox (MailItemsAccessed Sync of 8 folders by a client other than Outlook) within a day "
            "of first appearing; raised when the user had a risky sign-in, the bulk copy that follows a takeover."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.LOW,
        mitre=("T1530", "T1114.002", "T1213.002"),
        dedup_window=timedelta(hours=24),
        needs=(Need.SHAREPOINT, Need.MAILBOX_AUDIT, Need.USER_HISTORY, Need.RISKY_SIGNIN),
        operations=frozenset({FILE_SYNC, MAIL_READ}),
        learning=LEARNING,
        runbook=(
            "1. Identify the client: the MachineId (Entra ID > Devices, Intune) or the mail application id and its "
            "consent, the IP and user agent of the sync records. 2. Ask the user whether they set up a new device or "
            "mail app that day. 3. If not: revoke the user's sessions, disable the device or remove the app's consent, "
            "reset the password, and list the files or folders synced (search the audit log for the MachineId or "
            "SessionId) to scope the notification." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-activities#file-and-page-activities",
        false_positives=("a new laptop's OneDrive client or a new phone's mail app filling its cache",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.succeeded:
            return ()
        got = _client(event)
        if got is None:
            return ()
        store, key, shown = got
        volume = 1 if store == "files" else max(1, len(event.record.Folders or []))
        state = ctx.state(event, SECTION)
        since = float(state.setdefault("since", event.time))
        clients: dict[str, list[Any]] = state.setdefault("c", {})
        entry = clients.get(key)
        if entry is None or event.time - float(entry[1]) > FORGET_S:
            learning = event.time - since < LEARN_S
            entry = clients[key] = [event.time, event.time, 0, 1 if learning else 0, []]
            self._trim(clients, event.time)
        entry[1] = max(float(entry[1]), event.time)
        if entry[3] or event.time - float(entry[0]) > NEW_WINDOW_S:
            return self._while_learning(event, ctx, entry, store, key, shown, volume)
        return self._count(event, ctx, entry, store, key, shown, volume, learning=False)

    def _while_learning(
        self, event: Event, ctx: DetectionContext, entry: list[Any], store: str, key: str, shown: str, volume: int
    ) -> Iterable[Finding]:
        """A client known (or learned) already: only a learning-time client inside its first window with risk counts."""
        if entry[3] != 1 or event.time - float(entry[0]) > NEW_WINDOW_S:
            return ()
        return self._count(event, ctx, entry, store, key, shown, volume, learning=True)

    def _count(
        self,
        event: Event,
        ctx: DetectionContext,
        entry: list[Any],
        store: str,
        key: str,
        shown: str,
        volume: int,
        *,
        learning: bool,
    ) -> Iterable[Finding]:
        entry[2] = int(entry[2]) + volume
        evidence: list[str] = entry[4]
        if len(evidence) < MAX_EVIDENCE:
            evidence.append(event.record_id)
        floor = FILE_FLOOR if store == "files" else FOLDER_FLOOR
        if int(entry[2]) < floor:
            return ()
        risk = risk_of(ctx, event, within_s=RISK_WINDOW_S)
        if learning and risk is None:
            return ()
        entry[3] = 2  # reported (or judged): once per client
        access = access_of(event)
        base = Severity.HIGH if access.is_public_client_tool else self.meta.severity
        severity = raise_for_risk(base, risk, steps=2) if base is Severity.LOW else raise_for_risk(base, risk)
        what = f"{entry[2]} files" if store == "files" else f"{entry[2]} mail folders"
        started = iso(float(entry[0]))
        return (
            self.finding(
                event,
                summary=f"{event.user_display} synced {what} to a new client, {shown}, first seen {started}"
                + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{key}",
                evidence=list(evidence),
                first_seen=float(entry[0]),
                context={
                    "store": store,
                    "client": shown,
                    "client_key": key,
                    "synced": int(entry[2]),
                    "threshold": floor,
                    "client_first_seen": started,
                    "user_agent": event.user_agent or None,
                    "risk": risk_context(risk),
                },
            ),
        )

    @staticmethod
    def _trim(clients: dict[str, list[Any]], now: float) -> None:
        for k in [k for k, v in clients.items() if now - float(v[1]) > FORGET_S]:
            clients.pop(k)
        while len(clients) > MAX_CLIENTS:
            clients.pop(min(clients, key=lambda k: float(clients[k][1])))
