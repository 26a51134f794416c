"""The composition root is built from settings alone and changed only through its typed constructor."""

from __future__ import annotations

import pytest

from shared.app import IntelSources, Services
from shared.enrich.factory import IntelFeeds
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings


def test_nothing_is_set_after_construction() -> None:
    svc = Services(Settings(), bus=InProcessBus(default_queue_options()))
    with pytest.raises(AttributeError, match="immutable after construction"):
        svc.settings = Settings()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable after construction"):
        svc.bus = InProcessBus(default_queue_options())  # type: ignore[misc]


def test_the_substitutes_given_are_named() -> None:
    assert Services(Settings()).substituted == frozenset()
    bus = InProcessBus(default_queue_options())
    assert Services(Settings(), bus=bus).substituted == frozenset({"bus"})
    given = Services(Settings(), bus=bus, clock=lambda: 0.0, intel=IntelSources(feeds=IntelFeeds()))
    assert given.substituted == frozenset({"bus", "clock", "intel"})
