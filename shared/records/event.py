"""Parsing at the edge: content blobs and exports become typed, normalised events.

`parse_blob` splits a blob into records, decodes each into an :class:`AuditRecord`, and
normalises what every detector needs (tenant, UTC time, the user's state key, the client
IP). A record that cannot be parsed at all becomes a :class:`Quarantined` entry with a
reason; it is counted and kept, never dropped in silence. A known field with an
unexpected type is dropped from the typed view (the raw bytes keep it) rather than
rejecting the whole record.

Messy inputs handled here: ``CreationTime`` without a zone (UTC), ``UserId`` of
"Not Available" or absent (the Actor object ID and ``UserKey`` are kept), ``Parameters``
as a list in any order, ``Name:Value`` strings, an object, a JSON string or a command line, ``ClientIP`` as ``[ip]:port`` / ``ip:port`` /
``::ffff:a.b.c.d`` / host name, numbers as strings, unknown workloads and fields.
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import msgspec
import orjson

from shared.alert_model import iso
from shared.records.ip import normalize_ip
from shared.records.model import (
    NO_VALUE,
    SECURITY_ALERTS_USER,
    AffectedItem,
    AuditRecord,
    IdentityRef,
    NameValue,
    SignInDetail,
    alert_subject,
    convert_record,
    decode_affected_items,
    decode_folder,
    decode_identities,
    decode_modified_properties,
    decode_name_values,
    decode_parameters,
    decode_record,
    split_blob,
)

NOT_AVAILABLE = frozenset({"", "not available", "notavailable", "unknown", "null", "none"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LIST_DECODER = msgspec.json.Decoder(list[AuditRecord], strict=False)
_SIGNIN_OPS = frozenset({"userloggedin", "userloginfailed"})
_FIELD_AT = re.compile(r"at `\$\.([A-Za-z0-9_]+)")


_GC_LOCK = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a batch is parsed or detected; restore it afterwards.

    A batch allocates hundreds of thousands of short-lived, acyclic containers (records, events, state
    documents); each allocation burst would otherwise trigger collections that walk every live object,
    about a third of the cost of a whole-blob parse (performance notes, section 2). Reference counting
    still frees everything as usual. Nested and concurrent uses share one pause: the collector is
    re-enabled when the last one ends, and only if it was enabled when the first one began.
    """
    global _gc_depth, _gc_was_enabled
    with _GC_LOCK:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def is_guid(value: str | None) -> bool:
    return bool(value) and _GUID.match(value or "") is not None


@lru_cache(maxsize=4096)
def parse_time(value: str) -> float:
    """Epoch seconds of an audit-log time; zone-less times are UTC. Raises ValueError."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def name_values(value: list[NameValue] | str | None) -> dict[str, str]:
    """Name/Value pairs as a case-insensitive (lower-cased keys) mapping of strings.

    Accepts the list shape in any order, and the same list serialised as a JSON string.
    Values that are not strings are rendered as JSON text ("True" stays "True").
    """
    if value is None:
        return {}
    items: Iterable[Any]
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text[0] == "-":
            return cmdlet_parameters(text)
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {}
        items = decoded if isinstance(decoded, list) else []
        out: dict[str, str] = {}
        for item in items:
            if isinstance(item, dict) and item.get("Name") is not None:
                out[str(item["Name"]).lower()] = _text(item.get("Value"))
        return out
    pairs: dict[str, str] = {}
    for nv in value:
        name = nv.Name
        if name is not None:
            v = nv.Value
            pairs[name.lower()] = v if type(v) is str else _text(v)
    return pairs


def cmdlet_parameters(text: str) -> dict[str, str]:
    """The parameters of a cmdlet line as the Security & Compliance Center logs it (``Parameters`` as one string,
    e.g. ``-SearchName "Q3" -Export -Format "FxStream"``): lower-cased names; a switch without a value is "True",
    ``-Switch:$false`` is "False"; quotes removed (one parser for every command line: :func:`parameter_values`)."""
    return _text_parameters(text)


_CMDLET_PARAM = re.compile(r"(?:^|\s)-([A-Za-z][A-Za-z0-9]*)(?=[:\s]|$)")
"""A parameter name on a cmdlet's command line (``-ForwardTo``, ``-StopProcessingRules:$true``)."""
_PAIR_START = re.compile(r"(?:^|[;\n\r]|,\s*)\s*([A-Za-z][A-Za-z0-9]*)\s*[:=]")
"""The start of one ``Name:Value`` / ``Name=Value`` pair in a text of pairs."""


