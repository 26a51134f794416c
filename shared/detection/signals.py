"""Signals detectors leave for each other in the user's state.

A risky sign-in (anonymiser, hosting, new country, spray source...) is remembered for a
day, so a later inbox rule, Graph access or consent by the same user can be scored as
"made from a risky session". Kept in one small, bounded section of the user's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.detection.base import DetectionContext
from shared.records.event import Event

RISK_SECTION = "_risk"
RISK_MEMORY_S = 24 * 3600
MAX_RISK_MARKS = 8


def mark_risky_signin(ctx: DetectionContext, event: Event, reason: str) -> None:
    """Remember that this user just signed in from a risky place (``reason`` is short, e.g. 'vpn')."""
    sec = ctx.state(event, RISK_SECTION)
    marks: list[list[Any]] = sec.setdefault("marks", [])
    marks.append([event.time, event.ip or "", reason, event.record_id])
    sec["marks"] = [m for m in marks if event.time - float(m[0]) <= RISK_MEMORY_S][-MAX_RISK_MARKS:]


def recent_risky_signin(
    ctx: DetectionContext, event: Event, *, within_s: float = RISK_MEMORY_S
) -> Mapping[str, Any] | None:
    """The latest risky sign-in of this user within ``within_s`` before the event, if any."""
    sec = ctx.peek_state(event, RISK_SECTION)
    marks = sec.get("marks") or []
    for m in reversed(marks):
        t = float(m[0])
        if 0 <= event.time - t <= within_s:
            return {"time": t, "ip": m[1], "reason": m[2], "record_id": m[3]}
    return None
