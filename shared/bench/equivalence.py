"""Same outputs before and after: every alert, incident, finding and saved state of the demo, chaos and bench
workloads, from two commits of the detection path (issue #24 item 3: an algorithm change must not change what
it finds).

    python -m shared.bench.equivalence OLD_COMMIT [--records 20000]

1. The workloads are written once as content blobs (JSON arrays, one tenant and content type each, in the order
   the pipeline meets them) by *this* tree: the demo's (``shared.demo.workload.generate()``, seed 7), the chaos
   run's (seed 1, its full and its smoke shape) and the bench's three profiles (``--records`` each).
2. ``OLD_COMMIT`` is exported with ``git archive`` into a temporary directory (the embedded IP data linked in).
3. This file runs as a script in each tree (:func:`dump`: only the engine's public API, so older trees run it):
   one `DetectionEngine` per workload with the in-memory state store and alert sink, each blob one batch, the
   tenants' configuration of the demo; then every alert (``Alert.to_dict``), every finding, every saved state row
   (decoded) and the incidents the scan's story builds (`shared.cli.story.build_incidents`) are written as JSON.
4. The two dumps are compared workload by workload; any difference is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def write_workloads(root: Path, records: int) -> list[Path]:
    """The workloads as blob directories under ``root`` (written once, reused)."""
    import orjson

    from shared.bench.corpus import ensure_corpus
    from shared.demo.workload import generate

    out: list[Path] = []
    for name, kwargs in (
        ("demo", {"seed": 7}),
        ("chaos", {"seed": 1}),
        ("chaos-smoke", {"seed": 1, "days": 3, "users_per_tenant": 4}),
    ):
        path = root / f"{name}-v1"
        if not (path / "DONE").exists():
            path.mkdir(parents=True, exist_ok=True)
            wl = generate(**kwargs)  # type: ignore[arg-type]
            for i, blob in enumerate(wl.blobs):
                if blob.records:
                    (path / f"{i:05d}_{blob.tenant_id[:8]}_{blob.content_type}.json").write_bytes(
                        orjson.dumps(list(blob.records))
                    )
            tenants = {t.tenant_id: t.config() for t in wl.tenants}
            (path / "tenants.cfg").write_bytes(orjson.dumps(tenants))
            (path / "DONE").write_text("1")
        out.append(path)
    for profile in ("home", "diverse", "stress"):
        out.append(ensure_corpus(root, records, profile=profile).path)
    return out


def dump(dirs: list[Path]) -> dict[str, Any]:
    """Every output of the detection path over each workload directory (runs in either tree)."""
    import orjson

    from detectors import default_registry
    from shared.cli.story import build_incidents
    from shared.detection.engine import DetectionEngine, InMemoryAlertSink
    from shared.detection.state import InMemoryStateStore
    from shared.enrich.factory import IntelFeeds, build_local_enricher
    from shared.records.event import parse_blob
    from shared.tenant_config import TenantConfig

    registry = default_registry()
    out: dict[str, Any] = {}
    for d in dirs:
        cfg_file = d / "tenants.cfg"
        configs = orjson.loads(cfg_file.read_bytes()) if cfg_file.exists() else {}

        def tenant_config(tid: str, configs: dict[str, Any] = configs) -> TenantConfig:
            return TenantConfig(tenant_id=tid, **configs.get(tid, {}))

        store = InMemoryStateStore()
        sink = InMemoryAlertSink()
        engine = DetectionEngine(
            registry,
            store=store,
            sink=sink,
            enricher=build_local_enricher(IntelFeeds()),
            tenant_config=tenant_config,
        )
        findings: list[Any] = []
        for f in sorted(d.glob("*.json")):
            parsed = parse_blob(f.read_bytes())
            if not parsed.events:
                continue
            got = engine.process(parsed.events[0].tenant_id, parsed.events, batch_id=f.stem)
            findings.extend(dataclasses.asdict(x) for x in got.findings)
        alerts = sink.list_alerts()
        rows = store._rows  # the saved state itself is what is compared
        out[d.name] = {
            "alerts": [a.to_dict() for a in alerts],
            "findings": findings,
            "state": {f"{t}|{k}": orjson.loads(v[0]) for (t, k), v in sorted(rows.items())},
            "incidents": [i.to_dict() for i in build_incidents(alerts)],
        }
    return out


def differences(old: dict[str, Any], new: dict[str, Any], *, limit: int = 5) -> list[str]:
    """Human-readable differences between two dumps (empty: identical)."""
    problems: list[str] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            problems.append(f"{name}: only in {'new' if a is None else 'old'}")
            continue
        for part in ("alerts", "findings", "incidents", "state"):
            x, y = a[part], b[part]
            if x == y:
                continue
            if isinstance(x, dict):
                keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                problems.append(f"{name}: {part} differ for {len(keys)} of {len(x)} rows, e.g. {keys[:limit]}")
            else:
                idx = [i for i in range(max(len(x), len(y))) if i >= len(x) or i >= len(y) or x[i] != y[i]]
                problems.append(f"{name}: {part} {len(x)} vs {len(y)}; first difference at {idx[:1]}")
    return problems


def _summary(d: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}: {len(v['alerts'])} alerts, {len(v['findings'])} findings, {len(v['incidents'])} incidents, "
        f"{len(v['state'])} states"
        for k, v in d.items()
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.bench.equivalence")
    p.add_argument("old", help="the commit to compare this tree with")
    p.add_argument("--records", type=int, default=20_000, help="records of each bench profile")
    p.add_argument("--keep", type=Path, help="write both dumps here")
    args = p.parse_args(argv)
    dirs = write_workloads(ROOT / "bench" / "corpus" / "equivalence", args.records)
    dumps: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="itdr-eq-") as tmp:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", args.old], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        (old_tree / "ipdata").symlink_to(ROOT / "ipdata")
        for label, tree in (("old", old_tree), ("new", ROOT)):
            target = Path(tmp) / f"{label}.json"
            env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
            subprocess.run(
                [sys.executable, __file__, "--dump", str(target), *map(str, dirs)], cwd=tree, env=env, check=True
            )
            dumps[label] = json.loads(target.read_text())
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"{label}.json").write_text(target.read_text())
    print(f"old {args.old}: {_summary(dumps['old'])}")
    print(f"new: {_summary(dumps['new'])}")
    problems = differences(dumps["old"], dumps["new"])
    for line in problems:
        print(f"DIFFERENT {line}")
    if not problems:
        print("identical: every alert, finding, incident and saved state")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--dump":
        sys.path.insert(0, os.getcwd())
        Path(sys.argv[2]).write_text(json.dumps(dump([Path(x) for x in sys.argv[3:]]), default=str))
        raise SystemExit(0)
    raise SystemExit(main())
