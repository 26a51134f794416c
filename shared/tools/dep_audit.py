"""Dependency audit of the hashed locks, offline, against a committed vulnerability snapshot.

    python -m shared.tools.dep_audit check      # offline: make audit (part of make test)
    python -m shared.tools.dep_audit refresh    # online: make audit-refresh

Why a snapshot: pip-audit (pinned in requirements-dev.in) asks a vulnerability service (PyPI's JSON
API, OSV or ESMS) on every run and has no offline mode; reading a local copy of the PyPA advisory
database is an open feature request (pypa/pip-audit issue 698), and CI reaches no service but the
package index. So the audit runs in two halves:

- ``refresh`` (online, by hand after ``make lock`` and now and then) runs pip-audit once over both
  locks (``--no-deps --disable-pip -s pypi``: every pinned ``name==version`` looked up on PyPI,
  whose JSON API serves the PyPA advisory database) and writes its findings, with the date and the
  pip-audit version, to ``requirements-audit.json``.
- ``check`` (offline, fast) reads both locks and that snapshot. It fails when a locked
  ``name==version`` is not in the snapshot (the lock moved on without a refresh), when the snapshot
  lists a vulnerability of a locked version that :data:`ACCEPTED` does not explain, or when a lock
  entry has no hash. The snapshot's age is printed, never judged: a test must not depend on the date.

State on the project's machines (measured 2026-12-07): they reach PyPI's simple index only; its JSON
API answers 404 and api.osv.dev does not answer, so ``refresh`` there records every package as
"Dependency not found on PyPI and could not be audited" and ``check`` fails closed, naming each one.
The committed snapshot is that run: no package is audited yet. ``make audit`` is therefore not part
of ``make test`` (it would fail every CI run); run ``make audit-refresh && make audit`` on a machine
that reaches PyPI's JSON API and commit the snapshot. What ``make test`` does check offline is the
lock itself (tests/test_dependency_lock.py: every entry hashed, every installed distribution locked).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
LOCKS: Final = (REPO_ROOT / "requirements.txt", REPO_ROOT / "requirements-dev.txt")
SNAPSHOT: Final = REPO_ROOT / "requirements-audit.json"

ACCEPTED: Final[Mapping[str, str]] = {}
"""Vulnerability ids (or any of their aliases) knowingly kept, each with the reason. Empty today."""


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Locked:
    """One ``name==version`` entry of a hashed lock."""

    name: str
    version: str
    hashes: tuple[str, ...]
    line: int


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def parse_lock(text: str) -> list[Locked]:
    """Entries of a ``uv pip compile --generate-hashes`` file (continuation lines carry the hashes)."""
    entries: list[Locked] = []
    current: tuple[str, str, int] | None = None
    hashes: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("--hash") else raw.strip()
        if not line.strip():
            continue
        match = _PIN.match(line)
        if match:
            if current is not None:
                entries.append(Locked(current[0], current[1], tuple(hashes), current[2]))
            current, hashes = (normalize(match.group(1)), match.group(2), number), []
            hashes += _HASH.findall(line)
        elif raw.startswith((" ", "\t")) and current is not None:
            hashes += _HASH.findall(line)
        else:
            raise ValueError(f"line {number}: not a pinned requirement: {raw.strip()!r}")
    if current is not None:
        entries.append(Locked(current[0], current[1], tuple(hashes), current[2]))
    return entries


def load_locks(paths: Sequence[Path] = LOCKS) -> dict[Path, list[Locked]]:
    """Every lock file's entries."""
    return {path: parse_lock(path.read_text(encoding="utf-8")) for path in paths}


@dataclass(frozen=True)
class Finding:
    """A vulnerability the snapshot lists for one locked version."""

    name: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """The committed findings: which versions were looked up, when, and what was found."""

    generated: str
    tool: str
    audited: frozenset[tuple[str, str]]
    findings: tuple[Finding, ...]
    skipped: Mapping[str, str]
    """Packages pip-audit could not look up (name -> its reason): they count as not audited."""


