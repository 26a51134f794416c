"""Threat intelligence on by default: the shipped lists, their refresh, and one grading for scan and pipeline.

The expected counts, dates and sources are those of /work/shared/data/ipintel/README.md (the research copy
the snapshot was taken from): 1,746 Tor exit IPs (SecOps-Institute, 2024-02-27), X4BNet lists_vpn at
167937a7 (2026-08-22): 10,862 + 498 VPN CIDRs, 42,566 + 8,752 datacenter CIDRs, 906 datacenter ASN lines
(892 distinct: `grep -o "^AS[0-9]*" | sort -u`);
brianhama/bad-asn-list at cac788be (2026-03-18): 742 rows (723 distinct ASNs: `cut -d, -f1 | tr -d '"' | sort -u`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from shared.app import Services
from shared.cli.scan import ScanConfig
from shared.emulators.tls import LoopbackServer, TestCA
from shared.enrich.factory import IntelFeeds, build_ip_intel
from shared.enrich.feeds import blob_name, load_intel_feeds, refresh_feeds, refresh_sources
from shared.enrich.intel_lists import DATA_DIR, ShippedList, shipped_lists
from shared.enrich.ip_feeds import read_asn_feed, read_cidr_feed
from shared.platform import names
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

TOR_EXIT = "185.220.101.1"  # line 335 of the shipped tor-exit-nodes.txt
VPN_ADDRESS = "2.26.157.5"  # in 2.26.157.0/24, the first line of X4BNet output/vpn/ipv4.txt
NEW_EXIT = "192.42.116.16"  # not in the 2024 snapshot; the refreshed list names it

EXPECTED_LISTS = [
    # (name, kind, file, as of, entries)
    ("tor-exit-nodes", "tor", "tor-exit-nodes.txt", "2024-02-27", 1746),
    ("x4bnet-vpn-ipv4", "vpn", "x4bnet-vpn-ipv4.txt", "2026-08-22", 10862),
    ("x4bnet-vpn-ipv6", "vpn", "x4bnet-vpn-ipv6.txt", "2026-08-22", 498),
    ("x4bnet-datacenter-ipv4", "datacenter", "x4bnet-datacenter-ipv4.txt", "2026-08-22", 42566),
    ("x4bnet-datacenter-ipv6", "datacenter", "x4bnet-datacenter-ipv6.txt", "2026-08-22", 8752),
    (
        "x4bnet-datacenter-asn",
        "hosting_asn",
        "x4bnet-datacenter-asn.txt",
        "2026-08-22",
        892,
    ),  # 906 lines, 14 ASNs listed twice
    (
        "brianhama-bad-asn-list",
        "hosting_asn",
        "brianhama-bad-asn-list.csv",
        "2026-03-18",
        723,
    ),  # 742 rows, 723 distinct ASNs
]


def test_the_shipped_lists_are_complete_credited_and_small() -> None:
    got = []
    for s in shipped_lists():
        if s.kind == "hosting_asn":
            _, report = read_asn_feed(s.kind, s.path)
        else:
            _, report = read_cidr_feed(s.kind, s.path)
        assert (report.malformed, report.missing) == (0, False), s.name
        got.append((s.name, s.kind, s.file, s.as_of.isoformat(), report.entries))
    assert got == EXPECTED_LISTS
    notice = (DATA_DIR / "NOTICE.md").read_text()
    for s in shipped_lists():
        assert s.file in notice and s.licence == "MIT"
    assert "adversary_asns.json" in notice
    assert sorted(p.name for p in (DATA_DIR / "licenses").iterdir()) == [
        "SecOps-Tor-IP-Addresses-MIT.txt",
        "X4BNet-lists_vpn-MIT.txt",
        "brianhama-bad-asn-list-MIT.txt",
    ]
    assert sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file()) < 5 * 1024 * 1024


def test_with_no_feed_urls_the_timer_refreshes_every_shipped_list_from_its_public_source() -> None:
    assert [(kind, url, s.name if s else None) for kind, url, s in refresh_sources(Settings())] == [
        ("tor", "https://check.torproject.org/torbulkexitlist", "tor-exit-nodes"),
        ("vpn", "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv4.txt", "x4bnet-vpn-ipv4"),
        ("vpn", "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv6.txt", "x4bnet-vpn-ipv6"),
        (
            "datacenter",
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/datacenter/ipv4.txt",
            "x4bnet-datacenter-ipv4",
        ),
        (
            "datacenter",
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/datacenter/ipv6.txt",
            "x4bnet-datacenter-ipv6",
        ),
        (
            "hosting_asn",
            "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/input/datacenter/ASN.txt",
            "x4bnet-datacenter-asn",
        ),
        (
            "hosting_asn",
            "https://raw.githubusercontent.com/brianhama/bad-asn-list/master/bad-asn-list.csv",
            "brianhama-bad-asn-list",
        ),
    ]
    # a configured URL that is a shipped list's source refreshes that list (same blob name)
    configured = Settings(ITDR_INTEL_FEED_URLS='{"tor": ["https://check.torproject.org/torbulkexitlist"]}')
    [(kind, url, shipped)] = refresh_sources(configured)
    assert (kind, shipped and shipped.name) == ("tor", "tor-exit-nodes")
    assert blob_name(kind, url, shipped=shipped) == "tor/tor-exit-nodes.txt"


# --------------------------------------------------------------------------------------------
# the refresh against a local HTTPS stand-in of the public source


class _ListSource(BaseHTTPRequestHandler):
    """Serves ``owner[path]`` (bytes) with 200, anything else 404."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        body: bytes | None = self.server.owner.get(self.path)  # type: ignore[attr-defined]
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture
def source() -> Iterator[tuple[dict[str, bytes], str, httpx.Client]]:
    served: dict[str, bytes] = {}
    with TestCA.create() as ca, LoopbackServer(_ListSource, tls=ca.issue_server(), owner=served) as server:
        client = httpx.Client(verify=ssl.create_default_context(cafile=str(ca.bundle_path)), timeout=10.0)
        try:
            yield served, server.base_url, client
        finally:
            client.close()


