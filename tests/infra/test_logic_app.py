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


def _action(name: str) -> str:
    """The text of one workflow action (from its name to the next action at the same indentation)."""
    text = BICEP.read_text()
    start = text.index(f"        {name}: {{")
    ends = [m.start() for m in re.finditer(r"\n        [A-Za-z_]+: \{", text) if m.start() > start]
    return text[start : ends[0] if ends else len(text)]


def test_a_repeated_idempotency_key_is_dropped_before_anything_is_sent() -> None:
    """#25.5: the shipped Logic App ignored Idempotency-Key; a redelivered revision e-mailed and posted twice."""
    text = BICEP.read_text()
    key = _var("keyExpr")
    assert "triggerOutputs()?[\\'headers\\']?[\\'Idempotency-Key\\']" in key
    # the key is the run's tracking id, and runs go one at a time (the check and the send are not raced)
    assert "clientTrackingId: '@{${keyExpr}}'" in text
    assert re.search(r"concurrency: \{\s+runs: 1\s+\}", text)
    # the first step finds a succeeded run with that tracking id, the key quoted OData-style
    find = _action("Find_repeated_key")
    assert "runAfter: {}" in find and "/runs?api-version=2016-06-01" in find and "${runsFilter}" in find
    assert "type: 'ManagedServiceIdentity'" in find
    runs_filter = _var("runsFilter")
    assert "ClientTrackingId eq" in runs_filter and "Status eq" in runs_filter and "Succeeded" in runs_filter
    assert "replace(${keyExpr}, \\'\\'\\'\\', \\'\\'\\'\\'\\'\\')" in runs_filter  # ' doubled
    drop = _action("Drop_repeated_key")
    assert "type: 'If'" in drop and "type: 'Terminate'" in drop and "Find_repeated_key: [" in drop
    # only a look-up that succeeded can drop a run: one that failed (throttled, no role yet) sends the alert,
    # since the trigger has answered 202 already and dropping it would lose it without a trace
    assert re.search(r"Find_repeated_key: \[\s+'Succeeded'\s+'Failed'\s+'TimedOut'\s+\]", drop)
    assert re.search(r"equals: \[\s+'@actions\(\\'Find_repeated_key\\'\)\?\[\\'status\\'\]'\s+'Succeeded'", drop)
    # nothing is sent unless the check ran and found no earlier run
    for sender in ("Send_alert_email", "Post_alert_to_Teams"):
        action = _action(sender)
        assert re.search(r"runAfter: \{\s+Drop_repeated_key: \[\s+'Succeeded'", action), sender
    assert "identity: {\n    type: 'SystemAssigned'" in text
