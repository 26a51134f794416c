"""Splitting JSON text into records: streaming, with no fixed window, no recursion and bounded memory.

`split_stream` reads a byte stream of JSON values in any of the shapes responders hand over and yields
one :class:`Piece` per record-sized value, with the line it starts on:

- a JSON array (a content blob, ``ConvertTo-Json`` output): each element is a piece;
- JSON Lines with ``\\n``, ``\\r\\n`` or bare ``\\r`` line ends and lines of any length: each object is a piece;
- several arrays or objects concatenated (Microsoft-Extractor-Suite appends one array per query window
  to the same file): the elements of each array, and each object, are pieces;
- a pretty-printed object spanning lines: one piece.

Values are delimited by matching brackets outside strings (an iterative scan, so a record nested
100,000 levels deep is one piece like any other, quarantined by the decoder). A JSON Lines line is
taken whole when it is one complete JSON value; once a stream has shown such lines, a line that is
not one value (truncated, NaN, garbage) is a piece of its own, so it cannot swallow the lines after it.
A value larger than ``max_item`` bytes or nested deeper than ``max_depth`` is skipped without being
held in memory and yielded as a piece with an ``error`` and no data. Memory is one chunk plus the
largest value kept.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

from shared.records.model import split_blob

CHUNK = 1 << 20
MAX_ITEM = 64 << 20
"""Bytes of one record-sized value kept at most (a larger one is quarantined ``record_too_large``)."""
MAX_DEPTH = 256
"""Nesting of a value at most (a deeper one is quarantined ``too_deep``); audit records nest a handful of levels."""

_SKIP = re.compile(rb'(?:[^\[\]{}"]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
"""Everything up to the next bracket outside a string (stops before an unterminated string)."""
_WS = re.compile(rb"[ \t\r\n\x0c\x00,]*+")
"""Whitespace and separators between values (stray commas and NUL padding included)."""
_EOL = re.compile(rb"[\r\n]")
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_SCALAR = re.compile(rb"[^,\]\r\n]*+")
_RAW = msgspec.json.Decoder(msgspec.Raw)
_BLANK = (b" ", b"\t", b"\x0c", b"\x00")


@dataclass(slots=True)
class Piece:
    """One record-sized JSON value: its bytes, where it starts, and why it was not kept (``error``)."""

    data: bytes
    line: int
    top: int
    """The ordinal (0-based) of the top-level value this piece belongs to."""
    error: str | None = None
    in_array: bool = False


def _eol(buf: bytearray, pos: int) -> int:
    """The index of the first line end (``\\n`` or ``\\r``) at or after ``pos``, or -1."""
    nl = buf.find(b"\n", pos)
    cr = buf.find(b"\r", pos, nl if nl >= 0 else len(buf))
    return cr if cr >= 0 else nl


class _Buffer:
    """A sliding window over a byte stream: grows while a value is read, drops what is behind it."""

    __slots__ = ("buf", "eof", "line", "line_pos", "read")

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self.read = read
        self.buf = bytearray()
        self.eof = False
        self.line = 1
        self.line_pos = 0

    def more(self, keep_from: int) -> int:
        """Read another chunk, first dropping the bytes before ``keep_from``; the shift of every index."""
        if keep_from > 0:
            self.line_at(keep_from)
            del self.buf[:keep_from]
            self.line_pos -= keep_from
        chunk = self.read(CHUNK)
        if not chunk:
            self.eof = True
        else:
            self.buf += chunk
        return keep_from

    def line_at(self, pos: int) -> int:
        if pos > self.line_pos:
            buf = self.buf
            start = self.line_pos
            n = buf.count(b"\n", start, pos)
            if buf.find(b"\r", start, pos) >= 0:
                n += buf.count(b"\r", start, pos) - buf.count(b"\r\n", start, pos)
            self.line += n
            self.line_pos = pos
        return self.line


def split_stream(
    read: Callable[[int], bytes], *, max_item: int = MAX_ITEM, max_depth: int = MAX_DEPTH
) -> Iterator[Piece]:
    """The record-sized JSON values of a byte stream (see the module docstring)."""
    b = _Buffer(read)
    pos = 0
    top = -1
    lines_mode = False
    while True:
        # between top-level values
        while True:
            m = _WS.match(b.buf, pos)
            assert m is not None
            pos = m.end()
            if pos < len(b.buf) or b.eof:
                break
            pos -= b.more(pos)
        if pos >= len(b.buf):
            return
        top += 1
        c = b.buf[pos]
        if c == 0x5B:  # [
            pos += 1
            while True:
                while True:
                    m = _WS.match(b.buf, pos)
                    assert m is not None
                    pos = m.end()
                    if pos < len(b.buf) or b.eof:
                        break
                    pos -= b.more(pos)
                if pos >= len(b.buf):
                    yield Piece(b"", b.line_at(pos), top, "truncated", True)
                    return
                c = b.buf[pos]
                if c == 0x5D:  # ]
                    pos += 1
                    break
                piece, pos = _value(b, pos, top, max_item, max_depth)
                piece.in_array = True
                yield piece
                if piece.error == "truncated":
                    return
            continue
        if c == 0x7B:  # {
            line_piece, pos = _line_value(b, pos, top, lines_mode, max_item)
            if line_piece is not None:
                lines_mode = True
                yield line_piece
                continue
            piece, pos = _value(b, pos, top, max_item, max_depth)
            yield piece
            if piece.error == "truncated":
                return
            continue
        # a scalar or junk at the top level: the rest of its line is one bad piece (its first max_item bytes)
        start = search = pos
        line_no = b.line_at(start)
        too_long = False
        while True:
            m = _EOL.search(b.buf, search)
            if m is not None or b.eof:
                break
            if len(b.buf) - start > max_item:
                too_long = True
                search = start = len(b.buf)
            else:
                search = len(b.buf)
            shift = b.more(start)
            start -= shift
            search -= shift
        end = m.start() if m is not None else len(b.buf)
        yield Piece(
            b"" if too_long else bytes(b.buf[start:end]), line_no, top, "record_too_large" if too_long else None
        )
        pos = end


def _line_value(b: _Buffer, pos: int, top: int, lines_mode: bool, max_item: int) -> tuple[Piece | None, int]:
    """A JSON Lines line starting at ``pos`` when it is one whole value, or (in lines mode) a bad line."""
    search = pos
    while True:
        end = _eol(b.buf, search)
        if end >= 0 or b.eof:
            break
        if len(b.buf) - pos > max_item:
            return None, pos  # longer than a record may be: the bracket scan skips it
        search = len(b.buf)
        shift = b.more(pos)
        pos -= shift
        search -= shift
    if end < 0:
        end = len(b.buf)
    line = bytes(b.buf[pos:end])
    if line[-1:] in _BLANK:
        line = line.rstrip()
    if not lines_mode:  # a line is taken whole once the stream has shown complete one-line values
        try:
            _RAW.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return None, pos
    return Piece(line, b.line_at(pos), top, None), end


def _value(b: _Buffer, pos: int, top: int, max_item: int, max_depth: int) -> tuple[Piece, int]:
    """One value starting at ``pos`` (an object, an array or a scalar) and the position after it."""
    start = pos
    line = b.line_at(start)
    c = b.buf[pos]
    if c not in (0x7B, 0x5B):
        scalar = _STRING if c == 0x22 else _SCALAR
        while True:
            m = scalar.match(b.buf, pos)
            if m is not None and (m.end() < len(b.buf) or b.eof):
                break
            if m is None and b.eof:
                return Piece(b"", line, top, "truncated"), len(b.buf)
            if len(b.buf) - start > max_item:
                return Piece(b"", line, top, "record_too_large"), len(b.buf)
            shift = b.more(start)
            start -= shift
            pos = start
        return Piece(bytes(b.buf[start : m.end()]), line, top), m.end()
    depth = 0
    error: str | None = None
    p = pos
    while True:
        m = _SKIP.match(b.buf, p)
        assert m is not None
        p = m.end()
        if p >= len(b.buf) or b.buf[p] == 0x22:  # need more bytes (end of buffer, or a string cut by it)
            if b.eof:
                return Piece(b"", line, top, "truncated"), len(b.buf)
            if error is not None or p - start > max_item:
                error = error or "record_too_large"
                shift = b.more(p)
                start = p = p - shift
            else:
                shift = b.more(start)
                start -= shift
                p -= shift
            continue
        ch = b.buf[p]
        if ch == 0x7B or ch == 0x5B:
            depth += 1
            if depth > max_depth and error is None:
                error = "too_deep"
        else:
            depth -= 1
            if depth == 0:
                p += 1
                if error is not None:
                    return Piece(b"", line, top, error), p
                if p - start > max_item:
                    return Piece(b"", line, top, "record_too_large"), p
                return Piece(bytes(b.buf[start:p]), line, top), p
        p += 1


def split_array(data: bytes) -> list[tuple[bytes, str | None]]:
    """The elements of a content blob (one JSON array), each with the reason it cannot be kept (or None).

    The fast path splits with msgspec; when that fails (a NaN, a record nested too deep, any element that is
    not valid JSON) the bracket scan splits the array so that each bad element is quarantined alone. Raises
    ValueError when the bytes are not one JSON array at all (truncated, or anything after it): a fault of
    the blob, not of a record.
    """
    try:
        return [(bytes(r), None) for r in split_blob(data)]
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    if data.lstrip()[:1] != b"[":
        raise ValueError("content blob is not a JSON array")
    out: list[tuple[bytes, str | None]] = []
    for piece in split_stream(io.BytesIO(data).read):
        if piece.top != 0 or piece.error == "truncated" or not piece.in_array:
            raise ValueError("content blob is not one complete JSON array")
        out.append((piece.data, piece.error))
    return out
