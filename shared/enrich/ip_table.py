"""The compiled IP table file: typed arrays and JSON blobs in one file, read with ``array.fromfile``.

Layout: ``MAGIC`` (8 bytes), a little-endian uint64 header length, a UTF-8 JSON header, then the
sections, each 8-byte aligned relative to the end of the header. The header names every section
with its kind (an ``array`` typecode or ``json``), offset and length (items for arrays, bytes for
JSON), plus free-form ``meta`` (build time, source versions, counts). Arrays are stored
little-endian; a big-endian host byte-swaps on load. No numpy: ``array`` columns are compact,
and ``fromfile`` reads them without an intermediate copy.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"ITDRIP01"  # the format version is in the header
FORMAT_VERSION = 2
_ALIGN = 8


class TableFormatError(ValueError):
    """The file is not a compiled IP table this code can read."""


@dataclass(frozen=True, slots=True)
class TableFile:
    """A loaded table file: its meta, its columns (``array`` or mmap-backed ``memoryview``) and JSON."""

    meta: Mapping[str, Any]
    arrays: Mapping[str, Any]
    blobs: Mapping[str, Any]
    mapping: mmap.mmap | None = None
    """The file mapping behind the columns of :func:`map_table` (None for :func:`read_table`)."""

    def close(self) -> None:
        """Release the columns and the mapping."""
        if self.mapping is not None:
            for col in self.arrays.values():
                if isinstance(col, memoryview):
                    col.release()
            self.mapping.close()


def write_table(
    path: Path, *, meta: Mapping[str, Any], arrays: Mapping[str, array[Any]], blobs: Mapping[str, Any]
) -> int:
    """Write the file atomically (temporary file, then rename). Returns its size in bytes."""
    payloads: list[tuple[str, str, bytes, int]] = []
    for name, arr in arrays.items():
        data = arr
        if sys.byteorder != "little":
            data = array(arr.typecode, arr)
            data.byteswap()
        payloads.append((name, arr.typecode, data.tobytes(), len(arr)))
    for name, obj in blobs.items():
        raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        payloads.append((name, "json", raw, len(raw)))
    sections: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, kind, raw, length in payloads:
        sections[name] = {"kind": kind, "offset": offset, "length": length, "itemsize": _itemsize(kind)}
        offset += len(raw) + (-len(raw)) % _ALIGN
    header = json.dumps(
        {"format": FORMAT_VERSION, "byteorder": "little", "meta": dict(meta), "sections": sections},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    header += b" " * ((-(len(MAGIC) + 8 + len(header))) % _ALIGN)  # sections 8-byte aligned in the file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for _, _, raw, _ in payloads:
            f.write(raw)
            f.write(b"\x00" * ((-len(raw)) % _ALIGN))
    os.replace(tmp, path)
    return path.stat().st_size


def _header(f: Any, path: Path) -> tuple[dict[str, Any], int]:
    if f.read(len(MAGIC)) != MAGIC:
        raise TableFormatError(f"{path}: not a compiled IP table")
    raw_len = f.read(8)
    size = os.fstat(f.fileno()).st_size
    if len(raw_len) != 8 or struct.unpack("<Q", raw_len)[0] > size:
        raise TableFormatError(f"{path}: truncated header")
    (hlen,) = struct.unpack("<Q", raw_len)
    try:
        header = json.loads(f.read(hlen).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TableFormatError(f"{path}: unreadable header") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        got = header.get("format") if isinstance(header, dict) else None
        raise TableFormatError(f"{path}: format {got!r}, expected {FORMAT_VERSION}")
    return header, len(MAGIC) + 8 + hlen


def map_table(path: Path) -> TableFile:
    """Map the file read-only: columns are ``memoryview`` casts over the mapping (no copy, pages shared
    between processes, loaded on first touch); JSON sections are parsed. Needs a little-endian host
    (use :func:`read_table` elsewhere)."""
    if sys.byteorder != "little":
        return read_table(path)
    with open(path, "rb") as f:
        header, base = _header(f, path)
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if base % _ALIGN:
        mapping.close()
        return read_table(path)
    whole = memoryview(mapping)
    arrays: dict[str, Any] = {}
    blobs: dict[str, Any] = {}
    try:
        for name, sec in header["sections"].items():
            start = base + int(sec["offset"])
            kind = sec["kind"]
            length = int(sec["length"])
            if kind == "json":
                blobs[name] = json.loads(bytes(whole[start : start + length]).decode("utf-8"))
                continue
            size = length * int(sec["itemsize"])
            if array(kind).itemsize != int(sec["itemsize"]) or start + size > len(whole):
                raise TableFormatError(f"{path}: section {name} does not fit")
            arrays[name] = whole[start : start + size].cast(kind)
    except (TableFormatError, ValueError, KeyError):
        for col in arrays.values():
            col.release()
        whole.release()
        mapping.close()
        raise
    whole.release()
    return TableFile(meta=header.get("meta", {}), arrays=arrays, blobs=blobs, mapping=mapping)


def read_table(path: Path) -> TableFile:
    """Read every section of the file into memory. Raises ``TableFormatError`` when it is not a table."""
    with open(path, "rb") as f:
        header, base = _header(f, path)
        arrays: dict[str, array[Any]] = {}
        blobs: dict[str, Any] = {}
        for name, sec in header["sections"].items():
            f.seek(base + int(sec["offset"]))
            kind = sec["kind"]
            length = int(sec["length"])
            if kind == "json":
                blobs[name] = json.loads(f.read(length).decode("utf-8"))
                continue
            arr: array[Any] = array(kind)
            if arr.itemsize != int(sec["itemsize"]):
                raise TableFormatError(f"{path}: typecode {kind!r} is {arr.itemsize} bytes here")
            try:
                arr.fromfile(f, length)
            except EOFError as exc:
                raise TableFormatError(f"{path}: section {name} is truncated") from exc
            if header.get("byteorder") != sys.byteorder:
                arr.byteswap()
            arrays[name] = arr
    return TableFile(meta=header.get("meta", {}), arrays=arrays, blobs=blobs)


def _itemsize(kind: str) -> int:
    return 1 if kind == "json" else array(kind).itemsize


def split_u128(values: list[int]) -> tuple[array[int], array[int]]:
    """Two ``array('Q')`` columns (high and low 64 bits) for 128-bit integers."""
    mask = (1 << 64) - 1
    return array("Q", [v >> 64 for v in values]), array("Q", [v & mask for v in values])


def join_u128(hi: array[int], lo: array[int]) -> list[int]:
    """Inverse of :func:`split_u128`."""
    return [(h << 64) | low for h, low in zip(hi, lo, strict=True)]
