"""The layer order holds (import-linter's contracts in pyproject.toml), and no package imports in a cycle.

import-linter checks that stages only import downward (ingest -> records -> enrich -> detection -> alerts ->
remediation, the function bodies and the composition root above them); here, with the same import graph
(grimp), that no two modules of one package need each other, directly or through others.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(
    p.parent.relative_to(REPO).as_posix().replace("/", ".")
    for p in (REPO / "shared").glob("*/__init__.py")
    if p.parent.name not in {"bench", "chaos", "demo", "emulators", "runtime", "tools", "cli"}
)


def test_the_layer_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # imports under TYPE_CHECKING are annotations only: they cannot form a cycle at run time
    return grimp.build_graph("shared", "detectors", exclude_type_checking_imports=True)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_a_package(graph: grimp.ImportGraph, package: str) -> None:
    modules = sorted(m for m in graph.find_children(package))
    cycles = [
        (a, b)
        for a, b in itertools.combinations(modules, 2)
        if graph.find_shortest_chain(importer=a, imported=b) and graph.find_shortest_chain(importer=b, imported=a)
    ]
    assert cycles == []


def test_the_stage_packages_do_not_import_each_other_in_a_cycle(graph: grimp.ImportGraph) -> None:
    cycles = [
        (a, b)
        for a, b in itertools.combinations([*PACKAGES, "detectors"], 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []
