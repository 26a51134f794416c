"""Mailbox delegation an attacker uses to keep reading or sending as a victim.

* ``Add-MailboxPermission -AccessRights FullAccess`` (``-AutoMapping $false`` hides the mailbox
  from the grantee's Outlook: raised);
* ``Add-RecipientPermission -AccessRights SendAs``;
* ``Add-/Set-MailboxFolderPermission`` giving ``Default`` (every user) or ``Anonymous`` read rights
  on the Inbox, the top of the mailbox or Sent Items (high);
* ``Add-/Set-MailboxFolderPermission`` giving one named user rights on a mail folder (low: assistants
  are given Inbox access; one step more for a grantee outside the tenant);
* ``Set-Mailbox -GrantSendOnBehalfTo`` (low; clearing it is not reported).

Tenant-aware: a FullAccess, SendAs or SendOnBehalf delegation to a grantee inside the tenant, by an actor without a
risk signal, with AutoMapping left on and not to the actor themselves, is the tenant's ordinary work (an assistant,
a shared mailbox) and is not reported. Calendar, contacts, tasks and notes folders are not reported. The delegations an attacker makes from a
taken-over account (sharing the victim's Inbox with a mailbox they control) are raised two steps when the
actor had a risky sign-in shortly before, the others one step. Grants made by the Exchange system account, to
the mailbox itself, and folder rights of None, AvailabilityOnly or LimitedDetails are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.inbox_rules import home_domains_of, is_internal_recipient
from shared.records.event import Event
from shared.records.exchange import EMPTY_VALUES, is_system_account

FOLDER_OPS = frozenset({"add-mailboxfolderpermission", "set-mailboxfolderpermission"})
SET_MAILBOX = "set-mailbox"
MAIL_FOLDERS = frozenset({"", "inbox", "top of information store", "sent items", "msgfolderroot"})
NOT_MAIL_FOLDERS = frozenset({"calendar", "contacts", "tasks", "notes", "journal", "birthdays"})
HARMLESS_FOLDER_RIGHTS = frozenset({"none", "availabilityonly", "limiteddetails"})
EVERYONE = frozenset({"default", "anonymous"})


def _self_grant(event: Event, grantee: str) -> bool:
    """The actor gave the right to themselves (by UPN, or by alias when the grantee has no domain)."""
    upn = (event.upn or "").strip().lower()
    g = grantee.strip().lower()
    return bool(upn) and (g == upn or ("@" not in g and g == upn.split("@", 1)[0]))


def _rights(value: str) -> list[str]:
    return [r for r in (x.strip().strip("\"'[]") for x in value.replace(";", ",").split(",")) if r]


class ExchangeMailboxPermissionGrant(Detector):
    meta = DetectorMeta(
        id="exchange_mailbox_permission_grant",
        title="Mailbox access delegated",
        description=(
            "FullAccess, SendAs or SendOnBehalf was granted on a mailbox, or rights on its Inbox or other mail folders "
            "were given to a user or to everyone: ways to keep reading or sending as the victim without their "
            "password."
        ),
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.MEDIUM,
        mitre=("T1098.002",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({"add-mailboxpermission", "add-recipientpermission", SET_MAILBOX}) | FOLDER_OPS,
        needs=(Need.EXCHANGE_ADMIN, Need.TENANT_CONFIG, Need.RISKY_SIGNIN),
        runbook=(
            "1. List the mailbox's delegates: Get-MailboxPermission <mailbox> | ? {$_.IsInherited -eq $false}; "
            "Get-RecipientPermission <mailbox>; Get-MailboxFolderPermission <mailbox>:\\Inbox. 2. Confirm with the "
            "mailbox owner's manager that the grantee should have access (shared mailboxes and assistants are "
            "normal). 3. If not: remove it (Remove-MailboxPermission / Remove-RecipientPermission / "
            "Remove-MailboxFolderPermission), and investigate the admin account that made the grant."
        ),
        reference="https://attack.mitre.org/techniques/T1098/002/",
        false_positives=(
            "shared mailboxes and executive assistants set up by an administrator who just had a risky sign-in "
            "(without one, a delegation inside the tenant is not reported)",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded or is_system_account(event):
            return ()
        p = event.parameters
        if event.op in FOLDER_OPS:
            return self._folder(event, ctx)
        if event.op == SET_MAILBOX:
            return self._send_on_behalf(event, ctx)
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
        if risk is None and not reasons and not _self_grant(event, grantee):
            return ()  # a delegation inside the tenant (an assistant, a shared mailbox): the tenant's ordinary work
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

    def _send_on_behalf(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        p = event.parameters
        grantee = (p.get("grantsendonbehalfto") or "").strip()
        if grantee.lower() in EMPTY_VALUES:
            return ()
        mailbox = (p.get("identity") or event.record.ObjectId or "").strip()
        names: list[str] = []
        for part in grantee.replace(";", ",").split(","):
            n = part.strip().strip("\"'@{}")
            low = n.lower()
            if low.startswith("remove="):
                continue
            if low.startswith("add="):
                n = n[4:].strip().strip("\"'")
            if n:
                names.append(n)
        if not names:
            return ()
        if mailbox and all(n.lower() == mailbox.lower() for n in names):
            return ()
        reasons: list[str] = []
        severity = Severity.LOW
        home = home_domains_of(mailbox, event.upn)
        if any("@" in n and not is_internal_recipient(n, ctx.tenant, home_domains=home) for n in names):
            severity = severity.upgrade()
            reasons.append("grantee is outside the tenant")
        risk = risk_of(ctx, event)
        if risk is None and not reasons and not any(_self_grant(event, n) for n in names):
            return ()  # a delegation inside the tenant
        severity = raise_for_risk(severity, risk, steps=2)
        summary = f"{event.user_display} granted {', '.join(names)} SendOnBehalf on {mailbox or 'a mailbox'}"
        if reasons:
            summary += " (" + "; ".join(reasons) + ")"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{','.join(sorted(n.lower() for n in names))}|sendonbehalf",
                context={
                    "mailbox": mailbox,
                    "grantee": ", ".join(names),
                    "permission": "SendOnBehalf",
                    "access_rights": ["SendOnBehalf"],
                    "reasons": reasons,
                    "risk": risk_context(risk),
                },
            ),
        )

    def _folder(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        p = event.parameters
        identity = p.get("identity") or ""
        user = (p.get("user") or "").strip()
        mailbox, _, path = identity.partition(":")
        folder = path.strip().strip("\\/").lower()
        rights = _rights(p.get("accessrights", ""))
        if not rights or all(r.lower() in HARMLESS_FOLDER_RIGHTS for r in rights):
            return ()
        if user.lower() not in EVERYONE:
            return self._folder_to_user(event, ctx, mailbox, path, folder, user, rights)
        if folder not in MAIL_FOLDERS:
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

    def _folder_to_user(
        self,
        event: Event,
        ctx: DetectionContext,
        mailbox: str,
        path: str,
        folder: str,
        user: str,
        rights: list[str],
    ) -> Iterable[Finding]:
        top = folder.split("\\", 1)[0].split("/", 1)[0]
        if not user or top in NOT_MAIL_FOLDERS or user.strip().lower() == mailbox.strip().lower():
            return ()
        reasons: list[str] = []
        severity = Severity.LOW
        home = home_domains_of(mailbox, event.upn)
        if "@" in user and not is_internal_recipient(user, ctx.tenant, home_domains=home):
            severity = severity.upgrade()
            reasons.append("grantee is outside the tenant")
        risk = risk_of(ctx, event)
        severity = raise_for_risk(severity, risk, steps=2)
        shown = path.strip() or "\\"
        summary = f"{event.user_display} gave {user} {', '.join(rights)} on {mailbox}:{shown}"
        if reasons:
            summary += " (" + "; ".join(reasons) + ")"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{mailbox.lower()}|{folder}|{user.lower()}",
                context={
                    "mailbox": mailbox,
                    "folder": shown,
                    "grantee": user,
                    "permission": "FolderPermission",
                    "access_rights": rights,
                    "reasons": reasons,
                    "risk": risk_context(risk),
                },
            ),
        )
