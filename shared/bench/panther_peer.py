"""The peer in `make bench`: pypanther's Microsoft 365 rules over the bench's content blobs.

Two halves. :func:`ensure_panther` (run by the bench, in the project's venv) creates pypanther's own virtual
environment ``.venv-panther`` on first use, as `shared.tools.iac_check` does for checkov: pypanther pins its own
pydantic and friends, which must not meet the app's. The rest of this file runs *inside* that environment as a
script (``.venv-panther/bin/python shared/bench/panther_peer.py DIR``) and so imports nothing of the project.

What the peer does per blob, interleaved with ``orjson.loads`` of the same bytes as our own pass is: parse the
blob with orjson, wrap each record in a ``PantherEvent`` and run every Panther-managed rule whose log type is the
blob's Management Activity content type (``Audit.AzureActiveDirectory`` -> ``Microsoft365.Audit.AzureActiveDirectory``)
through ``Rule.run``, which also builds the title, dedup string and alert context of a record that matches. That is
all its four rules do: they are stateless; thresholds and deduplication live in Panther's backend, not here.

The figure we report, ``throughput_ratio_vs_pypanther_diverse``, is ours over the peer's, each in units of its
own process's ``orjson.loads`` ceiling measured in the same pass (so two processes' clocks and the machine's other
load divide out); the raw records per second of both are reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

PYPANTHER_VERSION = "0.1.1a62"
ORJSON_VERSION = "3.13.0"
"""The app's orjson (requirements.txt), so both ceilings are the same parser."""
VENV = Path(__file__).resolve().parents[2] / ".venv-panther"


def ensure_panther(venv: Path = VENV) -> Path:
    """The Python of ``venv`` with pypanther and orjson at their pinned versions (created and installed if needed)."""
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('pypanther'), m.version('orjson'))"
    if python.exists():
        got = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
        if got.returncode == 0 and got.stdout.split() == [PYPANTHER_VERSION, ORJSON_VERSION]:
            return python
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            f"pypanther=={PYPANTHER_VERSION}",
            f"orjson=={ORJSON_VERSION}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return python


def run_peer(corpus_dir: Path, *, venv: Path = VENV) -> dict[str, float]:
    """The peer's figures over every blob of ``corpus_dir`` (a child process in pypanther's environment)."""
    python = ensure_panther(venv)
    out = subprocess.run([str(python), __file__, str(corpus_dir)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pypanther peer failed: {out.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def _peer_main(corpus_dir: Path) -> dict[str, float]:  # pragma: no cover - runs in .venv-panther
    import gc
    import logging

    import orjson
    from pypanther import get_panther_rules  # type: ignore[import-not-found]
    from pypanther.base import PantherEvent  # type: ignore[import-not-found]

    logging.disable(logging.CRITICAL)
    rules: dict[str, list[object]] = {}
    for cls in get_panther_rules():
        for lt in cls.log_types:
            name = str(getattr(lt, "value", lt))
            if name.startswith("Microsoft365.Audit."):
                rules.setdefault(name, []).append(cls())
    files = sorted(corpus_dir.glob("*.json"))
    gc.collect()
    gc.freeze()
    clock = time.perf_counter
    ceiling = peer = 0.0
    records = matches = 0
    for f in files:
        data = f.read_bytes()
        log_type = "Microsoft365." + f.stem.split("_", 2)[2]
        active = rules.get(log_type, [])
        t0 = clock()
        orjson.loads(data)
        t1 = clock()
        recs = orjson.loads(data)
        for rec in recs:
            ev = PantherEvent(rec, None)
            for rule in active:
                if rule.run(ev, {}, {}, False).trigger_alert:  # type: ignore[attr-defined]
                    matches += 1
        n = len(recs)
        del recs
        t2 = clock()
        ceiling += t1 - t0
        peer += t2 - t1
        records += n
    return {
        "records": records,
        "rules": sum(len(v) for v in rules.values()),
        "matches": matches,
        "orjson_records_per_second": records / ceiling,
        "records_per_second": records / peer,
        "ratio_vs_orjson": ceiling / peer,
    }


if __name__ == "__main__":  # pragma: no cover - runs in .venv-panther
    print(json.dumps(_peer_main(Path(sys.argv[1]))))
