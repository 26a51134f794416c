"""Plain-list feeds (VPN, Tor, proxy, datacenter, iCloud Private Relay CIDRs; hosting ASNs) and ASN classes.

Feed files hold one address or CIDR per line; ``#`` starts a comment; blank lines are skipped; a
line may carry more comma- or space-separated columns after the address (Apple's
``egress-ip-ranges.csv`` is ``prefix,country,region,city,``). ASN feeds hold ``AS123`` or ``123``
per line, optionally followed by a comment or a CSV name column (``ASN,Entity`` headers are
skipped). A malformed line is counted in the file's :class:`FeedReport`, never raised; a missing
file is reported too (feeds are downloads that can fail), so a bad feed degrades one signal only.

A feed says only "listed": an address that is not listed stays unknown (None), never False.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from shared.enrich.ip_model import SOURCE_ASN_LIST, SOURCE_FEEDS, IpFacts, facts
from shared.enrich.ip_ranges import V4_LIMIT, V6_LIMIT, StepTable, parse_network, steps_union_bits

log = logging.getLogger(__name__)

CIDR_FEED_FLAGS: dict[str, tuple[int, str]] = {
    "vpn": (1, "is_vpn"),
    "tor": (2, "is_tor"),
    "proxy": (4, "is_proxy"),
    "icloud_relay": (8, "is_icloud_relay"),
    "datacenter": (16, "is_hosting"),
}
"""Feed kind -> (bit, IpFacts field)."""

_SPLIT = re.compile(r"[,\s]")
ASN_TOKEN = re.compile(r'^"?(?:AS)?(\d{1,10})"?$', re.IGNORECASE)
"""``AS123``, ``123`` or ``"123"`` (a quoted CSV column, as in brianhama/bad-asn-list)."""
_MAPPED_V4 = 0xFFFF  # ::ffff:0:0/96, an IPv4-mapped address, is looked up as IPv4


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed file loaded."""

    kind: str
    path: str
    entries: int
    malformed: int
    missing: bool = False
    bad_lines: tuple[int, ...] = ()
    """Line numbers of the first few malformed lines."""


