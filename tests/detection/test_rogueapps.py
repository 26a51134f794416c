"""Loading the RogueApps feed: typed entries, bad entries counted, lookups case-insensitive."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.enrich.rogueapps import (
    RogueApp,
    RogueAppView,
    RoguePermission,
    load_rogue_apps,
    lookup_rogue_app,
    parse_rogue_apps,
)
from shared.platform.errors import BadInputError, NotFoundError

GOOD = {
    "appId": "E9A7FEA1-1CC0-4CD9-A31B-9137CA5DEEDD",
    "appDisplayName": "eM Client",
    "appPublisherName": "eM Client s.r.o.",
    "tags": ["BEC", "email"],
    "dateAdded": "2024-08-05",
    "permissions": [{"resource": "Microsoft Graph", "permission": "IMAP.AccessAsUser.All", "type": "Delegated"}],
    "futureField": 1,
}
SECOND = {"appId": "b15665d9-eda6-4092-8539-0eec376afd59", "appDisplayName": "rclone", "tags": ["exfiltration"]}


def test_feed_entries_are_typed_and_bad_ones_counted() -> None:
    data = orjson.dumps([GOOD, {"appId": "not-a-guid"}, {"appDisplayName": "no id"}, "junk", SECOND])
    feed = parse_rogue_apps(data, source="rogueapps.json")
    assert feed.apps == {
        "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd": RogueApp(
            appId="e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd",
            appDisplayName="eM Client",
            appPublisherName="eM Client s.r.o.",
            tags=("BEC", "email"),
            dateAdded="2024-08-05",
            permissions=(
                RoguePermission(resource="Microsoft Graph", permission="IMAP.AccessAsUser.All", type="Delegated"),
            ),
        ),
        "b15665d9-eda6-4092-8539-0eec376afd59": RogueApp(
            appId="b15665d9-eda6-4092-8539-0eec376afd59", appDisplayName="rclone", tags=("exfiltration",)
        ),
    }
    assert feed.bad_entries == 3
    assert [e.split(" ", 1)[0] for e in feed.errors] == ["rogueapps.json[1]", "rogueapps.json[2]", "rogueapps.json[3]"]


def test_an_object_wrapping_the_list_is_accepted() -> None:
    assert list(parse_rogue_apps(orjson.dumps({"apps": [SECOND]})).apps) == ["b15665d9-eda6-4092-8539-0eec376afd59"]


@pytest.mark.parametrize("data", [b"{not json", b'{"version": 1}', b"42"])
def test_a_document_that_is_not_a_feed_is_bad_input(data: bytes) -> None:
    with pytest.raises(BadInputError):
        parse_rogue_apps(data)


def test_files_are_merged_and_a_missing_file_is_not_found(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(orjson.dumps([GOOD]))
    b.write_bytes(orjson.dumps([SECOND, {"appId": 7}]))
    feed = load_rogue_apps([a, b])
    assert (sorted(feed.apps), feed.bad_entries) == (
        ["b15665d9-eda6-4092-8539-0eec376afd59", "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd"],
        1,
    )
    with pytest.raises(NotFoundError):
        load_rogue_apps([tmp_path / "missing.json"])


def test_lookup_accepts_models_and_plain_dicts() -> None:
    feed = parse_rogue_apps(orjson.dumps([GOOD])).apps
    mixed = {**feed, "b15665d9-eda6-4092-8539-0eec376afd59": SECOND}
    assert lookup_rogue_app(mixed, "E9A7FEA1-1cc0-4cd9-a31b-9137ca5deedd") == RogueAppView(
        "e9a7fea1-1cc0-4cd9-a31b-9137ca5deedd", "eM Client", "eM Client s.r.o.", ("BEC", "email"), "2024-08-05"
    )
    assert lookup_rogue_app(mixed, "b15665d9-eda6-4092-8539-0eec376afd59") == RogueAppView(
        "b15665d9-eda6-4092-8539-0eec376afd59", "rclone", "", ("exfiltration",), None
    )
    assert lookup_rogue_app(mixed, "00000000-0000-0000-0000-000000000000") is None
    assert lookup_rogue_app({}, None) is None
