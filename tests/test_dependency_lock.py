"""The hashed locks: every installed distribution is locked with hashes; the locks match the pins.

Also the offline audit's logic (shared/tools/dep_audit.py) on hand-written locks and snapshots.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from shared.tools.dep_audit import LOCKS, Snapshot, check, normalize, parse_lock, parse_snapshot

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK, DEV_LOCK = LOCKS
PROJECT = "m365-itdr"  # installed editable from the working tree by make setup, not from an index


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", line)
        if match:
            out[normalize(match.group(1))] = match.group(2)
    return out


def test_every_installed_distribution_is_locked_with_hashes() -> None:
    locked = {e.name: e for e in parse_lock(DEV_LOCK.read_text(encoding="utf-8"))}
    installed = {normalize(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop(PROJECT)
    missing = {n: v for n, v in installed.items() if n not in locked}
    assert missing == {}, "installed but not in requirements-dev.txt (make lock, then make setup)"
    wrong = {n: (v, locked[n].version) for n, v in installed.items() if locked[n].version != v}
    assert wrong == {}, "installed version differs from the lock: (installed, locked)"
    assert [n for n in installed if not locked[n].hashes] == []


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_lock_entry_has_sha256_hashes(lock: Path) -> None:
    entries = parse_lock(lock.read_text(encoding="utf-8"))
    assert len(entries) > 20
    assert [e.name for e in entries if not e.hashes] == []
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for e in entries for h in e.hashes)


def test_runtime_lock_is_the_runtime_part_of_the_dev_lock() -> None:
    runtime = {e.name: e for e in parse_lock(RUNTIME_LOCK.read_text(encoding="utf-8"))}
    dev = {e.name: e for e in parse_lock(DEV_LOCK.read_text(encoding="utf-8"))}
    assert {n: e.version for n, e in runtime.items() if dev.get(n) is None or dev[n].version != e.version} == {}
    assert {n for n, e in runtime.items() if set(e.hashes) != set(dev[n].hashes)} == set()


@pytest.mark.parametrize(
    ("pins", "lock"), [("requirements.in", RUNTIME_LOCK), ("requirements-dev.in", DEV_LOCK)], ids=["runtime", "dev"]
)
def test_direct_pins_are_what_the_lock_holds(pins: str, lock: Path) -> None:
    direct = _pins(ROOT / pins)
    locked = {e.name: e.version for e in parse_lock(lock.read_text(encoding="utf-8"))}
    assert {n: (v, locked.get(n)) for n, v in direct.items() if locked.get(n) != v} == {}, "run make lock"


def test_the_functions_build_installs_the_hashed_lock() -> None:
    # Flex Consumption's remote build runs pip install -r requirements.txt: that file must be the lock
    # (pip turns on --require-hashes by itself when any requirement carries a hash).
    text = RUNTIME_LOCK.read_text(encoding="utf-8")
    assert "-r " not in text.split("#")[0]
    assert {"azure-functions", "httpx", "pydantic", "pydantic-core", "certifi"} <= {e.name for e in parse_lock(text)}
    funcignore = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    assert "requirements.txt" not in funcignore


# --- the offline audit on hand-written inputs ----------------------------------------------------

LOCK_TEXT = """\
httpx==0.28.1 \\
    --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \\
    --hash=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    # via -r requirements.in
Typing_Extensions==4.16.0 \\
    --hash=sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
nohash==1.0
"""


def test_parse_lock_reads_names_versions_and_hashes() -> None:
    entries = parse_lock(LOCK_TEXT)
    assert [(e.name, e.version, len(e.hashes), e.line) for e in entries] == [
        ("httpx", "0.28.1", 2, 1),
        ("typing-extensions", "4.16.0", 1, 5),
        ("nohash", "1.0", 0, 7),
    ]


def test_parse_lock_rejects_an_unpinned_line() -> None:
    with pytest.raises(ValueError, match="line 1: not a pinned requirement"):
        parse_lock("httpx>=0.28\n")


def _snapshot(deps: list[dict[str, object]]) -> Snapshot:
    return parse_snapshot({"generated": "2026-12-07T00:00:00Z", "tool": "pip-audit", "dependencies": deps})


def test_check_reports_unhashed_unaudited_and_vulnerable_versions() -> None:
    lock = {Path("requirements.txt"): parse_lock(LOCK_TEXT)}
    snapshot = _snapshot(
        [
            {
                "name": "httpx",
                "version": "0.28.1",
                "vulns": [{"id": "PYSEC-0000-1", "aliases": ["CVE-0000-1"], "fix_versions": ["0.28.2"]}],
            },
            {"name": "typing-extensions", "version": "4.15.0", "vulns": []},
            {"name": "nohash", "skip_reason": "Dependency not found on PyPI and could not be audited: nohash (1.0)"},
        ]
    )
    assert check(lock, snapshot, accepted={}) == [
        "requirements.txt:7: nohash==1.0 has no --hash",
        "nohash==1.0 was not audited: Dependency not found on PyPI and could not be audited: nohash (1.0)",
        "typing-extensions==4.16.0 is locked but not in requirements-audit.json: run make audit-refresh",
        "httpx==0.28.1: PYSEC-0000-1 (CVE-0000-1), fixed in 0.28.2",
    ]


def test_check_accepts_a_finding_by_alias_and_passes_a_clean_snapshot() -> None:
    lock = {Path("requirements.txt"): parse_lock(LOCK_TEXT)[:2]}
    snapshot = _snapshot(
        [
            {"name": "httpx", "version": "0.28.1", "vulns": [{"id": "PYSEC-0000-1", "aliases": ["CVE-0000-1"]}]},
            {"name": "typing_extensions", "version": "4.16.0", "vulns": []},
        ]
    )
    assert check(lock, snapshot, accepted={"CVE-0000-1": "not reachable: we never call the affected API"}) == []
    assert check(lock, snapshot, accepted={}) == ["httpx==0.28.1: PYSEC-0000-1 (CVE-0000-1), fixed in no fixed version"]
