"""The architecture as a ratchet: the layering contract (`[tool.importlinter]` in pyproject.toml) holds, a
new upward import breaks it, no two files of the project import each other (directly or round a loop), and
no library module imports a command-line module.

Imports inside functions and under `TYPE_CHECKING` count: a lazy import is still a dependency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "app",
    "cdp",
    "features",
    "pipelines",
    "training",
    "inference",
    "monitoring",
    "engagement",
    "infra",
    "dashboards",
)
_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
_IMPORTS = (
    "import json, sys, grimp; g = grimp.build_graph(*sys.argv[1:], cache_dir=None); "
    "print(json.dumps(sorted([a, b] for a in g.modules for b in g.find_modules_directly_imported_by(a))))"
)


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run in `project` (its pyproject.toml, its packages first on the path), no cache."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def direct_imports(project: Path) -> list[tuple[str, str]]:
    """Every (importer, imported) pair of modules of `project`'s packages (built in a child process, so
    that `project`'s packages come first on its path)."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, *PACKAGES],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [(importer, imported) for importer, imported in json.loads(done.stdout)]


def is_cli_module(module: str) -> bool:
    """A package's command-line module: `<package>.cli`, or a module of a `<package>.cli` package."""
    return "cli" in module.split(".")[1:]


def imports_of_cli_modules_outside_entry_points(imports: Iterable[tuple[str, str]]) -> list[str]:
    """`importer -> imported` for each import of a command-line module by a library module: only the app
    layer (the `cdp` command and the demo) and command-line modules themselves may import one."""
    return sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports
        if is_cli_module(imported) and not is_cli_module(importer) and importer.split(".")[0] != "app"
    )


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
    (tmp_path / "cdp" / "layer_probe.py").write_text('"""Probe."""\n\nimport app.demo\n')
    (tmp_path / "infra" / "layer_probe.py").write_text('"""Probe."""\n\nimport app.cli\n')
    (tmp_path / "app" / "layer_probe.py").write_text('"""Probe."""\n\nimport infra.resource_names\n')
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert "Layers: each package imports only the packages below it BROKEN" in done.stdout
    for line in (
        "cdp.layer_probe -> app.demo",
        "infra.layer_probe -> app.cli",
        "app.layer_probe -> infra.resource_names",
    ):
        assert line in done.stdout, done.stdout


def test_no_library_module_imports_a_cli_module() -> None:
    imports = direct_imports(ROOT)
    assert ("app.cli", "cdp.cli") in imports, "the cdp command no longer composes the packages' commands"
    assert imports_of_cli_modules_outside_entry_points(imports) == []


def test_a_library_module_importing_a_cli_module_is_found(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "monitoring" / "cli_probe.py").write_text('"""Probe."""\n\nimport pipelines.cli\n')
    (tmp_path / "cdp" / "cli_probe.py").write_text('"""Probe."""\n\nfrom cdp.cli.sql import sql\n')
    found = imports_of_cli_modules_outside_entry_points(direct_imports(tmp_path))
    assert found == ["cdp.cli_probe -> cdp.cli.sql", "monitoring.cli_probe -> pipelines.cli"]


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