def parameter_values(value: Any) -> dict[str, str]:
    """Exchange ``Parameters`` in any shape as one case-insensitive mapping (lower-cased keys) of strings.

    The same parameters come as Name/Value pairs in any order (the documented shape), as ``"Name:Value"``
    strings, as one ``{"Name": value}`` object, or as one string holding any of these as JSON, the cmdlet's
    command line (``-Name "x" -ForwardTo "a@b.com" -StopProcessingRules:$true``) or ``Name:Value`` pairs
    separated by ``;`` or new lines. All give the same mapping, so a rule reads the same in every shape.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k).lower(): _unquote(_text(v)) for k, v in value.items() if str(k).strip()}
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text[0] in '[{"':
            try:
                decoded = orjson.loads(text)
            except orjson.JSONDecodeError:
                decoded = None
            if isinstance(decoded, (list, dict)):
                return parameter_values(decoded)
            if isinstance(decoded, str):
                return parameter_values(decoded)
        return _text_parameters(text)
    out: dict[str, str] = {}
    for item in value:
        if isinstance(item, NameValue):
            if item.Name is not None:
                v = item.Value
                out[item.Name.lower()] = v if type(v) is str else _text(v)
        elif isinstance(item, dict):
            name = item.get("Name", item.get("name"))
            if name is not None:
                out[str(name).lower()] = _text(item.get("Value", item.get("value")))
        elif isinstance(item, str):
            out.update(_text_parameters(item))
    return out


def _text_parameters(text: str) -> dict[str, str]:
    """Parameters written as text: a cmdlet command line, or ``Name:Value`` pairs."""
    t = text.strip()
    if not t:
        return {}
    out: dict[str, str] = {}
    if t.startswith("-") or (_CMDLET_PARAM.search(t) is not None and not _PAIR_START.match(t)):
        marks = list(_CMDLET_PARAM.finditer(t))
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(t)
            raw = t[m.end() : end].strip()
            if raw.startswith(":"):
                raw = raw[1:].strip()
            value = _unquote(raw) if raw else "True"
            low = value.lower()
            out[m.group(1).lower()] = ("True" if low == "$true" else "False") if low in ("$true", "$false") else value
        return out
    starts = list(_PAIR_START.finditer(t))
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(t)
        out[m.group(1).lower()] = _unquote(t[m.end() : end].strip().rstrip(";,").strip())
    return out


def _unquote(v: str) -> str:
    """A value without the one pair of quotes around it (inner quotes of multi-valued lists stay)."""
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" and v.count(v[0]) == 2:
        return v[1:-1]
    return v


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "True" if v else "False"
    return orjson.dumps(v).decode()


def as_int(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value.strip())
    except ValueError:
        return None


def as_bool(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    return None


class _Unset:
    """The marker of a derived value not computed yet; copies and pickles of an event keep the same marker."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()


