"""IP intelligence for the detectors: one normalised ``IpInfo`` per address, from composed providers.

Usage::

    client = IpIntelClient.from_config(IntelConfig(tor_feeds=[Path("tor-exits.txt")]))
    info = client.lookup_raw(record.client_ip)      # "1.2.3.4:51622", "[2001:db8::1]:443", ...
    if info and info.is_anonymous: ...

Providers answer in order (``spur``, ``maxmind``, ``feeds``, ``embedded`` when configured); the
first provider that answers a group of fields wins it and ``sources`` records which one (groups
are described in :mod:`shared.enrich.ip_model`). After the providers, ASN classes apply to groups
still unanswered: hosting from the built-in list and ``hosting_asn_feeds``, mobile from a small
built-in list, ``satellite`` as a tag. Unknown stays None, never False: a feed that does not list
an address says nothing about it, and nothing offline knows residential proxies.

Impossible travel must never compare coordinates of two providers: compare ``geo_provider`` first.

Nothing is loaded at import or construction; the first lookup (or :meth:`IpIntelClient.load`)
loads every provider. Lookups are cached per client: an LRU that an address enters on its second
lookup. The caches hold facts about addresses, which are not tenant data.

Throughput and memory: :func:`measure_lookups` (the benchmark calls it).

Data credits (CC BY 4.0) that must appear wherever results are shown: "IP Geolocation by DB-IP"
(https://db-ip.com); ASN data by RouteViews, DB-IP and the NRO (ip-location-db).
"""

from __future__ import annotations

import gc
import ipaddress
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.enrich.ip_model import (
    FACT_FIELDS,
    GROUP_INDEXES,
    GROUP_OF,
    GROUP_RANK,
    IpFacts,
    IpProvider,
)
from shared.records.ip import normalize_ip

if TYPE_CHECKING:
    import httpx

    from shared.enrich.ip_feeds import AsnClass, AsnClassifier, FeedReport

__all__ = [
    "IntelConfig",
    "IpFacts",
    "IpInfo",
    "IpIntelClient",
    "IpProvider",
    "StaticIpProvider",
    "measure_lookups",
]


class IpInfo(msgspec.Struct, frozen=True, gc=False):
    """Everything known about one address. None means unknown (never "no").

    A frozen msgspec struct: built in one C call per cold lookup (``IpInfo(ip, version, *facts)``), hashable,
    compared by value, never tracked by the garbage collector (its fields are strings, numbers and tuples
    of strings).
    """

    ip: str
    version: int
    country: str | None
    region: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    accuracy_km: float | None
    geo_provider: str | None
    asn: int | None
    asn_org: str | None
    is_hosting: bool | None
    cloud_provider: str | None
    cloud_service: str | None
    is_vpn: bool | None
    vpn_operator: str | None
    is_tor: bool | None
    is_proxy: bool | None
    is_residential_proxy: bool | None
    is_mobile: bool | None
    is_icloud_relay: bool | None
    is_microsoft_service: bool | None
    tags: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]

    @property
    def is_anonymous(self) -> bool:
        """True when a provider says VPN, Tor, proxy or residential proxy."""
        return bool(self.is_vpn or self.is_tor or self.is_proxy or self.is_residential_proxy)

    @property
    def anonymizer_kind(self) -> str | None:
        """The strongest anonymizer: ``tor``, ``residential_proxy``, ``public_proxy``, ``vpn``, or None."""
        if self.is_tor:
            return "tor"
        if self.is_residential_proxy:
            return "residential_proxy"
        if self.is_proxy:
            return "public_proxy"
        if self.is_vpn:
            return "vpn"
        return None

    def source_of(self, field: str) -> str | None:
        """The provider that answered ``field`` (or its group: ``geo``, ``asn``, ``cloud``)."""
        group = GROUP_OF.get(field, field)
        for name, provider in self.sources:
            if name == group:
                return provider
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: tags as a list, sources as ``{group: provider}``."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _INFO_FIELDS[:-2]}
        out["tags"] = list(self.tags)
        out["sources"] = dict(self.sources)
        out["is_anonymous"] = self.is_anonymous
        out["anonymizer_kind"] = self.anonymizer_kind
        return out


