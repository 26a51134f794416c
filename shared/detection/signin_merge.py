"""One sign-in, one event: the audit record and the sign-in log entry of the same sign-in are merged.

A tenant that sends both sources gives each sign-in twice: a ``UserLoggedIn`` / ``UserLoginFailed`` audit record
and a sign-in log entry (``shared.records.signins``). They name the same request id (the log's ``id``, the audit
record's ``IntraSystemId``: `Event.signin_request_id`). Counting detectors would count the sign-in twice, so:

* within one batch, the pair becomes one event (`merge_pairs`): the sign-in log's record, completed by what only
  the audit record holds (name/value pairs the log lacks, e.g. the session id of a v1.0 Graph sign-in), with the
  audit record's ``Id`` kept in ``SignIn.audit_record_id``; the time, id and keys are the log's;
* across batches (the sources arrive minutes to hours apart), the request ids seen are remembered per user
  (`SigninMerger`): when the log comes second, only the detectors that read the sign-in log's own fields
  (``Need.SIGNIN_LOG``) get it, since every other detector has seen the audit record; when the audit record comes
  second, it is dropped, since every detector has seen the richer log entry. Each detector sees each sign-in once.

Audit records are remembered only once the tenant has sent a sign-in log entry (a tenant-wide mark), so tenants
without the second source keep no ids. Ids are kept as short digests, at most `MAX_IDS` per user and source
(the oldest go first): a sign-in whose twin comes after `MAX_IDS` newer sign-ins of the same user is seen twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import Enum
from typing import Any

import msgspec
import orjson

from shared.detection.base import DetectionContext
from shared.records.event import Event
from shared.records.model import convert_record

MERGE_OPS = frozenset({"userloggedin", "userloginfailed"})
SECTION = "_signin_ids"
TENANT_SECTION = "_signin_log"
KEY_CHARS = 10
MAX_IDS = 64
_PAIRED = ("ExtendedProperties", "DeviceProperties")


class Fate(Enum):
    ALL = "all"
    """Every detector routed for the operation sees it."""
    SIGNIN_LOG_ONLY = "signin_log_only"
    """Only the detectors reading the sign-in log's fields see it (the audit record came first)."""
    DROP = "drop"
    """No detector sees it (the sign-in log entry came first)."""


def _digest(request_id: str) -> str:
    return hashlib.blake2b(request_id.encode(), digest_size=8).hexdigest()[:KEY_CHARS]


def _as_dict(ev: Event) -> dict[str, Any]:
    """The event's record as JSON-ready data: its own JSON when kept, else the typed fields it has."""
    if ev.raw:
        got = orjson.loads(ev.raw)
        if isinstance(got, dict):
            return got
    rec = ev.record
    out: dict[str, Any] = {}
    for name in rec.__struct_fields__:
        value = getattr(rec, name)
        if isinstance(value, msgspec.Raw):
            if value:
                out[name] = orjson.loads(bytes(value))
        elif value is not None:
            out[name] = msgspec.to_builtins(value)
    return out


def merged(log: Event, audit: Event) -> Event:
    """The sign-in log's event completed by the audit record of the same sign-in."""
    rec = _as_dict(log)
    other = _as_dict(audit)
    for name in _PAIRED:
        got = rec.get(name)
        mine: list[Any] = got if isinstance(got, list) else []
        theirs = other.get(name)
        names = {str(p.get("Name", "")).lower() for p in mine if isinstance(p, dict)}
        extra = [
            p
            for p in (theirs if isinstance(theirs, list) else [])
            if isinstance(p, dict) and str(p.get("Name", "")).lower() not in names and p.get("Value") not in (None, "")
        ]
        if extra:
            rec[name] = [*mine, *extra]
    for key, value in other.items():
        if rec.get(key) in (None, "", []) and key not in ("SignIn", "Id"):
            rec[key] = value
    signin = dict(rec.get("SignIn") or {})
    signin["audit_record_id"] = audit.record_id
    if not signin.get("session_id") and audit.aad_session_id:
        signin["session_id"] = audit.aad_session_id
    rec["SignIn"] = signin
    raw = orjson.dumps(rec)
    return Event(
        convert_record(rec),
        raw,
        log.record_id,
        log.tenant_id,
        log.time,
        log.op,
        log.object_id or audit.object_id,
        log.upn or audit.upn,
        log.user_key or audit.user_key,
        log.ip or audit.ip,
        batch_id=log.batch_id,
    )


def merge_pairs(events: Sequence[Event]) -> list[Event]:
    """The batch with each (audit record, sign-in log entry) pair of one sign-in replaced by one merged event."""
    logs: dict[str, int] = {}
    audits: dict[str, int] = {}
    for i, ev in enumerate(events):
        if ev.op not in MERGE_OPS:
            continue
        rid = ev.signin_request_id  # unique per sign-in: the pair is found even when one names the user by UPN
        if rid is None:
            continue
        (logs if ev.signin is not None else audits).setdefault(rid, i)
    pairs = {k: (logs[k], audits[k]) for k in logs.keys() & audits.keys()}
    if not pairs:
        return list(events)
    out = list(events)
    drop: set[int] = set()
    for li, ai in pairs.values():
        out[li] = merged(events[li], events[ai])
        drop.add(ai)
    return [ev for i, ev in enumerate(out) if i not in drop]


class SigninMerger:
    """Decides, per sign-in event of a batch, which detectors see it (see the module docstring)."""

    def __init__(self, ctx: DetectionContext, events: Sequence[Event]) -> None:
        self.ctx = ctx
        tenant = ctx.peek_tenant_state(TENANT_SECTION)
        self.tenant_has_log = bool(tenant.get("since"))
        if not self.tenant_has_log:
            first = next((ev for ev in events if ev.signin is not None and ev.op in MERGE_OPS), None)
            if first is not None:
                ctx.tenant_state(TENANT_SECTION)["since"] = int(first.time)
                self.tenant_has_log = True

    def fate(self, ev: Event) -> Fate:
        if ev.op not in MERGE_OPS or not self.tenant_has_log:
            return Fate.ALL
        rid = ev.signin_request_id
        if rid is None:
            return Fate.ALL
        key = _digest(rid)
        if ev.signin is not None:
            if ev.signin.audit_record_id:
                return Fate.ALL  # merged with its audit record in this batch already
            if self._take(ev, "a", key):
                return Fate.SIGNIN_LOG_ONLY
            self._remember(ev, "l", key)
            return Fate.ALL
        if self._take(ev, "l", key):
            return Fate.DROP
        self._remember(ev, "a", key)
        return Fate.ALL

    def _take(self, ev: Event, source: str, key: str) -> bool:
        seen = self.ctx.peek_state(ev, SECTION).get(source)
        if not isinstance(seen, str) or key not in _keys(seen):
            return False
        sec = self.ctx.state(ev, SECTION)
        sec[source] = "".join(k for k in _keys(seen) if k != key)
        return True

    def _remember(self, ev: Event, source: str, key: str) -> None:
        sec = self.ctx.state(ev, SECTION)
        seen = sec.get(source)
        keys = [k for k in _keys(seen if isinstance(seen, str) else "") if k != key]
        keys.append(key)
        sec[source] = "".join(keys[-MAX_IDS:])


def _keys(packed: str) -> list[str]:
    return [packed[i : i + KEY_CHARS] for i in range(0, len(packed) - KEY_CHARS + 1, KEY_CHARS)]
