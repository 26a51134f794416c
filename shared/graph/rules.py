"""Inbox rules: our own frozen models and the pure logic that resolves an audited rule to a Graph rule.

Why this exists (the "404 bug class", docs/graph-remediation.md §2): the audit log names a rule by its
display name, by ``alias\\Name`` or by ``alias\\RuleIdentity`` (an unsigned 64-bit number), never by the
base64 id Graph wants in ``DELETE .../messageRules/{id}``. Names are not unique (attackers reuse ".", ".."
and " "), so the only safe way is list-and-match: list the mailbox's rules through Graph, score each
candidate against what the audit record says the rule does, and act on a single strong match only.

    rule_identity_to_graph_id(16752869479666417665) == "AQAAAAgmfug="   # base64 of the little-endian uint64
    graph_id_to_rule_identity("AQAAAAgmfug=") == 16752869479666417665

:func:`match_rules` never trusts one piece of evidence: a strong match needs at least two agreeing kinds of
evidence (converted RuleIdentity, exact name, forwarding addresses, folder, delete, mark-as-read, words)
and no contradiction. This module imports nothing from msgraph, so detectors and the ledger can use it cheaply.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.platform.errors import BadInputError

__all__ = [
    "STRONG_SCORE",
    "InboxRule",
    "MatchOutcome",
    "RuleActions",
    "RuleConditions",
    "RuleMatch",
    "ScoredRule",
    "graph_id_to_rule_identity",
    "is_graph_rule_id",
    "match_rules",
    "parse_rule_identity",
    "rule_identity_to_graph_id",
]

_UINT64_MAX = (1 << 64) - 1
_GRAPH_ID_RE = re.compile(r"^[A-Za-z0-9+/]{11}=$")


class RuleConditions(BaseModel):
    """The predicates of a rule (Graph ``messageRulePredicates``) that m365-itdr reads and restores.

    Addresses are plain SMTP strings. Predicates not listed here are not round-tripped by
    :meth:`GraphClient.create_inbox_rule`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject_contains: tuple[str, ...] = ()
    body_contains: tuple[str, ...] = ()
    body_or_subject_contains: tuple[str, ...] = ()
    sender_contains: tuple[str, ...] = ()
    recipient_contains: tuple[str, ...] = ()
    header_contains: tuple[str, ...] = ()
    from_addresses: tuple[str, ...] = ()
    sent_to_addresses: tuple[str, ...] = ()
    has_attachments: bool | None = None

    def words(self) -> frozenset[str]:
        """Every word and address the conditions test for, case-folded."""
        parts: Iterable[str] = (
            *self.subject_contains,
            *self.body_contains,
            *self.body_or_subject_contains,
            *self.sender_contains,
            *self.recipient_contains,
            *self.header_contains,
            *self.from_addresses,
            *self.sent_to_addresses,
        )
        return frozenset(p.strip().casefold() for p in parts if p.strip())

    def is_empty(self) -> bool:
        """True when no predicate is set (also what Graph shows for a read-only rule)."""
        return not self.words() and self.has_attachments is None


class RuleActions(BaseModel):
    """The actions of a rule (Graph ``messageRuleActions``). Addresses are plain SMTP strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    forward_to: tuple[str, ...] = ()
    redirect_to: tuple[str, ...] = ()
    forward_as_attachment_to: tuple[str, ...] = ()
    move_to_folder: str | None = None
    copy_to_folder: str | None = None
    delete: bool | None = None
    permanent_delete: bool | None = None
    mark_as_read: bool | None = None
    mark_importance: str | None = None
    assign_categories: tuple[str, ...] = ()
    stop_processing_rules: bool | None = None

    def forwarding_addresses(self) -> frozenset[str]:
        """All addresses mail is forwarded or redirected to, case-folded."""
        return frozenset(
            a.strip().casefold() for a in (*self.forward_to, *self.redirect_to, *self.forward_as_attachment_to)
        )

    def deletes(self) -> bool:
        """True when the rule deletes (or permanently deletes) the message."""
        return bool(self.delete) or bool(self.permanent_delete)

    def is_empty(self) -> bool:
        """True when no action is set (also what Graph shows for a read-only rule)."""
        return self == RuleActions()


class InboxRule(BaseModel):
    """An inbox rule as Graph lists it. ``id`` is Graph's base64 id (see :func:`rule_identity_to_graph_id`).

    A rule to be created (restored) may carry ``id=""``; Graph assigns a new id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    display_name: str
    sequence: int | None = None
    is_enabled: bool = True
    is_read_only: bool = False
    has_error: bool = False
    conditions: RuleConditions = RuleConditions()
    exceptions: RuleConditions = RuleConditions()
    actions: RuleActions = RuleActions()

    @property
    def rule_identity(self) -> int | None:
        """The Exchange RuleIdentity this Graph id encodes, or None when the id is not in that form."""
        if not is_graph_rule_id(self.id):
            return None
        return graph_id_to_rule_identity(self.id)


