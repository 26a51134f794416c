"""Tenant-aware baselines: what is new for one user but ordinary for the tenant (issue #19, item 2).

Novelty detectors ask these questions before raising a finding; each answer is about *clean* activity only (no
risky sign-in of the user, no anonymous or hosting address): a risk signal always wins.

* `RoutineTools`: the admin and developer clients (Exchange Online, Graph and Azure PowerShell, Azure CLI...)
  that other users of the tenant use routinely: at least `ROUTINE_MIN_USERS` other users, the first of them at
  least `ROUTINE_MIN_AGE_S` ago. A user starting to use one of those from a network they know is the tenant's
  administration going on, not a stolen token.
* `shared_by_colleagues`: the sign-in's network (IPv4 /24, IPv6 /48) used by at least `VENUE_MIN_USERS` other
  users of the tenant (one is enough for a sign-in from the user's own device): colleagues at a conference sharing
  the venue's address.
* `familiar_device`: the sign-in's OS and browser families are both known for the user.
* `trip_country`: the sign-in's country was first used by the user within `TRIP_S`: further new networks there
  (the hotel, a café) are part of the same trip.
* `familiar_network`: the address's ASN is in the user's sign-in baseline (home, office, their carrier) or shared
  by many colleagues (the tenant's usual ISPs, ``TenantPrevalence``).

Trusted ranges (``TenantConfig.trusted_ip_ranges``) hold whatever the geolocation says; mobile carrier networks
are skipped by the location detectors (``IpInfo.is_mobile``); both are checked where the detectors read them.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from shared.detection.base import DetectionContext
from shared.detection.baseline import (
    DAY_S,
    SigninView,
    TenantPrevalence,
    cached_network_key,
    peek_baseline,
    user_hash,
)
from shared.records.event import Event

ROUTINE_MIN_USERS = 2
ROUTINE_MIN_AGE_S = 7 * DAY_S
ROUTINE_TTL_S = 60 * DAY_S
ROUTINE_MAX_APPS = 24
VENUE_MIN_USERS = 2
TRIP_S = 7 * DAY_S


class RoutineTools:
    """Per tenant: which users used which client, since when (tenant-wide state, bounded, hashed users)."""

    def __init__(self, ctx: DetectionContext, section: str) -> None:
        self._ctx = ctx
        self._section = section

    def _apps(self, *, write: bool) -> dict[str, Any]:
        if write:
            sec = self._ctx.tenant_state(self._section)
            apps = sec.get("apps")
            if not isinstance(apps, dict):
                apps = sec["apps"] = {}
            return apps
        got = self._ctx.peek_tenant_state(self._section).get("apps")
        return got if isinstance(got, dict) else {}

    def is_routine(self, app: str, user_key: str, now: float) -> bool:
        """Used by at least `ROUTINE_MIN_USERS` other users of the tenant, the first use `ROUTINE_MIN_AGE_S` ago."""
        entry = self._apps(write=False).get(app)
        if not _valid(entry):
            return False
        first, _last, users = entry
        me = user_hash(user_key)
        return now - float(first) >= ROUTINE_MIN_AGE_S and sum(1 for u in users if u != me) >= ROUTINE_MIN_USERS

    def observe(self, app: str, user_key: str, now: float) -> None:
        """Count the user for the client (a set, not a counter); written only when something changes."""
        apps = self._apps(write=False)
        entry = apps.get(app)
        me = user_hash(user_key)
        if _valid(entry) and me in entry[2] and now - float(entry[1]) < DAY_S:
            return  # nothing new: the tenant row is not rewritten
        apps = self._apps(write=True)
        entry = apps.get(app)
        t = int(now)
        if not _valid(entry):
            entry = apps[app] = [t, t, []]
        entry[0] = min(int(entry[0]), t)
        entry[1] = max(int(entry[1]), t)
        if me not in entry[2] and len(entry[2]) <= ROUTINE_MIN_USERS + 1:
            entry[2].append(me)
        for k in [k for k, v in apps.items() if not _valid(v) or now - float(v[1]) > ROUTINE_TTL_S]:
            apps.pop(k)
        while len(apps) > ROUTINE_MAX_APPS:
            apps.pop(min(apps, key=lambda k: float(apps[k][1])))


def _valid(entry: Any) -> TypeGuard[list[Any]]:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], int | float)
        and isinstance(entry[1], int | float)
        and isinstance(entry[2], list)
    )


def shared_by_colleagues(ctx: DetectionContext, event: Event, *, min_users: int = VENUE_MIN_USERS) -> bool:
    """The sign-in's network was used by at least ``min_users`` other users of the tenant (the venue's address)."""
    net = cached_network_key(event.ip)
    if net is None or event.user_key is None:
        return False
    return TenantPrevalence.of(ctx).users("n", net, excluding=event.user_key) >= min_users


def familiar_device(view: SigninView) -> bool:
    """Both the OS and the browser family of the sign-in were known for the user before it."""
    return all(view.attributes.get(a) is not None and view.prior.get(a) is not None for a in ("os", "browser"))


def trip_country(view: SigninView, now: float, *, within: float = TRIP_S) -> bool:
    """The sign-in's country was first used by the user less than ``within`` ago (and not just now)."""
    seen = view.prior.get("country")
    return seen is not None and now - seen.first_seen < within


def familiar_network(ctx: DetectionContext, event: Event) -> bool:
    """The address's ASN is in the user's sign-in baseline, or many colleagues share it (the tenant's usual ISPs).

    Reads the baseline as it is (failures and directory records are not recorded in it; for a successful sign-in
    ask the pre-event view, ``not view.is_new("asn")``).
    """
    info = event.ip_info
    if info is None or not info.asn or event.user_key is None:
        return False
    asn = str(info.asn)
    if peek_baseline(ctx, event).get("asn", asn) is not None:
        return True
    return TenantPrevalence.of(ctx).is_shared("a", asn, now=event.time, excluding=event.user_key)
