"""The benchmark's remote operations are counted at the pipeline's own ports (here: Graph)."""

from __future__ import annotations

from pathlib import Path

import orjson

from shared.bench.__main__ import remote_ops
from shared.bench.corpus import ensure_corpus


def test_graph_calls_are_the_identity_lookups_the_sample_needs(tmp_path: Path) -> None:
    corpus = ensure_corpus(tmp_path, 6000)
    files = sorted(corpus.path.glob("*.json"))
    records = [r for f in files for r in orjson.loads(f.read_bytes())]
    unknown = {(r["OrganizationId"], r["Actor"][0]["ID"]) for r in records if r["UserId"] == "Not Available"}
    assert unknown  # the corpus logs some directory changes without a UPN, as Entra does

    ops = remote_ops(corpus.path, len(files))

    # each unknown object ID is asked of Graph once (the answer is cached), and nothing else calls Graph
    assert (ops["sample_records"], ops["dead_lettered"]) == (len(records), 0)
    assert ops["graph_calls"] == len(unknown)
