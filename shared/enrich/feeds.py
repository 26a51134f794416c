"""Intelligence feeds in production: refreshed by a timer into Blob storage, loaded by detection.

With ``ITDR_INTEL_FEED_URLS`` empty (the default) the ``refresh_intel`` timer refreshes every list
the package ships (:mod:`shared.enrich.intel_lists`) from its public source into
``intel/<kind>/<list name>.txt``; the pipeline then reads that copy instead of the shipped snapshot.
A shipped list's download is refused, and the previous copy kept, when it is larger than the list's
``max_bytes``, has a malformed line, or has fewer than ``min_entries`` entries.

``ITDR_INTEL_FEED_URLS`` is a JSON object of feed kind -> list of https URLs, e.g.
``{"vpn": ["https://.../vpn.txt"], "tor": [...], "hosting_asn": [...], "rogue_app": [...]}``.
The ``refresh_intel`` timer downloads each (https only, bounded size and time), checks its
lines, and stores it as ``intel/<kind>/<sha256 of the URL>.txt``; a failed download keeps the
previous copy, so detection never loses a feed to a passing outage. Setting it replaces the default
sources: name a shipped list's ``refresh_url`` among them to keep that list refreshed. The detection engine reads
the stored feeds into a local directory at start-up (`load_intel_feeds`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from shared.enrich.factory import IntelFeeds
from shared.enrich.intel_lists import ASN_KINDS, ShippedList, shipped_by_url, shipped_lists
from shared.platform import names
from shared.platform.errors import ConfigurationError
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

log = logging.getLogger("itdr.intel")

KINDS = {
    "vpn": "vpn_feeds",
    "tor": "tor_feeds",
    "proxy": "proxy_feeds",
    "datacenter": "datacenter_feeds",
    "hosting_asn": "hosting_asn_feeds",
    "icloud_relay": "icloud_relay_feeds",
    "rogue_app": "rogue_app_feeds",
}
MAX_FEED_BYTES = 64 * 1024 * 1024


@dataclass
class RefreshReport:
    stored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def feed_urls(settings: Settings) -> dict[str, list[str]]:
    raw = settings.intel_feed_urls
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError("ITDR_INTEL_FEED_URLS is not JSON") from exc
    if not isinstance(parsed, dict) or any(k not in KINDS for k in parsed):
        raise ConfigurationError(f"ITDR_INTEL_FEED_URLS keys must be among {sorted(KINDS)}")
    out: dict[str, list[str]] = {}
    for kind, urls in parsed.items():
        if not isinstance(urls, list) or not all(isinstance(u, str) and urlsplit(u).scheme == "https" for u in urls):
            raise ConfigurationError(f"ITDR_INTEL_FEED_URLS[{kind}] must be a list of https URLs")
        out[kind] = list(urls)
    return out


def blob_name(kind: str, url: str, *, shipped: ShippedList | None = None) -> str:
    """``<kind>/<shipped list name>.txt`` for a shipped list's source, else ``<kind>/<sha256 of the URL>.txt``."""
    if shipped is not None:
        return f"{kind}/{shipped.name}.txt"
    return f"{kind}/{hashlib.sha256(url.encode()).hexdigest()[:32]}.txt"


def _valid_entry(kind: str, token: str) -> bool:
    from shared.enrich.ip_feeds import ASN_TOKEN
    from shared.enrich.ip_ranges import parse_network

    if kind in ASN_KINDS:
        return ASN_TOKEN.match(token) is not None
    return parse_network(token) is not None


def _check(kind: str, data: bytes, shipped: ShippedList | None) -> None:
    """Raise ValueError when ``data`` is not a usable list of ``kind`` (stricter for a shipped list)."""
    if kind == "rogue_app":
        doc = orjson.loads(data)
        if not isinstance(doc, list):
            raise ValueError("a RogueApps feed is a JSON list")
        return
    text = data.decode("utf-8")
    if shipped is None:
        if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            raise ValueError("the feed has no entries")
        return
    from shared.enrich.ip_feeds import feed_tokens

    entries = 0
    for n, token in feed_tokens(text.splitlines()):
        if not _valid_entry(kind, token):
            if n == 1 and token.upper() == "ASN":
                continue  # a CSV header
            raise ValueError(f"line {n} is not a valid {kind} entry")
        entries += 1
    if entries < shipped.min_entries:
        raise ValueError(f"{entries} entries, fewer than the {shipped.min_entries} expected")


