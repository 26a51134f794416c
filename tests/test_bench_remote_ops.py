"""The benchmark's remote operations are counted at the pipeline's own ports (Graph, and what Application Insights receives)."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from shared.bench.__main__ import LineCount, remote_ops
from shared.bench.corpus import ensure_corpus
from shared.platform import logsafety


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
    # Application Insights: a request per invocation; a dependency per Graph request and per blob downloaded
    # from the Management Activity API (this sample posts nothing to the partner; storage and Service Bus calls
    # are not dependencies); the app's metric items
    assert ops["appinsights_items"] == {
        "metrics": ops["telemetry_items"],
        "traces": 0,
        "requests": ops["function_invocations"],
        "dependencies": ops["graph_calls"] + len(files),
    }


def test_log_lines_are_counted_as_the_worker_forwards_them() -> None:
    logsafety.install()
    with LineCount() as lines:
        logging.getLogger("shared.functions.deliver_alerts").info("incident delivered")
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://x'")
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").warning("Retrying after 503")
        logging.getLogger("shared.functions.deliver_alerts").debug("payload built")
    assert lines.count == 2
