"""Builds the enrichment parts from configuration (scan config or deployed settings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.enrich.enricher import LocalEnricher


class IntelFeeds(BaseModel):
    """Feed files of IP and app intelligence (the ``intel`` section of ``itdr scan --config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vpn_feeds: tuple[str, ...] = ()
    tor_feeds: tuple[str, ...] = ()
    proxy_feeds: tuple[str, ...] = ()
    hosting_asn_feeds: tuple[str, ...] = ()
    icloud_relay_feeds: tuple[str, ...] = ()
    rogue_app_feeds: tuple[str, ...] = ()


def build_ip_intel(feeds: IntelFeeds) -> Any:
    """The IP intelligence client: embedded offline data plus the configured feed files."""
    from shared.enrich.ipintel import IntelConfig, IpIntelClient

    return IpIntelClient.from_config(
        IntelConfig(
            vpn_feeds=list(feeds.vpn_feeds),
            tor_feeds=list(feeds.tor_feeds),
            proxy_feeds=list(feeds.proxy_feeds),
            hosting_asn_feeds=list(feeds.hosting_asn_feeds),
            icloud_relay_feeds=list(feeds.icloud_relay_feeds),
            rogue_app_feeds=list(feeds.rogue_app_feeds),
        )
    )


def build_local_enricher(feeds: IntelFeeds, *, intel: Any = None) -> LocalEnricher:
    from shared.enrich.access import classify_access

    return LocalEnricher(intel if intel is not None else build_ip_intel(feeds), classify=classify_access)


def load_rogue_apps(paths: Sequence[str]) -> dict[str, Any]:
    if not paths:
        return {}
    from shared.detection.rogueapps import load_rogue_apps as load

    return dict(load(list(paths)).apps)
