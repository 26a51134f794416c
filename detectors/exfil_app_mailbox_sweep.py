"""One application reading many mailboxes other than its user's own: an app-only mail sweep.

An attacker who got an application permission (``Mail.Read`` consented, or a credential added to an
existing app) reads every mailbox through Graph or EWS with the app's token. ``MailItemsAccessed`` records
name the application (``AppId`` / ``ClientAppId``) and the mailbox (``MailboxOwnerUPN``). Per tenant and
application, the distinct mailboxes read in a day (reads of a user's own mailbox by that user's delegated
session are not counted; Microsoft's own mail clients are not judged) are compared with the application's
usual day:

* an application with `MIN_DAYS` of history alerts when a day reaches ``max(FLOOR, MULTIPLIER × its usual
  day)`` (high): a backup or archiving tool that reads every mailbox every day learns that as its usual day;
* an application first seen after the tenant's `LEARNING_S` alerts at `FLOOR` mailboxes (high);
  applications first seen while the tenant is learned are reported low.

Only `CAP` mailboxes are remembered per application and day (short hashes), so an application whose usual
day is above ``CAP / MULTIPLIER`` is not judged by volume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Learning, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.enrich.access import access_of
from shared.records.apps import KNOWN_APPS
from shared.records.event import Event

API_VIAS = frozenset({"rest", "graph", "ews"})
FLOOR = 20
MULTIPLIER = 3.0
CAP = 40
MIN_DAYS = 3
DAY_S = 86400.0
LEARNING_S = 7 * 86400
ALPHA = 0.2
MAX_APPS = 6
FORGET_S = 30 * 86400
SECTION = "exfil_app_mailbox_sweep"


def _mailbox_hash(owner: str) -> str:
    return hashlib.blake2b(owner.encode(), digest_size=4).hexdigest()


LEARNING = Learning(user_days=3, tenant_days=7)
"""Novelty: quiet (building the baseline) until the user and the tenant are known (``shared.detection.learning``)."""


class ExfilAppMailboxSweep(Detector):
    meta = DetectorMeta(
        id="exfil_app_mailbox_sweep",
        title="One application reading many mailboxes",
        description=(
            "An application read far more mailboxes in a day than it usually does (at least 20 and three times its "
            "usual day), or a new application read 20 mailboxes: application-permission mail collection."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.HIGH,
        mitre=("T1114.002", "T1098.003"),
        dedup_window=timedelta(hours=24),
        needs=(Need.MAILBOX_AUDIT, Need.TENANT_HISTORY),
        operations=frozenset({"mailitemsaccessed"}),
        learning=LEARNING,
        runbook=(
            "1. Identify the application (AppId in Entra ID > Enterprise applications): owner, who consented, its "
            "Mail.Read / full_access_as_app permissions and recent credential changes. 2. Ask the owner whether a "
            "migration, backup or e-discovery job ran. 3. If not: disable the service principal, remove its "
            "credentials and grants, restrict it with an application access policy, and list the mailboxes read "
            "(MailItemsAccessed by AppId) for notification." + " " + LEARNING.describe()
        ),
        reference="https://learn.microsoft.com/en-us/purview/audit-log-investigate-accounts",
        false_positives=("a backup, archiving or migration tool newly deployed",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        access = access_of(event)
        if access.via not in API_VIAS:
            return ()
        app = access.client_app_id
        if not app or (app in KNOWN_APPS and not access.is_public_client_tool):
            return ()
        owner = (event.record.MailboxOwnerUPN or "").strip().lower()
        uid = (event.record.UserId or "").strip().lower()
        if not owner or uid == owner:
            return ()  # a user's delegated session reading their own mailbox
        tenant = ctx.tenant_state(SECTION)
        since = float(tenant.setdefault("since", event.time))
        apps: dict[str, list[Any]] = tenant.setdefault("apps", {})
        entry = apps.get(app)
        if entry is None:
            entry = apps[app] = [event.time, [], None, 0, 0, event.time]
            self._trim(apps, event.time)
        if event.time - float(entry[0]) >= DAY_S:
            if entry[4] != 1:  # a day that alerted high stays out of the usual day; a learning-time report does not
                n = len(entry[1])
                avg = entry[2]
                entry[2] = round(float(n) if avg is None else float(avg) + ALPHA * (n - float(avg)), 2)
                entry[3] = int(entry[3]) + 1
            entry[0], entry[1], entry[4] = event.time, [], 0
        mailboxes: list[str] = entry[1]
        h = _mailbox_hash(owner)
        if h not in mailboxes and len(mailboxes) < CAP:
            mailboxes.append(h)
        learned = int(entry[3]) >= MIN_DAYS and entry[2] is not None
        threshold = max(float(FLOOR), MULTIPLIER * float(entry[2])) if learned else float(FLOOR)
        if entry[4] or len(mailboxes) < threshold:
            return ()
        if learned:
            severity, why = Severity.HIGH, f"usual {float(entry[2]):.0f} a day"
        elif float(entry[5]) - since < LEARNING_S:
            severity, why = Severity.LOW, "application first seen while the tenant was being learned"
        else:
            severity, why = Severity.HIGH, f"application first seen {iso(float(entry[5]))}"
        entry[4] = 1 if severity is Severity.HIGH else 2
        name = access.client_app_name or access.tool or app
        found = self.finding(
            event,
            summary=f"Application {name} read {len(mailboxes)} mailboxes since {iso(float(entry[0]))} ({why})",
            severity=severity,
            dedup_key=f"app|{app}",
            first_seen=float(entry[0]),
            context={
                "app_id": app,
                "app_name": access.client_app_name,
                "mailboxes": len(mailboxes),
                "threshold": threshold,
                "usual_per_day": entry[2] if learned else None,
                "days_learned": int(entry[3]),
                "via": access.via,
                "last_mailbox": owner,
            },
        )
        return (replace(found, user_key=None, user=name),)

    @staticmethod
    def _trim(apps: dict[str, list[Any]], now: float) -> None:
        for k in [k for k, v in apps.items() if now - float(v[0]) > FORGET_S]:
            apps.pop(k)
        while len(apps) > MAX_APPS:
            apps.pop(min(apps, key=lambda k: float(apps[k][0])))
