"""Readers for `itdr scan` inputs: every shape responders have, streamed, detected from the content.

A file (or standard input) is read as a stream, never whole:

1. container: gzip (also gzip inside gzip) and zip (each member in name order) are decompressed as
   streams, with caps on the expansion (a ratio to the compressed bytes, and an absolute size); past a
   cap the rest of that stream is quarantined ``expansion_cap`` and the scan goes on. An Office document
   (a zip with ``[Content_Types].xml``, e.g. ``.xlsx``) is skipped as not audit data;
2. encoding: UTF-8 with or without BOM, UTF-16 LE/BE with BOM (what PowerShell's ``Export-Csv`` and
   Windows PowerShell's ``Out-File`` write) are read as UTF-8;
3. content: JSON (arrays, JSON Lines with any line ends, concatenated values, wrappers: see
   :mod:`shared.records.split` and :mod:`shared.records.shapes`) when it starts with ``[`` or ``{``; else
   CSV with an ``AuditData`` column (Purview / ``Search-UnifiedAuditLog`` / Extractor-Suite ``Get-UAL``) or the
   ``OfficeActivity`` columns (Sentinel) or an Entra portal sign-in log download (``Date (UTC)``, ``Request ID``...:
   :mod:`shared.records.signins`); anything else (binary, a README, another CSV) is skipped with its
   reason and never counted as records.

Every record that cannot be used is returned as a :class:`Quarantined` entry with its reason and its
location (``file:line``); nothing is dropped and each record is counted once.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import orjson

from shared.records.event import Event, Placed, Quarantined, parse_raw_record, place_record
from shared.records.shapes import from_office_activity, parse_any
from shared.records.signins import is_signin_csv, map_signin_csv
from shared.records.split import MAX_DEPTH, MAX_ITEM, split_stream

CSV_FIELD_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)
CHUNK = 1 << 20
SNIFF = 64 * 1024
"""Bytes looked at to tell binary from text; the JSON/CSV decision reads only up to the first non-blank byte."""

_REASONS = {
    "too_deep": "record nested too deeply",
    "record_too_large": "record larger than the size cap",
    "truncated": "input ends inside a record",
}


class ByteStream(Protocol):
    """What the readers need of a stream: ``read``."""

    def read(self, n: int = -1, /) -> bytes: ...


class _Decompressing(ByteStream, Protocol):
    def read1(self, n: int = -1, /) -> bytes: ...


class Closable(ByteStream, Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one input may expand to and on one record."""

    max_ratio: float = 1000.0
    """Decompressed bytes per compressed byte at most (checked once past ``ratio_floor`` bytes)."""
    max_expanded: int = 64 << 30
    """Decompressed bytes of one compressed stream at most."""
    ratio_floor: int = 1 << 20
    max_item: int = MAX_ITEM
    max_depth: int = MAX_DEPTH


class ExpansionCapError(Exception):
    """A compressed stream expanded past a cap."""


@dataclass(slots=True)
class FileReport:
    """What reading one input gave: its kind, its records, or why it was skipped."""

    name: str
    kind: str = "empty"
    records: int = 0
    quarantined: int = 0
    skipped: str | None = None
    bytes_read: int = 0


@dataclass(slots=True)
class Source:
    name: str
    size: int | None
    open: Callable[[], Closable]


