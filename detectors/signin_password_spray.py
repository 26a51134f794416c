"""Password spray: many different users failing at the password step from one source.

Counted failures: 50126 (wrong password), 50053 (locked), 50055 (expired password, which was right) and
50057 (disabled account): sprayers walk the whole user list. MFA interrupts (50074/50076), MFA failures
(500121) and Conditional Access blocks are *not* password failures. A failure without a real user key
(``UserId`` "Not Available" and no Actor) is not counted: it cannot be told apart from another.

Sources: the address (IPv6 by /64), and for hosting or anonymiser addresses also the ASN, because
distributed sprays rotate through one provider's addresses. At least 10 distinct users failing from one
source within 60 minutes raise one MEDIUM tenant-level alert. The source is then remembered for 72 hours:
a successful sign-in from it is CRITICAL and marks the user's session as "spray_source" risky; a success
from the source *during* the spray (before the threshold) makes the spray alert itself CRITICAL.

A shared egress (a tenant trusted range, or a network at least five other users of the tenant have used
for more than a day: the office NAT) needs 30 users, because honest typos of a large office add up, and
its successes are the employees behind it: they raise nothing per user (the spray alert stands).

State is tenant-wide (``ctx.tenant_state``) and bounded: at most 16 tracked sources and 12 flagged ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    OP_SIGNIN_FAILED,
    OP_SIGNIN_SUCCESS,
    PASSWORD_FAILURES,
    TenantPrevalence,
    cached_network_key,
    failed_signin_code,
    is_successful_signin,
    observe_signin,
    signin_context,
    user_hash,
)
from shared.detection.geo import anonymizer_kind, is_hosting
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

DETECTOR_ID = "signin_password_spray"
WINDOW_S = 3600.0
SPRAY_USERS = 10
TRUSTED_SPRAY_USERS = 30
SUCCESS_TRACK_USERS = 3
"""A success is remembered against a source only once at least this many users failed from it."""
SOURCE_MEMORY_S = 72 * 3600.0
MAX_SOURCES = 16
MAX_FLAGGED = 12
MAX_SAMPLES = 2
MAX_SUCCESSES = 3


def source_keys(event: Event, ctx: DetectionContext) -> list[str]:
    """The spray sources of an event: its address (IPv6 /64) and, for hosting/anonymiser space, its ASN."""
    ip = event.ip
    if not ip:
        return []
    if ":" in ip:
        try:
            keys = [f"ip6:{ipaddress.IPv6Network(f'{ip}/64', strict=False)}"]
        except ValueError:
            return []
    else:
        keys = [f"ip:{ip}"]
    info: IpInfo | None = event.ip_info
    asn = info.asn if info is not None else None
    if (
        asn
        and (is_hosting(info) or anonymizer_kind(info) is not None)
        and not ctx.tenant.is_trusted_ip(ip)
        and not TenantPrevalence.of(ctx).is_shared("a", str(asn), now=event.time)
    ):
        keys.append(f"asn:{asn}")
    return keys


def spray_source_of(ctx: DetectionContext, event: Event) -> Mapping[str, Any] | None:
    """The flagged spray source this event comes from (within 72 hours of the spray), if any."""
    flagged = ctx.tenant_state(DETECTOR_ID).get("flag")
    if not isinstance(flagged, dict):
        return None
    return _flagged_source(flagged, source_keys(event, ctx), event.time)


def _flagged_source(flagged: Mapping[str, Any], keys: Iterable[str], now: float) -> Mapping[str, Any] | None:
    for key in keys:
        entry = flagged.get(key)
        if (
            isinstance(entry, list)
            and len(entry) >= 2
            and isinstance(entry[0], _NUMBER)
            and 0 <= now - float(entry[0]) <= SOURCE_MEMORY_S
        ):
            return {"source": key, "flagged_at": float(entry[0]), "users": entry[1]}
    return None


class SigninPasswordSpray(Detector):
    meta = DetectorMeta(
        id=DETECTOR_ID,
        title="Password spray against the tenant",
        description=(
            "Many different users failed to sign in with a wrong (or locked, expired, disabled) password from the "
            "same address or hosting network within an hour. A later successful sign-in from that source means a "
            "guessed password is in use."
        ),
        category=Category.CREDENTIAL_COMPROMISE,
        severity=Severity.MEDIUM,
        mitre=("T1110.003",),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_FAILED, OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Block the source address or range with a Conditional Access named location (or at the edge). "
            "2. List every sign-in from the source in the alert window: any success or MFA prompt (50074/50076) "
            "means the password was guessed; reset those passwords and revoke their sessions first. 3. Check the "
            "targeted accounts for legacy-authentication access (IMAP, POP, SMTP AUTH), which bypasses MFA, and "
            "disable it. 4. Confirm smart lockout is on and consider banned-password lists. 5. Watch for a second "
            "wave from other addresses of the same ASN."
        ),
        reference="https://learn.microsoft.com/en-us/security/operations/incident-response-playbook-password-spray",
        false_positives=("a shared office egress during a forced password change", "a misconfigured service"),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if event.user_key is None or not event.ip:
            return ()
        if is_successful_signin(event):
            observe_signin(ctx, event)
            return self._success(event, ctx)
        code = failed_signin_code(event)
        if code not in PASSWORD_FAILURES:
            return ()
        return self._failure(event, ctx)

    def _failure(self, event: Event, ctx: DetectionContext) -> list[Finding]:
        sec = ctx.tenant_state(DETECTOR_ID)
        sources: dict[str, Any] = sec.setdefault("src", {})
        flagged: dict[str, Any] = sec.setdefault("flag", {})
        _prune_flagged(flagged, event.time)
        trusted, shared = _egress(event, ctx)
        h = user_hash(event.user_key or "")
        out: list[Finding] = []
        for key in source_keys(event, ctx):
            entry = sources.get(key)
            if not isinstance(entry, dict):
                entry = {"t0": int(event.time), "u": [], "s": [], "r": event.record_id, "ok": []}
                sources[key] = entry
            users = [u for u in entry.get("u") or [] if _recent_user(u, event.time)]
            if not users:
                entry.update({"t0": int(event.time), "r": event.record_id, "s": [], "ok": []})
            users = [u for u in users if u[0] != h] + [[h, int(event.time)]]
            threshold = TRUSTED_SPRAY_USERS if trusted or shared else SPRAY_USERS
            entry["u"] = users[-threshold:]
            samples: list[str] = entry.get("s") or []
            if event.user_display not in samples and len(samples) < MAX_SAMPLES:
                samples.append(event.user_display)
            entry["s"] = samples
            if len(users) >= threshold and key not in flagged:
                flagged[key] = [int(event.time), len(users), entry.get("r") or event.record_id]
                if not out:
                    # one spray, one alert: an address and its hosting ASN often cross together
                    out.append(self._spray_finding(event, key, entry, len(users), trusted=trusted, shared=shared))
        _prune_sources_when_due(ctx, sources, event.time)
        while len(flagged) > MAX_FLAGGED:
            flagged.pop(min(flagged, key=lambda k: float(flagged[k][0])))
        return out

    def _spray_finding(
        self, event: Event, key: str, entry: Mapping[str, Any], users: int, *, trusted: bool, shared: bool
    ) -> Finding:
        successes = [s for s in entry.get("ok") or [] if isinstance(s, list) and len(s) == 3]
        kind, _, value = key.partition(":")
        info: IpInfo | None = event.ip_info
        first_rid = entry.get("r") or event.record_id
        evidence = list(dict.fromkeys([str(first_rid), *(str(s[2]) for s in successes), event.record_id]))
        severity = Severity.CRITICAL if successes else Severity.MEDIUM
        what = "hosting network AS" + value if kind == "asn" else value
        summary = f"Password spray from {what}: {users} users failed to sign in within 60 minutes"
        if successes:
            summary += "; successful sign-in of " + ", ".join(str(s[0]) for s in successes)
        base = self.finding(
            event,
            summary=summary,
            severity=severity,
            dedup_key=f"spray|{key}",
            evidence=evidence,
            first_seen=float(entry.get("t0") or event.time),
            context={
                "source": key,
                "source_kind": "asn" if kind == "asn" else "ip",
                "ip": event.ip,
                "asn": info.asn if info is not None else None,
                "asn_org": info.asn_org if info is not None else None,
                "country": info.country if info is not None else None,
                "users_failed": users,
                "sample_users": list(entry.get("s") or []),
                "window_minutes": int(WINDOW_S // 60),
                "trusted_range": trusted,
                "shared_network": shared,
                "successes": [{"user": s[0], "time": iso(float(s[1]))} for s in successes],
            },
        )
        return replace(base, user_key=None, user=f"{users} users")

    def _success(self, event: Event, ctx: DetectionContext) -> list[Finding]:
        if any(_egress(event, ctx)):
            return []
        # The tenant's prevalence section exists by now (observe_signin made it), so skipping
        # source_keys when there is nothing to match changes no state.
        sec = ctx.tenant_state(DETECTOR_ID)
        flagged = sec.get("flag")
        keys: list[str] | None = None
        hit: Mapping[str, Any] | None = None
        if isinstance(flagged, dict) and flagged:
            keys = source_keys(event, ctx)
            hit = _flagged_source(flagged, keys, event.time)
        if hit is None:
            sources = sec.get("src")
            if isinstance(sources, dict) and sources:
                for key in keys if keys is not None else source_keys(event, ctx):
                    entry = sources.get(key)
                    if not isinstance(entry, dict):
                        continue
                    users = [u for u in entry.get("u") or [] if _recent_user(u, event.time)]
                    ok: list[Any] = entry.get("ok") or []
                    if len(users) >= SUCCESS_TRACK_USERS and len(ok) < MAX_SUCCESSES:
                        if not any(isinstance(s, list) and len(s) == 3 and s[2] == event.record_id for s in ok):
                            ok.append([event.user_display, int(event.time), event.record_id])
                        entry["ok"] = ok
            return []
        mark_risky_signin(ctx, event, "spray_source")
        source = str(hit["source"])
        return [
            self.finding(
                event,
                summary=f"{event.user_display} signed in successfully from {event.ip}, the source of a password spray "
                f"against {hit['users']} users at {iso(float(hit['flagged_at']))}",
                severity=Severity.CRITICAL,
                dedup_key=f"{event.user_key}|spray_success|{source}",
                context={
                    **signin_context(event),
                    "source": source,
                    "spray_flagged_at": iso(float(hit["flagged_at"])),
                    "spray_users": hit["users"],
                },
            )
        ]


def _egress(event: Event, ctx: DetectionContext) -> tuple[bool, bool]:
    """(trusted range, tenant-shared network) of the event's address."""
    trusted = ctx.tenant.is_trusted_ip(event.ip)
    shared = TenantPrevalence.of(ctx).is_shared(
        "n", cached_network_key(event.ip), now=event.time, excluding=event.user_key
    )
    return trusted, shared


