"""The learning gate: novelty detectors speak only once the user and the tenant have been watched long enough.

A detector whose `DetectorMeta` declares a `Learning` rule (first use of a client, a new country or network, an
unfamiliar fingerprint, a new sync client...) runs on every event as usual, so its own state learns what is
normal; the gate only decides whether its findings are raised. The gate remembers when it first observed each
user and each tenant (one small state section each, ``{"fs": epoch seconds}``); a finding is raised when

* the user has been observed for ``user_days`` and the tenant for ``tenant_days``, or
* the finding is at the rule's ``while_learning`` severity or above (a risk signal raised it).

First observation is the time of the first event the gate saw for the user (for the tenant: of any of its users),
so in ``itdr scan`` the input's own first days are the baseline (`baseline_until`). Detectors without a rule are
not wrapped and fire from the first record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.alert_model import DetectorMeta, Finding, Learning

if TYPE_CHECKING:
    from shared.detection.base import DetectionContext, Detector
    from shared.records.event import Event

SECTION = "_learning"
"""State section (per user, and tenant-wide) holding when the gate first observed the user or tenant."""
DAY_S = 86400.0
PREVALENCE_SECTION = "_prevalence"
"""``shared.detection.baseline.PREVALENCE_SECTION`` (not imported: that module imports the detector base, which
imports this one)."""
SIGNIN_SECTION = "_signins"
"""``shared.detection.baseline.SIGNIN_SECTION``."""
_TENANT_MEMO = "learning|tenant"
_USER_MEMO = "learning|"

DetectFn = Callable[["Event", "DetectionContext"], Iterable[Finding]]


class LearningRuleError(ValueError):
    """A learning rule that cannot mean what it says."""


def check_rule(meta: DetectorMeta) -> None:
    """Registration check of a detector's learning rule (none is fine: the detector fires from the first record).

    The tenant must be watched at least as long as the user; ``while_learning`` low would hold nothing back; the
    runbook must state the rule (``Learning.describe()``), so every alert's runbook says it.
    """
    rule = meta.learning
    if rule is None:
        return
    if rule.tenant_days < rule.user_days:
        raise LearningRuleError(f"{meta.id}: the tenant must be learned at least as long as the user")
    if rule.while_learning is not None and rule.while_learning.rank == 0:
        raise LearningRuleError(f"{meta.id}: while_learning low lets every finding through: nothing is learned")
    if rule.describe() not in " ".join(meta.runbook.split()):
        raise LearningRuleError(f"{meta.id}: the runbook must state the learning rule (Learning.describe())")


def _first_seen(
    ctx: DetectionContext,
    memo_key: str,
    now: float,
    section: Callable[[], dict[str, Any]],
    earlier: Callable[[], float | None],
) -> float:
    memo = ctx.memo
    got = memo.get(memo_key)
    if got is not None and got <= now:
        return float(got)
    sec = section()
    fs = sec.get("fs")
    if not isinstance(fs, (int, float)):
        # first look at this user or tenant: state kept before the gate existed still counts as observation
        prior = earlier()
        fs = int(min(now, prior)) if prior is not None else int(now)
        sec["fs"] = fs
    elif now < fs:
        fs = int(now)
        sec["fs"] = fs
    memo[memo_key] = float(fs)
    return float(fs)


def _user_signins_since(ctx: DetectionContext, event: Event) -> float | None:
    """The user's first sign-in in the sign-in baseline (``shared.detection.baseline``), if any."""
    fs = ctx.peek_state(event, SIGNIN_SECTION).get("fs")
    return float(fs) if isinstance(fs, (int, float)) else None


def _tenant_prevalence_since(ctx: DetectionContext) -> float | None:
    """The earliest first use of any place the tenant's prevalence counts still hold, if any."""
    times = [
        float(entry[0])
        for table in ctx.peek_tenant_state(PREVALENCE_SECTION).values()
        if isinstance(table, dict)
        for entry in table.values()
        if isinstance(entry, list) and entry and isinstance(entry[0], (int, float))
    ]
    return min(times, default=None)


def observed_since(ctx: DetectionContext, event: Event) -> tuple[float, float]:
    """(user, tenant) first observation times, recording the event's time when it is the first (or earlier).

    On the first look at a user (tenant) whose state predates the gate, the first sign-in of the user's sign-in
    baseline (the earliest place in the tenant's prevalence counts) counts as observed: a deployment that gains
    the gate does not start learning again.
    """
    now = event.time
    tenant_fs = _first_seen(
        ctx, _TENANT_MEMO, now, lambda: ctx.tenant_state(SECTION), lambda: _tenant_prevalence_since(ctx)
    )
    key = event.user_key
    if key is None:
        return tenant_fs, tenant_fs
    user_fs = _first_seen(
        ctx, _USER_MEMO + key, now, lambda: ctx.state(event, SECTION), lambda: _user_signins_since(ctx, event)
    )
    return user_fs, tenant_fs


def is_learned(rule: Learning, user_fs: float, tenant_fs: float, now: float) -> bool:
    return now - user_fs >= rule.user_days * DAY_S and now - tenant_fs >= rule.tenant_days * DAY_S


@lru_cache(maxsize=4096)
def gated(detector: Detector) -> DetectFn:
    """The detector's ``detect``, behind its learning gate (the plain method when it declares no rule)."""
    rule = detector.meta.learning
    detect: DetectFn = detector.detect
    if rule is None:
        return detect
    floor = rule.while_learning.rank if rule.while_learning is not None else None

    def run(event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        user_fs, tenant_fs = observed_since(ctx, event)
        got = detect(event, ctx)
        if not got or is_learned(rule, user_fs, tenant_fs, event.time):
            return got
        if floor is None:
            return ()
        return [f for f in got if f.severity.rank >= floor]

    return run


def longest_tenant_days(metas: Iterable[DetectorMeta]) -> int:
    """The longest tenant learning period of the detectors (0 when none declares one)."""
    return max((m.learning.tenant_days for m in metas if m.learning is not None), default=0)


def tenant_baseline_until(tenant_state: Mapping[str, Any], metas: Iterable[DetectorMeta]) -> str | None:
    """ISO time the tenant's baseline period ends for every novelty detector (None when never observed)."""
    sec = tenant_state.get(SECTION)
    fs = sec.get("fs") if isinstance(sec, dict) else None
    if not isinstance(fs, (int, float)):
        return None
    until = float(fs) + longest_tenant_days(metas) * DAY_S
    return datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
