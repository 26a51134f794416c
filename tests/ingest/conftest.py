"""Fixtures for the Management Activity API client and emulator tests.

A fake clock shared by the client and the emulator, a stub credential that counts token requests,
a recording ``sleep``, a started emulator, a tiny webhook listener on 127.0.0.1, and ``make_services``:
``shared.app.Services`` on Azurite, an in-process bus and a Management API emulator (real clients, one cached per
tenant; optional Graph emulator and scripted HTTP transport) that closes every client it built after the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken

from shared.app import Services
from shared.detection.engine import InMemoryAlertSink
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.graph.client import SyncGraphClient
from shared.ingest.client import ManagementActivityClient
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients

TENANT_A = "8b1c6f3e-6a43-4c8e-9d77-2f1f0f6a0a01"
TENANT_B = "0d9e2c55-1f1e-4a8b-b0b6-6c0c7e3d9b02"
PUBLISHER = "46b472a7-c68e-4adf-8ade-3db49497518e"
START = datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)
"""An afternoon, so a 12-hour time format would show (15:00 vs 03:00)."""


class FakeClock:
    """A settable UTC clock: ``clock()`` is now, ``clock.advance(...)`` moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class StubCredential:
    """Issues ``token-1``, ``token-2``, ... valid for ``lifetime`` from the fake clock; records the scopes."""

    def __init__(self, clock: FakeClock, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int((self.clock() + self.lifetime).timestamp()))


class RecordingSleep:
    """A ``sleep`` that records the delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class WebhookListener:
    """A local HTTP listener that answers POSTs with ``status`` and records them."""

    status: int = 200
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def credential(clock: FakeClock) -> StubCredential:
    return StubCredential(clock)


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[ManagementApiEmulator]:
    with ManagementApiEmulator(now=clock, page_size=2, slow_delay=0.2) as emu:
        yield emu


ClientFactory = Callable[..., ManagementActivityClient]


@pytest.fixture
def make_client(
    emulator: ManagementApiEmulator, clock: FakeClock, credential: StubCredential, sleeps: RecordingSleep
) -> Iterator[ClientFactory]:
    """Build clients on the emulator (tenant A by default); they are closed after the test."""
    built: list[ManagementActivityClient] = []

    def make(tenant_id: str = TENANT_A, **options: Any) -> ManagementActivityClient:
        kwargs: dict[str, Any] = {
            "cloud": "commercial",
            "publisher_id": PUBLISHER,
            "credential": credential,
            "base_url": emulator.base_url,
            "sleep": sleeps,
            "clock": clock,
            **options,
        }
        client = ManagementActivityClient(tenant_id, **kwargs)
        built.append(client)
        return client

    yield make
    for client in built:
        client.close()


ServicesFactory = Callable[..., Services]


@pytest.fixture
def make_services(
    storage: StorageClients, clock: FakeClock, credential: StubCredential, sleeps: RecordingSleep
) -> Iterator[ServicesFactory]:
    """Build Services on Azurite, an in-process bus and ``emulator``; every client built is closed after the test.

    ``build(emulator, *, http=None, graph=None, **settings)``: Management Activity clients (one per tenant, on
    ``http`` if given) share the fake clock, the stub credential and the recording sleep; with ``graph``, Graph
    clients come from that Graph emulator; ``settings`` add to (or override) ``publisher_id`` and
    ``management_api_base_url``. The bus and ``Services.clock`` run on the fake clock; the alert sink is in memory.
    """
    built: list[ManagementActivityClient | SyncGraphClient] = []

    def epoch() -> float:
        return float(clock().timestamp())

    def build(
        emulator: ManagementApiEmulator,
        *,
        http: httpx.Client | None = None,
        graph: GraphEmulator | None = None,
        **settings: Any,
    ) -> Services:
        cache: dict[str, ManagementActivityClient] = {}

        def management_factory(tenant_id: str) -> ManagementActivityClient:
            if tenant_id not in cache:
                cache[tenant_id] = ManagementActivityClient(
                    tenant_id,
                    cloud="commercial",
                    publisher_id=PUBLISHER,
                    credential=credential,
                    base_url=emulator.base_url,
                    sleep=sleeps,
                    clock=clock,
                    http_client=http,
                )
                built.append(cache[tenant_id])
            return cache[tenant_id]

        def graph_factory(tenant_id: str) -> SyncGraphClient:
            assert graph is not None
            client = SyncGraphClient.create(tenant_id, credential=graph.credential(tenant_id), base_url=graph.base_url)
            built.append(client)
            return client

        return Services(
            settings=Settings(**{"publisher_id": PUBLISHER, "management_api_base_url": emulator.base_url, **settings}),
            storage=storage,
            bus=InProcessBus(default_queue_options(), clock=epoch),
            clock=epoch,
            management_factory=management_factory,
            graph_factory=graph_factory if graph is not None else None,
            extras={"alert_sink": InMemoryAlertSink()},
        )

    yield build
    for client in built:
        client.close()


@pytest.fixture
def webhook_listener() -> Iterator[WebhookListener]:
    listener = WebhookListener()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            listener.received.append(({k.lower(): v for k, v in self.headers.items()}, orjson.loads(body)))
            self.send_response(listener.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    listener.url = f"http://127.0.0.1:{server.server_address[1]}/api/webhook"
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