_INFO_FIELDS: tuple[str, ...] = IpInfo.__struct_fields__
if _INFO_FIELDS[2:] != IpFacts._fields:  # pragma: no cover - a development-time guard
    raise RuntimeError("IpFacts fields must follow IpInfo's fields after `version`")


class StaticIpProvider:
    """An in-memory provider: fixed facts per normalised address (tests, demos, overrides)."""

    def __init__(self, name: str, answers: Mapping[str, IpFacts]) -> None:
        self.name = name
        self._answers = dict(answers)
        self.calls = 0
        """How many lookups reached this provider (the client's cache hides repeats)."""

    def load(self) -> None:
        """Nothing to load."""

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """The configured facts for ``ip``."""
        self.calls += 1
        return self._answers.get(ip)


class IntelConfig(BaseModel):
    """Where the IP intelligence comes from. Paths are local files (the refresh job downloads feeds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path | None = None
    """Directory of the compiled table ``ipdata.bin`` (default ``<repo>/.tmp/ipdata``)."""
    node_modules_dir: Path | None = None
    """``node_modules`` holding ``@ip-location-db`` (default: found walking up from the code or cwd)."""
    embedded: bool = True
    """Use the embedded DB-IP / ASN / cloud data."""
    vpn_feeds: tuple[Path, ...] = ()
    tor_feeds: tuple[Path, ...] = ()
    proxy_feeds: tuple[Path, ...] = ()
    datacenter_feeds: tuple[Path, ...] = ()
    """Datacenter CIDR lists (``is_hosting``), e.g. X4BNet's ``output/datacenter``."""
    hosting_asn_feeds: tuple[Path, ...] = ()
    icloud_relay_feeds: tuple[Path, ...] = ()
    """Apple's ``egress-ip-ranges.csv`` (``prefix,country,region,city,``)."""
    rogue_app_feeds: tuple[Path, ...] = ()
    """Carried for the consent detectors; not used by the IP client."""
    maxmind_city: Path | None = None
    maxmind_asn: Path | None = None
    maxmind_anonymous: Path | None = None
    spur_feeds: tuple[Path, ...] = ()
    spur_token: SecretStr | None = None
    spur_base_url: str = "https://api.spur.us"
    cache_size: int = Field(default=65536, ge=0)


