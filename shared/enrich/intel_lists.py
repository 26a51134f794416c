"""The public threat-intelligence lists shipped with the package (``shared/enrich/data/intel/``).

Tor exit nodes, commercial VPN ranges, datacenter ranges and hosting ASNs, each a dated snapshot of a
public list whose source and licence ``NOTICE.md`` credits. They are on by default: ``itdr ip``,
``itdr scan`` and the pipeline use them with no configuration; the deployed ``refresh_intel`` timer
(:mod:`shared.enrich.feeds`) replaces each with a fresh copy from its ``refresh_url`` and the
pipeline then reads the refreshed copy instead of the snapshot.

Every list in use is described by a :class:`ListInUse` (name, kind, file, date, origin), so the
commands can say how old each is.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DATA_DIR = Path(__file__).resolve().parent / "data" / "intel"
MANIFEST = DATA_DIR / "lists.json"

ListKind = Literal["vpn", "tor", "proxy", "datacenter", "icloud_relay", "hosting_asn"]
ASN_KINDS: frozenset[str] = frozenset({"hosting_asn"})


class ShippedList(BaseModel):
    """One shipped list, as ``lists.json`` describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: ListKind
    file: str
    as_of: dt.date
    """The snapshot's date (the source commit's date)."""
    source: str
    source_url: str
    licence: str
    refresh_url: str = Field(pattern=r"^https://")
    max_bytes: int = Field(gt=0)
    """A refreshed copy larger than this is refused (the previous copy is kept)."""
    min_entries: int = Field(ge=1)
    """A refreshed copy with fewer valid entries is refused (a truncated or emptied list)."""

    @property
    def path(self) -> Path:
        """The shipped snapshot file."""
        return DATA_DIR / self.file


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str
    lists: tuple[ShippedList, ...]


@cache
def shipped_lists() -> tuple[ShippedList, ...]:
    """Every shipped list, in manifest order."""
    return _Manifest.model_validate_json(MANIFEST.read_bytes()).lists


def shipped_by_url() -> dict[str, ShippedList]:
    """Shipped lists by their refresh URL."""
    return {s.refresh_url: s for s in shipped_lists()}


Origin = Literal["shipped", "refreshed", "configured"]


class ListInUse(BaseModel):
    """A list file the IP intelligence reads, and how old it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: ListKind
    path: str
    origin: Origin
    """``shipped`` (the package's snapshot), ``refreshed`` (the timer's copy), ``configured`` (a file you named)."""
    as_of: dt.date | None
    """The snapshot date, the refresh date, or the configured file's modification date."""
    source: str | None = None
    licence: str | None = None

    def age_days(self, today: dt.date) -> int | None:
        """Whole days between ``as_of`` and ``today``."""
        return None if self.as_of is None else (today - self.as_of).days

    def describe(self, today: dt.date) -> dict[str, object]:
        """JSON-ready form with the age."""
        return {
            "name": self.name,
            "kind": self.kind,
            "origin": self.origin,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "age_days": self.age_days(today),
            "source": self.source,
            "licence": self.licence,
        }


def file_date(path: Path) -> dt.date | None:
    """A file's modification date (UTC), None when it cannot be read."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).date()
    except OSError:
        return None
