"""The detector catalogue (docs/detectors.md) and README's detector section are the generator's output.

When this fails, run ``python -m shared.tools.detector_docs`` and commit the result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors import ALL_DETECTORS
from shared.tools import detector_docs
from shared.tools.detector_docs import (
    END,
    START,
    DocsError,
    _text,
    expected_files,
    main,
    render_catalogue,
    replace_section,
)

ROOT = Path(__file__).resolve().parents[2]
METAS = [cls.meta for cls in ALL_DETECTORS]


@pytest.mark.parametrize("rel", [detector_docs.CATALOGUE, detector_docs.README], ids=str)
def test_committed_docs_match_the_metadata(rel: Path) -> None:
    expected = expected_files(METAS, ROOT)[rel]
    assert (ROOT / rel).read_text(encoding="utf-8") == expected, (
        f"{rel} is out of date: run python -m shared.tools.detector_docs"
    )


def test_every_detector_has_a_section_with_its_facts() -> None:
    text = render_catalogue(METAS)
    for m in METAS:
        assert f'<a id="{m.id}"></a>' in text
        assert f"## {_text(m.title)}" in text
        assert "**Runbook:** " + _text(m.runbook) in text
        for fp in m.false_positives:
            assert f"- {_text(fp)}" in text
        for need in m.needs:
            assert f"- `{need.value}`: {_text(need.description)}" in text


def test_placeholders_in_runbooks_are_escaped_not_swallowed_as_html() -> None:
    assert (
        _text("Get-Mailbox <mailbox>  | Format-List\n a & b") == "Get-Mailbox &lt;mailbox&gt; | Format-List a &amp; b"
    )
    assert "Get-TransportRule '&lt;name&gt;'" in render_catalogue(METAS)


def test_check_mode_reports_a_stale_readme_and_leaves_it(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for rel, content in expected_files(METAS, ROOT).items():
        (tmp_path / rel).write_text(content, encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 0
    readme = tmp_path / "README.md"
    stale = readme.read_text(encoding="utf-8").replace(METAS[0].title, "An old title", 1)
    readme.write_text(stale, encoding="utf-8")
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert readme.read_text(encoding="utf-8") == stale
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0


def test_only_the_marked_section_is_replaced() -> None:
    assert replace_section(f"intro\n{START}\nold\n{END}\noutro\n", "NEW") == "intro\nNEW\noutro\n"
    with pytest.raises(DocsError):
        replace_section("no markers here", "NEW")
