"""IP intelligence: providers, precedence and sources, feeds, MaxMind and Spur adapters, the compiled table."""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.enrich.ip_embedded import (
    TABLE_FILE,
    EmbeddedProvider,
    cloud_tables_from,
    default_data_dir,
    find_node_modules,
)
from shared.enrich.ip_feeds import AsnClassifier, FeedProvider, FeedReport
from shared.enrich.ip_maxmind import MaxMindProvider
from shared.enrich.ip_model import IpFacts, facts
from shared.enrich.ip_ranges import V4_LIMIT, steps_from_disjoint, steps_most_specific, steps_union_bits
from shared.enrich.ip_spur import SpurApiProvider, SpurContextClient, SpurFeedProvider, spur_facts
from shared.enrich.ip_table import TableFormatError, map_table, read_table
from shared.enrich.ipintel import (
    IntelConfig,
    IpInfo,
    IpIntelClient,
    StaticIpProvider,
    measure_lookups,
)
from shared.platform.errors import (
    ConfigurationError,
    ForbiddenTargetError,
    PermissionError_,
    ServiceUnavailable,
    ThrottledError,
)
from shared.tools.build_ipdata import build_ipdata, main
from tests.enrich.ipfixtures import (
    city_record,
    dbip_record,
    make_node_modules,
    write_lines,
    write_mmdb,
    write_ndjson,
)

REPO = Path(__file__).resolve().parents[2]
BERLIN = dbip_record("DE", "State of Berlin", "Berlin", 52.52, 13.405)
PARIS = dbip_record("FR", "Île-de-France", "Paris", 48.8566, 2.3522)
MOUNTAIN_VIEW = dbip_record("US", "California", "Mountain View", 37.422, -122.085)
V4_NETWORKS = [
    ("198.51.100.0/24", BERLIN),
    ("203.0.113.0/25", PARIS),
    ("203.0.113.128/25", PARIS),
    ("192.0.2.0/24", MOUNTAIN_VIEW),
]
V6_NETWORKS = [("2001:db8:1::/48", BERLIN)]
ASN_V4 = [
    ("198.51.100.0", "198.51.100.255", 3320, "Deutsche Telekom AG"),
    ("203.0.113.0", "203.0.113.255", 16509, "Amazon.com, Inc."),
    ("192.0.2.0", "192.0.2.127", 21928, "T-Mobile USA, Inc."),
    ("192.0.2.128", "192.0.2.255", 14593, "Space Exploration Technologies Corporation"),
    ("45.140.13.0", "45.140.13.255", 64500, "Example Hosting"),
]
ASN_V6 = [("2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", 3320, "Deutsche Telekom AG")]
CLOUD = [
    ("203.0.113.0/24", "aws", "AMAZON", "eu-west-1"),
    ("203.0.113.0/24", "aws", "EC2", "eu-west-1"),
    ("203.0.113.64/26", "azure", "AZUREACTIVEDIRECTORY", None),
    ("2001:db8:2::/48", "gcp", "GOOGLE_CLOUD", "europe-west3"),
]


def tiny_cloud() -> Any:
    return cloud_tables_from(CLOUD)


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nm")
    return make_node_modules(root, v4=V4_NETWORKS, v6=V6_NETWORKS, asn_v4=ASN_V4, asn_v6=ASN_V6)


