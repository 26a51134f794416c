"""The sample partner workflow puts alert text into HTML only escaped (alert text is attacker-shaped)."""

from __future__ import annotations

import re
from pathlib import Path

BICEP = Path(__file__).resolve().parents[2] / "infra" / "modules" / "logic-app.bicep"


def _var(name: str) -> str:
    (line,) = [ln for ln in BICEP.read_text().splitlines() if ln.startswith(f"var {name} = ")]
    return line.split(" = ", 1)[1]


def test_every_value_in_the_html_body_is_escaped() -> None:
    html = _var("alertHtml")
    expressions = re.findall(r"@\{", html)
    escaped = re.findall(r"@\{replace\(replace\(replace\(", html)
    assert len(expressions) == len(escaped) == 4  # title, severity, tenant, the whole body
    assert html.count(r"\'&\', \'&amp;\'") == 4  # & first, so the other entities are not escaped twice
    assert "<pre>@{replace(replace(replace(string(triggerBody())" in html


def test_the_workflow_uses_the_escaped_body_and_marks_notices_normal() -> None:
    text = BICEP.read_text()
    assert text.count("alertHtml") == 3  # declared once, used by the e-mail and the Teams post
    assert "Importance: importance" in text
    assert "proof_of_life" in _var("importance") and "weekly_report" in _var("importance")
