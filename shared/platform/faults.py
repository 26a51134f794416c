"""Named crash points between the steps of a function, for the fault-injection run.

Production code marks the boundaries where a crash is most dangerous, e.g.
``crash_point("content.after_download")``. Normally nothing happens. `make chaos` installs an
injector that raises `InjectedCrash` at some of them, chosen from a seed, to prove that a
function dying between any two steps loses nothing and doubles nothing.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable


class InjectedCrash(RuntimeError):
    """The process 'died' here (raised only by the fault-injection run)."""


class CrashInjector:
    """Raises at named points with a probability, reproducibly from a seed."""

    def __init__(self, *, seed: int, rate: float, points: Iterable[str] | None = None) -> None:
        self._rng = random.Random(seed)
        self._rate = rate
        self._points = frozenset(points) if points is not None else None
        self._lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()

    def __call__(self, name: str) -> None:
        with self._lock:
            self.seen[name] += 1
            if self._points is not None and name not in self._points:
                return
            if self._rng.random() >= self._rate:
                return
            self.crashes[name] += 1
        raise InjectedCrash(f"injected crash at {name}")


_injector: CrashInjector | None = None


def install(injector: CrashInjector | None) -> None:
    global _injector
    _injector = injector


def crash_point(name: str) -> None:
    """A step boundary; a no-op unless the fault-injection run installed an injector."""
    inj = _injector
    if inj is not None:
        inj(name)
