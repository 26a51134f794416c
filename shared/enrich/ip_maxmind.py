"""MaxMind GeoIP2 / GeoLite2 City, ASN and Anonymous IP databases, read with ``maxminddb``.

Mapping (ip-intelligence.md §3):

* City: ``country.iso_code``, ``subdivisions[0].names.en``, ``city.names.en``,
  ``location.{latitude, longitude, accuracy_radius}`` (``accuracy_radius`` is in km), with
  ``geo_provider = "maxmind"``.
* ASN: ``autonomous_system_number`` / ``autonomous_system_organization``.
* Anonymous IP: ``is_anonymous_vpn`` -> ``is_vpn``, ``is_hosting_provider`` -> ``is_hosting``,
  ``is_public_proxy`` -> ``is_proxy``, ``is_residential_proxy``, ``is_tor_exit_node`` -> ``is_tor``.
  MaxMind stores only true flags, so for an address *in* the database a missing flag is False; an
  address not in it gets no answer (None), not a negative. GeoIP Anonymous Plus adds
  ``provider_name`` (-> ``vpn_operator``) and ``anonymizer_confidence`` (-> a tag).

GeoLite2 data is under MaxMind's EULA and is never embedded: these files are the operator's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.enrich.ip_model import SOURCE_MAXMIND, IpFacts, facts
from shared.platform.errors import ConfigurationError

_EXPECTED = {"city": ("City", "Enterprise"), "asn": ("ASN", "ISP"), "anonymous": ("Anonymous",)}


class MaxMindProvider:
    """City, ASN and Anonymous IP mmdb files (any subset); opened lazily with the C reader."""

    name = SOURCE_MAXMIND

    def __init__(self, *, city: Path | None = None, asn: Path | None = None, anonymous: Path | None = None) -> None:
        if city is None and asn is None and anonymous is None:
            raise ConfigurationError("MaxMindProvider needs at least one database", reason="maxmind_no_database")
        self._paths = {"city": city, "asn": asn, "anonymous": anonymous}
        self._readers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Open the readers and check each database's type (ConfigurationError when wrong)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            import maxminddb

            readers: dict[str, Any] = {}
            for kind, path in self._paths.items():
                if path is None:
                    continue
                try:
                    reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(
                        f"cannot open MaxMind {kind} database", reason="maxmind_unreadable", path=str(path)
                    ) from exc
                db_type = str(reader.metadata().database_type)
                if not any(word in db_type for word in _EXPECTED[kind]):
                    reader.close()
                    raise ConfigurationError(
                        f"MaxMind {kind} database has type {db_type!r}", reason="maxmind_wrong_type", path=str(path)
                    )
                readers[kind] = reader
            self._readers = readers
            self._loaded = True

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """Merged facts of the configured databases for ``ip``."""
        if not self._loaded:
            self.load()
        values: dict[str, Any] = {}
        tags: tuple[str, ...] = ()
        city = self._get("city", ip)
        if city:
            values.update(_city(city))
        asn = self._get("asn", ip)
        if asn:
            values["asn"] = asn.get("autonomous_system_number")
            values["asn_org"] = asn.get("autonomous_system_organization")
        anon = self._get("anonymous", ip)
        if anon:
            values.update(
                is_vpn=bool(anon.get("is_anonymous_vpn")),
                is_hosting=bool(anon.get("is_hosting_provider")),
                is_proxy=bool(anon.get("is_public_proxy")),
                is_residential_proxy=bool(anon.get("is_residential_proxy")),
                is_tor=bool(anon.get("is_tor_exit_node")),
            )
            if anon.get("provider_name"):
                values["vpn_operator"] = str(anon["provider_name"])
            extra: list[str] = []
            if anon.get("is_anonymous"):
                extra.append("anonymous")
            if anon.get("anonymizer_confidence") is not None:
                extra.append(f"anonymizer_confidence:{int(anon['anonymizer_confidence'])}")
            tags = tuple(extra)
        if not values and not tags:
            return None
        return facts(SOURCE_MAXMIND, tags=tags, **values)

    def _get(self, kind: str, ip: str) -> Mapping[str, Any] | None:
        reader = self._readers.get(kind)
        if reader is None:
            return None
        try:
            record = reader.get(ip)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None
        return record if isinstance(record, Mapping) else None

    def close(self) -> None:
        """Close every reader."""
        for reader in self._readers.values():
            reader.close()
        self._readers = {}
        self._loaded = False


def _city(record: Mapping[str, Any]) -> dict[str, Any]:
    country = (record.get("country") or {}).get("iso_code")
    subdivisions = record.get("subdivisions") or []
    region = None
    if subdivisions:
        first = subdivisions[0]
        region = (first.get("names") or {}).get("en") or first.get("iso_code")
    city = ((record.get("city") or {}).get("names") or {}).get("en")
    location = record.get("location") or {}
    lat = location.get("latitude")
    lon = location.get("longitude")
    radius = location.get("accuracy_radius")
    if country is None and lat is None:
        return {}
    return {
        "country": country,
        "region": region,
        "city": city,
        "latitude": float(lat) if lat is not None else None,
        "longitude": float(lon) if lon is not None else None,
        "accuracy_km": float(radius) if radius is not None and lat is not None else None,
        "geo_provider": SOURCE_MAXMIND,
    }