class IpIntelClient:
    """Looks addresses up across providers; thread-safe, lazily loaded, cached per instance.

    ``providers`` in precedence order; ``asn_classifier`` adds hosting / mobile / satellite from
    the ASN; ``cache_size`` bounds the LRU (0: no cache); ``freeze_gc`` calls ``gc.freeze()`` after
    loading (for a process that loads once, then forks or runs long batches: the collector stops
    scanning everything that exists at that moment, the caller's objects included).
    """

    def __init__(
        self,
        providers: Sequence[IpProvider],
        *,
        asn_classifier: AsnClassifier | None = None,
        cache_size: int = 65536,
        freeze_gc: bool = False,
    ) -> None:
        self._providers = tuple(providers)
        self._asn = asn_classifier
        self._asn_classes: Mapping[int, AsnClass] = {}
        self._class_memo: dict[int, tuple[IpFacts, IpFacts]] = {}
        self._single: Callable[[str, int, int], IpFacts | None] | None = None
        self._freeze_gc = freeze_gc
        self._lock = threading.Lock()
        self._loaded = False
        self._cache_size = cache_size
        self._hot: Callable[[str], IpInfo | None] = lru_cache(maxsize=cache_size)(self._compute)
        self._seen: set[str] = set()
        self._seen_max = max(2 * cache_size, 1024) if cache_size else 0
        self.unparsed_count = 0
        """Values given to :meth:`lookup_raw` or :meth:`lookup` that were not addresses."""

    @classmethod
    def from_config(cls, config: IntelConfig, *, http_client: httpx.Client | None = None) -> IpIntelClient:
        """Compose providers in precedence order: Spur, MaxMind, feeds, embedded."""
        from shared.enrich.ip_embedded import EmbeddedProvider
        from shared.enrich.ip_feeds import AsnClassifier, FeedProvider

        providers: list[IpProvider] = []
        if config.spur_token is not None and config.spur_token.get_secret_value():
            from shared.enrich.ip_spur import SpurApiProvider, SpurContextClient

            providers.append(
                SpurApiProvider(
                    SpurContextClient(token=config.spur_token, http_client=http_client, base_url=config.spur_base_url)
                )
            )
        if config.spur_feeds:
            from shared.enrich.ip_spur import SpurFeedProvider

            providers.append(SpurFeedProvider(config.spur_feeds))
        if config.maxmind_city or config.maxmind_asn or config.maxmind_anonymous:
            from shared.enrich.ip_maxmind import MaxMindProvider

            providers.append(
                MaxMindProvider(city=config.maxmind_city, asn=config.maxmind_asn, anonymous=config.maxmind_anonymous)
            )
        if (
            config.vpn_feeds
            or config.tor_feeds
            or config.proxy_feeds
            or config.datacenter_feeds
            or config.icloud_relay_feeds
        ):
            providers.append(
                FeedProvider(
                    vpn=config.vpn_feeds,
                    tor=config.tor_feeds,
                    proxy=config.proxy_feeds,
                    datacenter=config.datacenter_feeds,
                    icloud_relay=config.icloud_relay_feeds,
                )
            )
        if config.embedded:
            providers.append(EmbeddedProvider(data_dir=config.data_dir, node_modules_dir=config.node_modules_dir))
        return cls(
            providers,
            asn_classifier=AsnClassifier(hosting_feeds=config.hosting_asn_feeds),
            cache_size=config.cache_size,
        )

    @property
    def providers(self) -> tuple[IpProvider, ...]:
        """The providers in precedence order."""
        return self._providers

    def load(self) -> IpIntelClient:
        """Load every provider now (otherwise the first lookup does). Returns self."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    for p in self._providers:
                        p.load()
                    if self._asn is not None:
                        self._asn.load()
                        self._asn_classes = self._asn.classes
                    if len(self._providers) == 1:
                        self._single = self._providers[0].lookup
                    if self._freeze_gc:
                        gc.freeze()  # the loaded tables are long-lived: keep the collector off them
                    self._loaded = True
        return self

    def lookup(self, ip: str | None) -> IpInfo | None:
        """Facts about a normalised address (``shared.records.ip.normalize_ip``); None for None.

        Cached: an address enters the LRU on its second lookup (a doorkeeper set in front of it),
        so one-off addresses (scans, sprays from rotating proxies, a cold random stream) neither
        evict the addresses users keep coming back from nor cost the garbage collector anything.
        """
        if ip in self._seen:
            return self._hot(ip)
        if ip is None:
            return None
        seen = self._seen
        if len(seen) >= self._seen_max:
            if not self._seen_max:
                return self._compute(ip)
            seen.clear()
        seen.add(ip)
        return self._compute(ip)

    def lookup_raw(self, value: str | None) -> IpInfo | None:
        """Normalise a raw audit-log value first; None (and a count) when it is not an address."""
        ip = normalize_ip(value)
        if ip is None:
            if value:
                self.unparsed_count += 1
            return None
        return self.lookup(ip)

    def clear_cache(self) -> None:
        """Forget cached lookups, the client's and the providers' (the loaded data stays)."""
        self._hot.cache_clear()  # type: ignore[attr-defined]
        self._seen.clear()
        self._class_memo.clear()
        for p in self._providers:
            clear = getattr(p, "clear_cache", None)
            if callable(clear):
                clear()

    def _compute(self, ip: str) -> IpInfo | None:
        if not self._loaded:
            self.load()
        try:
            if ":" in ip:
                version = 6
                value = int.from_bytes(_pton(_AF_INET6, ip), "big")
            else:
                version = 4
                value = int.from_bytes(_pton(_AF_INET, ip), "big")
        except OSError:
            self.unparsed_count += 1
            return None
        single = self._single
        if single is not None:
            merged = single(ip, version, value)
        else:
            answers = [f for p in self._providers if (f := p.lookup(ip, version, value)) is not None]
            merged = answers[0] if len(answers) == 1 else _merge(answers) if answers else None
        if merged is None:
            merged = _special(ip)
        asn = merged[7]
        if asn is not None:
            cls = self._asn_classes.get(asn)
            if cls is not None:
                merged = self._classified(merged, cls)
        return IpInfo(ip, version, *merged)

    def _classified(self, f: IpFacts, cls: AsnClass) -> IpFacts:
        """``f`` with its ASN class applied; memoised by identity (providers reuse their row objects)."""
        key = id(f)
        hit = self._class_memo.get(key)
        if hit is not None and hit[0] is f:
            return hit[1]
        out = _apply_asn_class(f, cls.hosting, cls.mobile, cls.tags)
        memo = self._class_memo
        if len(memo) >= 8192:
            memo.clear()
        memo[key] = (f, out)  # holding f keeps its id from being reused while memoised
        return out

    @property
    def feed_reports(self) -> tuple[FeedReport, ...]:
        """How each feed file loaded (loads the feed-reading providers if needed)."""
        reports: list[FeedReport] = []
        for p in (*self._providers, self._asn):
            if p is not None and hasattr(p, "reports"):
                p.load()
                reports += getattr(p, "reports", ())
        return tuple(reports)

    @property
    def feed_errors(self) -> Mapping[str, int]:
        """Malformed lines per feed file (a missing file counts as one error)."""
        return {r.path: r.malformed + int(r.missing) for r in self.feed_reports if r.malformed or r.missing}

    def describe(self) -> list[dict[str, Any]]:
        """Provider names and, where they report it, their mode and data versions."""
        out: list[dict[str, Any]] = []
        for p in self._providers:
            describe = getattr(p, "describe", None)
            out.append(describe() if callable(describe) else {"provider": p.name})
        return out

    def close(self) -> None:
        """Close providers that hold files or connections."""
        for p in self._providers:
            close = getattr(p, "close", None)
            if callable(close):
                close()


def _merge(answers: list[IpFacts]) -> IpFacts:
    """First answer per group wins; tags are the ordered union."""
    values: list[Any] = [None] * len(FACT_FIELDS)
    sources: list[tuple[str, str]] = []
    by_group = [dict(f.sources) for f in answers]
    for group, indexes in GROUP_INDEXES:
        for f, src in zip(answers, by_group, strict=True):
            provider = src.get(group)
            if provider is not None:
                for i in indexes:
                    values[i] = f[i]
                sources.append((group, provider))
                break
    tags: dict[str, None] = {}
    for f in answers:
        tags.update(dict.fromkeys(f.tags))
    merged: IpFacts = tuple.__new__(IpFacts, (*values, tuple(tags), tuple(sources)))
    return merged


def _apply_asn_class(f: IpFacts, hosting: str | None, mobile: str | None, extra: tuple[str, ...]) -> IpFacts:
    answered = {group for group, _ in f.sources}
    changes: dict[str, Any] = {}
    sources = list(f.sources)
    if hosting and "is_hosting" not in answered:
        changes["is_hosting"] = True
        sources.append(("is_hosting", hosting))
    if mobile and "is_mobile" not in answered:
        changes["is_mobile"] = True
        sources.append(("is_mobile", mobile))
    if extra:
        changes["tags"] = tuple(dict.fromkeys((*f.tags, *extra)))
    if not changes:
        return f
    if len(sources) != len(f.sources):
        sources.sort(key=lambda s: GROUP_RANK[s[0]])
        changes["sources"] = tuple(sources)
    return f._replace(**changes)


_NO_FACTS = IpFacts()
_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


_SPECIAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unspecified", ("0.0.0.0/32", "::/128")),
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("link_local", ("169.254.0.0/16", "fe80::/10")),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    ("cgnat", ("100.64.0.0/10",)),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("documentation", ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")),
)
_SPECIAL_NETS = tuple((tag, ipaddress.ip_network(n)) for tag, nets in _SPECIAL for n in nets)


def _special(ip: str) -> IpFacts:
    """No provider knows the address: say why when it is not a global unicast address."""
    addr = ipaddress.ip_address(ip)
    for tag, net in _SPECIAL_NETS:
        if addr.version == net.version and addr in net:
            return IpFacts(tags=(tag,))
    return _NO_FACTS if addr.is_global else IpFacts(tags=("non_global",))


# --------------------------------------------------------------------------------------------
# Measurement (the benchmark calls this)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def random_public_ipv4(n: int, *, seed: int = 1) -> list[str]:
    """``n`` random global unicast IPv4 addresses (reproducible with ``seed``)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        x = rng.getrandbits(32)
        first = x >> 24
        if first in (0, 10, 127) or first >= 224 or (x >> 22) == (100 << 2 | 1):  # 100.64/10
            continue
        if (x >> 20) == (172 << 4 | 1) or (x >> 16) == (192 << 8 | 168) or (x >> 16) == (169 << 8 | 254):
            continue
        out.append(socket.inet_ntop(socket.AF_INET, x.to_bytes(4, "big")))
    return out


