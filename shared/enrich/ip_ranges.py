"""Step tables over IP address integers: built from ranges, looked up with ``bisect``.

A *step table* is a pair ``(starts, values)``: ``starts`` is sorted, ``starts[0] == 0`` and
``values[i]`` applies to every address in ``[starts[i], starts[i + 1])``. A lookup is one
``bisect_right(starts, x) - 1``; gaps carry the table's "none" value. IPv4 tables keep their
starts in ``array('I')`` (compact, cache friendly); IPv6 tables keep Python ints in a list.

The builders here are used both by ``python -m shared.tools.build_ipdata`` (which compiles the
embedded data into one file) and at run time for feeds and for the uncompiled fallback, so the
compiled path and the fallback answer identically.
"""

from __future__ import annotations

import heapq
import ipaddress
import socket
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

V = TypeVar("V")

_pton = socket.inet_pton
_AF_INET = socket.AF_INET
V4_LIMIT = 1 << 32
V6_LIMIT = 1 << 128


def parse_network(text: str) -> tuple[int, int, int] | None:
    """``(version, first, last)`` of an address or CIDR (host bits allowed), or None when malformed."""
    s = text.strip()
    if not s:
        return None
    if ":" not in s:  # the common IPv4 forms, without building ipaddress objects (feeds hold ~10^5 lines)
        addr, slash, plen = s.partition("/")
        if not slash or (plen.isdigit() and plen.isascii() and len(plen) <= 2):
            bits = int(plen) if slash else 32
            if bits > 32:
                return None
            try:
                value = int.from_bytes(_pton(_AF_INET, addr), "big")
            except OSError:
                return None
            size = 1 << (32 - bits)
            first = value & ~(size - 1) & 0xFFFFFFFF
            return 4, first, first + size - 1
    try:
        net = ipaddress.ip_network(s, strict=False)
    except ValueError:
        return None
    first = int(net.network_address)
    return net.version, first, first + net.num_addresses - 1


def steps_from_disjoint(ranges: Iterable[tuple[int, int, V]], none: V, *, limit: int) -> tuple[list[int], list[V]]:
    """Step table of ranges sorted by start, with "bisect on the start, then check the end" semantics.

    When a range overlaps the next one, the next one wins from its own start on: exactly what a
    ``bisect_right`` over the starts followed by an end check answers.
    """
    starts: list[int] = [0]
    values: list[V] = [none]
    pending: list[tuple[int, int, V]] = sorted(ranges, key=lambda r: r[0])
    for i, (s, e, v) in enumerate(pending):
        end = e
        if i + 1 < len(pending):
            end = min(end, pending[i + 1][0] - 1)
        if end < s:
            continue
        append_step(starts, values, s, v)
        if end + 1 < limit:
            append_step(starts, values, end + 1, none)
    return starts, values


def steps_most_specific(
    ranges: Sequence[tuple[int, int, tuple[int, ...], V]], none: V, *, limit: int
) -> tuple[list[int], list[V]]:
    """Step table of possibly nested ranges where, at each address, the smallest covering range wins.

    Each range is ``(first, last, rank, value)``; among ranges of equal size the lowest ``rank``
    wins (pass the input order to keep the first listed). This is longest-prefix match for CIDRs.
    """
    items = sorted(ranges, key=lambda r: r[0])
    bounds = sorted({0} | {r[0] for r in items} | {r[1] + 1 for r in items if r[1] + 1 < limit})
    heap: list[tuple[int, tuple[int, ...], int, int]] = []
    payload: list[V] = []
    starts: list[int] = []
    values: list[V] = []
    j = 0
    for b in bounds:
        while j < len(items) and items[j][0] == b:
            s, e, rank, v = items[j]
            payload.append(v)
            heapq.heappush(heap, (e - s, rank, e, len(payload) - 1))
            j += 1
        while heap and heap[0][2] < b:
            heapq.heappop(heap)
        append_step(starts, values, b, payload[heap[0][3]] if heap else none)
    return starts, values


def steps_union_bits(ranges: Iterable[tuple[int, int, int]], *, limit: int) -> tuple[list[int], list[int]]:
    """Step table of bit masks: each address gets the OR of the bits of every range covering it."""
    events: list[tuple[int, int, int]] = []
    for s, e, bits in ranges:
        b = 1
        while b <= bits:
            if bits & b:
                events.append((s, b, 1))
                if e + 1 < limit:
                    events.append((e + 1, b, -1))
            b <<= 1
    events.sort()
    counts: dict[int, int] = {}
    starts: list[int] = [0]
    values: list[int] = [0]
    i = 0
    while i < len(events):
        pos = events[i][0]
        while i < len(events) and events[i][0] == pos:
            _, bit, delta = events[i]
            counts[bit] = counts.get(bit, 0) + delta
            i += 1
        mask = 0
        for bit, n in counts.items():
            if n > 0:
                mask |= bit
        append_step(starts, values, pos, mask)
    return starts, values


def combine(
    layers: Sequence[tuple[Sequence[int], Sequence[V]]],
) -> tuple[list[int], list[tuple[V, ...]]]:
    """Overlay step tables: one boundary wherever any layer changes, values as one tuple per row."""
    k = len(layers)
    ptr = [0] * k
    cur: list[V] = [layer[1][0] for layer in layers]
    starts: list[int] = []
    rows: list[tuple[V, ...]] = []
    last: tuple[V, ...] | None = None
    for pos in heapq.merge(*(layer[0] for layer in layers)):
        if starts and starts[-1] == pos:
            continue
        for n in range(k):
            ls, lv = layers[n]
            p = ptr[n]
            while p + 1 < len(ls) and ls[p + 1] <= pos:
                p += 1
            ptr[n] = p
            cur[n] = lv[p]
        row = tuple(cur)
        if row == last:
            continue
        starts.append(pos)
        rows.append(row)
        last = row
    return starts, rows


def append_step(starts: list[int], values: list[V], pos: int, value: V) -> None:
    """Add a step at ``pos`` (>= the last start), merging steps whose values are equal."""
    if starts and starts[-1] == pos:
        values[-1] = value
        if len(values) > 1 and values[-2] == value:
            starts.pop()
            values.pop()
        return
    if values and values[-1] == value:
        return
    starts.append(pos)
    values.append(value)


class StepTable(Generic[V]):
    """A read-only step table with ``get(x)``; IPv4 starts are an ``array('I')``."""

    __slots__ = ("starts", "values")

    def __init__(self, starts: Sequence[int], values: Sequence[V]) -> None:
        if not starts or starts[0] != 0 or len(starts) != len(values):
            raise ValueError("a step table starts at 0 and has one value per start")
        self.starts = starts
        self.values = values

    @classmethod
    def v4(cls, starts: Sequence[int], values: Sequence[V]) -> StepTable[V]:
        """IPv4 table with compact starts."""
        return cls(array("I", starts), values)

    def get(self, x: int) -> V:
        """Value for address integer ``x``."""
        return self.values[bisect_right(self.starts, x) - 1]

    def __len__(self) -> int:
        return len(self.starts)
