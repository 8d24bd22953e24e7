"""The architecture as a ratchet: the layering contract (`[tool.importlinter]` in pyproject.toml) holds, a
new upward import breaks it, and no two files of the project import each other (directly or round a loop).

Imports inside functions and under `TYPE_CHECKING` count: a lazy import is still a dependency.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "cdp", "features", "pipelines", "training", "inference", "monitoring", "infra")
_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run in `project` (its pyproject.toml, its packages first on the path), no cache."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def import_cycles(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[list[str]]:
    """The groups of modules that import each other round a loop (strongly connected, more than one)."""
    modules = sorted(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan, iterative (no recursion limit on long chains)
        work: list[tuple[str, Iterator[str]]] = []

        def enter(module: str) -> None:
            index[module] = low[module] = len(index)
            stack.append(module)
            on_stack.add(module)
            work.append((module, iter(sorted(graph.find_modules_directly_imported_by(module)))))

        enter(start)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    enter(target)
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(cycles)


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """One loop as its imports: `a -> b (line 12)`, one a line."""
    lines = []
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & set(cycle)):
            details = graph.get_import_details(importer=importer, imported=imported)
            at = ", ".join(str(d["line_number"]) for d in details)
            lines.append(f"  {importer} -> {imported} (line {at})" if at else f"  {importer} -> {imported}")
    return "\n".join(lines)


def test_the_layer_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout}\n{done.stderr}"
    assert "Layers: each package imports only the packages below it KEPT" in done.stdout
    assert " 0 broken." in done.stdout


def test_a_new_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "cdp" / "layer_probe.py").write_text('"""Probe."""\n\nimport monitoring.rules\n')
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert "Layers: each package imports only the packages below it BROKEN" in done.stdout
    assert "cdp.layer_probe -> monitoring.rules" in done.stdout


def test_nothing_below_imports_the_app_layer_and_infra_and_app_stay_apart(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "cdp" / "layer_probe.py").write_text('"""Probe."""\n\nimport app.clierrors\n')
    (tmp_path / "infra" / "layer_probe.py").write_text('"""Probe."""\n\nimport app.cli\n')
    (tmp_path / "app" / "layer_probe.py").write_text('"""Probe."""\n\nimport infra.resource_names\n')
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert "Layers: each package imports only the packages below it BROKEN" in done.stdout
    for line in (
        "cdp.layer_probe -> app.clierrors",
        "infra.layer_probe -> app.cli",
        "app.layer_probe -> infra.resource_names",
    ):
        assert line in done.stdout, done.stdout


def test_no_two_files_import_each_other() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = import_cycles(graph, graph.modules)
    assert not cycles, "import loops between files:\n" + "\n\n".join(describe(graph, c) for c in cycles)


def test_the_loop_finder_finds_a_loop_through_three_files() -> None:
    graph = grimp.ImportGraph()
    imports = [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.e", "p.e")]
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph, graph.modules) == [["p.a", "p.b", "p.c"]]
