"""The whole local product in one process: what `make demo` and `make chaos` run.

Azurite for Table and Blob storage, the Management Activity API emulator, the Graph emulator,
the partner's Logic App endpoint, the in-process bus, and the registered functions of
``function_app.py`` driven by :class:`LocalRuntime`. Time is simulated: a `SimClock` is the
clock of the emulators, the bus (lock expiry, scheduled retries) and the functions, and every
"sleep" (Retry-After, back-off) advances it instead of waiting, so days pass in seconds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from datetime import UTC, timedelta
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

from shared.app import CredentialSource, DetectObserver, IntelSources, PartnerTransport, Services, configure
from shared.platform.azurite import Azurite
from shared.platform.bus import InProcessBus, default_queue_options
from shared.platform.settings import Settings
from shared.platform.storage import OperationCounter, StorageClients
from shared.runtime.local import FaultHook, LocalRuntime

PUBLISHER_ID = "d5c1f7a4-2f7e-4c3b-9a51-6c1e2b3d4f5a"
"""The vendor's own tenant GUID (PublisherIdentifier) used against the emulator."""


class SimClock:
    """Simulated UTC time in epoch seconds; ``sleep`` advances it."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now, UTC)

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, float(seconds))

    def advance_to(self, t: float) -> None:
        self.now = max(self.now, t)

    def set(self, when: dt.datetime) -> None:
        self.advance_to(when.timestamp())


class EmulatorCredential:
    """A tenant's token for the local emulators: ``fake-token:<tenant>`` (Graph checks the tenant, the
    Management Activity API emulator that a token is present)."""

    def __init__(self, tenant_id: str, clock: Callable[[], float]) -> None:
        self._tenant_id = tenant_id
        self._clock = clock

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        from shared.emulators.graph import TOKEN_PREFIX

        return AccessToken(f"{TOKEN_PREFIX}{self._tenant_id}", int(self._clock() + 3600))


def emulator_credentials(clock: Callable[[], float]) -> CredentialSource:
    """The emulators' credentials, one per tenant (in place of the app certificate)."""

    def credential(tenant_id: str, cloud: str, /) -> TokenCredential:
        return EmulatorCredential(tenant_id, clock)

    return credential


LOCAL_APP_CLIENT_ID = "3c9e1b5a-8f47-4d2c-b6a1-9e0f7d3c2b18"
"""The app registration's client id in local runs (consent links name it)."""


class LocalWorld:
    """Start everything with ``with LocalWorld(...) as world:``; ``world.svc`` is the installed Services."""

    def __init__(
        self,
        start: dt.datetime,
        *,
        seed: int = 1,
        namespace: str = "local",
        fault_hook: FaultHook | None = None,
        counter: OperationCounter | None = None,
        intel: IntelSources | None = None,
        feed_silence: Mapping[str, timedelta] | None = None,
        on_detected: DetectObserver | None = None,
    ) -> None:
        self.clock = SimClock(start)
        self.seed = seed
        self.namespace = namespace
        self.fault_hook = fault_hook
        self.counter = counter
        self._intel = intel
        self._feed_silence = feed_silence
        self._on_detected = on_detected
        self._entered: list[Any] = []

    def __enter__(self) -> LocalWorld:
        from shared.emulators.graph import GraphEmulator
        from shared.emulators.management_api import ManagementApiEmulator
        from shared.emulators.partner import PartnerEndpoint

        try:
            self.azurite = self._enter(Azurite())
            self.api = self._enter(ManagementApiEmulator(now=self.clock.datetime, slow_delay=0.01))
            self.graph = self._enter(GraphEmulator(seed=self.seed, clock=self.clock.datetime))
            self.partner = self._enter(PartnerEndpoint(now=self.clock))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.storage = StorageClients.from_connection_string(
            self.azurite.connection_string, namespace=self.namespace, counter=self.counter
        )
        self.storage.ensure_all()
        self.bus = InProcessBus(default_queue_options(), clock=self.clock)
        settings = Settings(
            ITDR_STORAGE_CONNECTION_STRING=self.azurite.connection_string,
            ITDR_PUBLISHER_ID=PUBLISHER_ID,
            ITDR_MANAGEMENT_API_BASE_URL=self.api.base_url,
            ITDR_GRAPH_BASE_URL=self.graph.base_url,
            ITDR_PARTNER_ENDPOINT=self.partner.url,
            ITDR_PARTNER_ALLOWED_HOSTS="127.0.0.1",
            ITDR_APP_CLIENT_ID=LOCAL_APP_CLIENT_ID,
            ITDR_CONSENT_STATE_KEY=f"local-consent-state-key-{self.seed}-" + "0" * 32,
            ITDR_CONSENT_REDIRECT_URL="http://localhost:7071/api/onboarding/consent-callback",
        )
        self.svc = Services(
            settings,
            storage=self.storage,
            bus=self.bus,
            credentials=emulator_credentials(self.clock),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(self.seed),
            intel=self._intel or IntelSources(),
            partner=PartnerTransport(allow_http=True),
            management_max_retry_delay=3600.0,
            feed_silence=self._feed_silence,
            on_detected=self._on_detected,
        )
        configure(self.svc)
        self.runtime = LocalRuntime(self.bus, fault_hook=self.fault_hook)
        return self

    def _enter(self, cm: Any) -> Any:
        got = cm.__enter__()
        self._entered.append(cm)
        return got

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        configure(None)
        for cm in reversed(self._entered):
            try:
                cm.__exit__(None, None, None)
            except Exception:  # noqa: S110 - best-effort shutdown of local emulators
                pass
        self._entered.clear()

    # Driving the product ------------------------------------------------------------------
    def drain(self, *, max_rounds: int = 100_000) -> int:
        """Handle messages until the bus is empty, jumping the clock to scheduled retries."""
        return self.runtime.run_until_idle(max_rounds=max_rounds, advance=self.clock.advance_to)

    def tick(self, timer: str = "poll_content") -> None:
        self.runtime.tick(timer)
