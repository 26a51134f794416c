"""Intelligence feeds in production: refreshed by a timer into Blob storage, loaded by detection.

``ITDR_INTEL_FEED_URLS`` is a JSON object of feed kind -> list of https URLs, e.g.
``{"vpn": ["https://.../vpn.txt"], "tor": [...], "hosting_asn": [...], "rogue_app": [...]}``.
The ``refresh_intel`` timer downloads each (https only, bounded size and time), checks its
lines, and stores it as ``intel/<kind>/<sha256 of the URL>.txt``; a failed download keeps the
previous copy, so detection never loses a feed to a passing outage. The detection engine reads
the stored feeds into a local directory at start-up (`load_intel_feeds`).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from shared.enrich.factory import IntelFeeds
from shared.platform import names
from shared.platform.errors import ConfigurationError
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

log = logging.getLogger("itdr.intel")

KINDS = {
    "vpn": "vpn_feeds",
    "tor": "tor_feeds",
    "proxy": "proxy_feeds",
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


def blob_name(kind: str, url: str) -> str:
    return f"{kind}/{hashlib.sha256(url.encode()).hexdigest()[:32]}.txt"


def _check(kind: str, data: bytes) -> None:
    if kind == "rogue_app":
        doc = orjson.loads(data)
        if not isinstance(doc, list):
            raise ValueError("a RogueApps feed is a JSON list")
        return
    text = data.decode("utf-8")
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise ValueError("the feed has no entries")


def refresh_feeds(storage: StorageClients, settings: Settings, *, http: httpx.Client | None = None) -> RefreshReport:
    """Download every configured feed into the intel container (the ``refresh_intel`` timer)."""
    report = RefreshReport()
    container = storage.container(names.CONTAINER_INTEL)
    client = http or httpx.Client(timeout=30.0, follow_redirects=False)
    try:
        for kind, urls in feed_urls(settings).items():
            for url in urls:
                name = blob_name(kind, url)
                try:
                    with client.stream("GET", url) as resp:
                        resp.raise_for_status()
                        chunks: list[bytes] = []
                        size = 0
                        for chunk in resp.iter_bytes():
                            size += len(chunk)
                            if size > MAX_FEED_BYTES:
                                raise ValueError("feed larger than 64 MiB")
                            chunks.append(chunk)
                    data = b"".join(chunks)
                    _check(kind, data)
                except (httpx.HTTPError, ValueError) as exc:
                    host = urlsplit(url).hostname or "?"
                    report.failed[name] = f"{type(exc).__name__} from {host}"
                    log.warning(
                        "intel feed refresh failed; keeping the previous copy", extra={"reason": type(exc).__name__}
                    )
                    continue
                container.upload_blob(name, data, overwrite=True, metadata={"kind": kind})
                report.stored.append(name)
    finally:
        if http is None:
            client.close()
    return report


def load_intel_feeds(storage: StorageClients, *, directory: Path | None = None) -> IntelFeeds:
    """The stored feeds as local files, for the detection engine (empty when none are stored)."""
    target = directory or Path(tempfile.mkdtemp(prefix="itdr-intel-"))
    container = storage.container(names.CONTAINER_INTEL)
    files: dict[str, list[str]] = {v: [] for v in KINDS.values()}
    for blob in container.list_blobs():
        kind = str(blob.name).split("/", 1)[0]
        if kind not in KINDS:
            continue
        path = target / str(blob.name).replace("/", "_")
        path.write_bytes(container.download_blob(blob.name).readall())
        files[KINDS[kind]].append(str(path))
    values: dict[str, Any] = {k: tuple(v) for k, v in files.items()}
    return IntelFeeds(**values)
