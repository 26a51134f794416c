"""The benchmark corpus: a deterministic month-day of 10 tenants and 1,000 users as content blobs.

Mix (by record count): about 30 % sign-ins (a sixth of them failures), 25 % MailItemsAccessed,
30 % SharePoint file operations, 10 % other mailbox operations, 5 % admin and directory
operations (inbox rules, Set-Mailbox, consent, user and role changes; a fifth of the directory changes
logged with ``UserId`` "Not Available" and only the actor's object ID, so identities are resolved through
Graph as in a real tenant). Records are built with
the same builders as the demo, so their shape and size (about 1.5 KB) are the API's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from shared.demo import records as R

TENANTS = 10
USERS = 1000
BLOB_RECORDS = 3000
"""Records per content blob: busy tenants get ~2,900 (performance notes, section 1: 1,000-5,000)."""
_HOME_PREFIXES = (
    "73.15.22.",
    "73.162.40.",
    "98.207.11.",
    "24.5.77.",
    "86.134.20.",
    "81.2.69.",
    "79.192.10.",
    "91.64.3.",
)
"""Residential (ISP) /24s, so benign users sign in from eyeball networks as real users do."""
_HOSTING_IPS = tuple(f"146.70.{a}.{b}" for a in (133, 160) for b in (10, 20, 30)) + tuple(
    f"159.89.{a}.{b}" for a in (10, 80) for b in (5, 6)
)


@dataclass(frozen=True)
class CorpusInfo:
    path: Path
    records: int
    blobs: int
    bytes: int


def _users(rng: random.Random) -> list[tuple[str, R.User, str]]:
    out: list[tuple[str, R.User, str]] = []
    for t in range(TENANTS):
        tid = R.stable_guid("bench-tenant", t)
        domain = f"tenant{t}.example.com"
        for u in range(USERS // TENANTS):
            upn = f"user{u}@{domain}"
            home = rng.choice(_HOME_PREFIXES) + str(rng.randint(1, 254))
            out.append(
                (
                    tid,
                    R.User(
                        upn=upn,
                        object_id=R.stable_guid("bench-user", t, u),
                        puid=f"1003{rng.getrandbits(48):012X}",
                        display_name=f"User {u}",
                        home_ip=home,
                        os="Windows10",
                        browser="Edge",
                        user_agent=R.UA_EDGE,
                    ),
                    domain,
                )
            )
    return out


def _record(
    rng: random.Random, t: datetime, tid: str, user: R.User, domain: str, ip: str | None = None
) -> tuple[str, dict[str, Any]]:
    roll = rng.random()
    if ip is None:
        # attacks are rare in real tenants: about 1 record in 5,000 comes from a hosting or VPN address
        ip = user.home_ip if rng.random() > 0.0002 else rng.choice(_HOSTING_IPS)
    if roll < 0.25:
        return "Audit.AzureActiveDirectory", R.signin(rng, t, tid, user, ip=ip)
    if roll < 0.30:
        # wrong passwords and MFA prompts are everyday; a denied MFA after a right password is rare
        error = 500121 if rng.random() < 0.005 else rng.choice((50126, 50126, 50074))
        return "Audit.AzureActiveDirectory", R.signin(rng, t, tid, user, ip=ip, error=error)
    if roll < 0.55:
        return "Audit.Exchange", R.mail_access(rng, t, tid, user, ip=ip, items=rng.randint(1, 3))
    if roll < 0.85:
        op = rng.choice(("FileAccessed", "FileAccessed", "FileModified", "FileDownloaded"))
        return "Audit.SharePoint", R.file_op(rng, t, tid, user, ip=ip, op=op)
    if roll < 0.95:
        rec = R.mail_access(rng, t, tid, user, ip=ip)
        rec["Operation"] = rng.choice(("Send", "MoveToDeletedItems", "Update"))
        rec["RecordType"] = 2
        return "Audit.Exchange", rec
    sub = rng.random()
    bad = rng.random() < 0.01  # one admin operation in a hundred looks like an attacker's
    if sub < 0.3:
        forward = "someone@gmail.com" if bad else f"team@{domain}"
        params = [
            {"Name": "Name", "Value": "." if bad else rng.choice(("Newsletters", "Receipts"))},
            {"Name": "ForwardTo", "Value": forward},
        ]
        return "Audit.Exchange", R.inbox_rule(rng, t, tid, user, ip=ip, parameters=params)
    if sub < 0.4:
        return "Audit.AzureActiveDirectory", R.consent(
            rng,
            t,
            tid,
            user,
            app_id=R.stable_guid("app", rng.randint(0, 20)),
            app_name="Some App",
            scopes="Mail.Read offline_access" if bad else "User.Read",
            sp_id=R.stable_guid("sp", rng.randint(0, 20)),
        )
    rec = R.signin(rng, t, tid, user, ip=ip)
    rec.update({"Operation": rng.choice(("Update user.", "Add member to group.", "Set-Mailbox")), "RecordType": 8})
    if rng.random() < 0.2:
        # as Entra logs some directory changes: no UPN, the actor's object ID only (resolved through Graph)
        rec.update({"UserId": "Not Available", "Actor": [{"ID": user.object_id, "Type": 0}]})
    return "Audit.AzureActiveDirectory", rec


def corpus_users(*, seed: int = 42) -> list[tuple[str, R.User]]:
    """(tenant, user) of the corpus `generate` writes with ``seed``: what Graph knows of its tenants."""
    return [(tid, user) for tid, user, _ in _users(random.Random(seed))]


def generate(records: int, *, seed: int = 42, profile: str = "home") -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(tenant, content type, records) blobs in time order, ``records`` records in all, of one `PROFILES` entry."""
    if profile != "home":
        yield from _generate_roaming(records, seed=seed, profile=profile)
        return
    rng = random.Random(seed)
    users = _users(rng)
    weights = [rng.lognormvariate(0, 0.8) for _ in users]
    start = datetime(2026, 11, 20, tzinfo=UTC)
    span = timedelta(hours=max(1.0, records / 62_500))  # about 1.5M records a day for 1,000 users
    step = span / records
    pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
    picks = rng.choices(range(len(users)), weights=weights, k=records)
    for i, k in enumerate(picks):
        tid, user, domain = users[k]
        ct, rec = _record(rng, start + step * i, tid, user, domain)
        bucket = pending.setdefault((tid, ct), [])
        bucket.append(rec)
        if len(bucket) >= BLOB_RECORDS:
            yield tid, ct, bucket
            pending[(tid, ct)] = []
    for (tid, ct), bucket in pending.items():
        if bucket:
            yield tid, ct, bucket