class Event(msgspec.Struct, gc=False, eq=False):
    """A parsed, normalised audit record: what detectors read.

    ``raw`` is the record's JSON when it was parsed on its own (empty on the blob fast path:
    the archived blob keeps every byte). ``user_key`` is the per-user state key: the user's
    Entra object ID when known, else the lower-cased UPN, else ``None`` (no user:
    tenant-level records). ``upn`` is for display.
    Enrichment fills ``ip_info``, ``access`` and may refine ``user_key``/``upn``.

    The record is treated as immutable: derived values (error number, name/value collections, user
    agent, client application) are kept once computed. A msgspec struct (never encoded): built in one
    call per record, compared by identity, and not tracked by the garbage collector (nothing it holds
    refers back to it).
    """

    record: AuditRecord
    raw: bytes
    record_id: str
    tenant_id: str
    time: float
    op: str
    object_id: str | None
    upn: str | None
    user_key: str | None
    ip: str | None
    ip_info: Any = None
    access: Any = None
    batch_id: str | None = None
    _app: Any = _UNSET
    _dev: dict[str, str] | None = None
    _errno: Any = _UNSET
    _ext: Mapping[str, str] | None = None
    _ok: bool | None = None
    _opp: Mapping[str, str] | None = None
    _par: dict[str, str] | None = None
    _ua: str | None = None

    # Name/value collections, parsed once on first use -------------------------------
    @property
    def parameters(self) -> Mapping[str, str]:
        """Exchange cmdlet ``Parameters`` (keys lower-cased)."""
        got = self._par
        if got is None:
            got = self._par = parameter_values(decode_parameters(self.record.Parameters))
        return got

    @property
    def extended_properties(self) -> Mapping[str, str]:
        """Entra ``ExtendedProperties`` (keys lower-cased; read-only, shared by records with the same pairs)."""
        got = self._ext
        if got is None:
            got = self._ext = _pairs(bytes(self.record.ExtendedProperties))
        return got

    @property
    def device_properties(self) -> Mapping[str, str]:
        got = self._dev
        if got is None:
            got = self._dev = name_values(self.record.DeviceProperties)
        return got

    @property
    def operation_properties(self) -> Mapping[str, str]:
        got = self._opp
        if got is None:
            got = self._opp = _pairs(bytes(self.record.OperationProperties))
        return got

    @property
    def modified_properties(self) -> dict[str, tuple[str, str]]:
        """Entra ``ModifiedProperties`` as lower-cased name -> (old, new) text."""
        mp = decode_modified_properties(self.record.ModifiedProperties)
        out: dict[str, tuple[str, str]] = {}
        if isinstance(mp, str):
            try:
                decoded = orjson.loads(mp)
            except orjson.JSONDecodeError:
                return out
            for item in decoded if isinstance(decoded, list) else []:
                if isinstance(item, dict) and item.get("Name"):
                    out[str(item["Name"]).lower()] = (_text(item.get("OldValue")), _text(item.get("NewValue")))
        elif mp:
            for m in mp:
                if m.Name:
                    out[m.Name.lower()] = (_text(m.OldValue), _text(m.NewValue))
        return out

    @property
    def actors(self) -> list[IdentityRef]:
        """Entra ``Actor``: who acted (object IDs, UPNs, service principals), empty when absent."""
        return decode_identities(self.record.Actor) or []

    @property
    def targets(self) -> list[IdentityRef]:
        """Entra ``Target``: what was acted on, empty when absent."""
        return decode_identities(self.record.Target) or []

    # Convenience ---------------------------------------------------------------------
    @property
    def aad_session_id(self) -> str | None:
        """The Entra sign-in session: ``DeviceProperties`` SessionId of a sign-in, ``AppAccessContext.AADSessionId``
        of a workload record (lower case; None when the record names none)."""
        sid = self.device_properties.get("sessionid") if self.record.DeviceProperties is not None else None
        if not sid:
            ctx = self.record.AppAccessContext
            sid = ctx.AADSessionId if ctx is not None else None
        sid = (sid or "").strip().lower()
        return sid if sid and sid not in NOT_AVAILABLE and sid.strip("0-") else None

    @property
    def signin(self) -> SignInDetail | None:
        """What the Entra sign-in log says of this sign-in; None for audit-log records (see shared.records.signins)."""
        return self.record.SignIn

    @property
    def signin_request_id(self) -> str | None:
        """The request id of a sign-in, from either source: the sign-in log's ``id``, the audit record's
        ``IntraSystemId`` (lower case; None for other records)."""
        rec = self.record
        rid = rec.SignIn.request_id if rec.SignIn is not None else None
        if not rid and rec.IntraSystemId and self.op in _SIGNIN_OPS:
            rid = rec.IntraSystemId
        rid = (rid or "").strip().lower()
        return rid if rid and rid not in NOT_AVAILABLE and rid.strip("0-") else None

    @property
    def folder_path(self) -> str | None:
        """``Folder.Path`` of a mailbox-audit item operation (the folder the items were in)."""
        f = decode_folder(self.record.Folder)
        return f.Path if f is not None else None

    @property
    def dest_folder_path(self) -> str | None:
        """``DestFolder.Path`` of a mailbox move or copy."""
        f = decode_folder(self.record.DestFolder)
        return f.Path if f is not None else None

    @property
    def affected_items(self) -> list[AffectedItem]:
        """``AffectedItems`` of a delete or move, empty when absent."""
        return decode_affected_items(self.record.AffectedItems) or []

    @property
    def record_type(self) -> int | None:
        return as_int(self.record.RecordType)

    @property
    def succeeded(self) -> bool:
        ok = self._ok
        if ok is None:
            status = (self.record.ResultStatus or "").strip().lower()
            ok = self._ok = status in ("succeeded", "success", "true", "partiallysucceeded", "")
        return ok

    @property
    def error_number(self) -> int | None:
        """ErrorNumber (live records) or ErrorCode (the documented name); 0 is success."""
        n = self._errno
        if n is _UNSET:
            rec = self.record
            n = rec.ErrorNumber
            if n is not None and type(n) is not int:
                n = as_int(n)
            if n is None:
                n = as_int(rec.ErrorCode)
            self._errno = n
        result: int | None = n
        return result

    @property
    def user_agent(self) -> str:
        ua = self._ua
        if ua is None:
            ua = self._ua = self.extended_properties.get("useragent") or self.record.UserAgent or ""
        return ua

    @property
    def client_app_id(self) -> str | None:
        app = self._app
        if app is _UNSET:
            r = self.record
            app = r.ApplicationId or r.AppId or r.ClientAppId
            if app is None and r.AppAccessContext is not None:
                app = r.AppAccessContext.ClientAppId
            app = self._app = app.lower() if app else None
        result: str | None = app
        return result

    @property
    def user_display(self) -> str:
        return self.upn or self.object_id or "unknown"

    def __repr__(self) -> str:
        return f"Event({self.tenant_id}, {self.op!r}, {self.user_display}, {iso(self.time)}, {self.record_id})"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record that could not be parsed, with its reason and its raw bytes."""

    reason: str
    detail: str
    raw: bytes
    tenant_id: str | None = None
    record_id: str | None = None


@dataclass(slots=True)
class ParseResult:
    events: list[Event]
    quarantined: list[Quarantined]

    @property
    def read(self) -> int:
        return len(self.events) + len(self.quarantined)


def normalise_op(operation: str) -> str:
    """Operation key used for routing: trailing '.' stripped, lower case ("Consent to application.")."""
    op = operation.strip()
    if op.endswith("."):
        op = op[:-1]
    return op.lower()


_OP_CACHE: dict[str, str] = {}


def _op_key(operation: str) -> str:
    got = _OP_CACHE.get(operation)
    if got is None:
        got = normalise_op(operation)
        if len(_OP_CACHE) < 10000:
            _OP_CACHE[operation] = got
    return got


_CACHE_MAX = 65536
"""Entries per parse cache below. Each maps an exact input string to what a pure function makes of it
(no tenant context), so a cache shared by every tenant cannot carry one tenant's data to another."""
_GUID_CACHE: dict[str, bool] = {}
_UID_CACHE: dict[str, str | None] = {}
_ACTOR_CACHE: dict[str, tuple[bool, bool, str]] = {}
_OWNER_CACHE: dict[str, str] = {}
_JSON_CACHE_MAX = 16384
"""Entries per cache keyed by a field's JSON text (a few hundred bytes each)."""
_ACTOR_IDS: dict[bytes, tuple[str | None, str | None]] = {}
_PAIRS_CACHE: dict[bytes, Mapping[str, str]] = {}
_EMPTY: Mapping[str, str] = MappingProxyType({})


