"""Fixtures for the Management Activity API client and emulator tests.

A fake clock shared by the client and the emulator, a stub credential that counts token requests,
a recording ``sleep``, a started emulator, a tiny webhook listener on 127.0.0.1, and ``make_services``:
``shared.app.Services`` on Azurite, an in-process bus and a Management API emulator (real clients, one cached per
tenant; optional Graph emulator and scripted HTTP transport) that closes every client it built after the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken, TokenCredential

from shared.app import Services
from shared.emulators.graph import GraphEmulator
from shared.emulators.management_api import ManagementApiEmulator
from shared.ingest.client import ManagementActivityClient
from shared.platform.bus import InProcessBus, MessageBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import StorageClients
from shared.runtime.world import emulator_credentials

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

    def get_token(self, *scopes: str, **_options: Any) -> AccessToken:
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
    built: list[Services] = []

    def epoch() -> float:
        return float(clock().timestamp())

    def build(
        emulator: ManagementApiEmulator,
        *,
        http: httpx.Client | None = None,
        graph: GraphEmulator | None = None,
        feed_silence: Mapping[str, timedelta] | None = None,
        bus: MessageBus | None = None,
        **settings: Any,
    ) -> Services:
        def credentials(tenant_id: str, cloud: str, /) -> TokenCredential:
            # the Management Activity API emulator checks a token is present; Graph's, that it names the tenant
            return emulator_credentials(epoch)(tenant_id, cloud) if graph is not None else credential

        values: dict[str, Any] = {"publisher_id": PUBLISHER, "management_api_base_url": emulator.base_url}
        # without a Graph emulator, Graph is a closed loopback port: its calls fail at once (best effort)
        values["graph_base_url"] = graph.base_url if graph is not None else "http://127.0.0.1:9/v1.0"
        svc = Services(
            Settings(**{**values, **settings}),
            storage=storage,
            bus=bus or InProcessBus(default_queue_options(), clock=epoch),
            credentials=credentials,
            clock=epoch,
            sleep=sleeps,
            management_http=http,
            feed_silence=feed_silence,
        )
        built.append(svc)
        return svc

    yield build
    for svc in built:
        svc.close()


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