_NUMBER = (int, float)


def _recent_user(u: Any, now: float) -> bool:
    return isinstance(u, list) and len(u) == 2 and isinstance(u[1], _NUMBER) and 0 <= now - float(u[1]) <= WINDOW_S


def _prune_flagged(flagged: dict[str, Any], now: float) -> None:
    for k in [k for k, v in flagged.items() if not isinstance(v, list) or not v or now - float(v[0]) > SOURCE_MEMORY_S]:
        flagged.pop(k)


_PRUNED = "signin_password_spray:pruned"
"""``ctx.memo`` key: (sources, time of the last full prune, the earliest time an entry can go stale)."""


def _prune_sources_when_due(ctx: DetectionContext, sources: dict[str, Any], now: float) -> None:
    """`_prune_sources`, reduced to the cap's eviction while nothing can be stale.

    After a prune at ``t0`` every entry has a user seen within the window; until the first of them can age out
    (``due``), later events of the batch (never earlier than ``t0``: the engine handles them in time order)
    only add users at their own time, so no entry goes stale: only the cap can evict, and does so without the
    full prune.
    """
    last = ctx.memo.get(_PRUNED)
    if last is not None and last[0] is sources and last[1] <= now <= last[2]:
        # nothing can be stale yet: `_prune_sources` would only evict over the cap. The evictions only raise the
        # earliest time an entry can go stale, so ``due`` stays a safe bound.
        if len(sources) > MAX_SOURCES:
            _evict_sources(sources)
        return
    _prune_sources(sources, now)
    due = min(
        (max(float(u[1]) for u in e.get("u") or [] if _recent_user(u, now)) + WINDOW_S for e in sources.values()),
        default=float("inf"),
    )
    ctx.memo[_PRUNED] = (sources, now, due)


def _prune_sources(sources: dict[str, Any], now: float) -> None:
    for k in list(sources):
        entry = sources[k]
        if not isinstance(entry, dict) or not any(_recent_user(u, now) for u in entry.get("u") or []):
            sources.pop(k)
    _evict_sources(sources)


def _evict_sources(sources: dict[str, Any]) -> None:
    """Keep the `MAX_SOURCES` entries with the most users (then the most recent start); every entry is valid."""
    if len(sources) > MAX_SOURCES:
        ranked = sorted(sources, key=lambda k: (len(sources[k].get("u") or []), sources[k].get("t0") or 0))
        for k in ranked[: len(sources) - MAX_SOURCES]:
            sources.pop(k)
