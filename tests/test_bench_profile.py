"""`python -m shared.bench.profile`: every part of the detection path is timed and counted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detectors import ALL_DETECTORS
from shared.bench.corpus import ensure_corpus
from shared.bench.profile import main, profile


def test_profile_times_every_routed_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = ensure_corpus(tmp_path, 3000)
    records = [r for f in sorted(corpus.path.glob("*.json")) for r in orjson.loads(f.read_bytes())]
    signins = sum(1 for r in records if r["Operation"] == "UserLoggedIn")
    mail = sum(1 for r in records if r["Operation"] == "MailItemsAccessed")

    seconds, calls, ceiling, parse, engine, n = profile(corpus.path)

    assert n == len(records) == corpus.records
    assert min(ceiling, parse, engine) > 0
    assert set(calls) <= {d.meta.id for d in ALL_DETECTORS} | {"(enrichment)"}
    assert set(seconds) == set(calls)
    assert calls["signin_anonymizer"] == calls["signin_impossible_travel"] == signins
    assert calls["exfil_mass_mail_access"] == mail
    assert calls["(enrichment)"] >= signins + mail  # every routed event is enriched once

    assert main([str(corpus.path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(records):,} records" in out
    assert "signin_anonymizer" in out and "parse into typed events" in out