def refresh_sources(settings: Settings) -> list[tuple[str, str, ShippedList | None]]:
    """``(kind, url, shipped list or None)`` to refresh: the configured URLs, else every shipped list's source."""
    configured = feed_urls(settings)
    if not configured:
        return [(s.kind, s.refresh_url, s) for s in shipped_lists()]
    by_url = shipped_by_url()
    out: list[tuple[str, str, ShippedList | None]] = []
    for kind, urls in configured.items():
        for url in urls:
            known = by_url.get(url)
            out.append((kind, url, known if known is not None and known.kind == kind else None))
    return out


def refresh_feeds(
    storage: StorageClients,
    settings: Settings,
    *,
    http: httpx.Client | None = None,
    sources: list[tuple[str, str, ShippedList | None]] | None = None,
) -> RefreshReport:
    """Download every feed into the intel container (the ``refresh_intel`` timer).

    ``sources`` defaults to :func:`refresh_sources` (tests point a shipped list at a local stand-in).
    """
    report = RefreshReport()
    container = storage.container(names.CONTAINER_INTEL)
    client = http or httpx.Client(timeout=30.0, follow_redirects=False)
    try:
        for kind, url, shipped in sources if sources is not None else refresh_sources(settings):
            if urlsplit(url).scheme != "https":
                raise ConfigurationError(f"intel feed sources must be https URLs ({kind})")
            limit = shipped.max_bytes if shipped is not None else MAX_FEED_BYTES
            name = blob_name(kind, url, shipped=shipped)
            try:
                with client.stream("GET", url) as resp:
                    resp.raise_for_status()
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise ValueError(f"feed larger than {limit} bytes")
                        chunks.append(chunk)
                data = b"".join(chunks)
                _check(kind, data, shipped)
            except (httpx.HTTPError, ValueError) as exc:
                host = urlsplit(url).hostname or "?"
                report.failed[name] = f"{type(exc).__name__} from {host}"
                log.warning(
                    "intel feed refresh failed; keeping the previous copy",
                    extra={"reason": type(exc).__name__, "feed": name},
                )
                continue
            container.upload_blob(name, data, overwrite=True, metadata={"kind": kind})
            report.stored.append(name)
    finally:
        if http is None:
            client.close()
    return report


def load_intel_feeds(storage: StorageClients, *, directory: Path | None = None) -> IntelFeeds:
    """The stored feeds as local files, for the detection engine (no stored feed: the shipped lists only).

    A refreshed shipped list (``<kind>/<list name>.txt``) replaces that list's snapshot; its local copy
    keeps the blob's modification time, so the list's age is the refresh's age.
    """
    target = directory or Path(tempfile.mkdtemp(prefix="itdr-intel-"))
    container = storage.container(names.CONTAINER_INTEL)
    files: dict[str, list[str]] = {v: [] for v in KINDS.values()}
    refreshed: dict[str, str] = {}
    shipped = {f"{s.kind}/{s.name}.txt": s.name for s in shipped_lists()}
    for blob in container.list_blobs():
        kind = str(blob.name).split("/", 1)[0]
        if kind not in KINDS:
            continue
        path = target / str(blob.name).replace("/", "_")
        path.write_bytes(container.download_blob(blob.name).readall())
        if blob.last_modified is not None:
            stamp = blob.last_modified.timestamp()
            os.utime(path, (stamp, stamp))
        list_name = shipped.get(str(blob.name))
        if list_name is not None:
            refreshed[list_name] = str(path)
        else:
            files[KINDS[kind]].append(str(path))
    values: dict[str, Any] = {k: tuple(v) for k, v in files.items()}
    return IntelFeeds(**values, refreshed=refreshed)