@pytest.fixture(scope="module")
def compiled_dir(node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ipdata")
    build_ipdata(node_modules, out / TABLE_FILE, cloud=tiny_cloud())
    return out


def embedded(node_modules: Path, data_dir: Path, *, compiled: bool = True) -> EmbeddedProvider:
    return EmbeddedProvider(data_dir=data_dir, node_modules_dir=node_modules, use_compiled=compiled, cloud=tiny_cloud)


def client_of(*providers: Any, hosting_feeds: tuple[Path, ...] = ()) -> IpIntelClient:
    return IpIntelClient(providers, asn_classifier=AsnClassifier(hosting_feeds=hosting_feeds), freeze_gc=False)


def info(ip: str, **values: Any) -> IpInfo:
    """An IpInfo with every field unknown except ``values``."""
    base: dict[str, Any] = dict.fromkeys(IpInfo.__struct_fields__)
    base.update(ip=ip, version=6 if ":" in ip else 4, tags=(), sources=())
    base.update(values)
    return IpInfo(**base)


def dbip_geo(country: str, region: str, city: str, lat: float, lon: float) -> dict[str, Any]:
    return dict(
        country=country,
        region=region,
        city=city,
        latitude=lat,
        longitude=lon,
        accuracy_km=250.0,
        geo_provider="dbip",
    )


# --------------------------------------------------------------------------------------------
# IpInfo


@pytest.mark.parametrize(
    ("flags", "kind", "anonymous"),
    [
        ({}, None, False),
        ({"is_vpn": False, "is_tor": False}, None, False),
        ({"is_vpn": True}, "vpn", True),
        ({"is_proxy": True, "is_vpn": True}, "public_proxy", True),
        ({"is_residential_proxy": True, "is_proxy": True}, "residential_proxy", True),
        ({"is_tor": True, "is_residential_proxy": True, "is_vpn": True}, "tor", True),
        ({"is_hosting": True, "is_mobile": True}, None, False),
    ],
)
def test_anonymizer_kind_and_is_anonymous(flags: dict[str, bool], kind: str | None, anonymous: bool) -> None:
    got = info("192.0.2.1", **flags)
    assert (got.anonymizer_kind, got.is_anonymous) == (kind, anonymous)


def test_to_dict_is_json_ready_and_source_of_maps_fields_to_groups() -> None:
    got = info(
        "192.0.2.1",
        country="US",
        latitude=1.5,
        geo_provider="dbip",
        is_tor=True,
        tags=("risk:tunnel",),
        sources=(("geo", "dbip"), ("is_tor", "feeds")),
    )
    d = got.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["sources"] == {"geo": "dbip", "is_tor": "feeds"}
    assert d["tags"] == ["risk:tunnel"]
    assert (d["is_anonymous"], d["anonymizer_kind"]) == (True, "tor")
    assert [got.source_of(f) for f in ("latitude", "geo", "is_tor", "asn")] == ["dbip", "dbip", "feeds", None]


def test_info_is_a_frozen_value() -> None:
    f = facts("dbip", tags=("x",), country="DE", latitude=1.0, asn=3320, is_vpn=False)
    info = IpInfo("198.51.100.1", 4, *f)
    assert info == IpInfo("198.51.100.1", 4, *f) != IpInfo("198.51.100.2", 4, *f)
    assert hash(info) == hash(IpInfo("198.51.100.1", 4, *f))
    assert (info.country, info.asn, info.tags) == ("DE", 3320, ("x",))
    with pytest.raises(AttributeError):
        info.country = "FR"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# step tables


def test_step_builders() -> None:
    assert steps_from_disjoint([(10, 19, "a"), (15, 30, "b"), (40, 49, "c")], None, limit=100) == (
        [0, 10, 15, 31, 40, 50],
        [None, "a", "b", None, "c", None],
    )
    # nested CIDRs: the most specific wins; equal prefixes: lowest rank
    assert steps_most_specific(
        [(0, 255, (1,), "big"), (16, 31, (1,), "small"), (16, 31, (0,), "first")], "-", limit=V4_LIMIT
    ) == (
        [0, 16, 32, 256],
        ["big", "first", "big", "-"],
    )
    assert steps_union_bits([(0, 9, 1), (5, 14, 2), (20, 20, 4)], limit=100) == (
        [0, 5, 10, 15, 20, 21],
        [1, 3, 2, 0, 4, 0],
    )


# --------------------------------------------------------------------------------------------
# embedded data (tiny DB-IP / ASN / cloud fixtures)

EMBEDDED_CASES = [
    (
        "198.51.100.7",
        info(
            "198.51.100.7",
            **dbip_geo("DE", "State of Berlin", "Berlin", 52.52, 13.405),
            asn=3320,
            asn_org="Deutsche Telekom AG",
            sources=(("geo", "dbip"), ("asn", "ip-location-db-asn")),
        ),
    ),
    (
        "203.0.113.5",  # AWS: EC2 beats the generic AMAZON tag for the same prefix; AS16509 is hosting too
        info(
            "203.0.113.5",
            **dbip_geo("FR", "Île-de-France", "Paris", 48.8566, 2.3522),
            asn=16509,
            asn_org="Amazon.com, Inc.",
            is_hosting=True,
            cloud_provider="aws",
            cloud_service="EC2",
            tags=("cloud_region:eu-west-1",),
            sources=(("geo", "dbip"), ("asn", "ip-location-db-asn"), ("is_hosting", "cloudip"), ("cloud", "cloudip")),
        ),
    ),
    (
        "203.0.113.70",  # the more specific Entra ID range: a Microsoft service endpoint
        info(
            "203.0.113.70",
            **dbip_geo("FR", "Île-de-France", "Paris", 48.8566, 2.3522),
            asn=16509,
            asn_org="Amazon.com, Inc.",
            is_hosting=True,
            cloud_provider="azure",
            cloud_service="AZUREACTIVEDIRECTORY",
            is_microsoft_service=True,
            sources=(
                ("geo", "dbip"),
                ("asn", "ip-location-db-asn"),
                ("is_hosting", "cloudip"),
                ("cloud", "cloudip"),
                ("is_microsoft_service", "cloudip"),
            ),
        ),
    ),
    (
        "192.0.2.10",  # T-Mobile US: mobile by the built-in ASN list
        info(
            "192.0.2.10",
            **dbip_geo("US", "California", "Mountain View", 37.422, -122.085),
            asn=21928,
            asn_org="T-Mobile USA, Inc.",
            is_mobile=True,
            sources=(("geo", "dbip"), ("asn", "ip-location-db-asn"), ("is_mobile", "asn-list")),
        ),
    ),
    (
        "192.0.2.200",  # Starlink: tagged satellite, nothing else claimed
        info(
            "192.0.2.200",
            **dbip_geo("US", "California", "Mountain View", 37.422, -122.085),
            asn=14593,
            asn_org="Space Exploration Technologies Corporation",
            tags=("satellite",),
            sources=(("geo", "dbip"), ("asn", "ip-location-db-asn")),
        ),
    ),
    (
        "45.140.13.9",  # ASN only, no geo
        info("45.140.13.9", asn=64500, asn_org="Example Hosting", sources=(("asn", "ip-location-db-asn"),)),
    ),
    (
        "2001:db8:1::42",
        info(
            "2001:db8:1::42",
            **dbip_geo("DE", "State of Berlin", "Berlin", 52.52, 13.405),
            asn=3320,
            asn_org="Deutsche Telekom AG",
            sources=(("geo", "dbip"), ("asn", "ip-location-db-asn")),
        ),
    ),
    (
        "2001:db8:2::1",
        info(
            "2001:db8:2::1",
            is_hosting=True,
            cloud_provider="gcp",
            cloud_service="GOOGLE_CLOUD",
            tags=("cloud_region:europe-west3",),
            sources=(("is_hosting", "cloudip"), ("cloud", "cloudip")),
        ),
    ),
    ("10.1.2.3", info("10.1.2.3", tags=("private",))),
    ("100.64.0.1", info("100.64.0.1", tags=("cgnat",))),
    ("127.0.0.1", info("127.0.0.1", tags=("loopback",))),
    ("240.0.0.1", info("240.0.0.1", tags=("non_global",))),
    ("fe80::1", info("fe80::1", tags=("link_local",))),
    ("8.8.4.4", info("8.8.4.4")),  # nothing known: all None (not False)
]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "mmdb"])
@pytest.mark.parametrize(("ip", "expected"), EMBEDDED_CASES, ids=[c[0] for c in EMBEDDED_CASES])
def test_embedded_answers(node_modules: Path, compiled_dir: Path, compiled: bool, ip: str, expected: IpInfo) -> None:
    provider = embedded(node_modules, compiled_dir, compiled=compiled)
    client = client_of(provider)
    assert client.lookup(ip) == expected
    assert provider.mode == ("compiled" if compiled else "mmdb")


