"""Two successful sign-ins of one user too far apart for the time between them.

Rules (detections.md §4, ip-intelligence.md §4):

* speed is computed only between coordinates from the **same** geo provider, over the great-circle
  distance minus both accuracy radii (250 km each when unknown); it alerts (MEDIUM) when that effective
  distance exceeds 500 km *and* the implied speed exceeds 900 km/h (airliner cruise). A real flight
  (London to New York in eight hours) stays below it;
* when the two sign-ins were placed by different providers, only countries are compared: two
  different countries within one hour alert at LOW;
* a sign-in whose location does not describe the person (anonymiser, hosting, carrier NAT, iCloud
  Private Relay, Microsoft service endpoint, a tenant trusted range or a network at least five other
  users of the tenant share) is neither compared nor remembered: the anonymiser and hosting detectors
  speak for those.

Each user keeps the last four usable sign-ins of the past 24 hours; the new sign-in is compared with
each and the fastest violation is reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity, iso
from shared.detection.base import DetectionContext, Detector
from shared.detection.baseline import (
    OP_SIGNIN_SUCCESS,
    TenantPrevalence,
    cached_network_key,
    is_successful_signin,
    observe_signin,
    signin_context,
)
from shared.detection.geo import (
    GeoPoint,
    effective_distance_km,
    haversine_km,
    same_provider,
    speed_kmh,
    unreliable_location,
)
from shared.detection.signals import mark_risky_signin
from shared.enrich.ipintel import IpInfo
from shared.records.event import Event

MAX_SPEED_KMH = 900.0
MIN_DISTANCE_KM = 500.0
COUNTRY_WINDOW_S = 3600.0
MEMORY_S = 24 * 3600.0
MAX_POINTS = 4


@dataclass(frozen=True, slots=True)
class _Stored:
    time: float
    point: GeoPoint
    ip: str
    record_id: str

    def to_json(self) -> list[Any]:
        p = self.point
        return [int(self.time), p.latitude, p.longitude, p.accuracy_km, p.provider, p.country, self.ip, self.record_id]

    @classmethod
    def from_json(cls, v: Any) -> _Stored | None:
        if not isinstance(v, list) or len(v) != 8 or not isinstance(v[0], int | float):
            return None
        lat, lon, acc = (float(x) if isinstance(x, int | float) else None for x in v[1:4])
        prov, country, ip, rid = (x if isinstance(x, str) else None for x in v[4:8])
        return cls(float(v[0]), GeoPoint(lat, lon, acc, prov, country), ip or "", rid or "")


def _load(v: Any) -> list[Any] | None:
    """``_Stored.from_json(v).to_json()`` (None for a malformed entry), without building the objects."""
    if not isinstance(v, list) or len(v) != 8 or not isinstance(v[0], _NUMBER):
        return None
    t, lat, lon, acc, prov, country, ip, rid = v
    return [
        int(float(t)),
        float(lat) if isinstance(lat, _NUMBER) else None,
        float(lon) if isinstance(lon, _NUMBER) else None,
        float(acc) if isinstance(acc, _NUMBER) else None,
        prov if isinstance(prov, str) else None,
        country if isinstance(country, str) else None,
        ip if isinstance(ip, str) and ip else "",
        rid if isinstance(rid, str) and rid else "",
    ]


_NUMBER = (int, float)
_NORMALISED = "signin_impossible_travel:normalised"
"""``ctx.memo`` key: the users whose stored points this batch has normalised."""
_PLACES: dict[int, tuple[IpInfo, GeoPoint | None, str | None]] = {}
_PLACES_MAX = 65536


def _place_of(info: IpInfo | None) -> tuple[GeoPoint | None, str | None]:
    """``GeoPoint.from_ip_info(info)`` and ``unreliable_location(info)``, cached per (immutable) ``IpInfo``."""
    if info is None:
        return None, None
    got = _PLACES.get(id(info))
    if got is None or got[0] is not info:
        if len(_PLACES) >= _PLACES_MAX:
            _PLACES.clear()
        got = _PLACES[id(info)] = (info, GeoPoint.from_ip_info(info), unreliable_location(info))
    return got[1], got[2]


def _same_place(raw: list[Any], point: GeoPoint) -> bool:
    """True when `_compare` cannot find a violation: the same provider placed both at the same coordinates.

    The great-circle distance of identical coordinates is exactly 0, so the effective distance is 0, below
    `MIN_DISTANCE_KM`.
    """
    return (
        raw[1] is not None
        and raw[2] is not None
        and bool(raw[4])
        and raw[4] == point.provider
        and raw[1] == point.latitude
        and raw[2] == point.longitude
    )


@dataclass(frozen=True, slots=True)
class _Violation:
    prior: _Stored
    mode: str
    distance_km: float | None
    effective_km: float | None
    speed: float | None

    @property
    def rank(self) -> float:
        if self.mode == "country":
            return 0.0
        return math.inf if self.speed is None else self.speed


class SigninImpossibleTravel(Detector):
    meta = DetectorMeta(
        id="signin_impossible_travel",
        title="Impossible travel between sign-ins",
        description=(
            "Two successful sign-ins of the same user from places so far apart that nobody could travel between "
            "them in the time between the sign-ins (over 900 km/h across more than 500 km, after subtracting "
            "both geolocation accuracy radii). Typical of a stolen password or session token used from elsewhere."
        ),
        category=Category.UNWANTED_LOGIN,
        severity=Severity.MEDIUM,
        mitre=("T1078.004", "T1550.004"),
        dedup_window=timedelta(hours=24),
        operations=frozenset({OP_SIGNIN_SUCCESS}),
        needs=(Need.SIGNINS, Need.IP_CONTEXT, Need.USER_HISTORY, Need.TENANT_HISTORY, Need.TENANT_CONFIG),
        runbook=(
            "1. Compare the two sign-ins in the alert: which one matches the user's usual country, device, browser "
            "and application? The other is the suspect. 2. Check the suspect address for VPN, hosting or proxy use "
            "and whether other users of the tenant sign in from it (a corporate egress explains distance). 3. Ask "
            "the user out of band. 4. If not the user: revoke sessions (stolen tokens survive a password reset), "
            "reset the password, review MFA methods and the session's actions (inbox rules, consent, downloads)."
        ),
        reference="https://learn.microsoft.com/en-us/defender-cloud-apps/anomaly-detection-policy",
        false_positives=(
            "geolocation errors for business or satellite networks",
            "a split-tunnel VPN not listed as a trusted range",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not is_successful_signin(event) or event.user_key is None or not event.ip:
            return ()
        observe_signin(ctx, event)
        info: IpInfo | None = event.ip_info
        point, unreliable = _place_of(info)
        if point is None or ctx.tenant.is_trusted_ip(event.ip) or unreliable is not None:
            return ()
        if TenantPrevalence.of(ctx).is_shared(
            "n", cached_network_key(event.ip), now=event.time, excluding=event.user_key
        ):
            return ()
        sec = ctx.state(event, self.meta.id)
        now = event.time
        rid = event.record_id
        kept: list[list[Any]] = []
        worst: _Violation | None = None
        # Points loaded from the store are normalised once per batch; the points kept after that are
        # `_load` results or rows written here, which `_load` would return unchanged.
        normalised: set[str] = ctx.memo.setdefault(_NORMALISED, set())
        load = event.user_key not in normalised
        normalised.add(event.user_key)
        for v in sec.get("pts") or []:
            row = _load(v) if load else v
            if row is None or not 0 <= now - float(v[0]) <= MEMORY_S or row[7] == rid:
                continue
            kept.append(row)
            if _same_place(row, point):
                continue  # the same coordinates from the same provider: no distance, no violation
            prior = _Stored.from_json(v)
            assert prior is not None
            found = _compare(prior, point, now)
            if found is not None and (worst is None or found.rank > worst.rank):
                worst = found
        kept.append(
            [int(now), point.latitude, point.longitude, point.accuracy_km, point.provider, point.country, event.ip, rid]
        )
        sec["pts"] = kept[-MAX_POINTS:]
        if worst is None:
            return ()
        mark_risky_signin(ctx, event, "impossible_travel")
        prior = worst.prior
        hours = (event.time - prior.time) / 3600.0
        src = prior.point.country or "?"
        dst = point.country or "?"
        if worst.mode == "coordinates":
            speed_text = "at the same time" if worst.speed is None else f"{worst.speed:,.0f} km/h"
            summary = (
                f"{event.user_display} signed in from {src} ({prior.ip}) and {dst} ({event.ip}) "
                f"{worst.effective_km:,.0f} km apart within {hours:.1f} h ({speed_text})"
            )
            severity = Severity.MEDIUM
        else:
            summary = (
                f"{event.user_display} signed in from {src} ({prior.ip}) and {dst} ({event.ip}) within {hours:.1f} h "
                f"(locations from different providers: compared by country)"
            )
            severity = Severity.LOW
        return (
            self.finding(
                event,
                summary=summary,
                severity=severity,
                dedup_key=f"{event.user_key}|travel",
                evidence=(prior.record_id, event.record_id),
                first_seen=prior.time,
                context={
                    **signin_context(event),
                    "mode": worst.mode,
                    "from_ip": prior.ip,
                    "from_country": prior.point.country,
                    "from_time": iso(prior.time),
                    "from_provider": prior.point.provider,
                    "to_provider": point.provider,
                    "distance_km": None if worst.distance_km is None else round(worst.distance_km),
                    "effective_distance_km": None if worst.effective_km is None else round(worst.effective_km),
                    "hours": round(hours, 2),
                    "speed_kmh": None if worst.speed is None else round(worst.speed),
                },
            ),
        )


def _compare(prior: _Stored, point: GeoPoint, now: float) -> _Violation | None:
    dt = now - prior.time
    a = prior.point
    if same_provider(a, point):
        eff = effective_distance_km(a, point)
        if eff <= MIN_DISTANCE_KM:
            return None
        speed = speed_kmh(eff, dt)
        if speed <= MAX_SPEED_KMH:
            return None
        assert a.latitude is not None and a.longitude is not None
        assert point.latitude is not None and point.longitude is not None
        raw = haversine_km(a.latitude, a.longitude, point.latitude, point.longitude)
        return _Violation(prior, "coordinates", raw, eff, None if math.isinf(speed) else speed)
    if a.country and point.country and a.country != point.country and dt <= COUNTRY_WINDOW_S:
        return _Violation(prior, "country", None, None, None)
    return None
