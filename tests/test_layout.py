"""The package's layout rules, read from the source: no import circle, no module over 400 lines,
``plugin.py`` holding hooks and options only, and the public import paths kept.

The import graph is built from each module's AST (every ``import`` statement, also those inside
functions and ``if TYPE_CHECKING:`` blocks), so a circle is caught even where Python would
tolerate it at run time. ``nox -s lint`` runs this module.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "pytest_unchanged"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _absolute(module: str, path: Path, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{target}" if target else package


def imported_modules(module: str) -> Iterator[str]:
    """The package modules ``module`` imports: ``from pkg import sub`` counts as ``pkg.sub``
    when ``sub`` is a module, and as ``pkg`` (its ``__init__``) when it is a name."""
    path = MODULES[module]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node.level, node.module)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]  # `import a.b.c` imports the modules it names
            if name and name != module:
                yield name


def import_graph() -> dict[str, set[str]]:
    return {module: set(imported_modules(module)) for module in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "pytest_unchanged.selection" in graph["pytest_unchanged.plugin"]
    assert "pytest_unchanged.trust.explain" in graph["pytest_unchanged.plugin"]
    assert "pytest_unchanged.selection" in graph["pytest_unchanged.trust.verify"]
    assert "pytest_unchanged.upstream.fetch" in graph["pytest_unchanged.upstream.report"]


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_the_trust_plugins_are_imported_by_the_core_never_the_reverse() -> None:
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith(f"{PACKAGE}.trust") or module == f"{PACKAGE}.plugin":
            continue
        assert not {t for t in targets if t.startswith(f"{PACKAGE}.trust")}, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_the_size_limit(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (split it by concern)"


def test_plugin_module_holds_hooks_and_options_only() -> None:
    tree = ast.parse(MODULES[f"{PACKAGE}.plugin"].read_text(encoding="utf-8"))
    public = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    ]
    assert all(name.startswith("pytest_") for name in public), public
    assert not [node for node in tree.body if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("pytest_unchanged.nox_session", "upstream_tip"),
        ("pytest_unchanged.plugin", "pytest_addoption"),
        ("pytest_unchanged.hookspecs", "pytest_unchanged_item_inputs"),
        ("pytest_unchanged.warning_types", "PytestUnchangedWarning"),
        ("pytest_unchanged", "UnknownPathWarning"),
        ("pytest_unchanged", "Worktree"),
        ("pytest_unchanged", "Store"),
    ],
)
def test_public_import_paths_keep_working(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_public_names_are_listed_in_all() -> None:
    package = importlib.import_module(PACKAGE)
    assert sorted(package.__all__) == package.__all__
    for name in package.__all__:
        assert hasattr(package, name), name
