"""The detector protocol, the context a detector sees, and the registry.

A detector is one small module in ``detectors/`` holding one class with a frozen
`DetectorMeta` and a ``detect(event, ctx)`` method that returns findings. Detectors read
typed events and their own bounded per-user state, never raw dicts and never storage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from shared.alert_model import Category, DetectorMeta, Finding, Severity
from shared.detection.state import TENANT_KEY, UserState
from shared.records.event import Event
from shared.tenant_config import TenantConfig


class DetectionContext:
    """What a detector may read and write while handling one batch of one tenant."""

    def __init__(
        self,
        tenant: TenantConfig,
        states: dict[str, UserState],
        *,
        rogue_apps: Mapping[str, Any] | None = None,
    ) -> None:
        self.tenant = tenant
        self._states = states
        self.rogue_apps: Mapping[str, Any] = rogue_apps or {}
        self.memo: dict[str, Any] = {}
        """Values derived once per batch and shared by detectors (the sign-in view being handled, the tenant's
        prevalence view); never persisted."""

    def state(self, event: Event, detector_id: str) -> dict[str, Any]:
        """The detector's mutable state section for the event's user (tenant-wide when no user)."""
        key = event.user_key or TENANT_KEY
        st = self._states.get(key)
        if st is None:
            st = UserState()
            self._states[key] = st
        return st.section(detector_id)

    def peek_state(self, event: Event, detector_id: str) -> Mapping[str, Any]:
        st = self._states.get(event.user_key or TENANT_KEY)
        return st.peek(detector_id) if st is not None else {}

    def peek_tenant_state(self, detector_id: str) -> Mapping[str, Any]:
        """Read the tenant-wide section without marking it dirty."""
        st = self._states.get(TENANT_KEY)
        return st.peek(detector_id) if st is not None else {}

    def tenant_state(self, detector_id: str) -> dict[str, Any]:
        st = self._states.get(TENANT_KEY)
        if st is None:
            st = UserState()
            self._states[TENANT_KEY] = st
        return st.section(detector_id)


class Detector(ABC):
    """Base class of every detector. Subclasses set `meta` and implement `detect`."""

    meta: ClassVar[DetectorMeta]

    @abstractmethod
    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        """Findings for this event (usually none)."""

    def finding(
        self,
        event: Event,
        *,
        summary: str,
        severity: Severity | None = None,
        dedup_key: str | None = None,
        evidence: Sequence[str] | None = None,
        first_seen: float | None = None,
        context: Mapping[str, Any] | None = None,
        category: Category | None = None,
    ) -> Finding:
        """A finding about ``event``'s user with this detector's defaults."""
        return Finding(
            detector_id=self.meta.id,
            tenant_id=event.tenant_id,
            user_key=event.user_key,
            user=event.user_display,
            severity=severity or self.meta.severity,
            summary=summary,
            first_seen=event.time if first_seen is None else first_seen,
            last_seen=event.time,
            evidence_record_ids=tuple(evidence) if evidence else (event.record_id,),
            dedup_key=dedup_key if dedup_key is not None else (event.user_key or "tenant"),
            ip=event.ip,
            context=dict(context or {}),
            category=category,
        )


class RegistryError(ValueError):
    """A detector that fails its declaration checks."""


class Registry:
    """The validated set of detectors, with routing by operation."""

    def __init__(self, detector_classes: Sequence[type[Detector]]) -> None:
        self._detectors: list[Detector] = []
        self._by_id: dict[str, Detector] = {}
        self._routes: dict[str, list[Detector]] = {}
        for cls in detector_classes:
            self.register(cls)

    def register(self, cls: type[Detector]) -> None:
        meta = getattr(cls, "meta", None)
        if not isinstance(meta, DetectorMeta):
            raise RegistryError(f"{cls.__name__}: meta must be a DetectorMeta")
        module = cls.__module__.rsplit(".", 1)[-1]
        if cls.__module__.startswith("detectors.") and module != meta.id:
            raise RegistryError(f"{meta.id}: the detector's id must equal its module name ({module})")
        if meta.id in self._by_id:
            raise RegistryError(f"{meta.id}: duplicate detector id")
        det = cls()
        self._detectors.append(det)
        self._by_id[meta.id] = det
        for op in meta.operations:
            self._routes.setdefault(op, []).append(det)

    @property
    def detectors(self) -> Sequence[Detector]:
        return tuple(self._detectors)

    def get(self, detector_id: str) -> Detector:
        return self._by_id[detector_id]

    def meta(self, detector_id: str) -> DetectorMeta | None:
        det = self._by_id.get(detector_id)
        return det.meta if det is not None else None

    def route(self, op: str) -> Sequence[Detector]:
        return self._routes.get(op, ())

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._routes)
