"""`itdr ip ADDRESS... [--format json|jsonl|table] [--config FILE]`: what is known about each address.

Uses the same data as `itdr scan` and the pipeline (:func:`shared.enrich.factory.intel_config`): the
embedded geo/ASN/cloud data, the shipped threat-intelligence lists (no configuration needed) and the
``intel`` section of the config. Each address carries ``lists``: every list consulted, whether it lists
the address (``listed``; None when an ASN list cannot tell because the ASN is unknown), and the list's
origin, date and age in days, so an analyst sees how fresh each verdict is. The curated known-bad
hosting providers (``shared/detection/adversary_asns.json``) are consulted too.

``json`` (the default when stdout is not a terminal) is one JSON array; ``jsonl`` one object per line;
``table`` (the default on a terminal) plain aligned text, escape sequences and control characters removed.
An input that is not an address is reported as such, never as an error.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import orjson

from shared.cli.terminal import safe
from shared.detection.adversary_infra import AdversaryAsnList, adversary_asn
from shared.enrich.factory import IntelFeeds, lists_in_use
from shared.enrich.intel_lists import ASN_KINDS, ListInUse
from shared.records.ip import normalize_ip

ADVERSARY_LIST = "adversary-asns"


class ListVerdicts:
    """Answers "does this list name the address?" for each list in use, one list at a time."""

    def __init__(self, lists: Sequence[ListInUse], *, today: dt.date) -> None:
        self._lists = list(lists)
        self._today = today
        self._cidr: dict[str, Any] = {}
        self._asn: dict[str, set[int]] = {}
        doc = resources.files("shared.detection").joinpath("adversary_asns.json").read_bytes()
        self._adversary_as_of = dt.date.fromisoformat(msgspec.json.decode(doc, type=AdversaryAsnList).as_of)

    def _cidr_listed(self, item: ListInUse, ip: str) -> bool:
        from shared.enrich.ip_feeds import CIDR_FEED_FLAGS, FeedProvider

        provider = self._cidr.get(item.path)
        if provider is None:
            provider = FeedProvider(**{item.kind: (Path(item.path),)})
            self._cidr[item.path] = provider
        version = 6 if ":" in ip else 4
        value = int(ipaddress.ip_address(ip))
        facts = provider.lookup(ip, version, value)
        return facts is not None and getattr(facts, CIDR_FEED_FLAGS[item.kind][1]) is True

    def _asn_listed(self, item: ListInUse, asn: int | None) -> bool | None:
        from shared.enrich.ip_feeds import read_asn_feed

        if asn is None:
            return None
        listed = self._asn.get(item.path)
        if listed is None:
            listed, _ = read_asn_feed(item.kind, Path(item.path))
            self._asn[item.path] = listed
        return asn in listed

    def verdicts(self, ip: str, asn: int | None) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for item in self._lists:
            listed = self._asn_listed(item, asn) if item.kind in ASN_KINDS else self._cidr_listed(item, ip)
            out.append({**item.describe(self._today), "listed": listed})
        entry = adversary_asn(asn)
        out.append(
            {
                "name": ADVERSARY_LIST,
                "kind": "adversary_asn",
                "origin": "shipped",
                "as_of": self._adversary_as_of.isoformat(),
                "age_days": (self._today - self._adversary_as_of).days,
                "source": entry.source if entry is not None else "shared/detection/adversary_asns.json",
                "licence": None,
                "listed": None if asn is None else entry is not None,
            }
        )
        return out


def lookup_all(
    addresses: list[str], intel: Any, feeds: IntelFeeds | None = None, *, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready object per input: the address's facts and, with ``feeds``, each list's verdict."""
    day = today or dt.datetime.now(dt.UTC).date()
    verdicts = ListVerdicts(lists_in_use(feeds), today=day) if feeds is not None else None
    out: list[dict[str, Any]] = []
    for raw in addresses:
        ip = normalize_ip(raw)
        if ip is None:
            out.append({"input": raw, "error": "not an IP address"})
            continue
        info = intel.lookup(ip)
        body: dict[str, Any] = {"input": raw, "ip": ip}
        body.update(info.to_dict() if info is not None else {"known": False})
        if verdicts is not None:
            body["lists"] = verdicts.verdicts(ip, info.asn if info is not None else None)
        out.append(body)
    return out


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "unknown"


def format_table(items: Sequence[dict[str, Any]]) -> str:
    """Plain aligned text: a line per address, then one row per list; control characters replaced."""
    lines: list[str] = []
    for item in items:
        if "error" in item:
            lines.append(f"{item['input']}: {item['error']}")
            lines.append("")
            continue
        where = ", ".join(str(x) for x in (item.get("city"), item.get("country")) if x) or "location unknown"
        asn = f"AS{item['asn']} {item.get('asn_org') or ''}".strip() if item.get("asn") else "ASN unknown"
        lines.append(f"{item['ip']}  {where}  {asn}")
        lines.append(
            f"  anonymizer: {item.get('anonymizer_kind') or 'none known'}  tor: {_yes_no(item.get('is_tor'))}"
            f"  vpn: {_yes_no(item.get('is_vpn'))}  hosting: {_yes_no(item.get('is_hosting'))}"
        )
        rows = [("SOURCE", "KIND", "VERDICT", "ORIGIN", "AS OF", "AGE (DAYS)")]
        for v in item.get("lists", ()):
            verdict = "listed" if v["listed"] is True else "not listed" if v["listed"] is False else "unknown"
            age = "" if v["age_days"] is None else str(v["age_days"])
            rows.append((str(v["name"]), str(v["kind"]), verdict, str(v["origin"]), str(v["as_of"] or ""), age))
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            lines += ["  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        lines.append("")
    return "\n".join(safe(line) for line in lines)


def run(args: Any) -> int:
    from shared.cli.scan import ScanConfig
    from shared.enrich.factory import build_ip_intel

    cfg = ScanConfig.load(args.config)
    intel = build_ip_intel(cfg.intel)
    items = lookup_all(list(args.addresses), intel, cfg.intel)
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    out = sys.stdout.buffer
    if fmt == "json":
        out.write(orjson.dumps(items, option=orjson.OPT_INDENT_2) + b"\n")
    elif fmt == "jsonl":
        for item in items:
            out.write(orjson.dumps(item) + b"\n")
    else:
        out.write(format_table(items).encode())
    sys.stdout.flush()
    return 0