def parse_snapshot(data: Mapping[str, object]) -> Snapshot:
    """The snapshot file's content (pip-audit's ``-f json`` dependencies, plus date and tool)."""
    audited: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    skipped: dict[str, str] = {}
    deps = data.get("dependencies")
    if not isinstance(deps, list):
        raise ValueError("snapshot has no 'dependencies' list")
    for dep in deps:
        name, version = normalize(str(dep["name"])), str(dep.get("version", ""))
        if "skip_reason" in dep or not version:
            skipped[name] = str(dep.get("skip_reason", "no version"))
            continue  # pip-audit could not audit it: it does not count as audited
        audited.add((name, version))
        for vuln in dep.get("vulns") or []:
            findings.append(
                Finding(
                    name,
                    version,
                    str(vuln["id"]),
                    tuple(str(a) for a in vuln.get("aliases") or []),
                    tuple(str(v) for v in vuln.get("fix_versions") or []),
                )
            )
    return Snapshot(
        str(data.get("generated", "")), str(data.get("tool", "")), frozenset(audited), tuple(findings), skipped
    )


def check(
    locks: Mapping[Path, Sequence[Locked]], snapshot: Snapshot, *, accepted: Mapping[str, str] = ACCEPTED
) -> list[str]:
    """One line per problem: unhashed entries, versions missing from the snapshot, open findings."""
    problems: list[str] = []
    locked: set[tuple[str, str]] = set()
    for path, entries in locks.items():
        for entry in entries:
            locked.add((entry.name, entry.version))
            if not entry.hashes:
                problems.append(f"{path.name}:{entry.line}: {entry.name}=={entry.version} has no --hash")
    for name, version in sorted(locked - snapshot.audited):
        if name in snapshot.skipped:
            problems.append(f"{name}=={version} was not audited: {snapshot.skipped[name]}")
        else:
            problems.append(f"{name}=={version} is locked but not in {SNAPSHOT.name}: run make audit-refresh")
    for finding in snapshot.findings:
        if (finding.name, finding.version) not in locked:
            continue
        if any(i in accepted for i in (finding.id, *finding.aliases)):
            continue
        fix = ", ".join(finding.fix_versions) or "no fixed version"
        aka = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        problems.append(f"{finding.name}=={finding.version}: {finding.id}{aka}, fixed in {fix}")
    return problems


def refresh(*, locks: Sequence[Path] = LOCKS, out: Path = SNAPSHOT) -> int:
    """Run pip-audit (online) over the locks and write the snapshot; pip-audit's exit status 1 (found) is fine."""
    cmd = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "-s", "pypi", "-f", "json"]
    cmd += ["--progress-spinner", "off"]
    for lock in locks:
        cmd += ["-r", str(lock)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        print(proc.stderr.strip(), file=sys.stderr)
        return proc.returncode
    report = json.loads(proc.stdout)
    version = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    deps = sorted(report.get("dependencies", []), key=lambda d: (normalize(d["name"]), d.get("version", "")))
    snapshot = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": f"{version} -s pypi --no-deps --disable-pip",
        "dependencies": deps,
    }
    out.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"dep_audit: wrote {out.name}: {len(deps)} packages, {sum(len(d.get('vulns') or []) for d in deps)} findings")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m shared.tools.dep_audit``."""
    parser = argparse.ArgumentParser(prog="python -m shared.tools.dep_audit", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "refresh"))
    args = parser.parse_args(argv)
    if args.command == "refresh":
        return refresh()
    try:
        snapshot = parse_snapshot(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
        locks = load_locks()
    except (OSError, ValueError, KeyError) as exc:
        print(f"dep_audit: cannot read the locks or {SNAPSHOT.name}: {exc}")
        return 1
    problems = check(locks, snapshot)
    for problem in problems:
        print(problem)
    count = len({(e.name, e.version) for entries in locks.values() for e in entries})
    verdict = f"{len(problems)} problem(s)" if problems else "OK"
    print(
        f"dep_audit: {count} locked versions against the snapshot of {snapshot.generated} ({snapshot.tool}): {verdict}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
