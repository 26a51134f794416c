"""Gaps in the input are findings: a tenant, or one of its workloads, falling silent while the rest flows.

Audit logging turned off, export pages lost between two downloads, or a feed that stopped all look the
same to a responder: a stream of records that goes quiet for far longer than it ever does, while the
tenant's other workloads (or, for a whole tenant, the other tenants) keep producing records. The
:class:`GapDetector` watches records in ``CreationTime`` order (as ``itdr scan`` processes them) and
raises one ``integration_health`` alert (:func:`shared.ingest.health.integration_alert`, kind
``input_gap``) per such silence, naming the tenant, the workload and the silent interval.

Streams. Every record counts in three nested streams: the whole input, its tenant, and its tenant's
workload (the content type of its ``RecordType``: Exchange, SharePoint, AzureActiveDirectory or
General). A workload is judged against its tenant (the other workloads), a tenant against the input
(the other tenants); the input itself is never judged (a hole in everything is the export's window).

The test, per stream and silence (two consecutive records ``t0 < t1``, or the stream's first / last
record and its parent's first / last, for a feed that started late or stopped):

1. **Weekly rhythm.** Per stream, 168 hour-of-week counters of the distinct clock hours that had a
   record. ``p(h)`` = the share of the stream's own occurrences of hour-of-week ``h`` (inside its span,
   the silence itself left out) that were active. The silence's *expected active hours*
   ``E = Σ p(h)`` over its whole clock hours: what the stream's own rhythm predicted. A small tenant's
   nights and weekends have ``p ≈ 0``, so its quiet nights and weekends weigh nothing.
2. **Its own usual gaps.** Every inter-record gap of the stream is scored the same way online (with
   the profile known so far) into a log-binned histogram; the silence must reach
   ``max(min_expected_hours, factor x quantile)`` of that histogram, the silence itself left out
   (0.99 quantile, factor 3, 8 hours by default: a working day the stream would have been active in).
3. **A floor.** At least ``floor`` (6 hours) of wall-clock time.
4. **The rest kept flowing.** The parent stream (the rest) had records inside the silence, in at least
   ``rest_share`` (half) as many clock hours as the silent stream's rhythm predicted for itself: a
   small tenant's Exchange silent for three workdays while people keep signing in is a gap; a tenant
   whose every workload stops (the export's window, a hole in all of it) is not a workload's gap.

Memory is bounded per stream: counters, a 16-bin histogram and at most :data:`MAX_CANDIDATES`
candidate silences (the longest); no timestamps are kept. Work per record is O(1), plus O(hours) for a silence of more than an hour.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.alert_model import Alert, iso
from shared.records.event import Event

HOUR = 3600.0
WEEK_HOURS = 168
KIND = "input_gap"
MAX_CANDIDATES = 16
"""Candidate silences kept per stream (the longest)."""
WORKLOADS = ("AzureActiveDirectory", "Exchange", "SharePoint", "General")
ALL_WORKLOADS = "*"

# RecordType values (Office 365 Management Activity API schema, AuditLogRecordType) by content type.
_EXCHANGE_TYPES = frozenset({1, 2, 3, 13, 19, 50})
_SHAREPOINT_TYPES = frozenset({4, 6, 7, 14, 36, 37})
_AAD_TYPES = frozenset({8, 9, 15})


def workload_of(record_type: int | str | None) -> str:
    """The content-type workload of a ``RecordType`` (number, numeric text or its enum name)."""
    if isinstance(record_type, str):
        text = record_type.strip()
        if text.isdigit():
            record_type = int(text)
        else:
            name = text.lower()
            if name.startswith(("exchange", "compliancedlpexchange")):
                return "Exchange"
            if name.startswith(("sharepoint", "onedrive")):
                return "SharePoint"
            if name.startswith("azureactivedirectory"):
                return "AzureActiveDirectory"
            return "General"
    if isinstance(record_type, int):
        if record_type in _EXCHANGE_TYPES:
            return "Exchange"
        if record_type in _SHAREPOINT_TYPES:
            return "SharePoint"
        if record_type in _AAD_TYPES:
            return "AzureActiveDirectory"
    return "General"


def content_type_of(workload: str) -> str:
    return "*" if workload == ALL_WORKLOADS else f"Audit.{workload}"


@dataclass(frozen=True, slots=True)
class GapPolicy:
    """The thresholds of the test (see the module docstring)."""

    floor_s: float = 6 * HOUR
    factor: float = 3.0
    quantile: float = 0.99
    min_expected_hours: float = 8.0
    rest_share: float = 0.5

    def __post_init__(self) -> None:
        if self.floor_s <= 0 or self.factor < 1 or not 0 < self.quantile < 1 or self.min_expected_hours <= 0:
            raise ValueError("need floor_s > 0, factor >= 1, 0 < quantile < 1 and min_expected_hours > 0")
        if not 0 < self.rest_share <= 1:
            raise ValueError("need 0 < rest_share <= 1")


# Histogram of a gap's expected active hours: bin 0 = [0, 1/8), bin k = [2^(k-4), 2^(k-3)), last open.
_BINS = 16


def _bin(value: float) -> int:
    if value < 0.125:
        return 0
    return min(_BINS - 1, math.floor(math.log2(value)) + 4)


def _bin_upper(index: int) -> float:
    return 0.125 if index == 0 else 2.0 ** (index - 3)


PRIOR_WEIGHT = 2.0
"""Pseudo-occurrences of the clock hour's weekday-or-weekend rate in each hour-of-week's estimate."""


def _is_weekend(how: int) -> bool:
    """Saturday or Sunday (UTC) for an hour-of-week counted from the epoch (a Thursday, 00:00)."""
    return how // 24 in (2, 3)


def _occurrences(h0: int, h1: int, how: int) -> int:
    """How many absolute hours h in [h0, h1] have h % 168 == how."""
    if h1 < h0:
        return 0
    return (h1 - how) // WEEK_HOURS - (h0 - 1 - how) // WEEK_HOURS


@dataclass(frozen=True, slots=True)
class Silence:
    """A candidate silence of a stream: ``start`` and ``end`` (epoch seconds), the parent's records and
    active clock hours inside."""

    start: float
    end: float
    parent_records: int
    parent_hours: int
    own_bin: int | None = None
    """The histogram bin the silence itself was counted in (left out when it is judged)."""
    edge: str | None = None
    """``"start"`` (the stream began late), ``"end"`` (it stopped before the rest) or None."""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class _Stream:
    tenant_id: str
    workload: str
    parent: _Stream | None
    first: float
    last: float
    count: int = 0
    hours: int = 0
    """Distinct clock hours with a record."""
    last_hour: int = -1
    active: list[int] = field(default_factory=lambda: [0] * WEEK_HOURS)
    hist: list[int] = field(default_factory=lambda: [0] * _BINS)
    candidates: list[tuple[float, float, float, int, int, int]] = field(default_factory=list)
    """Min-heap of (duration, start, end, parent records inside, parent active hours inside, histogram bin)."""
    parent_count_at_first: int = 0
    parent_count_at_last: int = 0
    parent_hours_at_first: int = 0
    parent_hours_at_last: int = 0

    def profile(self, *, exclude: tuple[int, int] | None = None) -> list[float]:
        """``p`` per hour-of-week: the share of its occurrences (in the stream's span, ``exclude`` left out)
        that had a record, shrunk towards the same clock hour of the same kind of day (weekday or
        weekend, UTC) with :data:`PRIOR_WEIGHT` pseudo-occurrences, so a short input still has a rhythm."""
        h0, h1 = int(self.first // HOUR), int(self.last // HOUR)
        occ = [0] * WEEK_HOURS
        for how in range(WEEK_HOURS):
            n = _occurrences(h0, h1, how)
            if exclude is not None:
                n -= _occurrences(max(h0, exclude[0]), min(h1, exclude[1]), how)
            occ[how] = n
        active_by_kind: dict[tuple[bool, int], int] = {}
        occ_by_kind: dict[tuple[bool, int], int] = {}
        for how in range(WEEK_HOURS):
            kind = (_is_weekend(how), how % 24)
            active_by_kind[kind] = active_by_kind.get(kind, 0) + self.active[how]
            occ_by_kind[kind] = occ_by_kind.get(kind, 0) + occ[how]
        out = []
        for how in range(WEEK_HOURS):
            kind = (_is_weekend(how), how % 24)
            prior = active_by_kind[kind] / occ_by_kind[kind] if occ_by_kind[kind] > 0 else 0.0
            out.append(min(1.0, (self.active[how] + PRIOR_WEIGHT * prior) / (occ[how] + PRIOR_WEIGHT)))
        return out

    def expected_hours(self, start: float, end: float, *, online: bool) -> float:
        """Σ p(h) over the whole clock hours strictly inside (start, end): with the profile known so far
        (``online``), or with the whole stream's profile, the silence itself left out."""
        h_start, h_end = int(start // HOUR) + 1, int(end // HOUR) - 1
        if h_end < h_start:
            return 0.0
        p = self.profile(exclude=None if online else (h_start, h_end))
        n = h_end - h_start + 1
        weeks, rest = divmod(n, WEEK_HOURS)
        total = weeks * sum(p)
        for h in range(h_start, h_start + rest):
            total += p[h % WEEK_HOURS]
        return total

    def quantile(self, q: float, *, leave_out: int | None = None) -> float:
        """The ``q`` quantile (upper bin edge) of the stream's gaps, one gap of bin ``leave_out`` left out."""
        hist = list(self.hist)
        if leave_out is not None and hist[leave_out] > 0:
            hist[leave_out] -= 1
        n = sum(hist)
        if n == 0:
            return 0.0
        need = q * n
        seen = 0
        for i, c in enumerate(hist):
            seen += c
            if seen >= need:
                return _bin_upper(i)
        return _bin_upper(_BINS - 1)

    def keep_candidate(self, start: float, end: float, records: int, hours: int, own_bin: int) -> None:
        item = (end - start, start, end, records, hours, own_bin)
        if len(self.candidates) < MAX_CANDIDATES:
            heapq.heappush(self.candidates, item)
        elif item > self.candidates[0]:
            heapq.heapreplace(self.candidates, item)


class GapDetector:
    """Feed it every record in time order (:meth:`observe`), then :meth:`alerts` gives the silences found."""

    def __init__(self, policy: GapPolicy | None = None) -> None:
        self.policy = policy or GapPolicy()
        self._root: _Stream | None = None
        self._tenants: dict[str, _Stream] = {}
        self._workloads: dict[tuple[str, str], _Stream] = {}

    def observe(self, event: Event) -> None:
        """Count one record (see :meth:`observe_at` for the order it needs)."""
        self.observe_at(event.tenant_id, workload_of(event.record.RecordType), event.time)

    def observe_at(self, tenant_id: str, workload: str, at: float) -> None:
        """Count one record of a tenant's workload at ``at`` (epoch seconds).

        Within a tenant records must come in time order; across tenants too for the whole-tenant test
        (a record earlier than its stream's latest counts at that latest time).
        """
        root = self._root
        if root is None:
            root = self._root = _Stream("", ALL_WORKLOADS, None, at, at)
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Stream(tenant_id, ALL_WORKLOADS, root, at, at)
        wl = self._workloads.get((tenant_id, workload))
        if wl is None:
            wl = self._workloads[(tenant_id, workload)] = _Stream(tenant_id, workload, tenant, at, at)
        for stream in (root, tenant, wl):
            self._step(stream, max(at, stream.last))

    def _step(self, s: _Stream, t: float) -> None:
        parent = s.parent
        # the parent has already counted this record (streams are stepped outermost first)
        hour = int(t // HOUR)
        if s.count == 0:
            if parent is not None:
                s.parent_count_at_first = parent.count - 1
                s.parent_hours_at_first = parent.hours - 1
        elif t > s.last:
            gap = t - s.last
            own_bin = _bin(s.expected_hours(s.last, t, online=True)) if gap >= HOUR else 0
            s.hist[own_bin] += 1
            if parent is not None and gap >= self.policy.floor_s:
                # the rest's records strictly inside; its clock hours after the silence's first hour, up to
                # its last (the hour of the record that ends the silence left out)
                records = parent.count - 1 - s.parent_count_at_last
                hours = parent.hours - s.parent_hours_at_last - (1 if hour != s.last_hour else 0)
                s.keep_candidate(s.last, t, records, hours, own_bin)
        else:
            s.hist[0] += 1
        s.count += 1
        s.last = t
        if hour != s.last_hour:
            s.active[hour % WEEK_HOURS] += 1
            s.hours += 1
            s.last_hour = hour
        if parent is not None:
            s.parent_count_at_last = parent.count
            s.parent_hours_at_last = parent.hours

    def silences(self) -> list[tuple[str, str, Silence]]:
        """(tenant, workload, silence) of every stream that fell silent: the candidates that pass the test."""
        out: list[tuple[str, str, Silence]] = []
        for s in (*self._tenants.values(), *self._workloads.values()):
            parent = s.parent
            if parent is None:
                continue
            found = [Silence(start, end, rec, hours, own_bin) for _, start, end, rec, hours, own_bin in s.candidates]
            if s.first - parent.first >= self.policy.floor_s:
                found.append(
                    Silence(parent.first, s.first, s.parent_count_at_first, s.parent_hours_at_first, edge="start")
                )
            if parent.last - s.last >= self.policy.floor_s:
                found.append(
                    Silence(
                        s.last,
                        parent.last,
                        parent.count - s.parent_count_at_last,
                        parent.hours - s.parent_hours_at_last,
                        edge="end",
                    )
                )
            for silence in sorted(found, key=lambda x: x.start):
                if self._judge(s, parent, silence):
                    out.append((s.tenant_id, s.workload, silence))
        return sorted(out, key=lambda x: (x[0], x[2].start, x[1]))

    def _judge(self, s: _Stream, parent: _Stream, silence: Silence) -> bool:
        pol = self.policy
        if silence.duration < pol.floor_s or silence.parent_records < 1:
            return False
        expected = s.expected_hours(silence.start, silence.end, online=False)
        if expected < max(pol.min_expected_hours, pol.factor * s.quantile(pol.quantile, leave_out=silence.own_bin)):
            return False
        return silence.parent_hours >= pol.rest_share * expected

    def alerts(self) -> list[Alert]:
        """One ``integration_health`` alert per silence found (first_seen = its start, last_seen = its end)."""
        found = self.silences()
        if not found:
            return []
        # imported on use: the feed-health module brings the Azure SDKs along
        from shared.ingest.health import integration_alert

        out: dict[str, Alert] = {}
        streams = {(s.tenant_id, s.workload): s for s in (*self._tenants.values(), *self._workloads.values())}
        for tenant_id, workload, silence in found:
            s = streams[(tenant_id, workload)]
            expected = s.expected_hours(silence.start, silence.end, online=False)
            usual = s.quantile(self.policy.quantile, leave_out=silence.own_bin)
            hours = round(silence.duration / HOUR, 1)
            what = "records" if workload == ALL_WORKLOADS else f"{workload} records"
            rest = "the other tenants" if workload == ALL_WORKLOADS else "its other workloads"
            how = {
                None: f"from {iso(silence.start)} to {iso(silence.end)}",
                "start": f"before {iso(silence.end)} (since the input began at {iso(silence.start)})",
                "end": f"after {iso(silence.start)} (until the input ended at {iso(silence.end)})",
            }[silence.edge]
            summary = (
                f"No {what} of tenant {tenant_id} {how}: {hours} h, while {rest} kept flowing "
                f"({silence.parent_records} records). Its own weekly rhythm predicted activity in "
                f"{expected:.1f} of those hours; its usual silences span at most {usual:g} such hours. Audit logging "
                "turned off, lost export pages or a stopped feed look like this."
            )
            alert = integration_alert(
                tenant_id=tenant_id,
                kind=KIND,
                content_type=content_type_of(workload),
                when=datetime.fromtimestamp(silence.start, UTC),
                summary=summary,
                context={
                    "workload": workload,
                    "silent_from": iso(silence.start),
                    "silent_to": iso(silence.end),
                    "silent_hours": hours,
                    "edge": silence.edge,
                    "expected_active_hours": round(expected, 1),
                    "usual_silence_active_hours": usual,
                    "other_records_inside": silence.parent_records,
                    "other_active_hours_inside": silence.parent_hours,
                },
            )
            alert.last_seen = silence.end
            who = "the whole tenant" if workload == ALL_WORKLOADS else workload
            alert.title = f"Audit records missing: {who} silent for {hours} h"
            same = out.get(alert.alert_id)
            if same is None:
                out[alert.alert_id] = alert
            else:  # a second silence of the stream starting the same UTC day: one alert (its ID is per day)
                same.last_seen = max(same.last_seen, alert.last_seen)
                same.count += 1
                same.summary += f" Again {how}."
        return list(out.values())


def find_gaps(events: Iterable[Event], policy: GapPolicy | None = None) -> list[Alert]:
    """The gap alerts of records given in time order."""
    detector = GapDetector(policy)
    for ev in events:
        detector.observe(ev)
    return detector.alerts()