def _is_guid_cached(value: str) -> bool:
    got = _GUID_CACHE.get(value)
    if got is None:
        if len(_GUID_CACHE) >= _CACHE_MAX:
            _GUID_CACHE.clear()
        got = _GUID_CACHE[value] = _GUID.match(value) is not None
    return got


def _upn_of_user_id(uid: str) -> str | None:
    """The UPN a ``UserId`` names: lower-cased, None for "Not Available" and values without '@'."""
    got = _UID_CACHE.get(uid, _UNSET)
    if got is _UNSET:
        low = uid.strip().lower()
        got = low if "@" in uid and low not in NOT_AVAILABLE else None
        if len(_UID_CACHE) >= _CACHE_MAX:
            _UID_CACHE.clear()
        _UID_CACHE[uid] = got
    result: str | None = got
    return result


def _actor(raw_id: str) -> tuple[bool, bool, str]:
    """(is a GUID, holds '@', lower case) of an Actor ID, "User_" prefix removed; ("", ...) when empty."""
    got = _ACTOR_CACHE.get(raw_id)
    if got is None:
        ident = raw_id.strip()
        if ident.startswith("User_"):
            ident = ident[5:]
        got = (bool(ident) and _GUID.match(ident) is not None, "@" in ident, ident.lower() if ident else "")
        if len(_ACTOR_CACHE) >= _CACHE_MAX:
            _ACTOR_CACHE.clear()
        _ACTOR_CACHE[raw_id] = got
    return got


