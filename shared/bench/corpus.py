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


def _record(rng: random.Random, t: datetime, tid: str, user: R.User, domain: str) -> tuple[str, dict[str, Any]]:
    roll = rng.random()
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


def generate(records: int, *, seed: int = 42) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(tenant, content type, records) blobs in time order, ``records`` records in all."""
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


def ensure_corpus(root: Path, records: int, *, seed: int = 42) -> CorpusInfo:
    """Write the corpus once under ``root/<records>-<seed>/`` (reused on later runs)."""
    path = root / f"{records}-{seed}-{BLOB_RECORDS}-v7"
    done = path / "DONE"
    if not done.exists():
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.json"):
            old.unlink()
        n = 0
        for i, (tid, ct, recs) in enumerate(generate(records, seed=seed)):
            (path / f"{i:05d}_{tid[:8]}_{ct}.json").write_bytes(orjson.dumps(recs))
            n += len(recs)
        done.write_text(str(n))
    files = sorted(path.glob("*.json"))
    return CorpusInfo(path, int(done.read_text()), len(files), sum(f.stat().st_size for f in files))