def measure_lookups(client: IpIntelClient, n: int = 200_000, seed: int = 1) -> dict[str, Any]:
    """Lookups per second on a cold random public IPv4 stream (fresh caches), and memory.

    * ``load_*``: when ``client`` is not loaded yet, its load is measured: wall seconds, the Python
      heap it allocated (``tracemalloc``) and the RSS it added. ``table_mapped_mb`` is the compiled
      table mapped read-only (shared between processes; resident once touched).
    * A warm-up pass over other random addresses faults the mapped pages in; then every cache is
      cleared and ``n`` distinct random addresses are looked up once: ``cold_lookups_per_s`` (CPU
      time of this thread, so other processes on the machine do not count), the same in wall time,
      and the same again with the garbage collector paused (``cold_gc_off_lookups_per_s``), the
      setting a batch pipeline that tames its GC would see.
    * ``zipf_lookups_per_s``: ``n`` lookups over ``n // 10`` distinct addresses, Zipf 1.1, fresh cache.
    * ``rss_mb``: the whole process afterwards (interpreter, imports, data, full caches).
    * ``lookups_per_second`` (= ``cold_lookups_per_s``) and ``memory_mb`` (the loaded data: heap
      plus mapped table; None when the client was loaded before the call) are the headline figures.
    """
    result: dict[str, Any] = {"n": n, "seed": seed}
    if not client._loaded:
        rss0 = _rss_bytes()
        tracemalloc.start()
        t0 = time.perf_counter()
        client.load()
        result["load_seconds"] = round(time.perf_counter() - t0, 3)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = _rss_bytes()
        result["load_traced_mb"] = round(current / 1e6, 1)
        result["load_traced_peak_mb"] = round(peak / 1e6, 1)
        if rss0 is not None and rss1 is not None:
            result["load_rss_delta_mb"] = round((rss1 - rss0) / 1e6, 1)
    mapped = sum(int(getattr(p, "mapped_bytes", 0)) for p in client.providers)
    result["table_mapped_mb"] = round(mapped / 1e6, 1)
    lookup = client.lookup
    for ip in random_public_ipv4(max(1, n // 4), seed=seed + 100):
        lookup(ip)
    ips = random_public_ipv4(n, seed=seed)

    def timed(stream: list[str]) -> tuple[float, float]:
        client.clear_cache()
        c0, w0 = time.thread_time(), time.perf_counter()
        for ip in stream:
            lookup(ip)
        return time.thread_time() - c0, time.perf_counter() - w0

    cpu, wall = timed(ips)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cpu_off, _ = timed(ips)
    finally:
        if was_enabled:
            gc.enable()
    rng = random.Random(seed + 1)
    distinct = random_public_ipv4(max(1, n // 10), seed=seed + 2)
    weights = [1.0 / (i + 1) ** 1.1 for i in range(len(distinct))]
    zipf_cpu, _ = timed(rng.choices(distinct, weights=weights, k=n))
    client.clear_cache()
    rss = _rss_bytes()
    data_mb = None
    if "load_traced_mb" in result:
        data_mb = round(result["load_traced_mb"] + result["table_mapped_mb"], 1)
    result.update(
        lookups_per_second=round(n / cpu),
        memory_mb=data_mb,
        cold_lookups_per_s=round(n / cpu),
        cold_wall_lookups_per_s=round(n / wall),
        cold_gc_off_lookups_per_s=round(n / cpu_off),
        zipf_lookups_per_s=round(n / zipf_cpu),
        rss_mb=round(rss / 1e6, 1) if rss is not None else None,
        providers=client.describe(),
    )
    return result