def _actor_identity(actor_json: bytes) -> tuple[str | None, str | None]:
    """(object id, upn) an ``Actor`` list names: the first user or service principal GUID (IdentityType 0 or
    2), the first UPN (IdentityType 5); cached per distinct JSON text (a user's records repeat it)."""
    got = _ACTOR_IDS.get(actor_json)
    if got is None:
        oid: str | None = None
        upn: str | None = None
        for a in decode_identities(msgspec.Raw(actor_json)) or ():
            raw_id = a.ID
            if not raw_id or not raw_id.strip():
                continue
            guid, at, low = _actor(raw_id)
            typ = a.Type
            if not isinstance(typ, int):
                typ = as_int(typ)
            if oid is None and guid and typ in (0, 2):
                oid = low
            elif upn is None and at and typ == 5:
                upn = low
        if len(_ACTOR_IDS) >= _JSON_CACHE_MAX:
            _ACTOR_IDS.clear()
        got = _ACTOR_IDS[actor_json] = (oid, upn)
    return got


def _pairs(pairs_json: bytes) -> Mapping[str, str]:
    """`name_values` of a Name/Value list's JSON text, read-only, cached per distinct text (a user's sign-ins
    from one browser repeat their ``ExtendedProperties``; mailbox reads repeat their ``OperationProperties``)."""
    got = _PAIRS_CACHE.get(pairs_json)
    if got is None:
        got = MappingProxyType(name_values(decode_name_values(msgspec.Raw(pairs_json)))) if pairs_json else _EMPTY
        if len(_PAIRS_CACHE) >= _JSON_CACHE_MAX:
            _PAIRS_CACHE.clear()
        _PAIRS_CACHE[pairs_json] = got
    return got


SUBJECT_IS_TARGET_OPS = frozenset({"add registered owner to device", "add registered users to device"})
"""Operations whose actor is a service (Entra's Device Registration Service) acting for the user it names in
``Target``: the record belongs to that user, so it joins their state and their incident."""


def _target_user(target_json: bytes) -> tuple[str | None, str | None]:
    """(object id, upn) of the user a ``Target`` list names: the GUID after ``User_`` (IdentityType 2), the UPN
    (IdentityType 5)."""
    oid: str | None = None
    upn: str | None = None
    for t in decode_identities(msgspec.Raw(target_json)) or ():
        ident = (t.ID or "").strip()
        typ = t.Type if isinstance(t.Type, int) else as_int(t.Type)
        if oid is None and typ == 2 and ident.startswith("User_") and _is_guid_cached(ident[5:]):
            oid = ident[5:].lower()
        elif upn is None and typ == 5 and "@" in ident:
            upn = ident.lower()
    return oid, upn


def _identity(rec: AuditRecord | RecordKey) -> tuple[str | None, str | None]:
    """(object id, upn) from whatever the record carries."""
    uid = rec.UserId
    upn = _upn_of_user_id(uid) if uid else None
    oid: str | None = None
    if rec.Actor:
        oid, actor_upn = _actor_identity(bytes(rec.Actor))
        if upn is None:
            upn = actor_upn
    if uid == SECURITY_ALERTS_USER:
        return None, alert_subject(rec)
    if upn is None and rec.Target and rec.Operation and _op_key(rec.Operation) in SUBJECT_IS_TARGET_OPS:
        t_oid, t_upn = _target_user(bytes(rec.Target))
        if t_oid is not None or t_upn is not None:
            return t_oid, t_upn
    if oid is None:
        rt = rec.RecordType
        if rt is not None and type(rt) is not int:
            rt = as_int(rt)
        key = rec.UserKey
        if rt == 15 and key and _is_guid_cached(key):
            oid = key.lower()
        elif uid and _is_guid_cached(uid):
            oid = uid.lower()
    if upn is None:
        owner = rec.MailboxOwnerUPN
        if owner and "@" in owner:
            upn = _OWNER_CACHE.get(owner)
            if upn is None:
                if len(_OWNER_CACHE) >= _CACHE_MAX:
                    _OWNER_CACHE.clear()
                upn = _OWNER_CACHE[owner] = owner.strip().lower()
    return oid, upn