def ensure_corpus(root: Path, records: int, *, seed: int = 42, profile: str = "home") -> CorpusInfo:
    """Write the corpus once under ``root/<records>-<seed>-.../`` (reused on later runs)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown bench profile {profile!r} (one of {', '.join(PROFILES)})")
    suffix = "" if profile == "home" else f"-{profile}-{ROAMING_VERSION}"
    path = root / f"{records}-{seed}-{BLOB_RECORDS}-v7{suffix}"
    done = path / "DONE"
    if not done.exists():
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.json"):
            old.unlink()
        n = 0
        for i, (tid, ct, recs) in enumerate(generate(records, seed=seed, profile=profile)):
            (path / f"{i:05d}_{tid[:8]}_{ct}.json").write_bytes(orjson.dumps(recs))
            n += len(recs)
        done.write_text(str(n))
    files = sorted(path.glob("*.json"))
    return CorpusInfo(path, int(done.read_text()), len(files), sum(f.stat().st_size for f in files))


# --- the roaming profiles: `diverse` (many networks per user) and `stress` (addresses new to the user) ---------

PROFILES = ("home", "diverse", "stress")
"""``home``: users sign in from their home address (the original corpus); ``diverse``: each user from 20-30
networks over a month; ``stress``: about one event in 14 from an address new to the user (README, `make bench`)."""
ROAMING_VERSION = "r1"
"""Bumped when the roaming profiles' generator changes (the corpus directory name carries it)."""
ROAMING_DAYS = 30
"""The roaming profiles span a month, so trips, rotating mobile addresses and the learning period all happen."""
_REGION_OF_PREFIX = {
    p: ("US" if p[:3] in ("73.", "98.", "24.") else "GB" if p[:3] in ("86.", "81.") else "DE") for p in _HOME_PREFIXES
}
_OFFICE_PREFIX = {"US": "24.5.{}.", "GB": "86.134.{}.", "DE": "79.192.{}."}
"""Per tenant and region an office /24 (the third octet varies with the tenant)."""
_CARRIERS = {
    "US": ("172.56.", "174.205.", "166.137."),  # T-Mobile, Verizon, AT&T
    "GB": ("92.40.", "31.94.", "92.41."),  # Three, EE, Three
    "DE": ("80.187.", "46.114.", "2.200."),  # Telekom, Telefonica, Vodafone
}
"""Mobile carriers' /16s per region: their addresses rotate, anywhere in the country."""
_TRAVEL = {
    "US": ("88.160.", "83.32.", "126.200.", "86.134."),
    "GB": ("88.160.", "83.32.", "24.5.", "79.192."),
    "DE": ("88.160.", "83.32.", "86.134.", "110.33."),
}
"""Residential or hotel networks abroad, per home region (France, Spain, Japan, the UK, the US, Germany, Australia)."""
_HOSTING_16 = ("146.70.", "159.89.", "195.154.", "130.211.")
"""Hosting and VPN networks (M247, DigitalOcean, Scaleway, Google Cloud)."""
TRANSIT_S = 10 * 3600
"""No events in the ten hours before and after a trip: the user is on a plane."""


