"""The benchmark's remote operations are counted at the pipeline's own ports (Graph, and what Application Insights receives)."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from shared.bench.__main__ import LineCount, remote_ops
from shared.bench.corpus import ensure_corpus
from shared.platform import logsafety
from shared.records.event import Event, parse_raw_record


def test_graph_calls_are_the_identity_lookups_the_sample_needs(tmp_path: Path) -> None:
    corpus = ensure_corpus(tmp_path, 6000)
    files = sorted(corpus.path.glob("*.json"))
    records = [r for f in files for r in orjson.loads(f.read_bytes())]
    unknown = {(r["OrganizationId"], r["Actor"][0]["ID"]) for r in records if r["UserId"] == "Not Available"}
    assert unknown  # the corpus logs some directory changes without a UPN, as Entra does

    # an object ID seen without its UPN, or a UPN without its object ID, is asked of Graph unless a record
    # enriched before (or beside) it carried both: the batches are enriched in the corpus's file order
    taught_upns: set[tuple[str, str]] = set()
    taught_oids: set[tuple[str, str]] = set()
    upn_lookups: set[tuple[str, str]] = set()
    oid_lookups: set[tuple[str, str]] = set()
    for f in files:
        batch = [parse_raw_record(orjson.dumps(r)) for r in orjson.loads(f.read_bytes())]
        events = [e for e in batch if isinstance(e, Event)]
        taught_upns |= {(e.tenant_id, e.upn) for e in events if e.object_id and e.upn}
        taught_oids |= {(e.tenant_id, e.object_id) for e in events if e.object_id and e.upn}
        upn_lookups |= {(e.tenant_id, e.upn) for e in events if e.upn and not e.object_id} - taught_upns
        oid_lookups |= {(e.tenant_id, e.object_id) for e in events if e.object_id and not e.upn} - taught_oids
    assert upn_lookups  # Exchange and SharePoint records carry a PUID, not the object ID
    assert {oid for _, oid in oid_lookups} <= {oid for _, oid in unknown}

    ops = remote_ops(corpus.path, len(files))

    # each untaught object ID and UPN is asked of Graph once (the answer is cached), nothing else
    assert (ops["sample_records"], ops["dead_lettered"]) == (len(records), 0)
    assert ops["graph_calls"] == len(oid_lookups) + len(upn_lookups)
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
