"""The detector registry is complete and every declaration holds the corpus-wide invariants."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import detectors
from detectors import ALL_DETECTORS, default_registry
from shared.alert_model import DetectorMeta
from shared.detection.base import Detector
from shared.system_alerts import SYSTEM_ALERTS

ROOT = Path(__file__).resolve().parents[2]


def test_every_detector_module_is_registered_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(detectors.__path__)}
    registered = [cls.__module__.rsplit(".", 1)[-1] for cls in ALL_DETECTORS]
    assert sorted(registered) == sorted(modules), "a module in detectors/ is missing from ALL_DETECTORS (or extra)"
    assert len(set(registered)) == len(registered)


@pytest.mark.parametrize("cls", ALL_DETECTORS, ids=lambda c: c.meta.id)
def test_declaration_invariants(cls: type[Detector]) -> None:
    meta = cls.meta
    assert cls.__module__ == f"detectors.{meta.id}", f"{meta.id} - module name must equal the id"
    assert (ROOT / "tests" / "detectors" / f"test_{meta.id}.py").exists(), f"{meta.id} - has no test file"
    assert meta.runbook.count(".") >= 2, f"{meta.id} - runbook should give concrete steps"
    assert str(meta.reference).startswith("https://"), f"{meta.id} - reference must be https"
    assert meta.false_positives, f"{meta.id} - name at least one false positive (docs/detectors.md shows them)"
    assert meta.needs, f"{meta.id} - declare what the detector needs (shared.alert_model.Need)"
    assert meta.operations, f"{meta.id} - declare the operations the detector reads"


@pytest.mark.parametrize("meta", SYSTEM_ALERTS, ids=lambda m: m.id)
def test_system_alert_sources_hold_the_same_invariants(meta: DetectorMeta) -> None:
    """Alerts the system raises about itself (feed health, remediation permissions) resolve to metadata and a test."""
    assert meta.id not in {cls.meta.id for cls in ALL_DETECTORS}
    assert [p.name for p in (ROOT / "tests").rglob(f"test_{meta.id}.py")] == [f"test_{meta.id}.py"], meta.id
    assert meta.runbook.count(".") >= 2 and str(meta.reference).startswith("https://")
    assert meta.false_positives


def test_every_alert_the_code_raises_names_a_registered_source() -> None:
    """Every Alert is made by build_alert with a DetectorMeta (a detector's or a system source's): no module
    builds one by hand except the model and the store reading stored alerts back."""
    import re

    sources = [*(ROOT / "shared").rglob("*.py"), *(ROOT / "detectors").glob("*.py")]
    by_hand = [
        p.relative_to(ROOT).as_posix()
        for p in sources
        if re.search(r"(?<![\w.])Alert\(\s*\n?\s*alert_id=", p.read_text())
    ]
    assert sorted(by_hand) == ["shared/alert_model.py", "shared/alerts/store.py"]


def test_registry_builds_and_routes() -> None:
    reg = default_registry()
    assert {d.meta.id for d in reg.detectors} == {c.meta.id for c in ALL_DETECTORS}
    assert "new-inboxrule" in reg.operations


def test_every_category_a_detector_can_raise_joins_an_incident_stage() -> None:
    from detectors.defender_alert_policy import POLICIES
    from shared.alerts.incidents import STAGE_OF

    categories = {cls.meta.category for cls in ALL_DETECTORS} | {category for category, _ in POLICIES.values()}
    assert categories - set(STAGE_OF) == set()
