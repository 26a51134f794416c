"""The RogueApps feed: OAuth applications seen abused in Microsoft 365 compromises.

The public RogueApps project (Huntress) publishes a JSON list of apps: ``appId``, ``appDisplayName``,
``appPublisherName``, ``tags``, ``dateAdded`` and requested ``permissions``
(``{resource, permission, type}``). `parse_rogue_apps` / `load_rogue_apps` turn feed documents into
``{appId (lower case): RogueApp}`` for ``DetectionContext.rogue_apps``. A bad entry (no valid app id,
wrong types) is counted and skipped, never fatal; a document that is not a feed at all is a
`BadInputError`, a missing file a `NotFoundError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.platform.errors import BadInputError, NotFoundError
from shared.records.event import is_guid


class RoguePermission(BaseModel):
    """One permission a rogue app requests."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    resource: str = ""
    permission: str
    type: str = ""


class RogueApp(BaseModel):
    """One entry of the feed (field names as published; Python names are snake case)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    app_id: str = Field(alias="appId")
    display_name: str = Field(default="", alias="appDisplayName")
    publisher: str = Field(default="", alias="appPublisherName")
    tags: tuple[str, ...] = ()
    date_added: str | None = Field(default=None, alias="dateAdded")
    permissions: tuple[RoguePermission, ...] = ()

    @field_validator("app_id")
    @classmethod
    def _guid(cls, v: str) -> str:
        v = v.strip().lower()
        if not is_guid(v):
            raise ValueError("appId must be a GUID")
        return v


@dataclass(slots=True)
class RogueAppsFeed:
    """Loaded apps by lower-case app id, with the count of entries that were skipped."""

    apps: dict[str, RogueApp] = field(default_factory=dict)
    bad_entries: int = 0
    errors: list[str] = field(default_factory=list)

    MAX_ERRORS = 20

    def add(self, other: RogueAppsFeed) -> None:
        self.apps.update(other.apps)
        self.bad_entries += other.bad_entries
        self.errors.extend(other.errors[: max(0, self.MAX_ERRORS - len(self.errors))])


def _entries(doc: Any, source: str) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("apps", "applications", "data", "rogueapps"):
            if isinstance(doc.get(key), list):
                return list(doc[key])
    raise BadInputError(f"{source}: not a RogueApps feed (expected a JSON list of apps)", reason="bad_feed")


def parse_rogue_apps(data: bytes | str, *, source: str = "rogueapps") -> RogueAppsFeed:
    """Parse one feed document. Raises `BadInputError` when it is not JSON or not a list of apps."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"{source}: invalid JSON ({exc})", reason="bad_feed") from exc
    feed = RogueAppsFeed()
    for i, entry in enumerate(_entries(doc, source)):
        try:
            app = RogueApp.model_validate(entry)
        except ValidationError as exc:
            feed.bad_entries += 1
            if len(feed.errors) < RogueAppsFeed.MAX_ERRORS:
                first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
                loc = ".".join(str(p) for p in first.get("loc", ()))
                feed.errors.append(f"{source}[{i}] {loc}: {first.get('msg', '')}")
            continue
        feed.apps[app.app_id] = app
    return feed


def load_rogue_apps(paths: Iterable[str | Path]) -> RogueAppsFeed:
    """Load and merge feed files (later files win for the same app id)."""
    feed = RogueAppsFeed()
    for p in paths:
        path = Path(p)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"RogueApps feed file not found: {path}", reason="feed_missing") from exc
        feed.add(parse_rogue_apps(data, source=path.name))
    return feed


@dataclass(frozen=True, slots=True)
class RogueAppView:
    """What a detector needs from a feed entry, whether it is a `RogueApp` or a plain mapping."""

    app_id: str
    display_name: str
    publisher: str
    tags: tuple[str, ...]
    date_added: str | None


def rogue_app_view(app_id: str, entry: Any) -> RogueAppView:
    """Normalise a `RogueApp`, a feed-shaped dict (camelCase) or any object with those attributes."""
    if isinstance(entry, RogueApp):
        return RogueAppView(entry.app_id, entry.display_name, entry.publisher, entry.tags, entry.date_added)

    def get(*names: str) -> Any:
        for n in names:
            if isinstance(entry, Mapping) and n in entry:
                return entry[n]
            if not isinstance(entry, Mapping) and hasattr(entry, n):
                return getattr(entry, n)
        return None

    tags = get("tags")
    return RogueAppView(
        app_id=app_id.lower(),
        display_name=str(get("appDisplayName", "display_name", "name") or ""),
        publisher=str(get("appPublisherName", "publisher") or ""),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list | tuple) else (),
        date_added=(str(get("dateAdded", "date_added")) if get("dateAdded", "date_added") else None),
    )


def lookup_rogue_app(rogue_apps: Mapping[str, Any], app_id: str | None) -> RogueAppView | None:
    """The feed entry for an app id (case-insensitive), if listed."""
    if not app_id or not rogue_apps:
        return None
    key = app_id.strip().lower()
    entry = rogue_apps.get(key)
    if entry is None:
        return None
    return rogue_app_view(key, entry)