def _tor_list(base_url: str, **changes: object) -> ShippedList:
    tor = next(s for s in shipped_lists() if s.name == "tor-exit-nodes")
    return tor.model_copy(update={"refresh_url": f"{base_url}/torbulkexitlist", **changes})


def services(storage: StorageClients) -> Services:
    return Services(Settings.from_env({}), storage=storage, bus=InProcessBus(default_queue_options()))


def test_refresh_replaces_the_snapshot_and_keeps_the_old_list_when_the_new_one_is_bad(
    storage: StorageClients, source: tuple[dict[str, bytes], str, httpx.Client], tmp_path: Path
) -> None:
    served, base, client = source
    assert NEW_EXIT not in (DATA_DIR / "tor-exit-nodes.txt").read_text().split()
    tor = _tor_list(base, min_entries=2, max_bytes=64)
    good = f"{NEW_EXIT}\n185.220.100.240\n".encode()
    served["/torbulkexitlist"] = good

    # before any refresh the pipeline grades with the shipped snapshot
    before = services(storage).ip_intel
    assert (before.lookup(TOR_EXIT).is_tor, before.lookup(NEW_EXIT).is_tor) == (True, None)

    report = refresh_feeds(storage, Settings(), http=client, sources=[("tor", tor.refresh_url, tor)])
    assert (report.stored, report.failed) == (["tor/tor-exit-nodes.txt"], {})

    bad_versions = {
        "malformed": b"192.42.116.16\nthis is not an address\n185.220.100.240\n",
        "oversized": b"\n".join([b"185.220.100.240"] * 5) + b"\n",  # 80 bytes > 64
        "too few entries": b"# only a comment and one address\n192.42.116.17\n",
        "not utf-8": b"\xff\xfe1.2.3.4\n5.6.7.8\n",
    }
    for why, body in bad_versions.items():
        served["/torbulkexitlist"] = body
        again = refresh_feeds(storage, Settings(), http=client, sources=[("tor", tor.refresh_url, tor)])
        assert (again.stored, list(again.failed)) == ([], ["tor/tor-exit-nodes.txt"]), why
    served.pop("/torbulkexitlist")
    gone = refresh_feeds(storage, Settings(), http=client, sources=[("tor", tor.refresh_url, tor)])
    assert gone.failed == {"tor/tor-exit-nodes.txt": "HTTPStatusError from 127.0.0.1"}

    stored = storage.container(names.CONTAINER_INTEL).download_blob("tor/tor-exit-nodes.txt").readall()
    assert stored == good
    feeds = load_intel_feeds(storage, directory=tmp_path)
    assert feeds.refreshed == {"tor-exit-nodes": str(tmp_path / "tor_tor-exit-nodes.txt")}

    # the pipeline now reads the refreshed copy instead of the snapshot, for Tor only
    after = services(storage).ip_intel
    assert (after.lookup(NEW_EXIT).is_tor, after.lookup(TOR_EXIT).is_tor, after.lookup(VPN_ADDRESS).is_vpn) == (
        True,
        None,
        True,
    )