def _decode_lenient(raw: bytes) -> tuple[AuditRecord | None, str, str]:
    """Decode one record; on a type mismatch drop the offending fields. Returns (record, reason, detail)."""
    try:
        return decode_record(raw), "", ""
    except msgspec.ValidationError as exc:
        first_error = str(exc)
    except msgspec.DecodeError as exc:
        return None, "invalid_json", str(exc)[:200]
    except RecursionError:
        return None, "too_deep", "record nested too deeply to decode"
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "too_deep" if "recursion" in str(exc).lower() else "invalid_json"
        return None, reason, str(exc)[:200]
    if not isinstance(obj, dict):
        return None, "not_an_object", f"record is a JSON {type(obj).__name__}"
    error = first_error
    for _ in range(8):
        m = _FIELD_AT.search(error)
        if m is None or m.group(1) not in obj:
            return None, "schema_mismatch", error[:200]
        obj.pop(m.group(1))
        try:
            return convert_record(obj), "", ""
        except msgspec.ValidationError as exc:
            error = str(exc)
        except RecursionError:
            return None, "too_deep", "record nested too deeply to decode"
    return None, "schema_mismatch", error[:200]


MIN_TIME = datetime(1, 1, 2, tzinfo=UTC).timestamp()
MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
"""CreationTime bounds: a day inside years 1-9999 either side, so every UTC rendering and date of it exists."""
MAX_ID_CHARS = 256
"""Longest record Id or tenant id kept (Ids are GUIDs; longer ones are junk that storage keys and rows refuse)."""
MAX_USER_CHARS = 512
"""Longest user key kept (a Table key is at most 1 KiB once escaped)."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Control characters, which Table keys refuse (C1 included) and no identifier holds."""


def _key_problem(rid: str, tenant: str | None, user_key: str | None) -> tuple[str, str] | None:
    """(reason, detail) when an identifier cannot serve as a storage key, else None."""
    if (
        len(rid) <= MAX_ID_CHARS
        and rid.isprintable()
        and (tenant is None or (len(tenant) <= MAX_ID_CHARS and tenant.isprintable()))
        and (user_key is None or (len(user_key) <= MAX_USER_CHARS and user_key.isprintable()))
    ):
        return None
    if len(rid) > MAX_ID_CHARS:
        return "oversized_field", f"Id of {len(rid)} characters"
    if tenant is not None and len(tenant) > MAX_ID_CHARS:
        return "oversized_field", f"OrganizationId of {len(tenant)} characters"
    if user_key is not None and len(user_key) > MAX_USER_CHARS:
        return "oversized_field", f"user of {len(user_key)} characters"
    for name, value in (("Id", rid), ("OrganizationId", tenant), ("user", user_key)):
        if value is not None and not value.isprintable() and _CONTROL.search(value):
            return "control_characters", f"{name} holds control characters"
    return None


