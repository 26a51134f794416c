"""Other tools' record shapes, mapped to the unified audit record.

A piece of JSON that is not an audit record by itself may still carry one:

- ``Search-UnifiedAuditLog`` rows (Purview export, Microsoft-Extractor-Suite ``Get-UAL`` JSON output, which
  is ``ConvertTo-Json`` of those rows): ``{"RecordType": ..., "CreationDate": ..., "AuditData": {...} | "<json>"}``;
  the record is ``AuditData``.
- Microsoft Graph audit log queries (``microsoft.graph.security.auditLogRecord``): camel-case common fields
  (``id``, ``createdDateTime``, ``operation``, ``organizationId``, ``userPrincipalName``, ``clientIp``...) and the
  service's own fields in ``auditData``; the record is ``auditData`` completed from the common fields.
- A response wrapper ``{"value": [...]}`` (Graph pages) or ``{"records": [...]}`` (diagnostic settings sent to an
  Event Hub): each element.
- Entra sign-in logs (Graph ``signIn``, diagnostic settings, Log Analytics ``SigninLogs``): see
  :mod:`shared.records.signins`.
- Microsoft Sentinel ``OfficeActivity`` rows: the record's fields under their own names, with ``OfficeId``
  (the record Id), ``TimeGenerated``, ``OfficeWorkload`` and ``Client_IPAddress``.

`parse_any` decodes one piece into zero or more events or quarantined entries, each counted once.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.records.event import Event, Quarantined, parse_raw_record
from shared.records.signins import map_signin

_MAPPABLE = frozenset({"missing_id", "missing_tenant", "bad_creation_time", "not_an_object"})
MAX_FANOUT_DEPTH = 2
"""Wrappers and lists inside one piece are opened at most this deep (``{"value": [...]}`` needs one)."""


def parse_any(raw: bytes, *, depth: int = 0) -> list[Event | Quarantined]:
    """The records one JSON piece holds, as events or quarantined entries (at least one entry for any piece
    that is not an empty list or wrapper)."""
    got = parse_raw_record(raw)
    if isinstance(got, Event) or got.reason not in _MAPPABLE:
        return [got]
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [got]
    if isinstance(obj, list):
        if depth >= MAX_FANOUT_DEPTH:
            return [got]
        return [x for item in obj for x in parse_any(orjson.dumps(item), depth=depth + 1)]
    if not isinstance(obj, dict):
        return [got]
    value = obj.get("value")
    if value is None and isinstance(obj.get("records"), list) and len(obj) == 1:
        value = obj["records"]  # diagnostic settings streamed to an Event Hub: {"records": [...]}
    if isinstance(value, list) and depth < MAX_FANOUT_DEPTH and not _looks_like_record(obj):
        return [x for item in value for x in parse_any(orjson.dumps(item), depth=depth + 1)]
    mapped = map_record(obj)
    if mapped is None:
        return [got]
    return [parse_raw_record(orjson.dumps(mapped))]


def _looks_like_record(obj: dict[str, Any]) -> bool:
    return "CreationTime" in obj or "Operation" in obj


def map_record(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The unified audit record another tool's row carries, or None when it is no shape we know."""
    signin = map_signin(obj)
    if signin is not None:
        return signin
    audit = obj.get("AuditData", obj.get("auditdata"))
    if audit is not None and "auditData" not in obj:
        return _from_search_row(audit)
    if isinstance(obj.get("auditData"), dict) and ("createdDateTime" in obj or "auditLogRecordType" in obj):
        return from_graph(obj)
    if "OfficeId" in obj or "OfficeWorkload" in obj:
        return from_office_activity(obj)
    return None


def _from_search_row(audit: Any) -> dict[str, Any] | None:
    if isinstance(audit, str):
        try:
            audit = orjson.loads(audit)
        except orjson.JSONDecodeError:
            return None
    return audit if isinstance(audit, dict) else None


_GRAPH_COMMON = (
    ("Id", "id"),
    ("CreationTime", "createdDateTime"),
    ("Operation", "operation"),
    ("OrganizationId", "organizationId"),
    ("UserId", "userPrincipalName"),
    ("ClientIP", "clientIp"),
    ("ObjectId", "objectId"),
    ("Workload", "service"),
)


def from_graph(obj: dict[str, Any]) -> dict[str, Any]:
    """A Graph ``auditLogRecord``: its ``auditData`` (the service's record) completed by the common fields.

    ``auditData`` of the ``defaultAuditData`` type holds the record as the Management Activity API serves it;
    the common fields fill whatever it lacks (``userPrincipalName`` before ``userId``, which is an object id).
    """
    data = obj["auditData"]
    rec: dict[str, Any] = {k: v for k, v in data.items() if not k.startswith("@odata")}
    for field, graph_name in _GRAPH_COMMON:
        value = obj.get(graph_name)
        if rec.get(field) in (None, "") and value not in (None, ""):
            rec[field] = value
    if rec.get("UserId") in (None, "") and obj.get("userId"):
        rec["UserId"] = obj["userId"]
    return rec


_OFFICE_ACTIVITY = (
    ("Id", "OfficeId"),
    ("CreationTime", "TimeGenerated"),
    ("Workload", "OfficeWorkload"),
    ("OrganizationId", "OfficeTenantId"),
    ("ClientIP", "Client_IPAddress"),
    ("SiteUrl", "Site_Url"),
    ("ObjectId", "OfficeObjectId"),
)


def from_office_activity(obj: dict[str, Any]) -> dict[str, Any]:
    """A Sentinel ``OfficeActivity`` row: the record's own names kept, the table's renamed columns mapped back.

    Columns exported to CSV carry the zone in their name (``TimeGenerated [UTC]``): it is dropped.
    """
    rec: dict[str, Any] = {}
    for key, value in obj.items():
        name = key.split(" [", 1)[0]
        if value not in (None, ""):
            rec[name] = value
    for field, column in _OFFICE_ACTIVITY:
        if rec.get(field) in (None, "") and rec.get(column) not in (None, ""):
            rec[field] = rec[column]
    return rec
