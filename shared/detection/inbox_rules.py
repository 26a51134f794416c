"""Scoring of inbox rules: one judgement for audit-log rules and Graph's historical listing.

Each feature adds to a score; the rule is suspicious when the score reaches
`ALERT_SCORE`. A single external forward is enough; a benign "move newsletters" rule is not.

Weights: external forward/redirect 3; delete 2; a move to a folder nobody reads 3 (RSS Feeds,
Conversation History) or 2 (Deleted Items, Archive, Junk); an obfuscated name ("." or only
punctuation) 2; watched words or the mailbox owner's own name in the conditions 1; mark as
read 1 and stop processing 1, except on a rule filtering specific senders with no word
conditions (the newsletter filter: "from news@x → move, mark as read, stop"), where they add
nothing because Outlook and OWA tick "stop processing more rules" by default; a risky session
(a risky sign-in of the same user shortly before) adds 2 to a rule that already scores.

Destinations are internal when the tenant lists their domain (or an approved forwarding
domain); a tenant with no configured domains falls back to the mailbox owner's own domain, so a
colleague forward is not reported as external for want of configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.alert_model import Severity
from shared.records.exchange import InboxRule
from shared.tenant_config import TenantConfig

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
_WATCHED_PATTERNS = tuple((w, re.compile(rf"(?<![a-z]){re.escape(w)}(?![a-z])")) for w in WATCHED_WORDS)
"""Each watched word as a whole word (not inside a longer word), compiled once."""
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


def _domain(address: str) -> str:
    a = address.strip().lower()
    if a.startswith("smtp:"):
        a = a[5:]
    return a.rsplit("@", 1)[-1].strip(" >]\"'")


def home_domains_of(*identities: str | None) -> tuple[str, ...]:
    """Mail domains of UPNs/addresses (the mailbox owner's own domain is internal when none is configured)."""
    return tuple(dict.fromkeys(_domain(i) for i in identities if i and "@" in i))


def is_internal_recipient(address: str, tenant: TenantConfig, *, home_domains: tuple[str, ...] = ()) -> bool:
    """True for a tenant (or approved) destination; with no configured domains, the owner's domain counts."""
    if tenant.is_internal_address(address):
        return True
    if tenant.internal_domains:
        return False
    domain = _domain(address)
    return any(domain == d or domain.endswith("." + d) for d in home_domains)


_NAME_SPLIT = re.compile(r"[._\-+\d]+")


def owner_names(upn: str | None, *extra: str | None) -> tuple[str, ...]:
    """Name parts of the mailbox owner ("megan.bowen@x" → megan, bowen) for condition matching (≥ 3 letters)."""
    names: list[str] = []
    for value in (upn, *extra):
        if not value:
            continue
        local = value.split("@", 1)[0].lower()
        names.extend(p for p in _NAME_SPLIT.split(local) if len(p) >= 3)
    return tuple(dict.fromkeys(names))


def score_rule(
    rule: InboxRule,
    tenant: TenantConfig,
    *,
    victim_names: tuple[str, ...] = (),
    risky_session: bool = False,
    home_domains: tuple[str, ...] = (),
) -> RuleVerdict:
    """Score an inbox rule's features; see the module docstring."""
    score = 0
    reasons: list[str] = []
    if not home_domains:
        home_domains = home_domains_of(rule.mailbox)
    external = tuple(a for a in rule.recipients if not is_internal_recipient(a, tenant, home_domains=home_domains))
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
    sender_filter = bool(rule.from_addresses) and not rule.words
    if rule.mark_as_read and not sender_filter:
        score += 1
        reasons.append("marks messages as read")
    if rule.stop_processing and not sender_filter:
        score += 1
        reasons.append("stops processing further rules")
    words = " ".join(rule.words).lower()
    hits = [w for w, pattern in _WATCHED_PATTERNS if pattern.search(words)] if words else []
    own = (
        [n for n in victim_names if n and re.search(rf"(?<![a-z]){re.escape(n.lower())}(?![a-z])", words)]
        if words
        else []
    )
    if hits:
        score += 1
        reasons.append("conditions on watched words: " + ", ".join(sorted(set(hits))))
    if own:
        score += 1
        reasons.append("conditions on the mailbox owner's own name: " + ", ".join(sorted(set(own))))
    if is_obfuscated_name(rule.name):
        score += 2
        reasons.append(f"obfuscated rule name {rule.name!r}")
    if risky_session and score > 0:
        score += 2
        reasons.append("created from a risky session")
    return RuleVerdict(score, tuple(reasons), external)
