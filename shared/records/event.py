"""Parsing at the edge: content blobs and exports become typed, normalised events.

`parse_blob` splits a blob into records, decodes each into an :class:`AuditRecord`, and
normalises what every detector needs (tenant, UTC time, the user's state key, the client
IP). A record that cannot be parsed at all becomes a :class:`Quarantined` entry with a
reason; it is counted and kept, never dropped in silence. A known field with an
unexpected type is dropped from the typed view (the raw bytes keep it) rather than
rejecting the whole record.

Messy inputs handled here: ``CreationTime`` without a zone (UTC), ``UserId`` of
"Not Available" or absent (the Actor object ID and ``UserKey`` are kept), ``Parameters``
as a list in any order or as a JSON string, ``ClientIP`` as ``[ip]:port`` / ``ip:port`` /
``::ffff:a.b.c.d`` / host name, numbers as strings, unknown workloads and fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from shared.records.ip import normalize_ip
from shared.records.model import AuditRecord, IdentityRef, NameValue, convert_record, decode_record, split_blob

NOT_AVAILABLE = frozenset({"", "not available", "notavailable", "unknown", "null", "none"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LIST_DECODER = msgspec.json.Decoder(list[AuditRecord], strict=False)
_FIELD_AT = re.compile(r"at `\$\.([A-Za-z0-9_]+)")


def is_guid(value: str | None) -> bool:
    return bool(value) and _GUID.match(value or "") is not None


@lru_cache(maxsize=4096)
def parse_time(value: str) -> float:
    """Epoch seconds of an audit-log time; zone-less times are UTC. Raises ValueError."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso(ts: float) -> str:
    """ISO 8601 UTC text (seconds precision, 'Z') for epoch seconds."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return {nv.Name.lower(): _text(nv.Value) for nv in value if nv.Name is not None}


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


class Event:
    """A parsed, normalised audit record: what detectors read.

    ``raw`` is the record's JSON when it was parsed on its own (empty on the blob fast path:
    the archived blob keeps every byte). ``user_key`` is the per-user state key: the user's
    Entra object ID when known, else the lower-cased UPN, else ``None`` (no user:
    tenant-level records). ``upn`` is for display.
    Enrichment fills ``ip_info``, ``access`` and may refine ``user_key``/``upn``.
    """

    __slots__ = (
        "_nv",
        "access",
        "batch_id",
        "ip",
        "ip_info",
        "object_id",
        "op",
        "raw",
        "record",
        "record_id",
        "tenant_id",
        "time",
        "upn",
        "user_key",
    )

    def __init__(
        self,
        record: AuditRecord,
        raw: bytes,
        *,
        record_id: str,
        tenant_id: str,
        time: float,
        op: str,
        object_id: str | None,
        upn: str | None,
        ip: str | None,
    ) -> None:
        self.record = record
        self.raw = raw
        self.record_id = record_id
        self.tenant_id = tenant_id
        self.time = time
        self.op = op
        self.object_id = object_id
        self.upn = upn
        self.user_key = object_id or upn
        self.ip = ip
        self.ip_info: Any = None
        self.access: Any = None
        self.batch_id: str | None = None
        self._nv: dict[str, dict[str, str]] | None = None

    # Name/value collections, parsed once on first use -------------------------------
    def _pairs(self, field: str, value: list[NameValue] | str | None) -> dict[str, str]:
        if self._nv is None:
            self._nv = {}
        got = self._nv.get(field)
        if got is None:
            got = name_values(value)
            self._nv[field] = got
        return got

    @property
    def parameters(self) -> Mapping[str, str]:
        """Exchange cmdlet ``Parameters`` (keys lower-cased)."""
        return self._pairs("p", self.record.Parameters)

    @property
    def extended_properties(self) -> Mapping[str, str]:
        return self._pairs("e", self.record.ExtendedProperties)

    @property
    def device_properties(self) -> Mapping[str, str]:
        return self._pairs("d", self.record.DeviceProperties)

    @property
    def operation_properties(self) -> Mapping[str, str]:
        return self._pairs("o", self.record.OperationProperties)

    @property
    def modified_properties(self) -> dict[str, tuple[str, str]]:
        """Entra ``ModifiedProperties`` as lower-cased name -> (old, new) text."""
        mp = self.record.ModifiedProperties
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

    # Convenience ---------------------------------------------------------------------
    @property
    def record_type(self) -> int | None:
        return as_int(self.record.RecordType)

    @property
    def succeeded(self) -> bool:
        status = (self.record.ResultStatus or "").strip().lower()
        return status in ("succeeded", "success", "true", "partiallysucceeded", "")

    @property
    def error_number(self) -> int | None:
        """ErrorNumber (live records) or ErrorCode (the documented name); 0 is success."""
        n = as_int(self.record.ErrorNumber)
        return n if n is not None else as_int(self.record.ErrorCode)

    @property
    def user_agent(self) -> str:
        return self.extended_properties.get("useragent") or self.record.UserAgent or ""

    @property
    def client_app_id(self) -> str | None:
        r = self.record
        app = r.ApplicationId or r.AppId or r.ClientAppId
        if app is None and r.AppAccessContext is not None:
            app = r.AppAccessContext.ClientAppId
        return app.lower() if app else None

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


def _identity(rec: AuditRecord) -> tuple[str | None, str | None]:
    """(object id, upn) from whatever the record carries."""
    upn: str | None = None
    uid = rec.UserId
    if uid and "@" in uid and uid.strip().lower() not in NOT_AVAILABLE:
        upn = uid.strip().lower()
    oid: str | None = None
    actors: list[IdentityRef] = rec.Actor or []
    for a in actors:
        ident = (a.ID or "").strip()
        if not ident:
            continue
        if ident.startswith("User_"):
            ident = ident[5:]
        typ = as_int(a.Type) if not isinstance(a.Type, int) else a.Type
        if oid is None and is_guid(ident) and typ in (0, 2):
            oid = ident.lower()
        elif upn is None and "@" in ident and typ == 5:
            upn = ident.lower()
    if oid is None:
        rt = as_int(rec.RecordType)
        if rt == 15 and is_guid(rec.UserKey):
            oid = (rec.UserKey or "").lower()
        elif is_guid(uid):
            oid = (uid or "").lower()
    if upn is None and rec.MailboxOwnerUPN and "@" in rec.MailboxOwnerUPN:
        upn = rec.MailboxOwnerUPN.strip().lower()
    return oid, upn


def _decode_lenient(raw: bytes) -> tuple[AuditRecord | None, str, str]:
    """Decode one record; on a type mismatch drop the offending fields. Returns (record, reason, detail)."""
    try:
        return decode_record(raw), "", ""
    except msgspec.ValidationError as exc:
        first_error = str(exc)
    except msgspec.DecodeError as exc:
        return None, "invalid_json", str(exc)[:200]
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, "invalid_json", str(exc)[:200]
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
    return None, "schema_mismatch", error[:200]


def build_event(rec: AuditRecord, raw: bytes, *, expected_tenant: str | None) -> Event | Quarantined:
    """Normalise a decoded record, or say why it cannot be used."""
    rid = rec.Id
    tenant = (rec.OrganizationId or "").strip().lower() or None
    if not rid:
        return Quarantined("missing_id", "record has no Id", raw, tenant)
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
    except ValueError:
        return Quarantined("bad_creation_time", f"unparseable CreationTime {rec.CreationTime[:40]!r}", raw, tenant, rid)
    oid, upn = _identity(rec)
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
    try:
        records = _LIST_DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    else:
        events: list[Event] = []
        bad: list[Quarantined] = []
        for rec in records:
            got = build_event(rec, b"", expected_tenant=expected_tenant)
            if isinstance(got, Event):
                events.append(got)
            else:
                bad.append(Quarantined(got.reason, got.detail, msgspec.json.encode(rec), got.tenant_id, got.record_id))
        return ParseResult(events, bad)
    try:
        raws = split_blob(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return ParseResult([], [Quarantined("invalid_blob", str(exc)[:200], data[:4096], expected_tenant)])
    return parse_records((bytes(r) for r in raws), expected_tenant=expected_tenant)