@dataclass(frozen=True)
class _Trip:
    start: float
    end: float
    hotels: tuple[str, ...]


@dataclass(frozen=True)
class _Places:
    """One user's networks for a month: home, office, rotating mobile pools and trips."""

    home: str
    office: tuple[str, ...]
    mobile: tuple[tuple[str, ...], ...]
    trips: tuple[_Trip, ...]

    def addresses(self) -> set[str]:
        return {
            self.home,
            *self.office,
            *(a for pool in self.mobile for a in pool),
            *(h for t in self.trips for h in t.hotels),
        }


def _octets(rng: random.Random, prefix: str) -> str:
    """A random address in a /16 (``a.b.``) or /24 (``a.b.c.``) prefix."""
    if prefix.count(".") == 2:
        return f"{prefix}{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{prefix}{rng.randint(1, 254)}"


def _places(rng: random.Random, t: int, user: R.User, start: float, span: float) -> _Places:
    """20-30 networks: home, 3 office addresses, hotels on 1-2 trips, the rest rotating over 2-3 mobile carriers."""
    region = _REGION_OF_PREFIX[user.home_ip.rsplit(".", 1)[0] + "."]
    total = rng.randint(20, 30)
    office_prefix = _OFFICE_PREFIX[region].format(100 + t)
    office = tuple(office_prefix + str(n) for n in rng.sample(range(1, 9), 3))
    trips: list[_Trip] = []
    cursor = start + 2 * 86400
    for _ in range(rng.randint(1, 2)):
        begin = cursor + rng.uniform(1, 10) * 86400
        end = begin + rng.uniform(2, 5) * 86400
        if end + TRANSIT_S > start + span:
            break
        dest = rng.choice(_TRAVEL[region])
        trips.append(_Trip(begin, end, tuple(_octets(rng, dest) for _ in range(rng.randint(2, 3)))))
        cursor = end + TRANSIT_S
    carriers = rng.sample(_CARRIERS[region], rng.randint(2, 3))
    left = total - 1 - len(office) - sum(len(tr.hotels) for tr in trips)
    mobile = tuple(
        tuple(_octets(rng, c) for _ in range(left // len(carriers) + (1 if n < left % len(carriers) else 0)))
        for n, c in enumerate(carriers)
    )
    return _Places(user.home_ip, office, mobile, tuple(trips))


def _diverse_ip(rng: random.Random, places: _Places, now: float, start: float, span: float) -> str | None:
    """The address of an event at ``now`` (None: the user is in transit, no event)."""
    for trip in places.trips:
        if trip.start - TRANSIT_S <= now < trip.end + TRANSIT_S:
            if now < trip.start or now >= trip.end:
                return None
            return rng.choice(trip.hotels)
    roll = rng.random()
    if roll < 0.45:
        return places.home
    if roll < 0.75:
        return rng.choice(places.office)
    pool = rng.choice(places.mobile)
    return pool[min(len(pool) - 1, int((now - start) / span * len(pool)))]  # each address holds a slice of the month


def _stress_ip(rng: random.Random, usual: tuple[str, ...], region: str) -> str:
    """About one event in 14 from an address new to the user: mobile, travel or hosting."""
    if rng.random() >= 1 / 14:
        return usual[0] if len(usual) == 1 or rng.random() < 0.6 else rng.choice(usual)
    kind = rng.random()
    if kind < 0.4:
        return _octets(rng, rng.choice(_CARRIERS[region]))
    if kind < 0.65:
        return _octets(rng, rng.choice(_TRAVEL[region]))
    return _octets(rng, rng.choice(_HOSTING_16))


def _generate_roaming(records: int, *, seed: int, profile: str) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    rng = random.Random(seed)
    users = _users(rng)
    weights = [rng.lognormvariate(0, 0.8) for _ in users]
    origin = datetime(2026, 11, 1, tzinfo=UTC)
    start = origin.timestamp()
    span = ROAMING_DAYS * 86400.0
    step = span / records
    prng = random.Random(seed + 1)  # the places, from their own stream
    places: list[_Places] = []
    usual: list[tuple[str, ...]] = []
    tenant_index = {tid: i for i, tid in enumerate(dict.fromkeys(tid for tid, _, _ in users))}
    for tid, user, _ in users:
        p = _places(prng, tenant_index[tid], user, start, span)
        places.append(p)
        extra = [p.office[0]] if prng.random() < 0.6 else []
        if prng.random() < 0.4:
            extra.append(p.mobile[0][0])
        usual.append((user.home_ip, *extra))
    pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
    picks = rng.choices(range(len(users)), weights=weights, k=records)
    for i, k in enumerate(picks):
        now = start + step * i
        tid, user, domain = users[k]
        region = _REGION_OF_PREFIX[user.home_ip.rsplit(".", 1)[0] + "."]
        if profile == "diverse":
            ip = _diverse_ip(rng, places[k], now, start, span)
            while ip is None:  # in transit: the event is someone else's
                k = rng.randrange(len(users))
                tid, user, domain = users[k]
                ip = _diverse_ip(rng, places[k], now, start, span)
        else:
            ip = _stress_ip(rng, usual[k], region)
        ct, rec = _record(rng, origin + timedelta(seconds=step * i), tid, user, domain, ip=ip)
        bucket = pending.setdefault((tid, ct), [])
        bucket.append(rec)
        if len(bucket) >= BLOB_RECORDS:
            yield tid, ct, bucket
            pending[(tid, ct)] = []
    for (tid, ct), bucket in pending.items():
        if bucket:
            yield tid, ct, bucket


def profile_addresses(*, seed: int = 42) -> dict[str, int]:
    """Per user (UPN), how many networks the ``diverse`` profile gives them over the month (the README's 20-30)."""
    rng = random.Random(seed)
    users = _users(rng)
    prng = random.Random(seed + 1)
    tenant_index = {tid: i for i, tid in enumerate(dict.fromkeys(tid for tid, _, _ in users))}
    start = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    out = {}
    for tid, user, _ in users:
        p = _places(prng, tenant_index[tid], user, start, ROAMING_DAYS * 86400.0)
        prng.random(), prng.random()
        out[user.upn] = len(p.addresses())
    return out