def feed_tokens(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, first column)`` of each line that is not blank or a comment."""
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip().lstrip("\ufeff")
        if line:
            yield n, _SPLIT.split(line, maxsplit=1)[0]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from feed_tokens(f)


def read_cidr_feed(kind: str, path: Path) -> tuple[list[tuple[int, int, int]], FeedReport]:
    """``[(version, first, last)]`` of one CIDR feed and its report."""
    out: list[tuple[int, int, int]] = []
    bad: list[int] = []
    malformed = 0
    try:
        for n, token in _lines(path):
            parsed = parse_network(token)
            if parsed is None:
                malformed += 1
                if len(bad) < 5:
                    bad.append(n)
                continue
            version, first, last = parsed
            if version == 6 and first >> 32 == _MAPPED_V4 and last >> 32 == _MAPPED_V4:
                version, first, last = 4, first & 0xFFFFFFFF, last & 0xFFFFFFFF
            out.append((version, first, last))
    except FileNotFoundError:
        log.warning("ip feed %s missing: %s", kind, path)
        return [], FeedReport(kind, str(path), 0, 0, missing=True)
    if malformed:
        log.warning("ip feed %s: %d malformed lines in %s (first at %s)", kind, malformed, path, bad)
    return out, FeedReport(kind, str(path), len(out), malformed, bad_lines=tuple(bad))


def read_asn_feed(kind: str, path: Path) -> tuple[set[int], FeedReport]:
    """ASNs listed in one ASN feed and its report."""
    out: set[int] = set()
    bad: list[int] = []
    malformed = 0
    try:
        for n, token in _lines(path):
            m = ASN_TOKEN.match(token)
            if m is None:
                if n == 1 and token.strip('"').upper() == "ASN":
                    continue  # CSV header
                malformed += 1
                if len(bad) < 5:
                    bad.append(n)
                continue
            out.add(int(m.group(1)))
    except FileNotFoundError:
        log.warning("ip feed %s missing: %s", kind, path)
        return set(), FeedReport(kind, str(path), 0, 0, missing=True)
    if malformed:
        log.warning("ip feed %s: %d malformed lines in %s (first at %s)", kind, malformed, path, bad)
    return out, FeedReport(kind, str(path), len(out), malformed, bad_lines=tuple(bad))


class FeedProvider:
    """CIDR feeds as one interval structure per IP version: merged ranges with a flag bit mask."""

    name = SOURCE_FEEDS

    def __init__(
        self,
        *,
        vpn: Sequence[Path] = (),
        tor: Sequence[Path] = (),
        proxy: Sequence[Path] = (),
        icloud_relay: Sequence[Path] = (),
        datacenter: Sequence[Path] = (),
    ) -> None:
        self._paths: dict[str, tuple[Path, ...]] = {
            "vpn": tuple(vpn),
            "tor": tuple(tor),
            "proxy": tuple(proxy),
            "icloud_relay": tuple(icloud_relay),
            "datacenter": tuple(datacenter),
        }
        self._lock = threading.Lock()
        self._loaded = False
        self._v4: StepTable[int] | None = None
        self._v6: StepTable[int] | None = None
        self.reports: tuple[FeedReport, ...] = ()
        self._by_mask: list[IpFacts | None] = [None] * 32
        for mask in range(1, 32):
            flags = {field: True for bit, field in CIDR_FEED_FLAGS.values() if mask & bit}
            self._by_mask[mask] = facts(SOURCE_FEEDS, **flags)  # type: ignore[arg-type]

    def load(self) -> None:
        """Read every feed file once (thread-safe)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            ranges: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
            reports: list[FeedReport] = []
            for kind, paths in self._paths.items():
                bit = CIDR_FEED_FLAGS[kind][0]
                for path in paths:
                    rows, report = read_cidr_feed(kind, path)
                    reports.append(report)
                    for version, first, last in rows:
                        ranges[version].append((first, last, bit))
            s4, v4 = steps_union_bits(ranges[4], limit=V4_LIMIT)
            s6, v6 = steps_union_bits(ranges[6], limit=V6_LIMIT)
            self._v4 = StepTable.v4(s4, bytes(v4))
            self._v6 = StepTable(s6, bytes(v6))
            self.reports = tuple(reports)
            self._loaded = True

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """Facts for a listed address; None when no feed lists it."""
        if not self._loaded:
            self.load()
        table = self._v4 if version == 4 else self._v6
        assert table is not None
        return self._by_mask[table.get(value)]


# --------------------------------------------------------------------------------------------
# ASN classes

BUILTIN_HOSTING_ASNS: Mapping[int, str] = {
    16509: "Amazon",
    14618: "Amazon",
    8987: "Amazon Data Services Ireland",
    8075: "Microsoft",
    8068: "Microsoft",
    8069: "Microsoft",
    12076: "Microsoft",
    15169: "Google",
    396982: "Google Cloud",
    19527: "Google",
    16276: "OVH",
    35540: "OVH",
    24940: "Hetzner",
    213230: "Hetzner Cloud",
    14061: "DigitalOcean",
    63949: "Linode / Akamai Connected Cloud",
    20473: "Vultr / Choopa (The Constant Company)",
    9009: "M247",
    51167: "Contabo",
    40021: "Contabo US",
    60781: "Leaseweb NL",
    28753: "Leaseweb DE",
    16265: "Leaseweb",
    31898: "Oracle Cloud",
    45102: "Alibaba Cloud",
    37963: "Alibaba Cloud",
    132203: "Tencent Cloud",
    45090: "Tencent Cloud",
    136907: "Huawei Cloud",
    36351: "IBM Cloud / SoftLayer",
    12876: "Scaleway",
    8560: "IONOS",
    7979: "Servers.com",
    49505: "Selectel",
    9123: "Timeweb",
    53667: "FranTech / BuyVM",
    29802: "Hivelocity",
    19994: "Rackspace",
    60068: "Datacamp / CDN77",
    212238: "Datacamp / CDN77",
    147049: "PacketHub",
    26496: "GoDaddy",
    47583: "Hostinger",
    197540: "netcup",
}
"""Well-known hosting and cloud ASNs. Deliberately without Cloudflare (AS13335) and Akamai's CDN
ASNs: WARP and iCloud Private Relay users egress there, and they are people, not servers."""

