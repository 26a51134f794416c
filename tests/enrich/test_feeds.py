"""The intel refresh timer: feeds downloaded into Blob storage, previous copies kept on failure."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from shared.enrich.feeds import blob_name, load_intel_feeds, refresh_feeds
from shared.platform.errors import ConfigurationError
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

VPN = "https://feeds.example.net/vpn.txt"
ROGUE = "https://feeds.example.net/rogueapps.json"


def settings(urls: dict[str, list[str]] | str) -> Settings:
    raw = urls if isinstance(urls, str) else orjson.dumps(urls).decode()
    return Settings(ITDR_INTEL_FEED_URLS=raw)


def test_refresh_stores_feeds_and_keeps_the_old_copy_when_a_source_fails(
    storage: StorageClients, tmp_path: Path
) -> None:
    answers = {
        VPN: (200, b"# vpn exits\n146.70.133.0/24\n"),
        ROGUE: (200, orjson.dumps([{"appId": "a", "appDisplayName": "x"}])),
    }
    http = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(answers[str(r.url)][0], content=answers[str(r.url)][1]))
    )
    configured = settings({"vpn": [VPN], "rogue_app": [ROGUE]})
    report = refresh_feeds(storage, configured, http=http)
    assert sorted(report.stored) == sorted([blob_name("vpn", VPN), blob_name("rogue_app", ROGUE)])
    answers[VPN] = (503, b"down")
    answers[ROGUE] = (200, b'{"not": "a list"}')
    again = refresh_feeds(storage, configured, http=http)
    assert again.stored == [] and set(again.failed) == {blob_name("vpn", VPN), blob_name("rogue_app", ROGUE)}
    feeds = load_intel_feeds(storage, directory=tmp_path)
    assert [Path(p).read_text() for p in feeds.vpn_feeds] == ["# vpn exits\n146.70.133.0/24\n"]
    assert len(feeds.rogue_app_feeds) == 1


@pytest.mark.parametrize("bad", ['{"vpn": ["http://plain.example/x"]}', '{"unknown": []}', "not json"])
def test_feed_settings_are_checked(storage: StorageClients, bad: str) -> None:
    with pytest.raises(ConfigurationError):
        refresh_feeds(
            storage, settings(bad), http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
        )
