"""Scoring of inbox rules: one judgement for audit-log rules and Graph's historical listing.

Each feature adds to a score; the rule is suspicious when the score reaches
`ALERT_SCORE`. A single external forward is enough; a benign "move newsletters" rule is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.detection.config import TenantConfig
from shared.detection.model import Severity
from shared.records.exchange import InboxRule

HIDING_FOLDERS = frozenset(
    {
        "deleted items",
        "deleteditems",
        "rss feeds",
        "rss subscriptions",
        "rssfeeds",
        "conversation history",
        "archive",
        "junk email",
        "junk e-mail",
        "junkemail",
        "junk",
    }
)
RARELY_USED_FOLDERS = frozenset({"rss feeds", "rss subscriptions", "rssfeeds", "conversation history"})
"""Folders people almost never file mail into by rule: a move there alone is suspicious."""
WATCHED_WORDS = (
    "invoice",
    "payment",
    "wire",
    "bank",
    "payroll",
    "w-2",
    "w2",
    "password",
    "mfa",
    "helpdesk",
    "help desk",
    "security",
    "phish",
    "hack",
    "compromise",
    "urgent",
    "transfer",
    "ach",
    "remittance",
)
ALERT_SCORE = 3


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    score: int
    reasons: tuple[str, ...]
    external_recipients: tuple[str, ...]

    @property
    def suspicious(self) -> bool:
        return self.score >= ALERT_SCORE

    @property
    def severity(self) -> Severity:
        if self.score >= 7:
            return Severity.CRITICAL
        if self.score >= 5 or self.external_recipients:
            return Severity.HIGH
        return Severity.MEDIUM


def is_obfuscated_name(name: str | None) -> bool:
    """'.', '..', one character, or only punctuation/whitespace."""
    if name is None:
        return False
    n = name.strip()
    if len(n) <= 1:
        return True
    return re.fullmatch(r"[\W_]+", n) is not None


def _folder(name: str | None) -> str:
    if not name:
        return ""
    return name.strip().strip("\\/").rsplit("\\", 1)[-1].rsplit("/", 1)[-1].strip().lower()


def score_rule(
    rule: InboxRule, tenant: TenantConfig, *, victim_names: tuple[str, ...] = (), risky_session: bool = False
) -> RuleVerdict:
    """Score an inbox rule's features; see the module docstring."""
    score = 0
    reasons: list[str] = []
    external = tuple(a for a in rule.recipients if not tenant.is_internal_address(a))
    if external:
        score += 3
        reasons.append("forwards or redirects outside the tenant: " + ", ".join(external))
    if rule.delete:
        score += 2
        reasons.append("deletes messages")
    folder = _folder(rule.move_to_folder)
    if folder in HIDING_FOLDERS:
        score += 3 if folder in RARELY_USED_FOLDERS else 2
        reasons.append(f"moves messages to {rule.move_to_folder}")
    if rule.mark_as_read:
        score += 1
        reasons.append("marks messages as read")
    if rule.stop_processing:
        score += 1
        reasons.append("stops processing further rules")
    words = " ".join(rule.words).lower()
    hits = [w for w in WATCHED_WORDS if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", words)]
    hits += [n for n in victim_names if n and n.lower() in words]
    if hits:
        score += 1
        reasons.append("conditions on watched words: " + ", ".join(sorted(set(hits))))
    if is_obfuscated_name(rule.name):
        score += 2
        reasons.append(f"obfuscated rule name {rule.name!r}")
    if risky_session and score > 0:
        score += 2
        reasons.append("created from a risky session")
    return RuleVerdict(score, tuple(reasons), external)
