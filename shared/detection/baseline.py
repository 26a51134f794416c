"""What is normal for a user and for a tenant: sign-in outcomes, learning periods, seen values, shared places.

Three pieces, all kept in the bounded, JSON-only detector state:

* **Sign-in outcomes** (:func:`is_successful_signin`, :data:`PASSWORD_FAILURES`, ...): a ``UserLoggedIn``
  with ``ErrorNumber`` 0 is a success; everything else arrives as ``UserLoginFailed`` with an AADSTS
  number. 50074/50076 are MFA *interrupts* after a correct password, not failures.
* **The user's sign-in baseline** (:func:`observe_signin`, :func:`peek_baseline`): one shared section
  per user with the first sign-in time, the sign-in count and, per attribute (country, ASN, OS,
  browser, client), the values seen with ``[first_seen, last_seen, count]``. Every sign-in detector
  asks for the same *pre-event* view (:class:`SigninView`): the first detector to handle a sign-in
  records it, later detectors of the same event get the identical answer, whatever the registry order.
  Values not seen for :data:`VALUE_TTL_S` age out; each attribute keeps at most its cap, least recently
  seen evicted first.
* **Tenant prevalence** (:class:`TenantPrevalence`): distinct users per country, ASN and network
  (IPv4 /24, IPv6 /48), so a place many users share (the office, a company VPN hosted in Azure) does not
  look new. Users are stored as 6-hex-digit hashes, at most :data:`SHARED_MIN_USERS` + 1 per entry.

Learning period: a user is *learned* at the earlier of 14 days after the first sign-in or the 10th
sign-in, but never in the first 7 days (Entra's atypical-travel rule plus MDCA's 7-day initial learning;
detections.md §4). Novelty detectors stay quiet while a user learns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeGuard

import msgspec

from shared.detection.base import DetectionContext
from shared.detection.geo import network_key
from shared.enrich.access import access_of
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event
from shared.tenant_config import TenantConfig

_NUMBER = (int, float)
"""``isinstance`` with a tuple: the same test as ``int | float``, without building the union each call."""

# --- sign-in outcomes -------------------------------------------------------------------------------

OP_SIGNIN_SUCCESS = "userloggedin"
OP_SIGNIN_FAILED = "userloginfailed"
SIGNIN_OPS = frozenset({OP_SIGNIN_SUCCESS, OP_SIGNIN_FAILED})

ERR_BAD_PASSWORD = 50126
ERR_LOCKED = 50053
ERR_PASSWORD_EXPIRED = 50055
ERR_DISABLED = 50057
ERR_MFA_REQUIRED_INTERRUPT = 50074
ERR_MFA_POLICY_INTERRUPT = 50076
ERR_MFA_FAILED = 500121
ERR_EXTERNAL_CHALLENGE = 50158
ERR_CA_BLOCKED = 53003
ERR_KMSI_INTERRUPT = 50140

PASSWORD_FAILURES = frozenset({ERR_BAD_PASSWORD, ERR_LOCKED, ERR_PASSWORD_EXPIRED, ERR_DISABLED})
"""Failures at the password step, counted by password-spray detection (50055/50057 included: sprayers
walk the whole user list, and an expired password that was right is itself a finding)."""
BRUTE_FORCE_FAILURES = frozenset({ERR_BAD_PASSWORD, ERR_LOCKED})
"""Wrong password or smart lockout: what repeated guessing against one user produces."""
MFA_INTERRUPTS = frozenset({ERR_MFA_REQUIRED_INTERRUPT, ERR_MFA_POLICY_INTERRUPT, ERR_KMSI_INTERRUPT})
"""Not failures: the password was right and the flow continues (elastic/detection-rules#2278)."""


def is_successful_signin(event: Event) -> bool:
    """A ``UserLoggedIn`` whose ErrorNumber is 0 (or absent). ``ResultStatus`` says only that the call worked."""
    return event.op == OP_SIGNIN_SUCCESS and event.error_number in (None, 0)


def failed_signin_code(event: Event) -> int | None:
    """The AADSTS number of a ``UserLoginFailed`` (None for other records or a failure without a number)."""
    if event.op != OP_SIGNIN_FAILED:
        return None
    n = event.error_number
    return n if n else None


@lru_cache(maxsize=8192)
def user_hash(user_key: str) -> str:
    """A short, stable pseudonym of a user key for tenant-wide counters (no UPNs in shared state)."""
    return hashlib.sha256(user_key.encode()).hexdigest()[:6]


# --- learning ----------------------------------------------------------------------------------------

DAY_S = 86400.0
LEARN_MIN_S = 7 * DAY_S
LEARN_MAX_S = 14 * DAY_S
LEARN_SIGNINS = 10
VALUE_TTL_S = 90 * DAY_S
VALUE_CAPS: dict[str, int] = {"country": 10, "asn": 12, "os": 6, "browser": 6, "client": 10}
"""Attributes of the sign-in baseline and how many values of each are kept."""
SIGNIN_SECTION = "_signins"


def is_learned(first_seen: float | None, signins: int, now: float) -> bool:
    """Learning ends at the earlier of 14 days or 10 sign-ins, never before 7 days."""
    if first_seen is None:
        return False
    age = now - first_seen
    return age >= LEARN_MAX_S or (signins >= LEARN_SIGNINS and age >= LEARN_MIN_S)


@lru_cache(maxsize=1024)
def os_family(value: str | None) -> str | None:
    """ "Windows 10" / "Windows11" / "windows" -> "windows"; "MacOs" -> "macos"; None for empty or unknown."""
    if not value:
        return None
    word = value.strip().lower().split(" ", 1)[0]
    fam = "".join(ch for ch in word if ch.isalpha())
    if fam in ("", "unknown", "other"):
        return None
    if fam.startswith("windows"):
        return "windows"
    if fam in ("mac", "macos", "macosx", "osx"):
        return "macos"
    return fam


@lru_cache(maxsize=1024)
def browser_family(value: str | None) -> str | None:
    """ "Edge 120.0.2210" -> "edge"; "Rich Client" -> "rich client"; None for empty or unknown."""
    if not value:
        return None
    words = [w for w in value.strip().lower().replace("/", " ").split() if not any(ch.isdigit() for ch in w)]
    fam = " ".join(words)
    return None if fam in ("", "unknown", "other") else fam


def signin_attributes(event: Event) -> dict[str, str | None]:
    """The baseline attributes of one sign-in: country, ASN, OS family, browser family, client.

    OS and browser come from the access method (``shared.enrich.access.access_of``: the user agent, else
    ``DeviceProperties``); the client is the access method's ``client_kind`` when known (stable across app
    versions), else the ``ApplicationId``.
    """
    info: IpInfo | None = event.ip_info
    access = access_of(event)
    client = access.client_kind if access.client_kind != "unknown" else None
    return {
        "country": info.country.upper() if info is not None and info.country else None,
        "asn": str(info.asn) if info is not None and info.asn else None,
        "os": os_family(access.os),
        "browser": browser_family(access.browser),
        "client": client or event.client_app_id,
    }


class ValueSeen(msgspec.Struct, frozen=True, gc=False):
    """One remembered value of one attribute."""

    first_seen: float
    last_seen: float
    count: int


class Baseline:
    """Read/write view of a user's sign-in baseline section (a plain dict, JSON-only)."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self._sec = section

    @property
    def first_seen(self) -> float | None:
        v = self._sec.get("fs")
        return float(v) if isinstance(v, _NUMBER) else None

    @property
    def signins(self) -> int:
        v = self._sec.get("n")
        return int(v) if isinstance(v, int) else 0

    def learned(self, now: float) -> bool:
        return is_learned(self.first_seen, self.signins, now)

    def _table(self, attr: str) -> Mapping[str, Any]:
        vals = self._sec.get("v")
        table = vals.get(attr) if isinstance(vals, dict) else None
        return table if isinstance(table, dict) else {}

    def values(self, attr: str) -> dict[str, ValueSeen]:
        """The remembered values of one attribute (malformed entries are ignored)."""
        out: dict[str, ValueSeen] = {}
        for value, entry in self._table(attr).items():
            seen = _value_seen(entry)
            if seen is not None:
                out[value] = seen
        return out

    def get(self, attr: str, value: str | None) -> ValueSeen | None:
        if value is None:
            return None
        return _value_seen(self._table(attr).get(value))

    def observe(self, time: float, attrs: Mapping[str, str | None]) -> None:
        """Count one sign-in and remember its values (bounded, aged); the section must be mutable.

        The readable form of the update: `observe_signin` runs the one-pass `_view_and_observe`, which
        tests/detection/test_baseline.py holds to the same views and documents as this.

        Only the sign-in's own values are touched; values unseen for VALUE_TTL_S are dropped at most
        once a day, and an attribute over its cap loses its least recently seen values.
        """
        sec = self._sec
        if not isinstance(sec, dict):
            raise TypeError("observe needs the mutable state section")
        t = int(time)
        fs = self.first_seen
        sec["fs"] = t if fs is None else int(min(fs, time))
        sec["n"] = self.signins + 1
        vals = sec.get("v")
        if not isinstance(vals, dict):
            vals = {}
            sec["v"] = vals
        pruned = sec.get("pr")
        prune_all = not isinstance(pruned, _NUMBER) or time - float(pruned) >= DAY_S
        if prune_all:
            sec["pr"] = t
        for attr, cap in VALUE_CAPS.items():
            table = vals.get(attr)
            if not isinstance(table, dict):
                table = {}
                vals[attr] = table
            value = attrs.get(attr)
            if value is not None:
                prior = _value_seen(table.get(value))
                if prior is None:
                    table[value] = [t, t, 1]
                else:
                    table[value] = [int(min(prior.first_seen, t)), int(max(prior.last_seen, t)), prior.count + 1]
            if prune_all or len(table) > cap:
                _prune_values(table, cap, time)
            if not table:
                vals.pop(attr)


def _prune_values(table: dict[str, Any], cap: int, now: float) -> None:
    for value in [v for v, e in table.items() if (s := _value_seen(e)) is None or now - s.last_seen > VALUE_TTL_S]:
        table.pop(value)
    if len(table) > cap:
        ranked = sorted(table, key=lambda v: (table[v][1], table[v][2]))
        for value in ranked[: len(table) - cap]:
            table.pop(value)


def _value_seen(entry: Any) -> ValueSeen | None:
    if type(entry) is list and len(entry) == 3:
        a, b, c = entry
        if isinstance(a, _NUMBER) and isinstance(b, _NUMBER) and isinstance(c, _NUMBER):
            return ValueSeen(float(a), float(b), int(c))
    return None


class SigninView(msgspec.Struct, frozen=True, gc=False):
    """The user's baseline as it was just *before* one successful sign-in."""

    record_id: str
    learned: bool
    signins_before: int
    first_seen: float | None
    attributes: Mapping[str, str | None]
    new: frozenset[str]
    """Attributes whose (known) value this user had not used before."""
    prior: Mapping[str, ValueSeen | None] = msgspec.field(default_factory=dict)
    """What the baseline remembered about each attribute's current value before this sign-in."""

    def is_new(self, attr: str) -> bool:
        return attr in self.new

    def new_country(self, home: str | None) -> bool:
        """The sign-in's country is new for a learned user (or one with a known home country), and not home."""
        country = self.attributes.get("country")
        if country is None or country == home or not self.is_new("country"):
            return False
        return self.learned or home is not None


def _view(record_id: str, base: Baseline, attrs: Mapping[str, str | None], now: float) -> SigninView:
    prior = {a: base.get(a, v) for a, v in attrs.items()}
    new = frozenset(a for a, v in attrs.items() if v is not None and prior[a] is None)
    return SigninView(
        record_id=record_id,
        learned=base.learned(now),
        signins_before=base.signins,
        first_seen=base.first_seen,
        attributes=dict(attrs),
        new=new,
        prior=prior,
    )


def _view_and_observe(
    record_id: str, sec: dict[str, Any], attrs: dict[str, str | None], time: float
) -> tuple[SigninView, dict[str, list[int]]]:
    """``_view(record_id, Baseline(sec), attrs, time)`` then ``Baseline(sec).observe(time, attrs)``, in one pass.

    The same reads and writes in the same order (so the same state document), without looking each
    value up twice: the pre-event entry of each attribute's value is both the view's ``prior`` and the
    base of its update. Each attribute has its own table, so reading one attribute's entry after the
    previous attribute was written reads what the separate view would have read.
    Also returns the snapshot of the priors (``_snapshot_priors(view)``). ``attrs`` is `signin_attributes`'s
    fresh dict (its keys in `VALUE_CAPS` order): the view keeps it.
    """
    fs_raw = sec.get("fs")
    first_seen = float(fs_raw) if isinstance(fs_raw, _NUMBER) else None
    n_raw = sec.get("n")
    signins = int(n_raw) if isinstance(n_raw, int) else 0
    learned = is_learned(first_seen, signins, time)
    # Baseline.observe's writes, in its order
    t = int(time)
    sec["fs"] = t if first_seen is None else int(min(first_seen, time))
    sec["n"] = signins + 1
    vals = sec.get("v")
    if not isinstance(vals, dict):
        vals = {}  # the view of a malformed baseline finds nothing either
        sec["v"] = vals
    pruned = sec.get("pr")
    prune_all = not isinstance(pruned, _NUMBER) or time - float(pruned) >= DAY_S
    if prune_all:
        sec["pr"] = t
    prior: dict[str, ValueSeen | None] = {}
    snap: dict[str, list[int]] = {}
    new_attrs: list[str] = []
    number = _NUMBER
    for attr, cap in VALUE_CAPS.items():
        value = attrs[attr]
        table = vals.get(attr)
        seen: ValueSeen | None = None
        if not isinstance(table, dict):
            table = {}
            vals[attr] = table
        elif value is not None:
            entry = table.get(value)
            if type(entry) is list and len(entry) == 3:
                a, b, c = entry
                if type(a) is int and type(b) is int and type(c) is int:
                    # as written (integers): the replaced entry is the snapshot, unchanged
                    seen = ValueSeen(float(a), float(b), c)
                    table[value] = [t if t < a else a, t if t > b else b, c + 1]
                    snap[attr] = entry
                elif isinstance(a, number) and isinstance(b, number) and isinstance(c, number):
                    first, last, count = float(a), float(b), int(c)
                    seen = ValueSeen(first, last, count)
                    table[value] = [int(t if t < first else first), int(t if t > last else last), count + 1]
                    snap[attr] = [int(first), int(last), count]
        if value is not None and seen is None:
            new_attrs.append(attr)
            table[value] = [t, t, 1]
        prior[attr] = seen
        if prune_all or len(table) > cap:
            _prune_values(table, cap, time)
        if not table:
            vals.pop(attr)
    view = SigninView(record_id, learned, signins, first_seen, attrs, frozenset(new_attrs), prior)
    return view, snap


def _snapshot_priors(view: SigninView) -> dict[str, list[int]]:
    """The priors of a view as the state snapshot keeps them (what `_view_and_observe`'s snapshot is tested against)."""
    return {a: [int(s.first_seen), int(s.last_seen), s.count] for a, s in view.prior.items() if s is not None}


_LAST_VIEW = "signin_view"
"""``ctx.memo`` key of (record ID, view) of the sign-in being handled: the other detectors of the same record
reuse it, and a duplicate of the record in the batch is not counted twice."""


def observe_signin(ctx: DetectionContext, event: Event) -> SigninView:
    """The pre-event baseline view of a successful sign-in, recording the sign-in exactly once.

    The first call for a record updates the user's baseline and the tenant's prevalence counts, and keeps
    the view (per thread, for the same record and context) plus a small snapshot in the state;
    further calls for the same record (the other detectors of the same event) return the same view. A
    record that is not a successful sign-in, or that has no user, is only viewed, never recorded.
    """
    memo = ctx.memo
    cached = memo.get(_LAST_VIEW)
    if cached is not None and cached[0] == event.record_id:
        view: SigninView = cached[1]
        return view
    attrs = signin_attributes(event)
    if event.user_key is None or not is_successful_signin(event):
        return _view(event.record_id, peek_baseline(ctx, event), attrs, event.time)
    sec = ctx.state(event, SIGNIN_SECTION)
    snap = sec.get("last")
    if isinstance(snap, dict) and snap.get("rid") == event.record_id:
        got = _from_snapshot(event.record_id, snap, attrs)
        if got is not None:
            memo[_LAST_VIEW] = (event.record_id, got)
            return got
    view, priors = _view_and_observe(event.record_id, sec, attrs, event.time)
    TenantPrevalence.of(ctx).observe_signin(event)
    sec["last"] = {
        "rid": event.record_id,
        "l": view.learned,
        "n": view.signins_before,
        "fs": None if view.first_seen is None else int(view.first_seen),
        "p": priors,
    }
    memo[_LAST_VIEW] = (event.record_id, view)
    return view


def _from_snapshot(record_id: str, snap: Mapping[str, Any], attrs: Mapping[str, str | None]) -> SigninView | None:
    raw_prior = snap.get("p")
    if not isinstance(raw_prior, dict):
        return None
    prior = {a: _value_seen(raw_prior.get(a)) for a in attrs}
    fs = snap.get("fs")
    n = snap.get("n")
    return SigninView(
        record_id=record_id,
        learned=bool(snap.get("l")),
        signins_before=int(n) if isinstance(n, int) else 0,
        first_seen=float(fs) if isinstance(fs, _NUMBER) else None,
        attributes=dict(attrs),
        new=frozenset(a for a, v in attrs.items() if v is not None and prior[a] is None),
        prior=prior,
    )


def peek_baseline(ctx: DetectionContext, event: Event) -> Baseline:
    """The user's sign-in baseline, read-only (empty for an unknown user or a record without one).

    When the event itself was already recorded (a detector of the same sign-in ran first), the view is
    still of the state *after* it; use :func:`observe_signin` for the pre-event view of a success.
    """
    if event.user_key is None:
        return Baseline({})
    return Baseline(ctx.peek_state(event, SIGNIN_SECTION))


# --- the user's home country and country novelty -----------------------------------------------------


def home_country(tenant: TenantConfig, event: Event) -> str | None:
    """The user's home country from onboarding (Entra usageLocation), by UPN or object ID."""
    if not tenant.home_countries:
        return None
    for key in (event.upn, event.object_id):
        if key:
            got = tenant.home_countries.get(key.lower())
            if got:
                return got.upper()
    return None


def travel_countries(tenant: TenantConfig, event: Event) -> frozenset[str]:
    """Countries of the user's travel exceptions still valid at the event's time."""
    if not tenant.travel_exceptions:
        return frozenset()
    keys = {k.lower() for k in (event.upn, event.object_id) if k}
    at = datetime.fromtimestamp(event.time, UTC)
    return frozenset(t.country.upper() for t in tenant.travel_exceptions if t.user.lower() in keys and at <= t.until)


def country_is_new(base: Baseline, country: str | None, *, now: float, home: str | None) -> bool:
    """True when a learned user (or one with a known home country) has never signed in from ``country``."""
    if country is None or country == home:
        return False
    if base.get("country", country) is not None:
        return False
    return base.learned(now) or home is not None


# --- tenant prevalence -------------------------------------------------------------------------------

cached_network_key: Callable[[str | None], str | None] = lru_cache(maxsize=65536)(network_key)
"""``shared.detection.geo.network_key``, cached per address (it is pure)."""

PREVALENCE_SECTION = "_prevalence"
SHARED_MIN_USERS = 5
"""Distinct other users after which a country, ASN or network is "shared" in the tenant."""
SHARED_MIN_AGE_S = DAY_S
"""A place becomes shared only when first used at least a day earlier: a campaign hitting five users from
one VPS in one hour must not whitelist itself."""
PREVALENCE_TTL_S = 30 * DAY_S
PREVALENCE_CAPS: dict[str, int] = {"c": 12, "a": 12, "n": 12}
"""Kinds: c = country, a = ASN, n = network (/24, /48); entries kept per kind."""


class _PruneTracker:
    """What the last full prune of the prevalence tables established (never persisted).

    After `_prune` ran over a table, every entry is valid and none has expired; from then on only
    `TenantPrevalence.observe` writes that table (within one detection context), and it writes valid
    entries only. ``oldest[kind]`` is a lower bound of the entries' last-seen times: while ``now`` is
    within the TTL of it and the table is within its cap, a prune would remove nothing, so it is skipped.
    """

    __slots__ = ("oldest", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.oldest: dict[str, float] = {}


class TenantPrevalence:
    """Distinct users per country, ASN and network in one tenant (tenant-wide state, bounded)."""

    def __init__(self, ctx: DetectionContext) -> None:
        self._sec = ctx.tenant_state(PREVALENCE_SECTION)
        self._tr = _PruneTracker()
        self._shared: dict[tuple[str, str | None, float, str | None], bool] = {}
        """`is_shared` answers since the last write."""

    @classmethod
    def of(cls, ctx: DetectionContext) -> TenantPrevalence:
        """The batch's prevalence view, made once per detection context and shared by its detectors."""
        got = ctx.memo.get(PREVALENCE_SECTION)
        if got is None:
            got = ctx.memo[PREVALENCE_SECTION] = cls(ctx)
        prevalence: TenantPrevalence = got
        return prevalence

    def _tracker(self) -> _PruneTracker:
        return self._tr

    def observe(self, kind: str, key: str | None, user_key: str | None, now: float) -> None:
        """Count ``user_key`` for ``key`` (idempotent per user: a set, not a counter)."""
        self._observe(self._tracker(), kind, key, user_key, now)

    def _observe(self, tr: _PruneTracker, kind: str, key: str | None, user_key: str | None, now: float) -> None:
        if key is None or user_key is None or kind not in PREVALENCE_CAPS:
            return
        self._shared.clear()
        self._count(tr, kind, key, user_hash(user_key), now, int(now))

    def _count(self, tr: _PruneTracker, kind: str, key: str, h: str, now: float, t: int) -> None:
        """`observe` for a known kind, a key and the user's hash; ``t`` is ``int(now)``. The caller clears
        the `is_shared` answers."""
        sec = self._sec
        table = sec.get(kind)
        if not isinstance(table, dict):
            table = {}
            sec[kind] = table
        entry = table.get(key)
        if (
            type(entry) is list
            and len(entry) == 3
            and type(entry[0]) is int
            and type(entry[1]) is int
            and type(entry[2]) is list
        ):  # as written
            first, last, users = entry
            if t < first:
                entry[0] = t
            if t > last:
                entry[1] = last = t
        else:
            entry, last, users = self._reset_entry(table, key, entry, t)
        if h not in users and len(users) <= SHARED_MIN_USERS:
            users.append(h)
        cap = PREVALENCE_CAPS[kind]
        size = len(table)
        if size <= cap + 1 and tr.tables.get(kind) is table:
            oldest = tr.oldest[kind]
            if now - oldest <= PREVALENCE_TTL_S:
                # nothing is invalid or expired: `_prune` would at most evict the one entry over the cap
                if last < oldest:
                    tr.oldest[kind] = last
                if size > cap:
                    _evict_least_shared(table)
                return
        _prune(table, cap, now)
        tr.tables[kind] = table
        tr.oldest[kind] = min((float(e[1]) for e in table.values()), default=math.inf)

    @staticmethod
    def _reset_entry(table: dict[str, Any], key: str, entry: Any, t: int) -> tuple[list[Any], int, list[str]]:
        """An entry not as written: a valid one with numbers of another type is updated to integers, anything
        else is replaced by a fresh entry."""
        if not _valid_entry(entry):
            entry = [t, t, []]
            table[key] = entry
        first = int(entry[0])
        entry[0] = first if first < t else t
        last = int(entry[1])
        last = entry[1] = last if last > t else t
        users: list[str] = entry[2]
        return entry, last, users

    def observe_signin(self, event: Event) -> None:
        """Count the event's user for its country, ASN and network."""
        info: IpInfo | None = event.ip_info
        user_key = event.user_key
        if info is None or user_key is None:
            return
        now = event.time
        t = int(now)
        h = user_hash(user_key)
        tr = self._tracker()
        self._shared.clear()
        country = info.country
        if country:
            self._count(tr, "c", country.upper(), h, now, t)
        asn = info.asn
        if asn:
            self._count(tr, "a", str(asn), h, now, t)
        net = cached_network_key(event.ip)
        if net is not None:
            self._count(tr, "n", net, h, now, t)

    def users(self, kind: str, key: str | None, *, excluding: str | None = None) -> int:
        """Distinct users seen for ``key`` (capped at SHARED_MIN_USERS + 1), not counting ``excluding``."""
        table = self._sec.get(kind)
        entry = table.get(key) if isinstance(table, dict) and key is not None else None
        if not _valid_entry(entry):
            return 0
        users: list[str] = entry[2]
        skip = user_hash(excluding) if excluding else None
        return sum(1 for u in users if u != skip)

    def is_shared(self, kind: str, key: str | None, *, now: float, excluding: str | None = None) -> bool:
        """Used by at least SHARED_MIN_USERS other users, and first used at least a day before ``now``.

        Answers are kept until the next write (the sign-in detectors of one event ask the same questions).
        """
        memo = self._shared
        asked = (kind, key, now, excluding)
        got = memo.get(asked)
        if got is None:
            if len(memo) >= 256:
                memo.clear()
            got = memo[asked] = self._is_shared(kind, key, now=now, excluding=excluding)
        return got

    def _is_shared(self, kind: str, key: str | None, *, now: float, excluding: str | None) -> bool:
        table = self._sec.get(kind)
        entry = table.get(key) if isinstance(table, dict) and key is not None else None
        if not _valid_entry(entry):
            return False
        if now - float(entry[0]) < SHARED_MIN_AGE_S:
            return False
        return self.users(kind, key, excluding=excluding) >= SHARED_MIN_USERS


def _valid_entry(entry: Any) -> TypeGuard[list[Any]]:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], _NUMBER)
        and isinstance(entry[1], _NUMBER)
        and isinstance(entry[2], list)
    )


