"""Geography for the sign-in detectors: distance, implied speed, and when two locations may be compared.

IP geolocation is an estimate. Two providers disagree by a median of 270 km and by more than
1,000 km for 30 % of addresses (ip-intelligence.md §4), so the rules here are deliberately strict:

* distance and speed are computed only between coordinates from the **same** ``geo_provider``
  (:func:`same_provider`); otherwise callers compare at country level or not at all;
* both accuracy radii are subtracted from the great-circle distance before any speed is derived
  (:func:`effective_distance_km`), with :data:`DEFAULT_ACCURACY_KM` when a provider gives none
  (DB-IP publishes no radius);
* a location that does not describe where the person is (anonymiser, hosting, carrier NAT, Apple
  iCloud Private Relay, Microsoft's own service endpoints) is named by :func:`unreliable_location`
  so travel logic can skip it.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from shared.enrich.ipintel import IpInfo

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG)."""
DEFAULT_ACCURACY_KM = 250.0
"""Accuracy radius assumed when the provider gives none (ip-intelligence.md §4: ±250 km for DB-IP)."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in decimal degrees."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def speed_kmh(distance_km: float, seconds: float) -> float:
    """Implied speed in km/h; infinite when a positive distance is covered in no time, 0 for no distance."""
    if distance_km <= 0:
        return 0.0
    if seconds <= 0:
        return math.inf
    return distance_km / (seconds / 3600.0)


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """Where one sign-in was placed by one provider (coordinates may be missing; the country rarely is)."""

    latitude: float | None
    longitude: float | None
    accuracy_km: float | None
    provider: str | None
    country: str | None

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def radius_km(self) -> float:
        """The accuracy radius, or :data:`DEFAULT_ACCURACY_KM` when unknown."""
        return self.accuracy_km if self.accuracy_km is not None and self.accuracy_km >= 0 else DEFAULT_ACCURACY_KM

    @classmethod
    def from_ip_info(cls, info: IpInfo | None) -> GeoPoint | None:
        """The point of an ``IpInfo`` (None when it has neither coordinates nor a country)."""
        if info is None:
            return None
        lat = _float(info.latitude)
        lon = _float(info.longitude)
        country = info.country.upper() if info.country else None
        if (lat is None or lon is None) and country is None:
            return None
        if lat is None or lon is None:
            lat = lon = None
        return cls(lat, lon, _float(info.accuracy_km), info.geo_provider, country)


def _float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def same_provider(a: GeoPoint, b: GeoPoint) -> bool:
    """True when both points carry coordinates from the same named provider (the only case distances mean something)."""
    return a.has_coordinates and b.has_coordinates and bool(a.provider) and a.provider == b.provider


def effective_distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance minus both accuracy radii (never negative). Requires coordinates on both."""
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        raise ValueError("effective_distance_km needs coordinates on both points")
    d = haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)
    return max(0.0, d - a.radius_km - b.radius_km)


def unreliable_location(info: IpInfo | None) -> str | None:
    """Why this address's location says nothing about where the person is, or None when it is usable.

    Reasons: ``"tor"``, ``"residential_proxy"``, ``"public_proxy"``, ``"vpn"`` (any anonymiser),
    ``"icloud_relay"``, ``"microsoft_service"``, ``"hosting"``, ``"mobile"``.
    """
    if info is None:
        return None
    if info.is_icloud_relay:
        return "icloud_relay"
    if info.is_microsoft_service:
        return "microsoft_service"
    kind = anonymizer_kind(info)
    if kind is not None:
        return kind
    if info.is_hosting:
        return "hosting"
    if info.is_mobile:
        return "mobile"
    return None


ANONYMIZER_LABELS: dict[str, str] = {
    "tor": "a Tor exit node",
    "residential_proxy": "a residential proxy",
    "public_proxy": "a public proxy",
    "vpn": "an anonymous VPN",
}
"""How findings name each anonymiser kind."""


def anonymizer_kind(info: IpInfo | None) -> str | None:
    """The anonymiser behind an address ("tor", "residential_proxy", "public_proxy", "vpn") or None.

    Apple iCloud Private Relay is not an anonymiser here: it hides the address from websites, not the
    user's region, and Microsoft does not flag it either.
    """
    if info is None or info.is_icloud_relay:
        return None
    return info.anonymizer_kind


def is_hosting(info: IpInfo | None) -> bool:
    """A datacenter or cloud address that is not one of Microsoft's own service endpoints or iCloud Private Relay."""
    return info is not None and bool(info.is_hosting) and not info.is_microsoft_service and not info.is_icloud_relay


def network_key(ip: str | None) -> str | None:
    """The network an address belongs to for "shared egress" counting: IPv4 /24, IPv6 /48."""
    if not ip:
        return None
    if ":" in ip:
        try:
            net = ipaddress.IPv6Network(f"{ip}/48", strict=False)
        except ValueError:
            return None
        return str(net)
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    return ".".join(parts[:3]) + ".0/24"
