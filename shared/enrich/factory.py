"""Builds the enrichment parts from configuration (scan config or deployed settings)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SecretStr

from shared.enrich.enricher import LocalEnricher

if TYPE_CHECKING:
    from shared.enrich.ipintel import IntelConfig
    from shared.platform.settings import Settings

log = logging.getLogger(__name__)

APP_ROOT = Path(__file__).resolve().parents[2]
"""The app root (the repository locally, ``/home/site/wwwroot`` in Azure): relative paths start here."""
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


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


def intel_config_from_settings(settings: Settings, feeds: IntelFeeds) -> IntelConfig:
    """The deployed engine's IP intelligence: the app settings' data and adapters plus the stored feed files.

    ``feeds`` are the local copies of the stored feeds (``shared.enrich.feeds.load_intel_feeds``), as given.

    ``ITDR_IPDATA_DIR`` (default: the shipped ``ipdata/``), ``ITDR_MAXMIND_{CITY,ASN,ANONYMOUS}_DB``,
    ``ITDR_SPUR_FEED_PATHS`` (comma-separated) and ``ITDR_SPUR_TOKEN``; relative paths are relative to
    the app root. A token that is still an unresolved ``@Microsoft.KeyVault(...)`` reference (the secret
    is missing or the identity cannot read it: the platform then passes the reference text through) is
    not sent to Spur: an error is logged (without the value) and the Spur API stays off.
    """
    from shared.enrich.ip_embedded import default_data_dir
    from shared.enrich.ipintel import IntelConfig

    def path(value: str | None) -> Path | None:
        value = (value or "").strip()
        return None if not value else _app_path(value)

    return IntelConfig(
        data_dir=path(settings.ipdata_dir) or default_data_dir(),
        vpn_feeds=tuple(Path(p) for p in feeds.vpn_feeds),
        tor_feeds=tuple(Path(p) for p in feeds.tor_feeds),
        proxy_feeds=tuple(Path(p) for p in feeds.proxy_feeds),
        hosting_asn_feeds=tuple(Path(p) for p in feeds.hosting_asn_feeds),
        icloud_relay_feeds=tuple(Path(p) for p in feeds.icloud_relay_feeds),
        rogue_app_feeds=tuple(Path(p) for p in feeds.rogue_app_feeds),
        maxmind_city=path(settings.maxmind_city_db),
        maxmind_asn=path(settings.maxmind_asn_db),
        maxmind_anonymous=path(settings.maxmind_anonymous_db),
        spur_feeds=_paths((settings.spur_feed_paths or "").split(",")),
        spur_token=_spur_token(settings.spur_token),
    )


def _app_path(value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else APP_ROOT / p


def _paths(values: Sequence[str]) -> tuple[Path, ...]:
    return tuple(_app_path(v.strip()) for v in values if v.strip())


def _spur_token(token: SecretStr | None) -> SecretStr | None:
    if token is None:
        return None
    value = token.get_secret_value().strip()
    if not value:
        return None
    if value.startswith(_KEY_VAULT_REFERENCE):
        log.error(
            "ip intelligence: ITDR_SPUR_TOKEN is an unresolved Key Vault reference (secret missing or not "
            "readable by the app's identity): the Spur API is off until it resolves"
        )
        return None
    return SecretStr(value)


def build_local_enricher(feeds: IntelFeeds, *, intel: Any = None) -> LocalEnricher:
    from shared.enrich.access import classify_access

    return LocalEnricher(intel if intel is not None else build_ip_intel(feeds), classify=classify_access)


def load_rogue_apps(paths: Sequence[str]) -> dict[str, Any]:
    if not paths:
        return {}
    from shared.enrich.rogueapps import load_rogue_apps as load

    return dict(load(list(paths)).apps)