@dataclass(slots=True)
class InputReader:
    """Reads inputs into events and quarantined entries, keeping a report per file."""

    limits: Limits = field(default_factory=Limits)
    reports: list[FileReport] = field(default_factory=list)
    on_bytes: Callable[[int], None] | None = None
    light: bool = False
    """Give a plain audit record as `Placed` (its keys from a light decode) instead of an `Event`: for a caller
    that decodes it in full later anyway (`itdr scan` once its sorted runs spill to disk)."""

    # ------------------------------------------------------------------ sources
    def read(self, source: Source) -> Iterator[Event | Quarantined | Placed]:
        """Every record of one source (a file or standard input)."""
        try:
            fh = source.open()
        except OSError as exc:
            self.reports.append(FileReport(source.name, "unreadable", skipped=f"cannot read: {exc.strerror}"))
            return
        try:
            counted = _Counting(fh, self.on_bytes)
            yield from self._stream(source.name, counted, counted, depth=0)
        finally:
            fh.close()

    def _stream(
        self, name: str, stream: ByteStream, raw: _Counting, *, depth: int
    ) -> Iterator[Event | Quarantined | Placed]:
        peek = _Peek(stream)
        head = peek.peek(SNIFF)
        if head[:2] == b"\x1f\x8b" and depth < 3:
            inner = gzip.GzipFile(fileobj=peek, mode="rb")  # type: ignore[call-overload]
            start = raw.count
            capped = _Capped(inner, lambda: raw.count - start, self.limits)
            yield from self._guarded(name, lambda: self._stream(name, capped, raw, depth=depth + 1), "invalid_gzip")
            return
        if head[:4] == b"PK\x03\x04" and depth < 3:
            yield from self._zip(name, peek)
            return
        yield from self._text(name, peek)

    def _guarded(
        self, name: str, inner: Callable[[], Iterator[Event | Quarantined | Placed]], reason: str
    ) -> Iterator[Event | Quarantined | Placed]:
        """The records of a decompressed stream; a corrupt stream or a cap quarantines the rest of it."""
        try:
            yield from inner()
        except ExpansionCapError as exc:
            self._bad_tail(name, "expansion_cap", str(exc))
            yield Quarantined("expansion_cap", f"{name}: {exc}", b"")
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            self._bad_tail(name, reason, str(exc))
            yield Quarantined(reason, f"{name}: {exc}", b"")

    def _bad_tail(self, name: str, reason: str, detail: str) -> None:
        for r in reversed(self.reports):
            if r.name == name:
                r.quarantined += 1
                r.records += 1
                return
        self.reports.append(FileReport(name, reason, records=1, quarantined=1))

    def _zip(self, name: str, peek: _Peek) -> Iterator[Event | Quarantined | Placed]:
        with tempfile.TemporaryFile() as spool:
            while chunk := peek.read(CHUNK):
                spool.write(chunk)
            spool.seek(0)
            try:
                archive = zipfile.ZipFile(spool)
            except zipfile.BadZipFile as exc:
                self.reports.append(FileReport(name, "zip", skipped=f"unreadable zip: {exc}"))
                return
            with archive:
                members = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
                if any(i.filename == "[Content_Types].xml" for i in members):
                    self.reports.append(
                        FileReport(name, "office", skipped="an Office document (e.g. .xlsx), not audit data")
                    )
                    return
                for info in members:
                    member = f"{name}!{info.filename}"
                    if info.flag_bits & 0x1:
                        self.reports.append(FileReport(member, "zip", skipped="encrypted zip member"))
                        continue
                    yield from self._guarded(member, _bind(self._member, archive, info, member), "invalid_zip")

    def _member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str
    ) -> Iterator[Event | Quarantined | Placed]:
        with archive.open(info) as fh:
            capped = _Capped(fh, lambda: info.compress_size, self.limits)  # type: ignore[arg-type]
            counted = _Counting(capped, None)
            yield from self._stream(member, counted, counted, depth=1)  # a member may be gzipped (or a zip)

    # ------------------------------------------------------------------ text
    def _text(self, name: str, peek: _Peek) -> Iterator[Event | Quarantined | Placed]:
        head = peek.peek(SNIFF)
        report = FileReport(name)
        self.reports.append(report)
        if head.startswith(codecs.BOM_UTF8):
            peek.read(3)
            stream: _Peek = peek
            encoding = "utf-8"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            stream = _Peek(_Transcoded(peek, "utf-16"))
            encoding = "utf-16"
        elif (utf16 := _utf16_without_bom(head)) is not None:
            stream = _Peek(_Transcoded(peek, utf16))
            encoding = utf16
        else:
            stream = peek
            encoding = "utf-8"
        head = stream.peek(SNIFF)
        while head and not head.strip():  # leading blank space of any length: skipped as a stream
            stream.read(len(head))
            head = stream.peek(SNIFF)
        if not head:
            report.kind = "empty"
            return
        if b"\x00" in head:
            report.kind, report.skipped = "binary", "binary content, not audit data"
            return
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not a character cut by the sniff window
                report.kind, report.skipped = "binary", f"not text ({encoding} expected), not audit data"
                return
        first = head.lstrip()[:1]
        if first in (b"[", b"{"):
            report.kind = "json"
            yield from self._json(name, stream, report)
        else:
            report.kind = "csv"
            yield from self._csv(name, stream, report)

    def _json(self, name: str, stream: _Peek, report: FileReport) -> Iterator[Event | Quarantined | Placed]:
        for piece in split_stream(stream.read, max_item=self.limits.max_item, max_depth=self.limits.max_depth):
            if self.light and piece.error is None:
                placed = place_record(piece.data)
                if placed is not None:
                    report.records += 1
                    yield placed
                    continue
            where = f"{name}:{piece.line}"
            if piece.error is not None:
                report.records += 1
                report.quarantined += 1
                yield Quarantined(piece.error, f"{where}: {_REASONS.get(piece.error, piece.error)}", b"")
                continue
            for got in parse_any(piece.data):
                report.records += 1
                if isinstance(got, Quarantined):
                    report.quarantined += 1
                    yield Quarantined(got.reason, f"{where}: {got.detail}", got.raw, got.tenant_id, got.record_id)
                else:
                    yield got

    def _csv(self, name: str, stream: _Peek, report: FileReport) -> Iterator[Event | Quarantined | Placed]:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")  # type: ignore[type-var]
        reader = csv.reader(text)
        try:
            header = next(reader)
        except (csv.Error, StopIteration) as exc:
            report.skipped = f"not audit data: unreadable CSV header ({exc})"
            return
        columns = [h.strip().lstrip("\ufeff") for h in header]
        lower = [c.lower() for c in columns]
        signins = False
        if "auditdata" in lower:
            audit_col = lower.index("auditdata")
            office = False
        elif "officeworkload" in lower or "officeid" in lower:
            audit_col = -1
            office = True
        elif is_signin_csv(columns):
            audit_col = -1
            office = False
            signins = True
        else:
            report.skipped = "not audit data: no AuditData column (and not OfficeActivity columns)"
            return
        row_no = 1
        while True:
            row_no += 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.records += 1
                report.quarantined += 1
                yield Quarantined("invalid_csv_row", f"{name}:{reader.line_num}: {exc}", b"")
                continue
            if not row or not any(cell.strip() for cell in row):
                continue
            where = f"{name}:{reader.line_num}"
            if signins:
                mapped = map_signin_csv(
                    {columns[i]: cell for i, cell in enumerate(row) if i < len(columns)}, file_name=name
                )
                items = [parse_raw_record(orjson.dumps(mapped))] if mapped is not None else []
            elif office:
                obj = {columns[i]: cell for i, cell in enumerate(row) if i < len(columns)}
                items = parse_any(orjson.dumps(from_office_activity(obj)))
            else:
                cell = row[audit_col].strip() if audit_col < len(row) else ""
                if not cell:
                    report.records += 1
                    report.quarantined += 1
                    yield Quarantined("empty_auditdata", f"{where}: empty AuditData", b"")
                    continue
                data = cell.encode()
                placed = place_record(data) if self.light else None
                if placed is not None:
                    report.records += 1
                    yield placed
                    continue
                items = parse_any(data)
            for got in items:
                report.records += 1
                if isinstance(got, Quarantined):
                    report.quarantined += 1
                    yield Quarantined(got.reason, f"{where}: {got.detail}", got.raw, got.tenant_id, got.record_id)
                else:
                    yield got


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` for text of ASCII characters written as UTF-16 without a BOM, else None."""
    sample = head[:512]
    if len(sample) < 8 or len(sample) % 2:
        sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if not odd.strip(b"\x00") and b"\x00" not in even:
        return "utf-16-le"
    if not even.strip(b"\x00") and b"\x00" not in odd:
        return "utf-16-be"
    return None


def iter_sources(paths: list[str]) -> Iterator[Source]:
    """Every input: files, directories (recursive, sorted) and ``-`` for standard input."""
    for p in paths:
        if p == "-":
            yield Source("<stdin>", None, lambda: _NoClose(sys.stdin.buffer))
            continue
        path = Path(p)
        files = sorted(x for x in path.rglob("*") if x.is_file()) if path.is_dir() else [path]
        for f in files:
            try:
                size: int | None = f.stat().st_size
            except OSError:
                size = None
            yield Source(str(f), size, _opener(f))


def _bind(
    fn: Callable[[zipfile.ZipFile, zipfile.ZipInfo, str], Iterator[Event | Quarantined | Placed]],
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    member: str,
) -> Callable[[], Iterator[Event | Quarantined | Placed]]:
    return lambda: fn(archive, info, member)


def _opener(path: Path) -> Callable[[], Closable]:
    def open_file() -> Closable:
        return path.open("rb")

    return open_file


# ---------------------------------------------------------------------- stream helpers


class _NoClose:
    """Standard input, not closed when the reader is done with it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner

    def read(self, n: int = -1, /) -> bytes:
        return self.inner.read(n)

    def close(self) -> None:
        return None


class _Counting:
    """Counts the bytes read from a stream (the compressed side of a cap, and the progress bar)."""

    def __init__(self, inner: ByteStream, on_bytes: Callable[[int], None] | None) -> None:
        self.inner = inner
        self.count = 0
        self.on_bytes = on_bytes

    def read(self, n: int = -1, /) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        if self.on_bytes is not None and data:
            self.on_bytes(len(data))
        return data


class _Peek:
    """A read-only stream with a look-ahead buffer."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.buf = b""

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.inner.read(max(n - len(self.buf), CHUNK))
            if not chunk:
                break
            self.buf += chunk
        return self.buf[:n]

    def read(self, n: int = -1, /) -> bytes:
        if self.buf:
            if n < 0 or n >= len(self.buf):
                out, self.buf = self.buf, b""
                if n < 0:
                    out += self.inner.read()
                return out
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        return self.inner.read(n)

    def read1(self, n: int = -1) -> bytes:
        return self.read(n if n > 0 else CHUNK)

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def flush(self) -> None:
        return None


class _Capped:
    """A decompressed stream that stops past the expansion caps (ratio to the compressed bytes, absolute)."""

    def __init__(self, inner: _Decompressing, packed: Callable[[], int], limits: Limits) -> None:
        self.inner = inner
        self.packed = packed
        self.limits = limits
        self.count = 0

    def read(self, n: int = -1, /) -> bytes:
        # one decompression step at a time (read1), so the bytes before a corrupt or truncated point are returned
        # before the error is raised on the next call
        data = self.inner.read1(n if n > 0 else CHUNK)
        self.count += len(data)
        lim = self.limits
        if self.count > lim.max_expanded:
            raise ExpansionCapError(f"expands past {lim.max_expanded:,} bytes")
        packed = max(self.packed(), 1)
        if self.count > lim.ratio_floor and self.count > lim.max_ratio * packed:
            raise ExpansionCapError(f"expands more than {lim.max_ratio:g} times ({self.count:,} from {packed:,} bytes)")
        return data


class _Transcoded:
    """UTF-16 (with BOM) read as UTF-8 bytes."""

    def __init__(self, inner: _Peek, encoding: str) -> None:
        self.inner = inner
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self.done = False

    def read(self, n: int = -1, /) -> bytes:
        while not self.done:
            chunk = self.inner.read(CHUNK)
            text = self.decoder.decode(chunk, final=not chunk)
            if not chunk:
                self.done = True
            if text:
                return text.encode("utf-8")
        return b""
