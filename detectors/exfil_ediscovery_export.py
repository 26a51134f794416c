"""Mail and files taken out through eDiscovery or a mailbox export.

An attacker with a compliance or Exchange admin role (or who granted one) collects mail wholesale through the
tools meant for legal holds:

* ``New-ComplianceSearch`` (remembered per user: name, whether it spans every mailbox or site, the query) and
  ``New-ComplianceSearchAction -Export``, ``SearchExported`` / ``SearchExportDownloaded`` (the export of a
  search and its download): medium, one step more when the search spans all locations, one step more after
  a risky sign-in of the user;
* ``New-MailboxExportRequest`` (a mailbox to a PST file) and ``Search-Mailbox -TargetMailbox`` (results copied
  into another mailbox): high, one step more after a risky sign-in.

A search that is never exported (a compliance officer looking for a message) and purge or preview actions are
not reported. The Security & Compliance Center logs cmdlet parameters as one line (``-SearchName "x" -Export``),
parsed at the edge by ``shared.records.event.cmdlet_parameters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.records.event import Event

NEW_SEARCH = "new-compliancesearch"
SEARCH_ACTION = "new-compliancesearchaction"
EXPORTED = frozenset({"searchexported", "searchexportdownloaded"})
MAILBOX_EXPORT = "new-mailboxexportrequest"
SEARCH_MAILBOX = "search-mailbox"
SEARCH_MEMORY_S = 7 * 86400
MAX_SEARCHES = 8
SECTION = "exfil_ediscovery_export"


def _is_all(value: str | None) -> bool:
    return bool(value) and any(v.strip().strip("\"'").lower() == "all" for v in (value or "").split(","))


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("false", "$false", "0")


class ExfilEdiscoveryExport(Detector):
    meta = DetectorMeta(
        id="exfil_ediscovery_export",
        title="Mail exported through eDiscovery or a mailbox export",
        description=(
            "A content search was exported (New-ComplianceSearchAction -Export, SearchExported, "
            "SearchExportDownloaded), a mailbox was exported to PST (New-MailboxExportRequest) or copied into another "
            "mailbox (Search-Mailbox -TargetMailbox): bulk mail collection through legal-hold tools."
        ),
        category=Category.DATA_EXFILTRATION,
        severity=Severity.MEDIUM,
        mitre=("T1114.002", "T1530"),
        dedup_window=timedelta(hours=24),
        needs=(Need.GENERAL, Need.EXCHANGE_ADMIN, Need.RISKY_SIGNIN),
        operations=frozenset({NEW_SEARCH, SEARCH_ACTION, MAILBOX_EXPORT, SEARCH_MAILBOX}) | EXPORTED,
        runbook=(
            "1. Confirm with the legal or compliance team that an eDiscovery case or export was requested (case name, "
            "search name, custodians). 2. Review the search: Get-ComplianceSearch <name> | fl ExchangeLocation,"
            "ContentMatchQuery; and who holds eDiscovery Manager or Mailbox Import Export roles. 3. If not "
            "requested: remove the export (Remove-ComplianceSearchAction), revoke the user's sessions and role, reset "
            "the password, and treat the searched mailboxes as disclosed."
        ),
        reference="https://learn.microsoft.com/en-us/purview/ediscovery-search-for-activities-in-the-audit-log",
        false_positives=("legal holds and subject-access requests exported by the compliance team",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.succeeded:
            return ()
        p = event.parameters
        if event.op == NEW_SEARCH:
            self._remember(event, ctx, p)
            return ()
        if event.op == SEARCH_ACTION:
            if not _truthy(p.get("export")) or _truthy(p.get("purge")):
                return ()
            return self._export(event, ctx, p.get("searchname") or p.get("name") or event.record.ObjectId or "")
        if event.op in EXPORTED:
            return self._export(event, ctx, event.record.ObjectId or "")
        if event.op == MAILBOX_EXPORT:
            mailbox = p.get("mailbox") or p.get("identity") or event.record.ObjectId or ""
            where = p.get("filepath") or ""
            return self._mailbox(event, ctx, "mailbox export", mailbox, f"to {where}" if where else "to a PST file")
        target = p.get("targetmailbox")
        if not target:
            return ()
        mailbox = p.get("identity") or event.record.ObjectId or ""
        return self._mailbox(event, ctx, "Search-Mailbox copy", mailbox, f"into {target}")

    def _remember(self, event: Event, ctx: DetectionContext, p: Mapping[str, str]) -> None:
        name = (p.get("name") or event.record.ObjectId or "").strip()
        if not name:
            return
        spans_all = _is_all(p.get("exchangelocation")) or _is_all(p.get("sharepointlocation"))
        searches: dict[str, list[Any]] = ctx.state(event, SECTION).setdefault("s", {})
        searches[name.lower()] = [event.time, 1 if spans_all else 0, (p.get("contentmatchquery") or "")[:80]]
        for k in [k for k, v in searches.items() if event.time - float(v[0]) > SEARCH_MEMORY_S]:
            searches.pop(k)
        while len(searches) > MAX_SEARCHES:
            searches.pop(min(searches, key=lambda k: float(searches[k][0])))

    def _export(self, event: Event, ctx: DetectionContext, search: str) -> Iterable[Finding]:
        search = search.strip()
        known = ctx.peek_state(event, SECTION).get("s", {}).get(search.lower())
        spans_all = isinstance(known, list) and len(known) == 3 and bool(known[1])
        query = str(known[2]) if isinstance(known, list) and len(known) == 3 else None
        risk = risk_of(ctx, event)
        severity = self.meta.severity.upgrade() if spans_all else self.meta.severity
        severity = raise_for_risk(severity, risk)
        scope = " spanning every mailbox or site" if spans_all else ""
        return (
            self.finding(
                event,
                summary=f"{event.user_display} exported content search {search or '(unnamed)'}{scope} "
                f"({event.record.Operation})" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|search|{search.lower()}",
                context={
                    "kind": "content search export",
                    "search": search or None,
                    "all_locations": spans_all,
                    "query": query,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )

    def _mailbox(self, event: Event, ctx: DetectionContext, kind: str, mailbox: str, where: str) -> Iterable[Finding]:
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.HIGH, risk)
        return (
            self.finding(
                event,
                summary=f"{event.user_display} started a {kind} of {mailbox or 'a mailbox'} {where}" + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{kind}|{mailbox.lower()}",
                context={
                    "kind": kind,
                    "mailbox": mailbox or None,
                    "destination": where,
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