def _evict_least_shared(table: dict[str, Any]) -> None:
    """Drop the entry `_prune` ranks first for eviction: fewest users, then least recently seen, then oldest in
    the table (its sort is stable). Every entry must be valid."""
    victim: str | None = None
    fewest = -1
    seen: float = 0.0
    for k, e in table.items():
        n = len(e[2])
        if victim is None or n < fewest or (n == fewest and e[1] < seen):
            victim, fewest, seen = k, n, e[1]
    if victim is not None:
        table.pop(victim)


def _prune(table: dict[str, Any], cap: int, now: float) -> None:
    for k in [k for k, e in table.items() if not _valid_entry(e) or now - float(e[1]) > PREVALENCE_TTL_S]:
        table.pop(k)
    if len(table) > cap:
        ranked = sorted(table.items(), key=lambda kv: (len(kv[1][2]), kv[1][1]))
        for k, _ in ranked[: len(table) - cap]:
            table.pop(k)


# --- what a sign-in finding shows ---------------------------------------------------------------------


def signin_context(event: Event) -> dict[str, Any]:
    """The facts of a sign-in every sign-in finding carries: where from, with what, and the outcome."""
    info: IpInfo | None = event.ip_info
    return {
        "ip": event.ip,
        "country": info.country if info is not None else None,
        "city": info.city if info is not None else None,
        "asn": info.asn if info is not None else None,
        "asn_org": info.asn_org if info is not None else None,
        "geo_provider": info.geo_provider if info is not None else None,
        "application_id": event.client_app_id,
        "user_agent": event.user_agent or None,
        "error_number": event.error_number,
    }
