"""`itdr ip ADDRESS...`: the normalised context of each address, as JSON, for analysts triaging.

Uses the same data and feeds as `itdr scan --config` (the ``intel`` section of the config).
An input that is not an address is reported as such, never as an error.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from shared.records.ip import normalize_ip


def lookup_all(addresses: list[str], intel: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in addresses:
        ip = normalize_ip(raw)
        if ip is None:
            out.append({"input": raw, "error": "not an IP address"})
            continue
        info = intel.lookup(ip)
        body: dict[str, Any] = {"input": raw, "ip": ip}
        body.update(info.to_dict() if info is not None else {"known": False})
        out.append(body)
    return out


def run(args: Any) -> int:
    from shared.cli.scan import ScanConfig
    from shared.enrich.factory import build_ip_intel

    cfg = ScanConfig.load(args.config)
    intel = build_ip_intel(cfg.intel)
    for item in lookup_all(list(args.addresses), intel):
        sys.stdout.buffer.write(orjson.dumps(item, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
    return 0
