"""The registry of detectors: an explicit list, guarded by tests/detectors/test_registry.py.

Each entry is one module of this package whose file name equals the detector's id.
"""

from __future__ import annotations

from detectors.exchange_suspicious_inbox_rule import ExchangeSuspiciousInboxRule
from shared.detection.base import Detector, Registry

ALL_DETECTORS: tuple[type[Detector], ...] = (ExchangeSuspiciousInboxRule,)


def default_registry() -> Registry:
    """A registry of every detector (validated on construction)."""
    return Registry(ALL_DETECTORS)
