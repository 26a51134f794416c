"""Builds the enrichment parts from configuration (scan config or deployed settings)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from shared.enrich.enricher import LocalEnricher

if TYPE_CHECKING:
    from shared.enrich.intel_lists import ListInUse
    from shared.enrich.ipintel import IntelConfig
    from shared.platform.settings import Settings

log = logging.getLogger(__name__)

APP_ROOT = Path(__file__).resolve().parents[2]
"""The app root (the repository locally, ``/home/site/wwwroot`` in Azure): relative paths start here."""
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


class IntelFeeds(BaseModel):
    """Where IP and app intelligence comes from (the ``intel`` section of ``itdr scan --config``).

    The shipped lists (:mod:`shared.enrich.intel_lists`) are always read unless ``shipped`` names a
    subset (``[]``: none, so your own feeds replace them); the ``*_feeds`` files are added to them.
    ``refreshed`` maps a shipped list's name to a refreshed local copy (the pipeline's, from Blob
    storage), read instead of the snapshot. MaxMind databases and Spur feed files grade addresses the
    same way in ``itdr scan`` and the pipeline; the Spur API token is never in this file:
    ``spur_token_env`` names the environment variable that holds it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vpn_feeds: tuple[str, ...] = ()
    tor_feeds: tuple[str, ...] = ()
    proxy_feeds: tuple[str, ...] = ()
    datacenter_feeds: tuple[str, ...] = ()
    hosting_asn_feeds: tuple[str, ...] = ()
    icloud_relay_feeds: tuple[str, ...] = ()
    rogue_app_feeds: tuple[str, ...] = ()
    shipped: tuple[str, ...] | None = None
    """Names of the shipped lists to read; None (the default): all of them."""
    refreshed: dict[str, str] = Field(default_factory=dict)
    maxmind_city_db: str | None = None
    maxmind_asn_db: str | None = None
    maxmind_anonymous_db: str | None = None
    spur_feed_paths: tuple[str, ...] = ()
    spur_token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("shipped")
    @classmethod
    def _known_lists(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from shared.enrich.intel_lists import shipped_lists

        known = {s.name for s in shipped_lists()}
        unknown = sorted(set(value or ()) - known)
        if unknown:
            raise ValueError(f"unknown shipped lists {unknown}; known: {sorted(known)}")
        return value

    def resolved(self, base: Path) -> IntelFeeds:
        """Relative file paths made relative to ``base`` (the config file's directory)."""

        def one(p: str) -> str:
            path = Path(p)
            return str(path if path.is_absolute() else base / path)

        update: dict[str, object] = {k: tuple(one(x) for x in getattr(self, k)) for k in FEED_FIELDS.values()}
        update["spur_feed_paths"] = tuple(one(x) for x in self.spur_feed_paths)
        for k in ("maxmind_city_db", "maxmind_asn_db", "maxmind_anonymous_db"):
            value = getattr(self, k)
            update[k] = one(value) if value else None
        return self.model_copy(update=update)


FEED_FIELDS: dict[str, str] = {
    "vpn": "vpn_feeds",
    "tor": "tor_feeds",
    "proxy": "proxy_feeds",
    "datacenter": "datacenter_feeds",
    "hosting_asn": "hosting_asn_feeds",
    "icloud_relay": "icloud_relay_feeds",
    "rogue_app": "rogue_app_feeds",
}
"""Feed kind -> IntelFeeds field."""


def lists_in_use(feeds: IntelFeeds) -> list[ListInUse]:
    """The IP list files ``feeds`` reads: shipped (or their refreshed copies), then configured ones."""
    from shared.enrich.intel_lists import ListInUse, file_date, shipped_lists

    out: list[ListInUse] = []
    for s in shipped_lists():
        if feeds.shipped is not None and s.name not in feeds.shipped:
            continue
        fresh = feeds.refreshed.get(s.name)
        if fresh is not None:
            out.append(
                ListInUse(
                    name=s.name, kind=s.kind, path=fresh, origin="refreshed", as_of=file_date(Path(fresh)),
                    source=s.refresh_url, licence=s.licence,
                )
            )  # fmt: skip
        else:
            out.append(
                ListInUse(
                    name=s.name, kind=s.kind, path=str(s.path), origin="shipped", as_of=s.as_of,
                    source=s.source, licence=s.licence,
                )
            )  # fmt: skip
    for kind, fld in FEED_FIELDS.items():
        if kind == "rogue_app":
            continue
        for p in getattr(feeds, fld):
            out.append(
                ListInUse(name=Path(p).name, kind=kind, path=p, origin="configured", as_of=file_date(Path(p)))  # type: ignore[arg-type]
            )
    return out


def intel_config(
    feeds: IntelFeeds, *, data_dir: Path | None = None, spur_token: SecretStr | None = None
) -> IntelConfig:
    """The one way the IP intelligence is configured: ``itdr scan``/``itdr ip`` and the pipeline both call it.

    ``spur_token`` (the pipeline's, from its settings) wins over ``feeds.spur_token_env``.
    """
    import os

    from shared.enrich.ipintel import IntelConfig

    by_kind: dict[str, list[Path]] = {k: [] for k in FEED_FIELDS}
    for item in lists_in_use(feeds):
        by_kind[item.kind].append(Path(item.path))
    if spur_token is None and feeds.spur_token_env:
        spur_token = _spur_token(SecretStr(os.environ.get(feeds.spur_token_env, "")))

    def opt(value: str | None) -> Path | None:
        return Path(value) if value else None

    return IntelConfig(
        data_dir=data_dir,
        vpn_feeds=tuple(by_kind["vpn"]),
        tor_feeds=tuple(by_kind["tor"]),
        proxy_feeds=tuple(by_kind["proxy"]),
        datacenter_feeds=tuple(by_kind["datacenter"]),
        hosting_asn_feeds=tuple(by_kind["hosting_asn"]),
        icloud_relay_feeds=tuple(by_kind["icloud_relay"]),
        rogue_app_feeds=tuple(Path(p) for p in feeds.rogue_app_feeds),
        maxmind_city=opt(feeds.maxmind_city_db),
        maxmind_asn=opt(feeds.maxmind_asn_db),
        maxmind_anonymous=opt(feeds.maxmind_anonymous_db),
        spur_feeds=tuple(Path(p) for p in feeds.spur_feed_paths),
        spur_token=spur_token,
    )


def build_ip_intel(feeds: IntelFeeds) -> Any:
    """The IP intelligence client of ``itdr scan`` / ``itdr ip``: embedded data, shipped lists, ``feeds``."""
    from shared.enrich.ipintel import IpIntelClient

    return IpIntelClient.from_config(intel_config(feeds))


def intel_config_from_settings(settings: Settings, feeds: IntelFeeds) -> IntelConfig:
    """The deployed engine's IP intelligence: the app settings' data and adapters plus the stored feed files.

    ``feeds`` are the local copies of the stored feeds (``shared.enrich.feeds.load_intel_feeds``), as given;
    the shipped lists are read unless a refreshed copy replaces them (:func:`intel_config`, the same
    function ``itdr scan`` uses, so both grade an address the same way).

    ``ITDR_IPDATA_DIR`` (default: the shipped ``ipdata/``), ``ITDR_MAXMIND_{CITY,ASN,ANONYMOUS}_DB``,
    ``ITDR_SPUR_FEED_PATHS`` (comma-separated) and ``ITDR_SPUR_TOKEN``; relative paths are relative to
    the app root. A token that is still an unresolved ``@Microsoft.KeyVault(...)`` reference (the secret
    is missing or the identity cannot read it: the platform then passes the reference text through) is
    not sent to Spur: an error is logged (without the value) and the Spur API stays off.
    """
    from shared.enrich.ip_embedded import default_data_dir

    def path(value: str | None) -> Path | None:
        value = (value or "").strip()
        return None if not value else _app_path(value)

    def text(value: str | None) -> str | None:
        p = path(value)
        return None if p is None else str(p)

    merged = feeds.model_copy(
        update={
            "maxmind_city_db": text(settings.maxmind_city_db),
            "maxmind_asn_db": text(settings.maxmind_asn_db),
            "maxmind_anonymous_db": text(settings.maxmind_anonymous_db),
            "spur_feed_paths": tuple(str(p) for p in _paths((settings.spur_feed_paths or "").split(","))),
            "spur_token_env": None,
        }
    )
    return intel_config(
        merged, data_dir=path(settings.ipdata_dir) or default_data_dir(), spur_token=_spur_token(settings.spur_token)
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