ADDRESSES = [TOR_EXIT, VPN_ADDRESS, "8.8.8.8", "198.51.100.7", "2001:db8::1", NEW_EXIT]


def test_pipeline_and_scan_grade_every_address_the_same_way(storage: StorageClients) -> None:
    pipeline = services(storage).ip_intel
    scan = build_ip_intel(ScanConfig.load(None).intel)
    graded = [(pipeline.lookup(ip), scan.lookup(ip)) for ip in ADDRESSES]
    assert all(p == s for p, s in graded)
    flags = [(p.is_tor, p.is_vpn, p.anonymizer_kind) for p, _ in graded if p is not None]
    assert flags == [
        (True, True, "tor"),
        (None, True, "vpn"),
        (None, None, None),
        (None, None, None),
        (None, None, None),
        (None, None, None),
    ]


def test_a_config_can_replace_the_shipped_lists(tmp_path: Path) -> None:
    (tmp_path / "tor.txt").write_text(f"{NEW_EXIT}\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"intel": {"shipped": ["x4bnet-vpn-ipv4"], "tor_feeds": ["tor.txt"]}}')
    intel = build_ip_intel(ScanConfig.load(str(cfg)).intel)
    assert [(intel.lookup(ip).is_tor, intel.lookup(ip).is_vpn) for ip in (TOR_EXIT, NEW_EXIT, VPN_ADDRESS)] == [
        (None, True),
        (True, None),
        (None, True),
    ]
    assert IntelFeeds(shipped=()).shipped == ()
    with pytest.raises(ValueError, match="unknown shipped lists"):
        IntelFeeds(shipped=("no-such-list",))


def test_a_scan_config_naming_maxmind_and_spur_grades_like_the_pipeline_with_the_same_settings(
    storage: StorageClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    from shared.enrich.factory import intel_config, intel_config_from_settings
    from tests.enrich.ipfixtures import city_record, write_mmdb, write_ndjson

    city = write_mmdb(
        tmp_path / "maxmind" / "GeoIP2-City.mmdb",
        [("198.51.100.0/24", city_record("DE", "Hamburg", "Hamburg", 53.5511, 9.9937, 20))],
        database_type="GeoIP2-City",
    )
    spur = write_ndjson(tmp_path / "spur" / "feed.json", [{"ip": "2001:db8:1::9", "infrastructure": "MOBILE"}])
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        '{"intel": {"maxmind_city_db": "maxmind/GeoIP2-City.mmdb", "spur_feed_paths": ["spur/feed.json"],'
        ' "spur_token_env": "ITDR_TEST_SPUR_TOKEN"}}'
    )
    monkeypatch.setenv("ITDR_TEST_SPUR_TOKEN", "spur-tok-not-a-secret")
    settings = Settings.from_env(
        {
            "ITDR_MAXMIND_CITY_DB": str(city),
            "ITDR_SPUR_FEED_PATHS": str(spur),
            "ITDR_SPUR_TOKEN": "spur-tok-not-a-secret",
        }
    )
    scan_config = intel_config(ScanConfig.load(str(cfg)).intel)
    pipeline_config = intel_config_from_settings(settings, IntelFeeds())
    assert scan_config.spur_token == SecretStr("spur-tok-not-a-secret")
    assert scan_config == pipeline_config.model_copy(update={"data_dir": None})

    # graded the same (without the token: no Spur API in this test, only its feed file)
    offline = Settings.from_env({"ITDR_MAXMIND_CITY_DB": str(city), "ITDR_SPUR_FEED_PATHS": str(spur)})
    monkeypatch.delenv("ITDR_TEST_SPUR_TOKEN")
    scan = build_ip_intel(ScanConfig.load(str(cfg)).intel)
    pipeline = Services(offline, storage=storage, bus=InProcessBus(default_queue_options())).ip_intel
    for ip in ("198.51.100.7", "2001:db8:1::9", TOR_EXIT):
        assert scan.lookup(ip) == pipeline.lookup(ip), ip
    hamburg, mobile = scan.lookup("198.51.100.7"), scan.lookup("2001:db8:1::9")
    assert (hamburg.city, hamburg.geo_provider, mobile.is_mobile, mobile.source_of("is_mobile")) == (
        "Hamburg",
        "maxmind",
        True,
        "spur",
    )
