"""The curated list of networks known for harbouring adversary workloads (``adversary_asns.json``).

A small data file shipped in the package: each entry is an ASN, its provider, the kind of network
(bulletproof hosting, sanctioned hosting) and the public source that documents it. Loaded once, validated
(every entry must name a source and an https URL), and read by ASN number from the enrichment's ``asn``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import msgspec


class AdversaryAsn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One network of the list, with the public source that documents it."""

    asn: int
    provider: str
    kind: Literal["bulletproof_hosting", "sanctioned_bulletproof_hosting"]
    source: str
    url: str

    def __post_init__(self) -> None:
        if self.asn <= 0 or not self.provider.strip() or not self.source.strip() or not self.url.startswith("https://"):
            raise ValueError(f"AS{self.asn}: every entry needs a provider, a source and an https URL")


class AdversaryAsnList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    about: str
    as_of: str
    asns: tuple[AdversaryAsn, ...]


@lru_cache(maxsize=1)
def adversary_asns() -> dict[int, AdversaryAsn]:
    """The list by ASN (read from the package once)."""
    data = resources.files("shared.detection").joinpath("adversary_asns.json").read_bytes()
    parsed = msgspec.json.decode(data, type=AdversaryAsnList)
    out: dict[int, AdversaryAsn] = {}
    for entry in parsed.asns:
        if entry.asn in out:
            raise ValueError(f"adversary_asns.json: AS{entry.asn} is listed twice")
        out[entry.asn] = entry
    return out


def adversary_asn(asn: int | None) -> AdversaryAsn | None:
    """The list's entry for ``asn``, or None."""
    return adversary_asns().get(asn) if asn is not None else None
