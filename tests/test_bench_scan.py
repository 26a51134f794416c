"""The bench's `itdr scan` figures: the child's peak RSS is its own high-water mark, the JSON Lines corpus is the
bench corpus's records."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from shared.bench.__main__ import child_peak_rss_mb, ensure_jsonl
from shared.bench.corpus import generate


def test_child_peak_rss_is_read_while_the_child_runs() -> None:
    code = "import time; b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"
    peak, _, rc = child_peak_rss_mb([sys.executable, "-c", code])
    assert rc == 0
    assert 120 <= peak < 400


def test_the_scan_corpus_holds_the_bench_records(tmp_path: Path) -> None:
    path = ensure_jsonl(tmp_path, 300)
    lines = path.read_bytes().splitlines()
    expected = [r for _, _, recs in generate(300) for r in recs]
    assert [orjson.loads(x) for x in lines] == expected
    assert len(lines) == 300
    assert ensure_jsonl(tmp_path, 300) == path  # written once
