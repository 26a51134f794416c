"""Shared fixtures: one Azurite per test session, fresh tables per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.platform.azurite import Azurite, find_azurite
from shared.platform.storage import StorageClients


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    if find_azurite() is None:
        pytest.fail("azurite is not installed: run `make setup` (npm ci)")
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def storage(azurite: Azurite) -> StorageClients:
    """Storage clients on the session's Azurite; each test gets its own table and container names."""
    return StorageClients.from_connection_string(azurite.connection_string, namespace="t" + uuid.uuid4().hex[:10])


@pytest.fixture
def unique() -> str:
    """A short unique suffix for table and container names in one test."""
    return uuid.uuid4().hex[:10]
