"""Mailbox delegation an attacker uses to keep reading or sending as a victim.

* ``Add-MailboxPermission -AccessRights FullAccess`` (``-AutoMapping $false`` hides the mailbox
  from the grantee's Outlook: raised);
* ``Add-RecipientPermission -AccessRights SendAs``;
* ``Add-/Set-MailboxFolderPermission`` giving ``Default`` (every user) or ``Anonymous`` read rights
  on the Inbox, the top of the mailbox or Sent Items (calendar sharing is not reported).

Grants made by the Exchange system account, to the mailbox itself, and folder rights of None,
AvailabilityOnly or LimitedDetails are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.detection.model import Category, DetectorMeta, Finding, Need, Severity
from shared.records.event import Event
from shared.records.exchange import is_system_account

FOLDER_OPS = frozenset({"add-mailboxfolderpermission", "set-mailboxfolderpermission"})
MAIL_FOLDERS = frozenset({"", "inbox", "top of information store", "sent items", "msgfolderroot"})
HARMLESS_FOLDER_RIGHTS = frozenset({"none", "availabilityonly", "limiteddetails"})
EVERYONE = frozenset({"default", "anonymous"})


def _rights(value: str) -> list[str]:
    return [r for r in (x.strip().strip("\"'[]") for x in value.replace(";", ",").split(",")) if r]


class ExchangeMailboxPermissionGrant(Detector):
    meta = DetectorMeta(
        id="exchange_mailbox_permission_grant",
        title="Mailbox access delegated",
        description=(
            "FullAccess or SendAs was granted on a mailbox, or the Default/Anonymous user was given rights on its "
            "Inbox or top folder: ways to keep reading or sending as the victim without their password."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.MEDIUM,
        mitre=("T1098.002",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"add-mailboxpermission", "add-recipientpermission"}) | FOLDER_OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.TENANT_CONFIG, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the mailbox's delegates: Get-MailboxPermission <mailbox> | ? {$_.IsInherited -eq $false}; "
            "Get-RecipientPermission <mailbox>; Get-MailboxFolderPermission <mailbox>:\\Inbox. 2. Confirm with the "
            "mailbox owner's manager that the grantee should have access (shared mailboxes and assistants are "
            "normal). 3. If not: remove it (Remove-MailboxPermission / Remove-RecipientPermission / "
            "Remove-MailboxFolderPermission), and investigate the admin account that made the grant."
        ),
        reference="https://attack.mitre.org/techniques/T1098/002/",
        false_positives=("shared mailboxes and executive assistants being set up",),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        p = event.parameters
        if event.op in FOLDER_OPS:
            return self._folder(event, ctx)
        mailbox = p.get("identity") or event.record.ObjectId or ""
        if event.op == "add-mailboxpermission":
            rights = _rights(p.get("accessrights", ""))
            if not any(r.lower() == "fullaccess" for r in rights):
                return ()
            grantee = p.get("user") or ""
            kind = "FullAccess"
        else:
            rights = _rights(p.get("accessrights", ""))
            if not any(r.lower() == "sendas" for r in rights):
                return ()
            grantee = p.get("trustee") or ""
            kind = "SendAs"
        if not grantee or grantee.strip().lower() == mailbox.strip().lower():
            return ()
        reasons: list[str] = []
        severity = Severity.MEDIUM
        home = home_domains_of(mailbox, event.upn)
        if "@" in grantee and not is_internal_recipient(grantee, ctx.tenant, home_domains=home):
            severity = severity.upgrade()
            reasons.append("grantee is outside the tenant")
        automap = p.get("automapping")
        if kind == "FullAccess" and automap is not None and automap.strip().lower() in ("false", "$false"):
            severity = Severity.HIGH
            reasons.append("AutoMapping off: hidden from the grantee's Outlook")
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk)
        summary = f"{event.user_display} granted {grantee} {kind} on {mailbox}"
        if reasons:
            summary += " (" + "; ".join(reasons) + ")"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{grantee.lower()}|{kind.lower()}",
                context={
                    "mailbox": mailbox,
                    "grantee": grantee,
                    "permission": kind,
                    "access_rights": rights,
                    "reasons": reasons,
                    "risk": risk_context(risk),
                },
            ),
        )

    def _folder(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        p = event.parameters
        identity = p.get("identity") or ""
        user = (p.get("user") or "").strip()
        if user.lower() not in EVERYONE:
            return ()
        mailbox, _, path = identity.partition(":")
        folder = path.strip().strip("\\/").lower()
        if folder not in MAIL_FOLDERS:
            return ()
        rights = _rights(p.get("accessrights", ""))
        if not rights or all(r.lower() in HARMLESS_FOLDER_RIGHTS for r in rights):
            return ()
        risk = risk_of(ctx, event)
        severity = raise_for_risk(Severity.HIGH, risk)
        shown = path.strip() or "\\"
        return (
            self.finding(
                event,
                summary=(
                    f"{event.user_display} gave {user} {', '.join(rights)} on {mailbox}:{shown}: "
                    "every user can read this mailbox folder"
                    + (" without signing in" if user.lower() == "anonymous" else "")
                    + risk_note(risk)
                ),
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{folder}|{user.lower()}",
                context={
                    "mailbox": mailbox,
                    "folder": shown,
                    "grantee": user,
                    "permission": "FolderPermission",
                    "access_rights": rights,
                    "reasons": [],
                    "risk": risk_context(risk),
                },
            ),
        )
