"""Readers for `itdr scan` inputs: content blobs, JSON Lines, Purview CSV exports, gzipped or not.

The kind is detected from the content, never from the file name. Every record that cannot
be read is returned as a quarantined entry with its reason and location; nothing is dropped.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from shared.records.event import Event, Quarantined, parse_blob, parse_raw_record

csv.field_size_limit(64 * 1024 * 1024)


@dataclass(slots=True)
class InputBatch:
    source: str
    kind: str
    events: list[Event]
    quarantined: list[Quarantined]


def iter_paths(paths: list[str]) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) for every input: files, directories (recursive, sorted) and ``-`` for stdin."""
    for p in paths:
        if p == "-":
            yield "<stdin>", sys.stdin.buffer.read()
            continue
        path = Path(p)
        if path.is_dir():
            for f in sorted(x for x in path.rglob("*") if x.is_file()):
                yield str(f), f.read_bytes()
        else:
            yield str(path), path.read_bytes()


def _decompress(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


def sniff(data: bytes) -> str:
    """``json_array``, ``json_object``, ``jsonl``, ``csv`` or ``empty``."""
    head = data.lstrip()[:4096]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if not head:
        return "empty"
    if head[:1] == b"[":
        return "json_array"
    if head[:1] == b"{":
        first_line = head.split(b"\n", 1)[0].strip()
        if b"\n" in head.strip():
            try:
                orjson.loads(first_line)
                return "jsonl"
            except orjson.JSONDecodeError:
                return "json_object"
        return "json_object"
    return "csv"


def read_input(name: str, raw: bytes) -> InputBatch:
    try:
        data = _decompress(raw)
    except (OSError, EOFError) as exc:
        return InputBatch(name, "gzip", [], [Quarantined("invalid_gzip", f"{name}: {exc}", raw[:4096])])
    kind = sniff(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    events: list[Event] = []
    bad: list[Quarantined] = []
    if kind == "empty":
        return InputBatch(name, kind, events, bad)
    if kind == "json_array":
        res = parse_blob(data)
        events, bad = res.events, res.quarantined
    elif kind in ("jsonl", "json_object"):
        lines = data.splitlines() if kind == "jsonl" else [data]
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            got = parse_raw_record(line.strip())
            if isinstance(got, Event):
                events.append(got)
            else:
                bad.append(Quarantined(got.reason, f"{name}:{i}: {got.detail}", got.raw, got.tenant_id, got.record_id))
    else:
        events, bad = _read_csv(name, data)
    return InputBatch(name, kind, events, bad)


def _read_csv(name: str, data: bytes) -> tuple[list[Event], list[Quarantined]]:
    text = data.decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower(): f for f in (reader.fieldnames or [])}
    column = fields.get("auditdata")
    if column is None:
        return [], [Quarantined("unrecognised_input", f"{name}: not JSON and no AuditData column", data[:4096])]
    events: list[Event] = []
    bad: list[Quarantined] = []
    for i, row in enumerate(reader, 2):
        cell = (row.get(column) or "").strip()
        if not cell:
            bad.append(Quarantined("empty_auditdata", f"{name}:{i}: empty AuditData", b""))
            continue
        got = parse_raw_record(cell.encode())
        if isinstance(got, Event):
            events.append(got)
        else:
            bad.append(Quarantined(got.reason, f"{name}:{i}: {got.detail}", got.raw, got.tenant_id, got.record_id))
    return events, bad
