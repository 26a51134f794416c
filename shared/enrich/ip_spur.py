"""Spur IP Context: the mapping, a feed-export reader and a Context API client.

Mapping of an IP Context object (ip-intelligence.md §3; every field optional):

* ``as.number`` / ``as.organization`` -> ``asn`` / ``asn_org``.
* ``location.{country, state, city}`` (and coordinates when present) -> geo, ``geo_provider="spur"``.
* ``infrastructure``: ``DATACENTER`` -> ``is_hosting``; ``MOBILE`` -> ``is_mobile``;
  ``RESIDENTIAL`` / ``BUSINESS`` -> neither. Always tagged ``infrastructure:<value>`` (open set).
* ``tunnels[]``: ``VPN`` -> ``is_vpn`` with ``vpn_operator``; a VPN with ``anonymous: false`` (often a
  corporate VPN) is **not** counted as ``is_vpn`` (it does not anonymise): it keeps its operator and
  the tag ``non_anonymous_vpn``. ``TOR`` -> ``is_tor``; ``PROXY`` -> ``is_proxy``.
* ``client.proxies`` non-empty or ``CALLBACK_PROXY`` in ``risks`` -> ``is_residential_proxy`` (the
  proxy services are tagged ``residential_proxy:<name>``).
* ``client.countries >= 2`` -> tag ``multi_country_clients`` (the location does not describe the user).
* ``risks`` -> ``risk:<value>``, ``services`` -> ``service:<value>`` tags; ``ai.*`` ignored.

Spur knows an address it returns, so its absent tunnels and proxies are answers (False).
The API client's cache holds Spur's answer about an address, which is not tenant data: it is shared
by every tenant of the process; the token is never logged.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson
from pydantic import SecretStr

from shared.enrich.ip_feeds import FeedReport
from shared.enrich.ip_model import SOURCE_SPUR, IpFacts, facts
from shared.platform.errors import (
    ForbiddenTargetError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
)
from shared.records.ip import normalize_ip

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SPUR_API_BASE = "https://api.spur.us"
ALLOWED_HOSTS = frozenset({"api.spur.us", "127.0.0.1", "localhost", "::1"})


def spur_facts(obj: Mapping[str, Any]) -> IpFacts:
    """Map one Spur IP Context object to facts."""
    values: dict[str, Any] = {}
    tags: list[str] = []
    as_ = _mapping(obj.get("as"))
    if as_.get("number") is not None:
        values["asn"] = int(as_["number"])
        values["asn_org"] = as_.get("organization")
    loc = _mapping(obj.get("location"))
    if loc.get("country") or loc.get("latitude") is not None:
        values.update(
            country=loc.get("country"),
            region=loc.get("state"),
            city=loc.get("city"),
            latitude=_float(loc.get("latitude")),
            longitude=_float(loc.get("longitude")),
            geo_provider=SOURCE_SPUR,
        )
    infra = str(obj.get("infrastructure") or "").upper()
    if infra:
        tags.append(f"infrastructure:{infra.lower()}")
        if infra == "DATACENTER":
            values.update(is_hosting=True, is_mobile=False)
        elif infra == "MOBILE":
            values.update(is_hosting=False, is_mobile=True)
        elif infra in ("RESIDENTIAL", "BUSINESS"):
            values.update(is_hosting=False, is_mobile=False)
    vpn = tor = proxy = non_anonymous = False
    operator: str | None = None
    other_operator: str | None = None
    for tunnel in _dicts(obj.get("tunnels")):
        kind = str(tunnel.get("type") or "").upper()
        op = tunnel.get("operator")
        if kind == "VPN":
            if tunnel.get("anonymous") is False:
                non_anonymous = True
                other_operator = other_operator or (str(op) if op else None)
            else:
                vpn = True
                operator = operator or (str(op) if op else None)
        elif kind == "TOR":
            tor = True
        elif kind == "PROXY":
            proxy = True
        elif kind:
            tags.append(f"tunnel:{kind.lower()}")
    values.update(is_vpn=vpn, vpn_operator=operator or other_operator, is_tor=tor, is_proxy=proxy)
    if non_anonymous:
        tags.append("non_anonymous_vpn")
    client = _mapping(obj.get("client"))
    proxies = [str(p) for p in client.get("proxies") or [] if p]
    risks = [str(r).upper() for r in obj.get("risks") or [] if r]
    values["is_residential_proxy"] = bool(proxies) or "CALLBACK_PROXY" in risks
    tags += [f"residential_proxy:{p}" for p in proxies]
    countries = client.get("countries")
    if isinstance(countries, int) and countries >= 2:
        tags.append("multi_country_clients")
    tags += [f"risk:{r.lower()}" for r in risks]
    tags += [f"service:{str(s).lower()}" for s in obj.get("services") or [] if s]
    return facts(SOURCE_SPUR, tags=tuple(dict.fromkeys(tags)), **values)


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _dicts(v: Any) -> Iterable[Mapping[str, Any]]:
    return [t for t in v if isinstance(t, Mapping)] if isinstance(v, list) else []


class SpurFeedProvider:
    """Spur feed exports: NDJSON files (optionally gzipped) of IP Context objects, keyed by ``ip``."""

    name = SOURCE_SPUR

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = tuple(paths)
        self._lock = threading.Lock()
        self._loaded = False
        self._by_ip: dict[str, IpFacts] = {}
        self.reports: tuple[FeedReport, ...] = ()

    def load(self) -> None:
        """Read every file once; malformed lines are counted in ``reports``."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            by_ip: dict[str, IpFacts] = {}
            reports: list[FeedReport] = []
            for path in self._paths:
                reports.append(self._read(path, by_ip))
            self._by_ip = by_ip
            self.reports = tuple(reports)
            self._loaded = True

    @staticmethod
    def _read(path: Path, into: dict[str, IpFacts]) -> FeedReport:
        entries = malformed = 0
        bad: list[int] = []
        try:
            with open(path, "rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
            opener = gzip.open if gz else open
            with opener(path, "rb") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = orjson.loads(line)
                        ip = normalize_ip(obj.get("ip")) if isinstance(obj, dict) else None
                    except (orjson.JSONDecodeError, AttributeError, TypeError):
                        ip = None
                    if ip is None:
                        malformed += 1
                        if len(bad) < 5:
                            bad.append(n)
                        continue
                    into[ip] = spur_facts(obj)
                    entries += 1
        except FileNotFoundError:
            log.warning("spur feed missing: %s", path)
            return FeedReport("spur", str(path), 0, 0, missing=True)
        except (OSError, EOFError) as exc:  # a truncated gzip
            log.warning("spur feed %s unreadable after %d entries: %s", path, entries, exc)
            malformed += 1
        return FeedReport("spur", str(path), entries, malformed, bad_lines=tuple(bad))

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """Facts for an address in the feed."""
        if not self._loaded:
            self.load()
        return self._by_ip.get(ip)


class SpurContextClient:
    """Spur Context API: ``GET {base}/v2/context/{ip}`` with header ``Token``.

    Disabled (every call returns None, no request) without a token. 200 -> the object; 404 or 400
    -> None; 429 -> ``ThrottledError`` (``retry_after`` from ``Retry-After``); 401/403 ->
    ``PermissionError_``; 5xx, timeouts and transport errors -> ``ServiceUnavailable``. Answers
    (including "not found") are cached for ``cache_ttl`` seconds by the injected clock.
    """

    def __init__(
        self,
        *,
        token: SecretStr | str | None,
        http_client: httpx.Client | None = None,
        base_url: str = SPUR_API_BASE,
        timeout: float = 5.0,
        cache_ttl: float = 86400.0,
        cache_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        host = urlsplit(base_url).hostname or ""
        if host not in ALLOWED_HOSTS:
            raise ForbiddenTargetError("Spur base URL is not an allowed host", host=host)
        self._token = token if isinstance(token, SecretStr) or token is None else SecretStr(token)
        self._base = base_url.rstrip("/")
        self._http = http_client
        self._owns_http = http_client is None
        self._timeout = timeout
        self._ttl = cache_ttl
        self._cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.balance_remaining: int | None = None
        """The last ``x-balance-remaining`` header Spur sent."""

    @property
    def enabled(self) -> bool:
        """True when a token is configured."""
        return self._token is not None and bool(self._token.get_secret_value())

    def get_context(self, ip: str) -> dict[str, Any] | None:
        """The IP Context object for a normalised address, or None (disabled, not found)."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            hit = self._cache.get(ip)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(ip)
                return hit[1]
        obj = self._fetch(ip)
        with self._lock:
            self._cache[ip] = (now + self._ttl, obj)
            self._cache.move_to_end(ip)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return obj

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=self._timeout)
        return self._http

    def _fetch(self, ip: str) -> dict[str, Any] | None:
        import httpx

        assert self._token is not None
        url = f"{self._base}/v2/context/{quote(ip, safe='')}"
        try:
            resp = self._client().get(
                url, headers={"Token": self._token.get_secret_value(), "Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable("Spur API timed out", reason="spur_timeout") from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Spur API unreachable: {type(exc).__name__}", reason="spur_transport") from exc
        balance = resp.headers.get("x-balance-remaining")
        if balance is not None and balance.strip().lstrip("-").isdigit():
            self.balance_remaining = int(balance)
        status = resp.status_code
        if status == 200:
            try:
                obj = resp.json()
            except ValueError as exc:
                raise ServiceUnavailable("Spur API sent invalid JSON", reason="spur_bad_json") from exc
            return obj if isinstance(obj, dict) else None
        if status in (400, 404):
            return None
        if status == 429:
            raise ThrottledError("Spur API throttled", retry_after=_retry_after(resp.headers.get("retry-after")))
        if status in (401, 403):
            raise PermissionError_(f"Spur API refused the token ({status})", reason="spur_unauthorized")
        raise ServiceUnavailable(f"Spur API answered {status}", reason="spur_http_error", status=status)

    def close(self) -> None:
        """Close the HTTP client this object created (an injected one belongs to the caller)."""
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class SpurApiProvider:
    """The Context API as an ``IpProvider`` (answers nothing when the client is disabled)."""

    name = SOURCE_SPUR

    def __init__(self, client: SpurContextClient) -> None:
        self.client = client

    def load(self) -> None:
        """Nothing to load."""

    def lookup(self, ip: str, version: int, value: int) -> IpFacts | None:
        """Facts from the API (may raise ``ThrottledError`` / ``ServiceUnavailable``)."""
        obj = self.client.get_context(ip)
        return spur_facts(obj) if obj else None
