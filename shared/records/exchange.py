"""Typed views of Exchange records: inbox-rule changes from every source, and Exchange helpers.

Inbox rules reach the audit log in four shapes, all normalised into one `InboxRule`:

* ``New-InboxRule`` / ``Set-InboxRule`` / ``Enable-InboxRule`` admin records with ``Parameters``
  (Name/Value pairs in any order, ``Name:Value`` strings, a name-to-value object, or one string holding
  JSON, the command line or ``Name:Value`` pairs: all read alike by ``Event.parameters``, see
  `shared.records.event.parameter_values`; ``Set-`` carries only changed parameters, so its
  `InboxRule` has ``partial=True`` and says nothing about the parameters it does not carry);
* ``UpdateInboxRules`` mailbox-audit records from Outlook (``OperationProperties`` with
  RuleOperation / RuleName / RuleCondition / RuleActions as text);
* ``UpdateInboxRules`` from the API (RuleOperation=Create, Conditions, Actions as JSON or text).

The same model is built from Graph ``messageRule`` objects (`inbox_rule_from_graph`) for the
historical scan, so one scoring function (shared.detection.inbox_rules) judges all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

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
EMPTY_VALUES = frozenset({"", "$null", "null", "none", "[]", '""', "''"})
"""How a cleared parameter is rendered (``Set-Mailbox -ForwardingSmtpAddress $null``)."""


@dataclass(frozen=True, slots=True)
class InboxRule:
    """An inbox rule as created or changed, whatever the source."""

    source: str
    """The operation that carried it (``new-inboxrule``, ``updateinboxrules``, ``graph``...)."""
    change: str
    """``create``, ``modify``, ``enable``, ``remove`` or ``existing`` (a rule listed by Graph)."""
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
    enabled: bool | None = None
    """False when the rule is disabled (Graph ``isEnabled``, Outlook ``RuleState``); None when unknown."""
    partial: bool = False
    """True for ``Set-InboxRule``/``Enable-InboxRule``: only the parameters in ``changed_fields`` are known."""
    changed_fields: frozenset[str] = frozenset()
    graph_id: str | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.forward_to + self.redirect_to + self.forward_as_attachment_to

    def to_state(self) -> dict[str, Any]:
        """A small JSON-serialisable form (kept in detector state to complete later ``Set-`` changes)."""
        out: dict[str, Any] = {"n": self.name}
        if self.forward_to:
            out["f"] = list(self.forward_to)
        if self.redirect_to:
            out["r"] = list(self.redirect_to)
        if self.forward_as_attachment_to:
            out["a"] = list(self.forward_as_attachment_to)
        if self.move_to_folder:
            out["m"] = self.move_to_folder
        flags = "".join(
            c for c, on in (("d", self.delete), ("k", self.mark_as_read), ("s", self.stop_processing)) if on
        )
        if flags:
            out["x"] = flags
        if self.words:
            out["w"] = list(self.words[:12])
        if self.from_addresses:
            out["o"] = list(self.from_addresses[:6])
        if self.rule_identity is not None:
            out["i"] = self.rule_identity
        return out

    @classmethod
    def from_state(cls, data: Mapping[str, Any], *, mailbox: str | None) -> InboxRule:
        """Inverse of `to_state` (a rule as last seen)."""
        flags = str(data.get("x") or "")
        ident = data.get("i")
        return cls(
            source="state",
            change="existing",
            mailbox=mailbox,
            name=data.get("n"),
            forward_to=tuple(data.get("f") or ()),
            redirect_to=tuple(data.get("r") or ()),
            forward_as_attachment_to=tuple(data.get("a") or ()),
            move_to_folder=data.get("m"),
            delete="d" in flags,
            mark_as_read="k" in flags,
            stop_processing="s" in flags,
            words=tuple(data.get("w") or ()),
            from_addresses=tuple(data.get("o") or ()),
            rule_identity=int(ident) if isinstance(ident, int) else None,
        )

    def overlay(self, change: InboxRule) -> InboxRule:
        """This rule with a partial change applied (only what the change carries replaces fields)."""
        p = change.present
        return replace(
            self,
            source=change.source,
            change=change.change,
            mailbox=change.mailbox or self.mailbox,
            name=change.name if "name" in p and change.name else self.name,
            forward_to=change.forward_to if "forward_to" in p else self.forward_to,
            redirect_to=change.redirect_to if "redirect_to" in p else self.redirect_to,
            forward_as_attachment_to=(
                change.forward_as_attachment_to if "forward_as_attachment_to" in p else self.forward_as_attachment_to
            ),
            move_to_folder=change.move_to_folder if "move_to_folder" in p else self.move_to_folder,
            delete=change.delete if "delete" in p else self.delete,
            mark_as_read=change.mark_as_read if "mark_as_read" in p else self.mark_as_read,
            stop_processing=change.stop_processing if "stop_processing" in p else self.stop_processing,
            words=change.words if "words" in p else self.words,
            from_addresses=change.from_addresses if "from_addresses" in p else self.from_addresses,
            rule_identity=change.rule_identity or self.rule_identity,
            partial=False,
        )

    @property
    def present(self) -> frozenset[str]:
        """Fields this (partial) rule actually carries; for a complete rule, every field."""
        return self.changed_fields if self.partial else ALL_RULE_FIELDS


ALL_RULE_FIELDS = frozenset(
    {
        "name",
        "forward_to",
        "redirect_to",
        "forward_as_attachment_to",
        "move_to_folder",
        "delete",
        "mark_as_read",
        "stop_processing",
        "words",
        "from_addresses",
    }
)


def addresses(text: str) -> tuple[str, ...]:
    """Email addresses in a parameter value (``"a@x.com";"b@y.com"``, ``smtp:a@x.com``, ``[EX:/o=...]``)."""
    return tuple(dict.fromkeys(m.group(0).lower().strip(".'") for m in _EMAIL.finditer(text)))


_addresses = addresses


def is_empty_value(text: str | None) -> bool:
    """True when a parameter value clears the setting (empty, ``$null``...)."""
    return (text or "").strip().lower() in EMPTY_VALUES


def is_system_account(ev: Event) -> bool:
    """``NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)`` and friends, in any case."""
    uid = (ev.record.UserId or "").strip().lower().replace("\\\\", "\\")
    return uid.startswith(("nt authority\\system", "s-1-5-18")) or uid == "system"


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


def _folder_name(value: str) -> str:
    """``alice:\\RSS Feeds`` / ``\\Inbox\\Sub`` / ``RSS Feeds`` → the last path segment."""
    v = value.strip()
    if ":" in v and "\\" in v:
        v = v.split(":", 1)[1]
    return v.strip().strip("\\/").rsplit("\\", 1)[-1].rsplit("/", 1)[-1].strip()


_PARAM_FIELDS = {
    "forwardto": "forward_to",
    "redirectto": "redirect_to",
    "forwardasattachmentto": "forward_as_attachment_to",
    "movetofolder": "move_to_folder",
    "copytofolder": "move_to_folder",
    "deletemessage": "delete",
    "softdeletemessage": "delete",
    "markasread": "mark_as_read",
    "stopprocessingrules": "stop_processing",
    "from": "from_addresses",
    "name": "name",
    **dict.fromkeys(_WORD_PARAMS, "words"),
}


def _from_parameters(ev: Event) -> InboxRule:
    p = ev.parameters
    change = {"new-inboxrule": "create", "set-inboxrule": "modify", "enable-inboxrule": "enable"}.get(ev.op, "modify")
    identity = p.get("identity")
    rule_identity = _rule_identity(identity)
    name = p.get("name")
    if not name and identity and rule_identity is None:
        name = identity.rsplit("\\", 1)[-1]
    if not name and ev.record.ObjectId and "\\" in ev.record.ObjectId:
        tail = ev.record.ObjectId.rsplit("\\", 1)[-1]
        if _rule_identity(ev.record.ObjectId) is None:
            name = tail
        elif rule_identity is None:
            rule_identity = _rule_identity(ev.record.ObjectId)
    words: list[str] = []
    for key in _WORD_PARAMS:
        if p.get(key):
            words.extend(_words(p[key]))
    move = p.get("movetofolder") or p.get("copytofolder")
    mailbox = p.get("mailbox") or (identity.rsplit("\\", 1)[0] if identity and "\\" in identity else None)
    partial = ev.op in ("set-inboxrule", "enable-inboxrule")
    return InboxRule(
        source=ev.op,
        change=change,
        mailbox=(mailbox or ev.upn or None),
        name=name or None,
        forward_to=_addresses(p.get("forwardto", "")),
        redirect_to=_addresses(p.get("redirectto", "")),
        forward_as_attachment_to=_addresses(p.get("forwardasattachmentto", "")),
        move_to_folder=_folder_name(move) if move and not is_empty_value(move) else None,
        delete=_truthy(p.get("deletemessage")) or _truthy(p.get("softdeletemessage")),
        mark_as_read=_truthy(p.get("markasread")),
        stop_processing=_truthy(p.get("stopprocessingrules")),
        words=tuple(words),
        from_addresses=_addresses(p.get("from", "")),
        rule_identity=rule_identity,
        enabled=True if ev.op == "enable-inboxrule" else None,
        partial=partial,
        changed_fields=frozenset(_PARAM_FIELDS[k] for k in p if k in _PARAM_FIELDS) if partial else frozenset(),
    )


_OUTLOOK_CHANGE = {
    "addmailboxrule": "create",
    "create": "create",
    "new": "create",
    "modifymailboxrule": "modify",
    "update": "modify",
    "modify": "modify",
    "removemailboxrule": "remove",
    "delete": "remove",
    "remove": "remove",
}
_MOVE = re.compile(
    r"(?:move|copy)(?:\s*(?:the\s*)?(?:messages?|it))?(?:\s*to)?(?:\s*(?:the\s*)?folder)?\s*[:=]?\s*"
    r"['\"]?([^'\";,\]\n()]+)",
    re.I,
)
_CONDITION_WORDS = re.compile(
    r"contains?(?:\s+(?:substring|prefix|words?|or|and|exact|fullstring))*\s*[:=]?\s*[(\['\"]([^)\]'\"]{2,80})[)\]'\"]",
    re.I,
)


def _decode(value: str) -> Any:
    text = value.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _json_addresses(value: Any) -> tuple[str, ...]:
    """Addresses anywhere inside a Graph/EWS JSON value (recipient objects, strings, lists)."""
    return _addresses(orjson.dumps(value).decode()) if value is not None else ()


def _json_words(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list):
        return tuple(w for v in value for w in _json_words(v))
    return ()


@dataclass(slots=True)
class _RuleParts:
    forward: tuple[str, ...] = ()
    redirect: tuple[str, ...] = ()
    attach: tuple[str, ...] = ()
    move: str | None = None
    delete: bool = False
    mark_as_read: bool = False
    stop: bool = False
    words: tuple[str, ...] = ()
    from_addresses: tuple[str, ...] = ()


def _walk_actions(value: Any, parts: _RuleParts, folder_names: Mapping[str, str] | None) -> None:
    """Graph messageRuleActions keys, or a list of ``{ActionType: ..., ...}`` entries."""
    if isinstance(value, list):
        for v in value:
            _walk_actions(v, parts, folder_names)
        return
    if not isinstance(value, dict):
        return
    low = {str(k).lower(): v for k, v in value.items()}
    action_type = str(low.get("actiontype") or low.get("type") or "").lower()
    if action_type:
        recips = _json_addresses(low.get("recipients") or low.get("addresses") or low.get("to"))
        if "redirect" in action_type:
            parts.redirect += recips
        elif "attachment" in action_type:
            parts.attach += recips
        elif "forward" in action_type:
            parts.forward += recips
        elif "move" in action_type or "copy" in action_type:
            folder = low.get("folder") or low.get("foldername") or low.get("folderid") or low.get("destination")
            if isinstance(folder, str) and folder:
                parts.move = _resolve_folder(folder, folder_names)
        elif "delete" in action_type:
            parts.delete = True
        elif "markasread" in action_type or "mark as read" in action_type:
            parts.mark_as_read = True
        elif "stop" in action_type:
            parts.stop = True
        return
    parts.forward += _json_addresses(low.get("forwardto"))
    parts.redirect += _json_addresses(low.get("redirectto"))
    parts.attach += _json_addresses(low.get("forwardasattachmentto"))
    folder = low.get("movetofolder") or low.get("copytofolder")
    if isinstance(folder, str) and folder:
        parts.move = _resolve_folder(folder, folder_names)
    parts.delete = parts.delete or low.get("delete") is True or low.get("permanentdelete") is True
    parts.mark_as_read = parts.mark_as_read or low.get("markasread") is True
    parts.stop = parts.stop or low.get("stopprocessingrules") is True


def _walk_conditions(value: Any, parts: _RuleParts) -> None:
    if not isinstance(value, dict):
        return
    low = {str(k).lower(): v for k, v in value.items()}
    words: list[str] = []
    for key in ("subjectcontains", "bodycontains", "bodyorsubjectcontains", "sendercontains", "headercontains"):
        words.extend(_json_words(low.get(key)))
    parts.words += tuple(words)
    parts.from_addresses += _json_addresses(low.get("fromaddresses"))


def _resolve_folder(folder: str, folder_names: Mapping[str, str] | None) -> str:
    if folder_names:
        got = folder_names.get(folder)
        if got:
            return got
    return _folder_name(folder)


def _text_actions(text: str, parts: _RuleParts) -> None:
    low = text.lower()
    addrs = _addresses(text)
    if addrs:
        if "redirect" in low:
            parts.redirect += addrs
        elif "attachment" in low:
            parts.attach += addrs
        else:
            parts.forward += addrs
    m = _MOVE.search(text)
    if m:
        folder = _folder_name(m.group(1))
        parts.move = folder or None
    parts.delete = parts.delete or bool(re.search(r"\bdelete|permanentdelete|softdelete", low))
    parts.mark_as_read = parts.mark_as_read or bool(re.search(r"mark\s*(?:it\s*)?as\s*read|markasread", low))
    parts.stop = parts.stop or bool(re.search(r"stop\s*processing|stopprocessingrules", low))


def _from_update_inbox_rules(ev: Event) -> InboxRule | None:
    op = ev.operation_properties
    change = _OUTLOOK_CHANGE.get((op.get("ruleoperation") or "").strip().lower(), "modify")
    actions_text = op.get("ruleactions") or op.get("actions") or ""
    conditions_text = op.get("rulecondition") or op.get("ruleconditions") or op.get("conditions") or ""
    parts = _RuleParts()
    decoded = _decode(actions_text)
    if decoded is not None:
        _walk_actions(decoded, parts, None)
    elif actions_text:
        _text_actions(actions_text, parts)
    decoded_cond = _decode(conditions_text)
    if decoded_cond is not None:
        _walk_conditions(decoded_cond, parts)
    elif conditions_text:
        parts.words = tuple(dict.fromkeys(w.strip() for w in _CONDITION_WORDS.findall(conditions_text) if w.strip()))
        if re.search(r"\bfrom\b|sender", conditions_text, re.I):
            parts.from_addresses = _addresses(conditions_text)
    state = (op.get("rulestate") or "").strip().lower()
    return InboxRule(
        source=ev.op,
        change=change,
        mailbox=(ev.record.MailboxOwnerUPN or ev.upn or "").lower() or None,
        name=op.get("rulename") or None,
        forward_to=tuple(dict.fromkeys(parts.forward)),
        redirect_to=tuple(dict.fromkeys(parts.redirect)),
        forward_as_attachment_to=tuple(dict.fromkeys(parts.attach)),
        move_to_folder=parts.move,
        delete=parts.delete,
        mark_as_read=parts.mark_as_read,
        stop_processing=parts.stop,
        words=parts.words,
        from_addresses=tuple(dict.fromkeys(parts.from_addresses)),
        enabled=False if state in ("disabled", "false") else (True if state else None),
    )


def inbox_rule_from_event(ev: Event) -> InboxRule | None:
    """The inbox rule an event creates or changes, or None when it is not an inbox-rule event."""
    if ev.op not in INBOX_RULE_OPS:
        return None
    if ev.op == "updateinboxrules":
        return _from_update_inbox_rules(ev)
    return _from_parameters(ev)


def inbox_rule_from_graph(
    rule: Mapping[str, Any], *, mailbox: str | None = None, folder_names: Mapping[str, str] | None = None
) -> InboxRule:
    """An `InboxRule` from a Graph ``messageRule`` JSON object (``GET /users/{id}/mailFolders/inbox/messageRules``).

    ``moveToFolder`` is a folder id in Graph; pass ``folder_names`` (id → display name, e.g. from
    ``GET /users/{id}/mailFolders``) to score hiding folders such as RSS Feeds by name.
    """
    parts = _RuleParts()
    _walk_actions(rule.get("actions") or {}, parts, folder_names)
    _walk_conditions(rule.get("conditions") or {}, parts)
    enabled = rule.get("isEnabled")
    rid = rule.get("id")
    return InboxRule(
        source="graph",
        change="existing",
        mailbox=mailbox.lower() if mailbox else None,
        name=str(rule.get("displayName")) if rule.get("displayName") is not None else None,
        forward_to=tuple(dict.fromkeys(parts.forward)),
        redirect_to=tuple(dict.fromkeys(parts.redirect)),
        forward_as_attachment_to=tuple(dict.fromkeys(parts.attach)),
        move_to_folder=parts.move,
        delete=parts.delete,
        mark_as_read=parts.mark_as_read,
        stop_processing=parts.stop,
        words=parts.words,
        from_addresses=tuple(dict.fromkeys(parts.from_addresses)),
        enabled=enabled if isinstance(enabled, bool) else None,
        graph_id=str(rid) if rid else None,
    )