def _short(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_ID_CHARS else value[:MAX_ID_CHARS] + "..."


def build_event(rec: AuditRecord, raw: bytes, *, expected_tenant: str | None) -> Event | Quarantined:
    """Normalise a decoded record, or say why it cannot be used."""
    rid = rec.Id
    tenant = (rec.OrganizationId or "").strip().lower() or None
    if not rid:
        return Quarantined("missing_id", "record has no Id", raw, _short(tenant))
    if len(rid) > MAX_ID_CHARS or (tenant is not None and len(tenant) > MAX_ID_CHARS):
        problem = _key_problem(rid, tenant, None)
        assert problem is not None
        return Quarantined(problem[0], problem[1], raw, _short(tenant), _short(rid))
    if tenant is None:
        tenant = expected_tenant
        if tenant is None:
            return Quarantined("missing_tenant", "record has no OrganizationId", raw, None, rid)
    elif expected_tenant is not None and tenant != expected_tenant:
        return Quarantined(
            "tenant_mismatch", f"record of tenant {tenant} in content of tenant {expected_tenant}", raw, tenant, rid
        )
    if not rec.CreationTime:
        return Quarantined("bad_creation_time", "record has no CreationTime", raw, tenant, rid)
    try:
        ts = parse_time(rec.CreationTime)
    except (ValueError, OverflowError):
        return Quarantined("bad_creation_time", f"unparseable CreationTime {rec.CreationTime[:40]!r}", raw, tenant, rid)
    if not MIN_TIME <= ts <= MAX_TIME:
        return Quarantined(
            "bad_creation_time", f"CreationTime out of range {rec.CreationTime[:40]!r}", raw, tenant, rid
        )
    oid, upn = _identity(rec)
    problem = _key_problem(rid, tenant, oid or upn)
    if problem is not None:
        return Quarantined(problem[0], problem[1], raw, tenant, rid)
    ip = normalize_ip(rec.ClientIP or rec.ClientIPAddress or rec.ActorIpAddress)
    return Event(
        rec,
        raw,
        record_id=rid,
        tenant_id=tenant,
        time=ts,
        op=_op_key(rec.Operation or ""),
        object_id=oid,
        upn=upn,
        user_key=oid or upn,
        ip=ip,
    )


def parse_raw_record(raw: bytes, *, expected_tenant: str | None = None) -> Event | Quarantined:
    rec, reason, detail = _decode_lenient(raw)
    if rec is None:
        return Quarantined(reason, detail, raw, expected_tenant)
    return build_event(rec, raw, expected_tenant=expected_tenant)


def parse_records(raws: Iterable[bytes], *, expected_tenant: str | None = None) -> ParseResult:
    events: list[Event] = []
    bad: list[Quarantined] = []
    for raw in raws:
        got = parse_raw_record(raw, expected_tenant=expected_tenant)
        if isinstance(got, Event):
            events.append(got)
        else:
            bad.append(got)
    return ParseResult(events, bad)


def parse_blob(data: bytes, *, expected_tenant: str | None = None) -> ParseResult:
    """Parse a content blob (a JSON array of records).

    The fast path decodes the whole array into typed records in one call (the raw bytes of
    each record stay in the archived blob). When any record does not fit, the blob is split
    and each record decoded on its own, so one bad record is quarantined alone.
    A blob that is not a JSON array at all (truncated, invalid) is one quarantined entry
    with reason ``invalid_blob``; the caller decides whether the whole blob is retried.
    """
    with gc_paused():
        try:
            records = _LIST_DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            return _events_of(records, expected_tenant)
    try:
        raws = split_blob(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return ParseResult([], [Quarantined("invalid_blob", str(exc)[:200], data[:4096], expected_tenant)])
    return parse_records((bytes(r) for r in raws), expected_tenant=expected_tenant)


_TENANT_CACHE: dict[str, str] = {}
_TIME_CACHE: dict[str, float] = {}


def _events_of(records: list[AuditRecord], expected_tenant: str | None) -> ParseResult:
    """`build_event` over a decoded blob, with tenant, time and operation keys cached per distinct string.

    A record whose Id, tenant or time is anything but plain goes through `build_event` itself, so
    every quarantine reason and message is the same.
    """
    events: list[Event] = []
    bad: list[Quarantined] = []
    add = events.append
    ip_of = normalize_ip
    tenants = _TENANT_CACHE
    times = _TIME_CACHE
    ops = _OP_CACHE
    for rec in records:
        rid = rec.Id
        org = rec.OrganizationId
        created = rec.CreationTime
        tenant = tenants.get(org) if org else None
        if tenant is None and org:
            tenant = org.strip().lower()
            if tenant:
                if len(tenants) >= _CACHE_MAX:
                    tenants.clear()
                tenants[org] = tenant
            else:
                tenant = None
        ts = times.get(created) if created else None
        if ts is None and created:
            try:
                ts = parse_time(created)
            except (ValueError, OverflowError):
                ts = None
            else:
                if len(times) >= _CACHE_MAX:
                    times.clear()
                times[created] = ts
        if (
            not rid
            or tenant is None
            or ts is None
            or not MIN_TIME <= ts <= MAX_TIME
            or len(rid) > MAX_ID_CHARS
            or (expected_tenant is not None and tenant != expected_tenant)
        ):
            got = build_event(rec, b"", expected_tenant=expected_tenant)
            if isinstance(got, Event):
                add(got)
            else:
                bad.append(Quarantined(got.reason, got.detail, msgspec.json.encode(rec), got.tenant_id, got.record_id))
            continue
        operation = rec.Operation or ""
        op = ops.get(operation)
        if op is None:
            op = _op_key(operation)
        oid, upn = _identity(rec)
        if _key_problem(rid, tenant, oid or upn) is not None:
            got = build_event(rec, b"", expected_tenant=expected_tenant)
            assert isinstance(got, Quarantined)
            bad.append(Quarantined(got.reason, got.detail, msgspec.json.encode(rec), got.tenant_id, got.record_id))
            continue
        add(
            Event(
                rec,
                b"",
                rid,
                tenant,
                ts,
                op,
                oid,
                upn,
                oid or upn,
                ip_of(rec.ClientIP or rec.ClientIPAddress or rec.ActorIpAddress),
            )
        )
    return ParseResult(events, bad)


class RecordKey(msgspec.Struct, gc=False):
    """What `build_event` derives an event's keys from, and nothing else: a cheap first look at a record."""

    Id: str | None = None
    CreationTime: str | None = None
    OrganizationId: str | None = None
    Operation: str | None = None
    UserId: str | None = None
    UserKey: str | None = None
    RecordType: int | str | None = None
    Actor: msgspec.Raw = NO_VALUE
    Target: msgspec.Raw = NO_VALUE
    MailboxOwnerUPN: str | None = None
    ObjectId: str | None = None
    AlertEntityId: msgspec.Raw = NO_VALUE
    EntityType: msgspec.Raw = NO_VALUE
    Data: msgspec.Raw = NO_VALUE
    ClientIP: str | None = None
    ClientIPAddress: str | None = None
    ActorIpAddress: str | None = None


_KEY_DECODER = msgspec.json.Decoder(RecordKey, strict=False)


@dataclass(frozen=True, slots=True)
class Placed:
    """What `build_event` would derive from a record, without decoding the rest of it (see `place_record`)."""

    time: float
    record_id: str
    tenant_id: str
    op: str
    object_id: str | None
    upn: str | None
    ip: str | None
    raw: bytes


def place_record(raw: bytes) -> Placed | None:
    """The keys `build_event` would give a plain audit record, from a light decode; None when the record needs
    the full parse (which quarantines it with its reason, repairs a mistyped field or maps another tool's shape).

    For a reader that sorts records before detecting over them: the full decode happens once, afterwards, and
    the event is rebuilt from these keys (`shared.cli.scan`), so the checks here are those of `build_event`.
    """
    try:
        key = _KEY_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    rid = key.Id
    org = key.OrganizationId
    created = key.CreationTime
    if not rid or not org or not created:
        return None
    tenant = _TENANT_CACHE.get(org)
    if tenant is None:
        tenant = org.strip().lower()
        if not tenant:
            return None
        if len(_TENANT_CACHE) >= _CACHE_MAX:
            _TENANT_CACHE.clear()
        _TENANT_CACHE[org] = tenant
    ts = _TIME_CACHE.get(created)
    if ts is None:
        try:
            ts = parse_time(created)
        except (ValueError, OverflowError):
            return None
        if len(_TIME_CACHE) >= _CACHE_MAX:
            _TIME_CACHE.clear()
        _TIME_CACHE[created] = ts
    if not MIN_TIME <= ts <= MAX_TIME:
        return None
    oid, upn = _identity(key)
    if _key_problem(rid, tenant, oid or upn) is not None:
        return None
    ip = normalize_ip(key.ClientIP or key.ClientIPAddress or key.ActorIpAddress)
    return Placed(ts, rid, tenant, _op_key(key.Operation or ""), oid, upn, ip, raw)