def _boundary_sample(seed: int) -> list[str]:
    """Every range edge of the fixtures, one address either side, and random addresses near them."""
    rng = random.Random(seed)
    edges: set[int] = set()
    for cidr, _ in V4_NETWORKS:
        net = ipaddress.ip_network(cidr)
        edges |= {int(net.network_address), int(net.broadcast_address)}
    for first, last, _, _ in ASN_V4:
        edges |= {int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last))}
    for cidr, *_ in CLOUD:
        net = ipaddress.ip_network(cidr)
        if net.version == 4:
            edges |= {int(net.network_address), int(net.broadcast_address)}
    values = {e + d for e in edges for d in (-1, 0, 1)} | {
        rng.randrange(e - 600, e + 600) for e in edges for _ in range(20)
    }
    return [str(ipaddress.ip_address(v)) for v in sorted(values) if 0 <= v < V4_LIMIT]


def test_compiled_table_and_mmdb_give_the_same_answers(node_modules: Path, compiled_dir: Path) -> None:
    fast = client_of(embedded(node_modules, compiled_dir, compiled=True))
    slow = client_of(embedded(node_modules, compiled_dir, compiled=False))
    sample = [*_boundary_sample(7), "2001:db8:1::1", "2001:db8:2::ffff", "2001:db8:3::1"]
    differ = [(ip, fast.lookup(ip), slow.lookup(ip)) for ip in sample if fast.lookup(ip) != slow.lookup(ip)]
    assert differ == []
    assert len({fast.lookup(ip).asn for ip in sample}) >= 5  # type: ignore[union-attr]  # the sample hits the data


def test_unreadable_table_falls_back_to_mmdb_and_no_data_is_unavailable(node_modules: Path, tmp_path: Path) -> None:
    (tmp_path / TABLE_FILE).write_bytes(b"ITDRIP01" + b"\xff" * 64)
    provider = embedded(node_modules, tmp_path)
    assert client_of(provider).lookup("198.51.100.1").country == "DE"  # type: ignore[union-attr]
    assert provider.mode == "mmdb"
    with pytest.raises(TableFormatError):
        read_table(tmp_path / TABLE_FILE)

    nothing = EmbeddedProvider(data_dir=tmp_path / "none", node_modules_dir=tmp_path / "none", cloud=tiny_cloud)
    assert client_of(nothing).lookup("198.51.100.1") == info("198.51.100.1", tags=("documentation",))
    assert nothing.mode == "unavailable"


def test_table_file_round_trip_mapped_and_read(compiled_dir: Path) -> None:
    mapped = map_table(compiled_dir / TABLE_FILE)
    read = read_table(compiled_dir / TABLE_FILE)
    try:
        assert mapped.meta == read.meta
        assert mapped.meta["sources"] == {
            "dbip": "0.0.1-test",
            "asn": "0.0.2-test",
            "cloudip": mapped.meta["sources"]["cloudip"],
        }
        assert {k: list(v) for k, v in mapped.arrays.items()} == {k: list(v) for k, v in read.arrays.items()}
        assert mapped.blobs == read.blobs
        assert list(mapped.arrays["v4_index"])[-1] == len(mapped.arrays["v4_starts"]) - 1
    finally:
        mapped.close()


