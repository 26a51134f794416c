"""Bursts of activity well above a user's own baseline (mail items read, files downloaded).

Each user's state holds the current hour's bucket and an exponentially weighted average of the
volume of their active hours. A bucket alerts once when its volume reaches
``max(floor, multiplier × baseline)``; a bucket that alerted is not folded into the baseline, so an
attacker's burst does not teach the detector that bursts are normal. State is a few numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUCKET_S = 3600.0
ALPHA = 0.1
MAX_EVIDENCE = 10


@dataclass(frozen=True, slots=True)
class Burst:
    """A bucket that crossed its threshold."""

    start: float
    last: float
    volume: int
    threshold: float
    baseline: float | None
    hours_learned: int
    evidence: tuple[str, ...]


def add_volume(
    section: dict[str, Any],
    *,
    time: float,
    volume: int,
    record_id: str,
    floor: int,
    multiplier: float,
    min_hours: int = 4,
) -> Burst | None:
    """Add ``volume`` at ``time`` to the user's bucket; the `Burst` the first time the bucket crosses."""
    bucket = section.get("b")
    avg = section.get("avg")
    n = int(section.get("n") or 0)
    if not isinstance(bucket, list) or len(bucket) != 5 or time - float(bucket[0]) >= BUCKET_S:
        if isinstance(bucket, list) and len(bucket) == 5 and not bucket[3]:
            x = float(bucket[2])
            avg = x if avg is None else float(avg) + ALPHA * (x - float(avg))
            n = min(n + 1, 100000)
            section["avg"] = round(avg, 3)
            section["n"] = n
        bucket = [time, time, 0, 0, []]
        section["b"] = bucket
    bucket[1] = max(float(bucket[1]), time)
    bucket[2] = int(bucket[2]) + volume
    if volume > 0 and len(bucket[4]) < MAX_EVIDENCE:
        bucket[4].append(record_id)
    learned = avg is not None and n >= min_hours
    threshold = max(float(floor), multiplier * float(avg)) if learned and avg is not None else float(floor)
    if bucket[3] or bucket[2] < threshold:
        return None
    bucket[3] = 1
    return Burst(
        start=float(bucket[0]),
        last=float(bucket[1]),
        volume=int(bucket[2]),
        threshold=threshold,
        baseline=float(avg) if learned and avg is not None else None,
        hours_learned=n,
        evidence=tuple(bucket[4]),
    )
