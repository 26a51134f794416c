"""The partial answer every IP provider returns, and the small protocol providers implement.

A provider answers *groups* of fields. A group is answered when the provider knows something about
it (a value that is not None, ``False`` included); the first provider that answers a group supplies
all of that group's fields, and ``sources`` records ``(group, provider)``. Groups keep related fields
coherent: coordinates never come from one provider and the city from another.

=====================  ===================================================================
group                  fields
=====================  ===================================================================
``geo``                country, region, city, latitude, longitude, accuracy_km, geo_provider
``asn``                asn, asn_org
``cloud``              cloud_provider, cloud_service
``is_vpn``             is_vpn, vpn_operator
every other flag       itself (is_hosting, is_tor, is_proxy, is_residential_proxy, is_mobile,
                       is_icloud_relay, is_microsoft_service)
=====================  ===================================================================
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

# Provider names as they appear in ``sources`` (and ``geo_provider`` for geo).
SOURCE_SPUR = "spur"
SOURCE_MAXMIND = "maxmind"
SOURCE_FEEDS = "feeds"
SOURCE_DBIP = "dbip"
SOURCE_ASN_DB = "ip-location-db-asn"
SOURCE_CLOUDIP = "cloudip"
SOURCE_ASN_LIST = "asn-list"

DBIP_ACCURACY_KM = 250.0
"""DB-IP publishes no accuracy radius; the project assumes ±250 km (ip-intelligence.md §4)."""


class IpFacts(NamedTuple):
    """What one provider knows about one address; field order matches ``IpInfo`` after ``version``."""

    country: str | None = None
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: float | None = None
    geo_provider: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    is_hosting: bool | None = None
    cloud_provider: str | None = None
    cloud_service: str | None = None
    is_vpn: bool | None = None
    vpn_operator: str | None = None
    is_tor: bool | None = None
    is_proxy: bool | None = None
    is_residential_proxy: bool | None = None
    is_mobile: bool | None = None
    is_icloud_relay: bool | None = None
    is_microsoft_service: bool | None = None
    tags: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()


FACT_FIELDS: tuple[str, ...] = IpFacts._fields[:-2]
"""The 20 value fields (without tags and sources)."""

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("geo", ("country", "region", "city", "latitude", "longitude", "accuracy_km", "geo_provider")),
    ("asn", ("asn", "asn_org")),
    ("is_hosting", ("is_hosting",)),
    ("cloud", ("cloud_provider", "cloud_service")),
    ("is_vpn", ("is_vpn", "vpn_operator")),
    ("is_tor", ("is_tor",)),
    ("is_proxy", ("is_proxy",)),
    ("is_residential_proxy", ("is_residential_proxy",)),
    ("is_mobile", ("is_mobile",)),
    ("is_icloud_relay", ("is_icloud_relay",)),
    ("is_microsoft_service", ("is_microsoft_service",)),
)
GROUP_OF: dict[str, str] = {field: name for name, fields in GROUPS for field in fields}
GROUP_INDEXES: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
    (name, tuple(FACT_FIELDS.index(f) for f in fields)) for name, fields in GROUPS
)
GROUP_RANK: dict[str, int] = {name: i for i, (name, _) in enumerate(GROUPS)}


def facts(source: str, *, tags: tuple[str, ...] = (), **values: object) -> IpFacts:
    """Build an ``IpFacts`` from keyword values, recording ``source`` for every answered group."""
    unknown = set(values) - set(FACT_FIELDS)
    if unknown:
        raise TypeError(f"not IpFacts fields: {sorted(unknown)}")
    answered = tuple((name, source) for name, fields in GROUPS if any(values.get(f) is not None for f in fields))
    return IpFacts(**values, tags=tags, sources=answered)  # type: ignore[arg-type]


class IpProvider(Protocol):
    """One source of IP facts. ``lookup`` gets the normalised text, its version and its integer value."""

    name: str

    def load(self) -> None:
        """Load data (idempotent). Called once, lazily, before the first lookup."""
        ...

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """What this provider knows about ``ip``, or None when it knows nothing."""
        ...
