"""Typed views of Exchange records: inbox-rule changes from every source.

Inbox rules reach the audit log in four shapes, all normalised into one `InboxRule`:

* ``New-InboxRule`` / ``Set-InboxRule`` / ``Enable-InboxRule`` admin records with ``Parameters``
  (a list in any order, or a JSON string; ``Set-`` carries only changed parameters);
* ``UpdateInboxRules`` mailbox-audit records from Outlook (``OperationProperties`` with
  RuleOperation / RuleName / RuleCondition / RuleActions as text);
* ``UpdateInboxRules`` from the API (RuleOperation=Create, Conditions, Actions).

The same model is built from Graph ``messageRule`` objects for the historical scan, so one
scoring function (shared.detection.inbox_rules) judges all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from shared.records.event import Event

INBOX_RULE_OPS = frozenset({"new-inboxrule", "set-inboxrule", "enable-inboxrule", "updateinboxrules"})
_EMAIL = re.compile(r"[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_WORD_PARAMS = (
    "subjectcontainswords",
    "bodycontainswords",
    "subjectorbodycontainswords",
    "fromaddresscontainswords",
    "headercontainswords",
    "recipientaddresscontainswords",
)


@dataclass(frozen=True, slots=True)
class InboxRule:
    """An inbox rule as created or changed, whatever the source."""

    source: str
    """The operation that carried it (``new-inboxrule``, ``updateinboxrules``, ``graph``...)."""
    change: str
    """``create``, ``modify``, ``enable`` or ``remove``."""
    mailbox: str | None
    name: str | None
    forward_to: tuple[str, ...] = ()
    redirect_to: tuple[str, ...] = ()
    forward_as_attachment_to: tuple[str, ...] = ()
    move_to_folder: str | None = None
    delete: bool = False
    mark_as_read: bool = False
    stop_processing: bool = False
    words: tuple[str, ...] = ()
    from_addresses: tuple[str, ...] = ()
    rule_identity: int | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.forward_to + self.redirect_to + self.forward_as_attachment_to


def _addresses(text: str) -> tuple[str, ...]:
    """Email addresses in a parameter value (``"a@x.com";"b@y.com"``, ``smtp:a@x.com``, ``[EX:/o=...]``)."""
    return tuple(dict.fromkeys(m.group(0).lower() for m in _EMAIL.finditer(text)))


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1", "$true", "yes")


def _words(text: str) -> tuple[str, ...]:
    parts = re.split(r"[;,\n]|\"\s*,?\s*\"", text)
    return tuple(w for w in (p.strip().strip("\"'[]{}").strip() for p in parts) if w)


def _rule_identity(text: str | None) -> int | None:
    if not text:
        return None
    tail = text.rsplit("\\", 1)[-1].strip()
    return int(tail) if tail.isdigit() and len(tail) >= 10 else None


def _from_parameters(ev: Event) -> InboxRule:
    p = ev.parameters
    change = {"new-inboxrule": "create", "set-inboxrule": "modify", "enable-inboxrule": "enable"}.get(ev.op, "modify")
    identity = p.get("identity")
    name = p.get("name") or (identity.rsplit("\\", 1)[-1] if identity else None)
    if name is None and ev.record.ObjectId and "\\" in ev.record.ObjectId:
        name = ev.record.ObjectId.rsplit("\\", 1)[-1]
    words: list[str] = []
    for key in _WORD_PARAMS:
        if p.get(key):
            words.extend(_words(p[key]))
    move = p.get("movetofolder") or p.get("copytofolder")
    if move and ":" in move and "\\" in move:
        move = move.rsplit("\\", 1)[-1]
    return InboxRule(
        source=ev.op,
        change=change,
        mailbox=(p.get("mailbox") or ev.upn or None),
        name=name,
        forward_to=_addresses(p.get("forwardto", "")),
        redirect_to=_addresses(p.get("redirectto", "")),
        forward_as_attachment_to=_addresses(p.get("forwardasattachmentto", "")),
        move_to_folder=move or None,
        delete=_truthy(p.get("deletemessage")) or _truthy(p.get("softdeletemessage")),
        mark_as_read=_truthy(p.get("markasread")),
        stop_processing=_truthy(p.get("stopprocessingrules")),
        words=tuple(words),
        from_addresses=_addresses(p.get("from", "")),
        rule_identity=_rule_identity(identity),
    )


_OUTLOOK_CHANGE = {
    "addmailboxrule": "create",
    "create": "create",
    "modifymailboxrule": "modify",
    "update": "modify",
    "removemailboxrule": "remove",
    "delete": "remove",
}
_MOVE = re.compile(
    r"(?:move(?:to)?(?:folder)?|movetofolder)\s*(?:to\s*)?(?:folder\s*)?[:=]?\s*['\"]?([^'\";,\]]+)", re.I
)


def _actions_text(value: str) -> str:
    """Actions/Conditions may be JSON (API shape) or display text (Outlook shape): flatten to text."""
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return orjson.dumps(decoded).decode()


def _from_update_inbox_rules(ev: Event) -> InboxRule | None:
    op = ev.operation_properties
    change = _OUTLOOK_CHANGE.get((op.get("ruleoperation") or "").strip().lower(), "modify")
    actions = _actions_text(op.get("ruleactions") or op.get("actions") or "")
    conditions = _actions_text(op.get("rulecondition") or op.get("conditions") or "")
    low = actions.lower()
    forward: tuple[str, ...] = ()
    redirect: tuple[str, ...] = ()
    attach: tuple[str, ...] = ()
    addrs = _addresses(actions)
    if "redirect" in low:
        redirect = addrs
    elif "attachment" in low:
        attach = addrs
    elif "forward" in low or addrs:
        forward = addrs
    move = None
    m = _MOVE.search(actions)
    if m:
        move = m.group(1).strip().strip("\\/").rsplit("\\", 1)[-1].strip() or None
    words = tuple(re.findall(r"['\"]([^'\"]{2,40})['\"]", conditions)) if "contain" in conditions.lower() else ()
    return InboxRule(
        source=ev.op,
        change=change,
        mailbox=ev.record.MailboxOwnerUPN or ev.upn,
        name=op.get("rulename") or None,
        forward_to=forward,
        redirect_to=redirect,
        forward_as_attachment_to=attach,
        move_to_folder=move,
        delete=bool(re.search(r"\bdelete|permanentdelete|softdelete", low)),
        mark_as_read=bool(re.search(r"mark\s*as\s*read|markasread|\"isread\"\s*:\s*true", low)),
        stop_processing=bool(re.search(r"stop\s*processing|stopprocessingrules", low)),
        words=words,
        from_addresses=_addresses(conditions),
    )


def inbox_rule_from_event(ev: Event) -> InboxRule | None:
    """The inbox rule an event creates or changes, or None when it is not an inbox-rule event."""
    if ev.op not in INBOX_RULE_OPS:
        return None
    if ev.op == "updateinboxrules":
        return _from_update_inbox_rules(ev)
    return _from_parameters(ev)
