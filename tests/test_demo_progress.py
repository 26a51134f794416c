"""The demo's progress bar: redrawn in place on a terminal, one finished line in a log."""

from __future__ import annotations

import pytest

from shared.demo.__main__ import progress


def test_into_a_pipe_only_the_finished_bar_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    for h in range(1, 5):
        progress(h, 4, "simulated hours")
    assert capsys.readouterr().out == f"  {'simulated hours':<24} [{'#' * 36}] 4/4\n"