# --------------------------------------------------------------------------- identities


def rule_identity_to_graph_id(rule_identity: int) -> str:
    """Exchange RuleIdentity (unsigned 64-bit) → Graph messageRule id (base64 of the little-endian bytes).

    [inferred, high confidence — docs/graph-remediation.md §2; confirm once against a live mailbox.]
    """
    if isinstance(rule_identity, bool) or not isinstance(rule_identity, int):
        raise BadInputError(f"RuleIdentity must be an int, got {type(rule_identity).__name__}")
    if not 0 <= rule_identity <= _UINT64_MAX:
        raise BadInputError("RuleIdentity outside the unsigned 64-bit range", rule_identity=rule_identity)
    return base64.b64encode(struct.pack("<Q", rule_identity)).decode("ascii")


def graph_id_to_rule_identity(graph_id: str) -> int:
    """Graph messageRule id → Exchange RuleIdentity. Raises BadInputError when the id is not 8 base64 bytes."""
    if not is_graph_rule_id(graph_id):
        raise BadInputError("not a Graph messageRule id (base64 of 8 bytes)", graph_id=graph_id)
    value: int = struct.unpack("<Q", base64.b64decode(graph_id, validate=True))[0]
    return value


def is_graph_rule_id(value: str) -> bool:
    """True when ``value`` has the shape of a Graph messageRule id: base64 (with padding) of exactly 8 bytes.

    Audit identities such as ``alice\\.`` or ``alice\\16752869479666417665`` are rejected, which is what
    keeps them from ever reaching ``DELETE .../messageRules/{id}``.
    """
    if not isinstance(value, str) or not _GRAPH_ID_RE.match(value):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 8
    except (binascii.Error, ValueError):
        return False


def parse_rule_identity(identity: str | None) -> int | None:
    """The numeric RuleIdentity in an audit ``Identity`` / ``ObjectId`` value, else None.

    Accepts ``alias\\16752869479666417665`` or a bare number. A number below 2**32 is treated as a rule
    *name* (every RuleIdentity seen has a non-zero high double word; names like "1" or "123" exist), so it
    returns None for it: match by name instead.
    """
    if identity is None:
        return None
    tail = identity.rsplit("\\", 1)[-1].strip()
    if not tail.isascii() or not tail.isdigit():
        return None
    value = int(tail)
    if value < (1 << 32) or value > _UINT64_MAX:
        return None
    return value


# --------------------------------------------------------------------------- matching

STRONG_SCORE = 50
"""A candidate needs at least this score, two agreeing kinds of evidence and no contradiction to be strong."""

_W_ID = 60
_W_NAME = 30
_W_NAME_CASEFOLD = 15
_W_FORWARD_FULL = 40
_W_FORWARD_PARTIAL = 20
_W_FORWARD_OTHER_ACTION = 15
_W_FOLDER = 15
_W_DELETE = 15
_W_MARK_READ = 10
_W_WORDS_FULL = 20
_W_WORDS_PARTIAL = 10


class MatchOutcome(StrEnum):
    """What :func:`match_rules` concluded."""

    MATCHED = "matched"
    """Exactly one strong candidate: act on ``RuleMatch.rule``."""
    AMBIGUOUS = "ambiguous"
    """Several strong candidates: act only on those whose actions are the malicious signature, else a human."""
    WEAK = "weak"
    """Some evidence, but no candidate is strong: hand to a human."""
    NONE = "none"
    """No candidate shares anything with the record: the rule may be hidden, gone or renamed (use Exchange)."""