BUILTIN_MOBILE_ASNS: Mapping[int, str] = {
    21928: "T-Mobile US",
    6167: "Verizon Wireless (Cellco)",
    22394: "Verizon Wireless (Cellco)",
    20057: "AT&T Mobility",
    12576: "EE (UK)",
    206067: "Three UK (Hutchison 3G)",
    35228: "O2 UK (Telefonica UK)",
    51207: "Free Mobile (FR)",
    55836: "Reliance Jio (IN)",
    45609: "Bharti Airtel mobile (IN)",
}
"""A small, **partial** list of ASNs that are (almost) only mobile carrier networks. Most carriers
share ASNs between mobile and fixed lines (Vodafone, Orange, Deutsche Telekom, Telefonica DE), so
they cannot be classified by ASN at all: ``is_mobile`` stays None (unknown) for them. A
commercial provider (Spur ``infrastructure=MOBILE``, MaxMind connection type) does better."""

BUILTIN_SATELLITE_ASNS: Mapping[int, str] = {14593: "SpaceX Starlink", 22351: "Intelsat"}
"""Satellite ISPs (tagged ``satellite``): their geolocation says little about the user."""


class AsnClass(NamedTuple):
    """What an ASN says: hosting and mobile sources (None = nothing) and extra tags."""

    hosting: str | None
    mobile: str | None
    tags: tuple[str, ...]


class AsnClassifier:
    """ASN -> hosting / mobile / satellite, from the built-in lists plus hosting ASN feeds."""

    def __init__(self, *, hosting_feeds: Sequence[Path] = (), builtin: bool = True) -> None:
        self._hosting_feeds = tuple(hosting_feeds)
        self._builtin = builtin
        self._lock = threading.Lock()
        self._loaded = False
        self._classes: dict[int, AsnClass] = {}
        self.reports: tuple[FeedReport, ...] = ()

    def load(self) -> None:
        """Read the hosting ASN feeds once (thread-safe)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            hosting: dict[int, str] = {}
            reports: list[FeedReport] = []
            for path in self._hosting_feeds:
                asns, report = read_asn_feed("hosting_asn", path)
                reports.append(report)
                for asn in asns:
                    hosting.setdefault(asn, SOURCE_FEEDS)
            mobile: dict[int, str] = {}
            satellite: set[int] = set()
            if self._builtin:
                for asn in BUILTIN_HOSTING_ASNS:
                    hosting.setdefault(asn, SOURCE_ASN_LIST)
                mobile = dict.fromkeys(BUILTIN_MOBILE_ASNS, SOURCE_ASN_LIST)
                satellite = set(BUILTIN_SATELLITE_ASNS)
            classes: dict[int, AsnClass] = {}
            for asn in set(hosting) | set(mobile) | satellite:
                classes[asn] = AsnClass(hosting.get(asn), mobile.get(asn), ("satellite",) if asn in satellite else ())
            self._classes = classes
            self.reports = tuple(reports)
            self._loaded = True

    @property
    def classes(self) -> Mapping[int, AsnClass]:
        """Every classified ASN (after :meth:`load`)."""
        return self._classes

    def get(self, asn: int) -> AsnClass | None:
        """The class of ``asn``, or None when no list names it."""
        if not self._loaded:
            self.load()
        return self._classes.get(asn)