def test_build_command(node_modules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.bin"
    assert main(["--node-modules", str(node_modules), "--out", str(out), "--no-cloud"]) == 0
    table = read_table(out)
    assert table.meta["sources"]["cloudip"] is None
    assert table.meta["counts"]["cloud_entries"] == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["--node-modules", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_find_node_modules_walks_up(node_modules: Path) -> None:
    deep = node_modules.parent / "a" / "b"
    deep.mkdir(parents=True)
    assert find_node_modules(deep) == node_modules
    assert find_node_modules(Path("/")) is None


# --------------------------------------------------------------------------------------------
# feeds


@pytest.fixture
def feeds(tmp_path: Path) -> dict[str, Path]:
    return {
        "vpn": write_lines(
            tmp_path / "vpn.txt",
            [
                "# X4BNet-style list",
                "198.51.100.0/28",
                "198.51.100.200   # one address, with a comment",
                "not-an-ip",
                "",
                "2001:db8:1::/64",
                "300.1.1.1",
                "::ffff:192.0.2.77",
            ],
        ),
        "tor": write_lines(tmp_path / "tor.txt", ["198.51.100.5", "198.51.100.200"]),
        "proxy": write_lines(tmp_path / "proxy.txt", ["192.0.2.99/32"]),
        "icloud": write_lines(
            tmp_path / "egress-ip-ranges.csv",
            ["172.224.226.0/27,GB,GB-EN,London,", "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,"],
        ),
        "hosting": write_lines(
            tmp_path / "asn.txt",
            ["ASN,Entity", "AS64500 # Example Hosting", "as64501", '64502, "Name, Inc"', "ASX", "# only a comment"],
        ),
    }


def feed_client(node_modules: Path, compiled_dir: Path, feeds: dict[str, Path], *extra: Any) -> IpIntelClient:
    feed = FeedProvider(vpn=[feeds["vpn"]], tor=[feeds["tor"]], proxy=[feeds["proxy"]], icloud_relay=[feeds["icloud"]])
    return client_of(*extra, feed, embedded(node_modules, compiled_dir), hosting_feeds=(feeds["hosting"],))


@pytest.mark.parametrize(
    ("ip", "flags", "sources"),
    [
        ("198.51.100.3", {"is_vpn": True}, (("is_vpn", "feeds"),)),
        ("198.51.100.5", {"is_vpn": True, "is_tor": True}, (("is_vpn", "feeds"), ("is_tor", "feeds"))),
        ("198.51.100.200", {"is_vpn": True, "is_tor": True}, (("is_vpn", "feeds"), ("is_tor", "feeds"))),
        ("198.51.100.16", {}, ()),  # just past the /28
        ("192.0.2.99", {"is_proxy": True, "is_mobile": True}, (("is_proxy", "feeds"), ("is_mobile", "asn-list"))),
        ("192.0.2.77", {"is_vpn": True, "is_mobile": True}, (("is_vpn", "feeds"), ("is_mobile", "asn-list"))),
        ("172.224.226.9", {"is_icloud_relay": True}, (("is_icloud_relay", "feeds"),)),
        ("2a02:26f7:b3c0:4000::1", {"is_icloud_relay": True}, (("is_icloud_relay", "feeds"),)),
        ("2001:db8:1::9", {"is_vpn": True}, (("is_vpn", "feeds"),)),
        ("45.140.13.9", {"is_hosting": True}, (("is_hosting", "feeds"),)),  # AS64500 from the hosting ASN feed
    ],
)
def test_feed_flags(
    node_modules: Path,
    compiled_dir: Path,
    feeds: dict[str, Path],
    ip: str,
    flags: dict[str, bool],
    sources: tuple[tuple[str, str], ...],
) -> None:
    got = feed_client(node_modules, compiled_dir, feeds).lookup(ip)
    assert got is not None
    unknown = ("is_vpn", "is_tor", "is_proxy", "is_icloud_relay", "is_residential_proxy", "is_mobile", "is_hosting")
    assert {f: getattr(got, f) for f in unknown} == {f: flags.get(f) for f in unknown}  # unlisted stays None
    assert tuple(s for s in got.sources if s[1] in ("feeds", "asn-list")) == sources


def test_malformed_and_missing_feeds_are_counted_not_raised(feeds: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "gone.txt"
    client = client_of(
        FeedProvider(vpn=[feeds["vpn"]], tor=[missing]), hosting_feeds=(feeds["hosting"], tmp_path / "gone-asn.txt")
    )
    assert client.feed_reports == (
        FeedReport("vpn", str(feeds["vpn"]), 4, 2, bad_lines=(4, 7)),
        FeedReport("tor", str(missing), 0, 0, missing=True),
        FeedReport("hosting_asn", str(feeds["hosting"]), 3, 1, bad_lines=(5,)),
        FeedReport("hosting_asn", str(tmp_path / "gone-asn.txt"), 0, 0, missing=True),
    )
    assert client.feed_errors == {
        str(feeds["vpn"]): 2,
        str(missing): 1,
        str(feeds["hosting"]): 1,
        str(tmp_path / "gone-asn.txt"): 1,
    }


# --------------------------------------------------------------------------------------------
# precedence and sources


def test_first_provider_to_answer_a_group_wins_it_whole() -> None:
    first = StaticIpProvider(
        "spur", {"192.0.2.1": facts("spur", country="NL", city="Amsterdam", is_vpn=True, vpn_operator="NORD")}
    )
    second = StaticIpProvider(
        "maxmind",
        {
            "192.0.2.1": facts(
                "maxmind",
                country="DE",
                latitude=52.5,
                longitude=13.4,
                accuracy_km=20.0,
                geo_provider="maxmind",
                asn=9009,
                asn_org="M247",
                is_vpn=False,
                is_tor=False,
                tags=("anonymous",),
            )
        },
    )
    third = StaticIpProvider("embedded", {"192.0.2.1": facts("dbip", asn=1, is_hosting=True, tags=("anonymous", "x"))})
    got = client_of(first, second, third).lookup("192.0.2.1")
    assert got == info(
        "192.0.2.1",
        country="NL",  # Spur answered geo (country + city): its coordinates (none) are not mixed with MaxMind's
        city="Amsterdam",
        asn=9009,
        asn_org="M247",
        is_hosting=True,
        is_vpn=True,
        vpn_operator="NORD",
        is_tor=False,
        tags=("anonymous", "x"),
        sources=(
            ("geo", "spur"),
            ("asn", "maxmind"),
            ("is_hosting", "dbip"),
            ("is_vpn", "spur"),
            ("is_tor", "maxmind"),
        ),
    )


def test_a_false_answer_wins_over_a_later_true_one_and_asn_classes_fill_only_gaps() -> None:
    spur = StaticIpProvider("spur", {"192.0.2.1": facts("spur", asn=16509, is_hosting=False, is_mobile=False)})
    feed = StaticIpProvider("feeds", {"192.0.2.1": facts("feeds", is_hosting=True)})
    got = client_of(spur, feed).lookup("192.0.2.1")
    assert (got.is_hosting, got.is_mobile, got.sources) == (  # type: ignore[union-attr]
        False,
        False,
        (("asn", "spur"), ("is_hosting", "spur"), ("is_mobile", "spur")),
    )
    only_asn = client_of(StaticIpProvider("x", {"192.0.2.1": facts("x", asn=16509)})).lookup("192.0.2.1")
    assert (only_asn.is_hosting, only_asn.sources) == (True, (("asn", "x"), ("is_hosting", "asn-list")))  # type: ignore[union-attr]


def test_lookups_are_cached_from_the_second_sighting_and_load_is_lazy() -> None:
    answers = {ip: facts("p", country="US") for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4")}
    provider = StaticIpProvider("p", answers)
    client = IpIntelClient([provider], cache_size=2)
    assert not client._loaded
    got = [client.lookup("192.0.2.1") for _ in range(4)]
    assert got == [info("192.0.2.1", country="US", sources=(("geo", "p"),))] * 4
    assert provider.calls == 2  # computed on the first two sightings, cached from the second
    for one_off in ("192.0.2.2", "192.0.2.3"):  # one-off addresses do not evict it
        client.lookup(one_off)
    client.lookup("192.0.2.1")
    assert provider.calls == 4
    client.clear_cache()
    client.lookup("192.0.2.1")
    assert provider.calls == 5
    uncached = IpIntelClient([provider], cache_size=0)
    for _ in range(3):
        uncached.lookup("192.0.2.4")
    assert provider.calls == 8


@pytest.mark.parametrize(
    ("raw", "ip"),
    [
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("1.2.3.4:5", "1.2.3.4"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        (" 2001:DB8:0:0::1 ", "2001:db8::1"),
        ("host.example.com", None),
        ("", None),
        (None, None),
    ],
)
def test_lookup_raw_normalises_messy_values(raw: str | None, ip: str | None) -> None:
    provider = StaticIpProvider("p", {})
    client = client_of(provider)
    got = client.lookup_raw(raw)
    assert (got.ip if got else None, got.version if got else None) == (ip, (6 if ":" in ip else 4) if ip else None)
    assert client.unparsed_count == (1 if raw and ip is None else 0)


def test_lookup_of_none_and_garbage() -> None:
    client = client_of(StaticIpProvider("p", {}))
    assert client.lookup(None) is None
    assert client.lookup("not an ip") is None
    assert client.unparsed_count == 1


def test_from_config_composes_in_precedence_order(tmp_path: Path, feeds: dict[str, Path]) -> None:
    city = write_mmdb(
        tmp_path / "city.mmdb",
        [("192.0.2.0/24", city_record("US", "CA", "X", 1.0, 2.0, 5))],
        database_type="GeoIP2-City",
    )
    spur_feed = write_ndjson(tmp_path / "spur.ndjson", [{"ip": "192.0.2.1"}])
    config = IntelConfig(
        spur_token="t0ken",
        spur_feeds=[spur_feed],
        maxmind_city=city,
        tor_feeds=[str(feeds["tor"])],
        rogue_app_feeds=[tmp_path / "rogue.json"],
        data_dir=tmp_path,
    )
    client = IpIntelClient.from_config(
        config, http_client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    )
    assert [type(p).__name__ for p in client.providers] == [
        "SpurApiProvider",
        "SpurFeedProvider",
        "MaxMindProvider",
        "FeedProvider",
        "EmbeddedProvider",
    ]
    assert [type(p).__name__ for p in IpIntelClient.from_config(IntelConfig()).providers] == ["EmbeddedProvider"]
    with pytest.raises(ValueError, match="frozen"):
        config.vpn_feeds = ()  # type: ignore[misc]


def test_importing_the_module_loads_no_data() -> None:
    code = "import sys, shared.enrich.ipintel; print(sorted(m for m in ('maxminddb', 'cloudip', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_measure_lookups_reports_throughput_and_memory(node_modules: Path, compiled_dir: Path) -> None:
    client = client_of(embedded(node_modules, compiled_dir))
    got = measure_lookups(client, n=500, seed=3)
    assert set(got) >= {
        "lookups_per_second",
        "memory_mb",
        "cold_lookups_per_s",
        "cold_gc_off_lookups_per_s",
        "zipf_lookups_per_s",
        "load_traced_mb",
        "table_mapped_mb",
        "rss_mb",
    }
    assert got["lookups_per_second"] > 0 and got["memory_mb"] >= got["table_mapped_mb"] > 0
    assert got["providers"][0]["mode"] == "compiled"


# --------------------------------------------------------------------------------------------
# MaxMind


@pytest.fixture
def maxmind_files(tmp_path: Path) -> dict[str, Path]:
    return {
        "city": write_mmdb(
            tmp_path / "GeoIP2-City.mmdb",
            [("198.51.100.0/24", city_record("DE", "Berlin", "Berlin", 52.5196, 13.4069, 20))],
            database_type="GeoIP2-City",
        ),
        "asn": write_mmdb(
            tmp_path / "GeoLite2-ASN.mmdb",
            [("198.51.100.0/24", {"autonomous_system_number": 3320, "autonomous_system_organization": "DTAG"})],
            database_type="GeoLite2-ASN",
        ),
        "anonymous": write_mmdb(
            tmp_path / "GeoIP2-Anonymous-IP.mmdb",
            [
                ("198.51.100.8/29", {"is_anonymous": True, "is_anonymous_vpn": True, "is_hosting_provider": True}),
                ("198.51.100.16/30", {"is_anonymous": True, "is_tor_exit_node": True}),
                ("198.51.100.20/32", {"is_anonymous": True, "is_residential_proxy": True, "is_public_proxy": True}),
                (
                    "198.51.100.21/32",
                    {
                        "is_anonymous": True,
                        "is_anonymous_vpn": True,
                        "provider_name": "NordVPN",
                        "anonymizer_confidence": 90,
                    },
                ),
            ],
            database_type="GeoIP2-Anonymous-IP",
        ),
    }


MAXMIND_GEO = dict(
    country="DE",
    region="Berlin",
    city="Berlin",
    latitude=52.5196,
    longitude=13.4069,
    accuracy_km=20.0,
    geo_provider="maxmind",
)
MAXMIND_BASE_SOURCES = (("geo", "maxmind"), ("asn", "maxmind"))


def _anon(**flags: Any) -> dict[str, Any]:
    base = dict(is_vpn=False, is_hosting=False, is_proxy=False, is_residential_proxy=False, is_tor=False)
    return {**base, **flags}


ANON_SOURCES = (
    ("is_hosting", "maxmind"),
    ("is_vpn", "maxmind"),
    ("is_tor", "maxmind"),
    ("is_proxy", "maxmind"),
    ("is_residential_proxy", "maxmind"),
)


@pytest.mark.parametrize(
    ("ip", "extra", "tags", "sources"),
    [
        ("198.51.100.1", {}, (), MAXMIND_BASE_SOURCES),  # not in Anonymous IP: no answer, not "no"
        ("198.51.100.9", _anon(is_vpn=True, is_hosting=True), ("anonymous",), MAXMIND_BASE_SOURCES + ANON_SOURCES),
        ("198.51.100.17", _anon(is_tor=True), ("anonymous",), MAXMIND_BASE_SOURCES + ANON_SOURCES),
        (
            "198.51.100.20",
            _anon(is_residential_proxy=True, is_proxy=True),
            ("anonymous",),
            MAXMIND_BASE_SOURCES + ANON_SOURCES,
        ),
        (
            "198.51.100.21",
            _anon(is_vpn=True, vpn_operator="NordVPN"),
            ("anonymous", "anonymizer_confidence:90"),
            MAXMIND_BASE_SOURCES + ANON_SOURCES,
        ),
    ],
)
def test_maxmind_mapping(
    maxmind_files: dict[str, Path], ip: str, extra: dict[str, Any], tags: tuple[str, ...], sources: Any
) -> None:
    provider = MaxMindProvider(**maxmind_files)
    got = client_of(provider).lookup(ip)
    assert got == info(ip, **MAXMIND_GEO, asn=3320, asn_org="DTAG", **extra, tags=tags, sources=sources)


def test_maxmind_wins_over_embedded_and_checks_database_types(
    maxmind_files: dict[str, Path], node_modules: Path, compiled_dir: Path
) -> None:
    client = client_of(MaxMindProvider(city=maxmind_files["city"]), embedded(node_modules, compiled_dir))
    got = client.lookup("198.51.100.3")
    assert got is not None
    assert (got.geo_provider, got.accuracy_km, got.asn, got.source_of("asn")) == (
        "maxmind",
        20.0,
        3320,
        "ip-location-db-asn",
    )
    v6 = client.lookup("2001:db8:1::5")
    assert v6 is not None
    assert v6.geo_provider == "dbip"
    with pytest.raises(ConfigurationError) as wrong:
        MaxMindProvider(city=maxmind_files["asn"]).load()
    assert wrong.value.reason == "maxmind_wrong_type"
    with pytest.raises(ConfigurationError):
        MaxMindProvider(anonymous=maxmind_files["city"].parent / "missing.mmdb").load()
    with pytest.raises(ConfigurationError):
        MaxMindProvider()


# --------------------------------------------------------------------------------------------
# Spur

SPUR_VPN = {
    "ip": "198.51.100.50",
    "as": {"number": 9009, "organization": "M247 Europe SRL"},
    "organization": "NordVPN",
    "infrastructure": "DATACENTER",
    "location": {"country": "NL", "state": "North Holland", "city": "Amsterdam"},
    "tunnels": [{"type": "VPN", "operator": "NORD_VPN", "anonymous": True, "entries": ["1.2.3.4"]}],
    "client": {"count": 30, "countries": 4, "proxies": []},
    "risks": ["TUNNEL"],
    "services": ["OPENVPN"],
}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            SPUR_VPN,
            facts(
                "spur",
                tags=("infrastructure:datacenter", "multi_country_clients", "risk:tunnel", "service:openvpn"),
                country="NL",
                region="North Holland",
                city="Amsterdam",
                geo_provider="spur",
                asn=9009,
                asn_org="M247 Europe SRL",
                is_hosting=True,
                is_mobile=False,
                is_vpn=True,
                vpn_operator="NORD_VPN",
                is_tor=False,
                is_proxy=False,
                is_residential_proxy=False,
            ),
        ),
        (
            {
                "ip": "203.0.113.9",
                "infrastructure": "BUSINESS",
                "tunnels": [{"type": "VPN", "operator": "CISCO_ANYCONNECT", "anonymous": False}],
            },
            facts(
                "spur",
                tags=("infrastructure:business", "non_anonymous_vpn"),
                is_hosting=False,
                is_mobile=False,
                is_vpn=False,
                vpn_operator="CISCO_ANYCONNECT",
                is_tor=False,
                is_proxy=False,
                is_residential_proxy=False,
            ),
        ),
        (
            {
                "ip": "192.0.2.8",
                "infrastructure": "MOBILE",
                "client": {"proxies": ["OXYLABS_PROXY"]},
                "tunnels": [{"type": "TOR"}, {"type": "PROXY"}],
            },
            facts(
                "spur",
                tags=("infrastructure:mobile", "residential_proxy:OXYLABS_PROXY"),
                is_hosting=False,
                is_mobile=True,
                is_vpn=False,
                is_tor=True,
                is_proxy=True,
                is_residential_proxy=True,
            ),
        ),
        (
            {"ip": "192.0.2.9", "infrastructure": "SATELLITE", "risks": ["CALLBACK_PROXY"], "ai": {"x": 1}},
            facts(
                "spur",
                tags=("infrastructure:satellite", "risk:callback_proxy"),
                is_vpn=False,
                is_tor=False,
                is_proxy=False,
                is_residential_proxy=True,
            ),
        ),
    ],
    ids=["vpn", "corporate-vpn", "mobile-tor-resi", "callback"],
)
def test_spur_mapping(obj: dict[str, Any], expected: IpFacts) -> None:
    assert spur_facts(obj) == expected


def test_spur_feed_plain_gzip_and_malformed(tmp_path: Path) -> None:
    plain = write_ndjson(tmp_path / "a.ndjson", [SPUR_VPN], extra_lines=["{not json", '{"no_ip": 1}', "[1]", ""])
    gz = write_ndjson(tmp_path / "b.ndjson.gz", [{"ip": "2001:DB8::7", "infrastructure": "MOBILE"}], gz=True)
    provider = SpurFeedProvider([plain, gz, tmp_path / "missing.ndjson.gz"])
    client = client_of(provider)
    assert client.lookup("198.51.100.50") == IpInfo("198.51.100.50", 4, *spur_facts(SPUR_VPN))
    assert client.lookup("2001:db8::7").is_mobile is True  # type: ignore[union-attr]
    assert client.lookup("198.51.100.51").sources == ()  # type: ignore[union-attr]
    assert provider.reports == (
        FeedReport("spur", str(plain), 1, 3, bad_lines=(2, 3, 4)),
        FeedReport("spur", str(gz), 1, 0),
        FeedReport("spur", str(tmp_path / "missing.ndjson.gz"), 0, 0, missing=True),
    )


class SpurServer:
    """An httpx.MockTransport handler that answers like the Spur Context API."""

    def __init__(self, responses: dict[str, httpx.Response]) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Token") != "s3cret":
            return httpx.Response(401, json={"error": "unauthorized"})
        ip = request.url.path.rsplit("/", 1)[-1]
        return self.responses.get(ip, httpx.Response(404))

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


@pytest.fixture
def spur_server() -> SpurServer:
    return SpurServer(
        {
            "198.51.100.50": httpx.Response(200, json=SPUR_VPN, headers={"x-balance-remaining": "9999"}),
            "192.0.2.1": httpx.Response(429, headers={"Retry-After": "7"}),
            "192.0.2.2": httpx.Response(503),
        }
    )


def test_spur_api_maps_200_and_caches(spur_server: SpurServer) -> None:
    now = [0.0]
    api = SpurContextClient(token="s3cret", http_client=spur_server.client(), cache_ttl=60, clock=lambda: now[0])
    client = client_of(SpurApiProvider(api))
    assert client.lookup("198.51.100.50") == IpInfo("198.51.100.50", 4, *spur_facts(SPUR_VPN))
    assert [(r.method, str(r.url)) for r in spur_server.requests] == [
        ("GET", "https://api.spur.us/v2/context/198.51.100.50")
    ]
    assert api.balance_remaining == 9999
    api.get_context("198.51.100.50")
    assert len(spur_server.requests) == 1  # cached
    now[0] = 61.0
    api.get_context("198.51.100.50")
    assert len(spur_server.requests) == 2  # expired
    assert api.get_context("198.51.100.99") is None  # 404: not known


@pytest.mark.parametrize(
    ("token", "ip", "error", "reason"),
    [
        ("s3cret", "192.0.2.1", ThrottledError, "throttled"),
        ("s3cret", "192.0.2.2", ServiceUnavailable, "spur_http_error"),
        ("wrong", "198.51.100.50", PermissionError_, "spur_unauthorized"),
    ],
)
def test_spur_api_errors(spur_server: SpurServer, token: str, ip: str, error: type[Exception], reason: str) -> None:
    client = client_of(SpurApiProvider(SpurContextClient(token=token, http_client=spur_server.client())))
    with pytest.raises(error) as raised:
        client.lookup(ip)
    assert raised.value.reason == reason  # type: ignore[attr-defined]
    if error is ThrottledError:
        assert raised.value.retry_after == 7.0  # type: ignore[attr-defined]


def test_spur_api_transport_failure_disabled_and_allowed_hosts() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broken = SpurContextClient(token="s3cret", http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    with pytest.raises(ServiceUnavailable):
        broken.get_context("192.0.2.1")
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    disabled = SpurContextClient(token=None, http_client=httpx.Client(transport=httpx.MockTransport(record)))
    assert (disabled.enabled, disabled.get_context("192.0.2.1"), calls) == (False, None, [])
    with pytest.raises(ForbiddenTargetError):
        SpurContextClient(token="s3cret", base_url="https://evil.example.com")
    local = SpurContextClient(token="s3cret", base_url="http://127.0.0.1:9/", http_client=broken._http)
    assert local.enabled


# --------------------------------------------------------------------------------------------
# the real embedded data (skipped without node_modules)

REAL_NODE_MODULES = find_node_modules(REPO)
REAL_TABLE = default_data_dir() / TABLE_FILE
needs_real_data = pytest.mark.skipif(
    REAL_NODE_MODULES is None, reason="node_modules/@ip-location-db is absent: run `make setup`"
)


@pytest.fixture(scope="module")
def real_client() -> Iterator[IpIntelClient]:
    client = IpIntelClient([EmbeddedProvider()], asn_classifier=AsnClassifier(), freeze_gc=False)
    yield client
    client.close()


@needs_real_data
@pytest.mark.parametrize(
    ("ip", "check"),
    [
        ("8.8.8.8", lambda i: (i.country, i.asn, i.is_hosting) == ("US", 15169, True)),
        ("1.1.1.1", lambda i: (i.asn, i.asn_org) == (13335, "Cloudflare, Inc.")),
        (
            "52.94.76.1",
            lambda i: (i.cloud_provider, i.is_hosting, "cloud_region:us-west-2" in i.tags) == ("aws", True, True),
        ),
        ("20.190.128.1", lambda i: (i.asn, i.cloud_provider, i.is_microsoft_service) == (8075, "azure", True)),
        ("2001:4860:4860::8888", lambda i: (i.asn, i.geo_provider) == (15169, "dbip")),
    ],
)
def test_known_answers_on_the_real_data(real_client: IpIntelClient, ip: str, check: Callable[[IpInfo], bool]) -> None:
    got = real_client.lookup(ip)
    assert got is not None
    assert check(got), got


@pytest.mark.slow
@needs_real_data
@pytest.mark.skipif(not REAL_TABLE.is_file(), reason=f"{REAL_TABLE} absent: run `python -m shared.tools.build_ipdata`")
def test_real_compiled_table_matches_the_mmdb_path() -> None:
    compiled = IpIntelClient([EmbeddedProvider()], freeze_gc=False)
    direct = IpIntelClient([EmbeddedProvider(use_compiled=False)], freeze_gc=False)
    rng = random.Random(11)
    sample = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(3000)]
    sample += ["8.8.8.8", "1.1.1.1", "52.94.76.1", "20.190.128.1", "185.220.101.1", "2a00:1450:4001:80b::200e"]
    compiled.load()
    assert compiled.providers[0].mode == "compiled"  # type: ignore[attr-defined]
    differ = [ip for ip in sample if compiled.lookup(ip) != direct.lookup(ip)]
    assert differ == []
    assert direct.providers[0].mode == "mmdb"  # type: ignore[attr-defined]
    compiled.close()
    direct.close()