@dataclass(frozen=True, slots=True)
class ScoredRule:
    """One candidate with its score, the evidence kinds that agreed, and the human-readable reasons."""

    rule: InboxRule
    score: int
    agreeing: frozenset[str]
    contradictions: frozenset[str]
    reasons: tuple[str, ...]

    @property
    def strong(self) -> bool:
        """Score high enough, two or more agreeing kinds of evidence, nothing contradicting the record."""
        return self.score >= STRONG_SCORE and len(self.agreeing) >= 2 and not self.contradictions


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The result of :func:`match_rules`. ``candidates`` are every rule with any evidence, best first."""

    outcome: MatchOutcome
    candidates: tuple[ScoredRule, ...]

    @property
    def strong(self) -> tuple[ScoredRule, ...]:
        """The strong candidates, best first."""
        return tuple(c for c in self.candidates if c.strong)

    @property
    def best(self) -> ScoredRule | None:
        """The single strong match when the outcome is MATCHED, else None."""
        return self.strong[0] if self.outcome is MatchOutcome.MATCHED else None

    @property
    def rule(self) -> InboxRule | None:
        """The rule to act on when the outcome is MATCHED, else None."""
        best = self.best
        return best.rule if best is not None else None


def _fold(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in values if v and v.strip())


class _Scorer:
    def __init__(self, rule: InboxRule) -> None:
        self.rule = rule
        self.score = 0
        self.agreeing: set[str] = set()
        self.contradictions: set[str] = set()
        self.reasons: list[str] = []

    def agree(self, kind: str, weight: int, reason: str) -> None:
        self.score += weight
        self.agreeing.add(kind)
        self.reasons.append(f"+{weight} {reason}")

    def contradict(self, kind: str, weight: int, reason: str) -> None:
        if self.rule.is_read_only and kind != "name" and kind != "id":
            # Graph shows empty conditions and actions for read-only rules: absence proves nothing.
            self.reasons.append(f"±0 {reason} (read-only rule: its conditions and actions are not visible)")
            return
        self.score -= weight
        self.contradictions.add(kind)
        self.reasons.append(f"-{weight} {reason}")

    def note(self, reason: str) -> None:
        self.reasons.append(f"±0 {reason}")

    def result(self) -> ScoredRule:
        return ScoredRule(
            rule=self.rule,
            score=self.score,
            agreeing=frozenset(self.agreeing),
            contradictions=frozenset(self.contradictions),
            reasons=tuple(self.reasons),
        )


def _score_forwarding(s: _Scorer, field: str, expected: frozenset[str], actual: frozenset[str]) -> None:
    if not expected:
        return
    all_forwarding = s.rule.actions.forwarding_addresses()
    if expected <= actual:
        s.agree("forwarding", _W_FORWARD_FULL, f"{field} has {sorted(expected)}")
    elif expected & actual:
        s.agree("forwarding", _W_FORWARD_PARTIAL, f"{field} shares {sorted(expected & actual)}")
    elif expected & all_forwarding:
        s.agree(
            "forwarding",
            _W_FORWARD_OTHER_ACTION,
            f"{sorted(expected & all_forwarding)} under another forwarding action",
        )
    else:
        shown = sorted(actual) if actual else "nothing"
        s.contradict("forwarding", _W_FORWARD_FULL, f"{field} expected {sorted(expected)}, rule has {shown}")


def _score_flag(s: _Scorer, kind: str, weight: int, expected: bool | None, actual: bool) -> None:
    if expected is None:
        return
    if expected and actual:
        s.agree(kind, weight, f"{kind} is set")
    elif expected and not actual:
        s.contradict(kind, weight, f"{kind} expected, rule does not {kind}")
    elif not expected and actual:
        s.contradict(kind, weight, f"{kind} not expected, rule does {kind}")


def _score_one(
    rule: InboxRule,
    *,
    name: str | None,
    graph_id: str | None,
    forward_to: frozenset[str],
    redirect_to: frozenset[str],
    forward_as_attachment_to: frozenset[str],
    move_to_folder: str | None,
    delete: bool | None,
    mark_as_read: bool | None,
    words: frozenset[str],
) -> ScoredRule:
    s = _Scorer(rule)
    if graph_id is not None and rule.id == graph_id:
        s.agree("id", _W_ID, f"id {rule.id} is the audited RuleIdentity")
    if name is not None:
        if rule.display_name == name:
            s.agree("name", _W_NAME, f"displayName is exactly {name!r}")
        elif rule.display_name.strip().casefold() == name.strip().casefold() and name.strip():
            s.agree("name", _W_NAME_CASEFOLD, f"displayName {rule.display_name!r} equals {name!r} ignoring case")
    actions = rule.actions
    _score_forwarding(s, "forwardTo", forward_to, _fold(actions.forward_to))
    _score_forwarding(s, "redirectTo", redirect_to, _fold(actions.redirect_to))
    _score_forwarding(s, "forwardAsAttachmentTo", forward_as_attachment_to, _fold(actions.forward_as_attachment_to))
    if move_to_folder is not None and move_to_folder.strip():
        if actions.move_to_folder is None:
            s.contradict("folder", _W_FOLDER, f"moveToFolder {move_to_folder!r} expected, rule does not move")
        elif actions.move_to_folder.strip().casefold() == move_to_folder.strip().casefold():
            s.agree("folder", _W_FOLDER, f"moveToFolder is {move_to_folder!r}")
        else:
            # Graph gives a folder id, the audit log a folder name: not comparable without a lookup.
            s.note(f"moves to folder {actions.move_to_folder!r}, audit names {move_to_folder!r} (not comparable)")
    _score_flag(s, "delete", _W_DELETE, delete, actions.deletes())
    _score_flag(s, "mark_as_read", _W_MARK_READ, mark_as_read, bool(actions.mark_as_read))
    if words:
        have = rule.conditions.words()
        shared = words & have
        if shared == words:
            s.agree("words", _W_WORDS_FULL, f"conditions test for all of {sorted(words)}")
        elif shared:
            s.agree("words", _W_WORDS_PARTIAL, f"conditions test for {sorted(shared)} of {sorted(words)}")
        else:
            s.contradict("words", _W_WORDS_FULL, f"conditions test for none of {sorted(words)}")
    if rule.is_read_only:
        s.note("read-only: Graph cannot change or delete it (use Exchange)")
    return s.result()


def match_rules(
    candidates: Iterable[InboxRule],
    *,
    name: str | None,
    rule_identity: int | None,
    forward_to: Iterable[str],
    redirect_to: Iterable[str],
    move_to_folder: str | None,
    delete: bool | None,
    mark_as_read: bool | None,
    words: Iterable[str],
    forward_as_attachment_to: Iterable[str] = (),
) -> RuleMatch:
    """Score every listed rule against what the audit record says, and decide.

    ``name`` is the audited rule name (None when the record has none), ``rule_identity`` the numeric
    RuleIdentity when the record holds one (see :func:`parse_rule_identity`), the address sets come from
    ForwardTo / RedirectTo / ForwardAsAttachmentTo, ``words`` from the *ContainsWords / From parameters.
    ``None`` for a flag means "the record does not say". Returns MATCHED only for a single strong candidate
    (among several strong ones, the one the RuleIdentity points at); the RuleIdentity alone, or the name
    alone, is never enough, and a RuleIdentity that points at a contradicted rule makes the result AMBIGUOUS.
    """
    graph_id = rule_identity_to_graph_id(rule_identity) if rule_identity is not None else None
    scored = [
        _score_one(
            rule,
            name=name,
            graph_id=graph_id,
            forward_to=_fold(forward_to),
            redirect_to=_fold(redirect_to),
            forward_as_attachment_to=_fold(forward_as_attachment_to),
            move_to_folder=move_to_folder,
            delete=delete,
            mark_as_read=mark_as_read,
            words=_fold(words),
        )
        for rule in candidates
    ]
    relevant = sorted(
        (c for c in scored if c.agreeing),
        key=lambda c: (-c.score, -len(c.agreeing), c.rule.sequence if c.rule.sequence is not None else 1 << 31),
    )
    strong = [c for c in relevant if c.strong]
    id_elsewhere = any("id" in c.agreeing and not c.strong for c in relevant)
    if len(strong) == 1:
        # The audited RuleIdentity pointing at a different, contradicted rule is conflicting evidence.
        outcome = MatchOutcome.AMBIGUOUS if id_elsewhere else MatchOutcome.MATCHED
    elif len(strong) > 1:
        with_id = [c for c in strong if "id" in c.agreeing]
        outcome = MatchOutcome.MATCHED if len(with_id) == 1 else MatchOutcome.AMBIGUOUS
        if outcome is MatchOutcome.MATCHED:
            relevant = with_id + [c for c in relevant if c is not with_id[0]]
    elif relevant:
        outcome = MatchOutcome.WEAK
    else:
        outcome = MatchOutcome.NONE
    return RuleMatch(outcome=outcome, candidates=tuple(relevant))
