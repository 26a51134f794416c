"""The operations queries (Bicep alert rules, docs/operations.md KQL) ask for telemetry the app emits.

A monitor that filters on a metric nobody emits, or on a dimension the metric never carries, never
fires; this keeps the queries, the documented table and the code in step.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.platform.telemetry import ALLOWED_DIMENSIONS

ROOT = Path(__file__).resolve().parents[2]
QUERY_SOURCES = (ROOT / "infra" / "modules" / "monitoring.bicep", ROOT / "docs" / "operations.md")


def _emitted_metrics() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "shared").rglob("*.py"):
        names |= set(re.findall(r'\.metric\(\s*"(itdr\.[a-z_.]+)"', path.read_text()))
    return names


@pytest.mark.parametrize("source", QUERY_SOURCES, ids=lambda p: p.name)
def test_queried_metrics_are_emitted_with_the_queried_dimensions(source: Path) -> None:
    text = source.read_text()
    metrics = set(re.findall(r'name == "(itdr\.[a-z_.]+)"', text))
    dimensions = set(re.findall(r"customDimensions\.([a-z_]+)", text))
    assert metrics, f"{source.name} queries no itdr metric"
    assert metrics <= _emitted_metrics()
    assert dimensions <= ALLOWED_DIMENSIONS  # log records' ``extra`` use the same names


def test_the_documented_metric_table_matches_the_allowed_dimensions() -> None:
    rows = re.findall(r"^\| `(itdr\.[a-z_.]+)` \| \w+ \| ([^|]+) \|", (ROOT / "docs" / "operations.md").read_text(), re.M)
    assert rows
    for name, dims in rows:
        assert name in _emitted_metrics(), name
        assert set(re.findall(r"`([a-z_]+)`", dims)) <= ALLOWED_DIMENSIONS, name
