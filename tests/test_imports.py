"""unchanged_default = imports: an unmarked test's inputs are its static import closure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_unchanged.import_syntax import parse_file
from pytest_unchanged.imports import ImportGraph, ImportRef, parse_imports
from pytest_unchanged.worktree import Worktree

from .conftest import commit

SOURCE = b"""
import os, pkg.sub as sub
from . import sibling
from ..up import thing
from pkg import module, name
import importlib

pytest_plugins = ["plugins.fixtures"]

def later():
    import inside.function
    importlib.import_module("dynamic.constant")
    importlib.import_module(computed())

class Holder:
    from .nested import deep
"""


def test_parse_imports_at_every_level() -> None:
    assert set(parse_imports(SOURCE)) == {
        ImportRef("os"),
        ImportRef("pkg.sub"),
        ImportRef("", 1, ("sibling",)),
        ImportRef("up", 2, ("thing",)),
        ImportRef("pkg", 0, ("module", "name")),
        ImportRef("importlib"),
        ImportRef("plugins.fixtures", kind="plugin"),
        ImportRef("inside.function"),
        ImportRef("dynamic.constant"),
        ImportRef("nested", 1, ("deep",)),
    }


def test_parse_imports_in_nested_blocks() -> None:
    source = b"""
if True:
    try:
        import a
    except ImportError:
        import b
    else:
        import c
    finally:
        import d
class K:
    def m(self):
        with open("x"):
            for _ in ():
                while False:
                    import e
match 1:
    case 1:
        import f
"""
    assert {ref.module for ref in parse_imports(source)} == set("abcdef")


def test_a_file_that_does_not_parse_has_no_imports() -> None:
    assert parse_imports(b"import (\n") == ()


@pytest.mark.parametrize(
    "source",
    [
        "X = " + " + ".join(["1"] * 20000) + "\n",  # ast.parse gives up
        "exec('X = " + " + ".join(["1"] * 20000) + "')\n",
        '"""\n>>> X = ' + " + ".join(["1"] * 20000) + '\n"""\n',
    ],
    ids=["module", "exec", "doctest"],
)
def test_code_nested_too_deeply_to_read_is_a_doubt_not_a_crash(source: str) -> None:
    # Python may import what ast.parse cannot build: the closure is unknown, not empty.
    assert parse_file(source.encode()).doubts


def layout(repo: Path) -> None:
    """A src layout: tests/test_calc.py imports pkg.calc, which imports .helpers relatively;
    the test imports pkg.lazy inside the function; pkg/other.py is imported by nothing."""
    pkg = repo / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "calc.py").write_text(
        "from .helpers import double\n\ndef quad(x):\n    return double(double(x))\n"
    )
    (pkg / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "lazy.py").write_text("VALUE = 1\n")
    (pkg / "other.py").write_text("UNUSED = 1\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "support.py").write_text("FACTOR = 4\n")
    (repo / "tests" / "test_calc.py").write_text(
        "from pkg import calc\nimport support\n\n"
        "def test_quad():\n    assert calc.quad(1) == support.FACTOR\n\n"
        "def test_lazy():\n    from pkg.lazy import VALUE\n    assert VALUE == 1\n"
    )
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = src\nunchanged_default = imports\n")
    commit(repo)


def test_closure_follows_relative_and_function_level_imports(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout(repo)
    worktree = Worktree.discover(repo)
    graph = ImportGraph(worktree, [repo.resolve() / "src", repo.resolve() / "tests"])
    assert graph.closure(["tests/test_calc.py"]) == [
        "src/pkg/__init__.py",
        "src/pkg/calc.py",
        "src/pkg/helpers.py",
        "src/pkg/lazy.py",
        "tests/support.py",
    ]


def test_unmarked_tests_run_only_when_their_imports_change(
    repo: Path, pytester: pytest.Pytester
) -> None:
    layout(repo)
    run = ("--unchanged", "--unchanged-explain", "-p", "no:randomly")
    pytester.runpytest(*run).assert_outcomes(passed=2)
    # A module nothing imports, and a file outside Python: nothing runs.
    (repo / "src" / "pkg" / "other.py").write_text("UNUSED = 2\n")
    (repo / "README.txt").write_text("docs\n")
    pytester.runpytest(*run).stdout.fnmatch_lines(["unchanged: 2 unchanged *, 0 to run"])
    # Reached only through a relative import of an imported module: both tests run.
    (repo / "src" / "pkg" / "helpers.py").write_text("def double(x):\n    return x + x\n")
    result = pytester.runpytest(*run)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["input src/pkg/helpers.py changed (* → *): 2 tests"])
    # Imported inside a test function.
    (repo / "src" / "pkg" / "lazy.py").write_text("VALUE = 1  # edited\n")
    result = pytester.runpytest(*run)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["input src/pkg/lazy.py changed (* → *): 2 tests"])
    # A helper found through the directory pytest puts on sys.path for the test module.
    (repo / "tests" / "support.py").write_text("FACTOR = 4  # edited\n")
    pytester.runpytest(*run).stdout.fnmatch_lines(["input tests/support.py changed *: 2 tests"])


def test_marked_tests_keep_their_declared_inputs(repo: Path, pytester: pytest.Pytester) -> None:
    layout(repo)
    (repo / "tests" / "test_marked.py").write_text(
        "import pytest\nfrom pkg import calc\n\n"
        '@pytest.mark.depends_on("src/pkg/other.py")\ndef test_marked():\n    pass\n'
    )
    commit(repo)
    run = ("--unchanged", "-p", "no:randomly", "tests/test_marked.py")
    pytester.runpytest(*run).assert_outcomes(passed=1)
    (repo / "src" / "pkg" / "helpers.py").write_text("def double(x):\n    return x + x\n")
    pytester.runpytest(*run).stdout.fnmatch_lines(["unchanged: 1 unchanged *, 0 to run"])


def test_closure_counts_the_packages_a_test_module_lives_in(repo: Path) -> None:
    package = repo / "tests" / "unit"
    package.mkdir(parents=True)
    (repo / "tests" / "__init__.py").write_text("from . import shared\n")
    (repo / "tests" / "shared.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "util.py").write_text("")
    (package / "test_x.py").write_text("from .util import *\n\ndef test_x():\n    pass\n")
    commit(repo)
    graph = ImportGraph(Worktree.discover(repo), [repo.resolve()])
    assert graph.closure(["tests/unit/test_x.py"]) == [
        "tests/__init__.py",
        "tests/shared.py",
        "tests/unit/__init__.py",
        "tests/unit/util.py",
    ]


def test_a_package_directory_wins_over_a_module_of_the_same_name(repo: Path) -> None:
    # Python's FileFinder: pkg/util/__init__.py is imported, pkg/util.py never is.
    (repo / "pkg" / "util").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "util.py").write_text("")
    (repo / "pkg" / "util" / "__init__.py").write_text("")
    (repo / "test_a.py").write_text("import pkg.util\n")
    (repo / "test_b.py").write_text("from pkg import util\n")
    commit(repo)
    graph = ImportGraph(Worktree.discover(repo), [repo.resolve()])
    expected = ["pkg/__init__.py", "pkg/util/__init__.py"]
    assert graph.closure(["test_a.py"]) == expected
    assert graph.closure(["test_b.py"]) == expected


def test_a_module_wins_over_a_namespace_directory(repo: Path) -> None:
    (repo / "pkg" / "tool").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "tool.py").write_text("")
    (repo / "pkg" / "tool" / "inner.py").write_text("")
    (repo / "test_a.py").write_text("from pkg import tool\n")
    commit(repo)
    graph = ImportGraph(Worktree.discover(repo), [repo.resolve()])
    assert graph.closure(["test_a.py"]) == ["pkg/__init__.py", "pkg/tool.py"]


def test_relative_imports_search_every_portion_of_a_namespace_package(repo: Path) -> None:
    # ns has no __init__: its __path__ holds src/ns and lib/ns, and `from . import b` in
    # src/ns/a.py finds lib/ns/b.py.
    for name in ("src", "lib"):
        (repo / name / "ns").mkdir(parents=True)
    (repo / "src" / "ns" / "a.py").write_text("from . import b\n")
    (repo / "lib" / "ns" / "b.py").write_text("")
    (repo / "test_ns.py").write_text("import ns.a\n")
    commit(repo)
    root = repo.resolve()
    graph = ImportGraph(Worktree.discover(repo), [root / "src", root / "lib"])
    assert graph.closure(["test_ns.py"]) == ["lib/ns/b.py", "src/ns/a.py"]


@pytest.mark.parametrize(
    ("source", "doubted"),
    [
        ("from importlib import import_module as load\nload('helper')\n", True),
        ("import importlib\nload = importlib.import_module\nload('helper')\n", True),
        ("from importlib import import_module\nlist(map(import_module, ['a']))\n", True),
        ("from unittest.mock import patch as p\n", True),
        ("import os\n__path__.append(os.path.dirname(__file__) + '/extra')\n", True),
        ("import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n", True),
        ("import importlib\nimportlib.import_module.__call__('helper')\n", True),
        ("import importlib\ngetattr(importlib, 'import_module')('helper')\n", True),
        ("import importlib\nvars(importlib)['import_module']('helper')\n", True),
        ("import pydoc\npydoc.locate.__call__('helper')\n", True),
        ("globals()['__path__'].append('extra')\n", True),
        ("__spec__.submodule_search_locations.append('extra')\n", True),
        ("from importlib import import_module\nimport_module('helper')\n", False),
        ("from unittest import mock\nmock.patch.object(str, 'x')\nmock.patch('a.b')\n", False),
        ("from unittest.mock import patch\n\n@patch('a.b')\ndef f():\n    pass\n", False),
    ],
)
def test_import_functions_used_other_than_by_a_direct_call_are_doubts(
    source: str, doubted: bool
) -> None:
    """Adversarial review of issue 10, round 2: aliased import functions and ``__path__``
    changes were neither followed nor doubts."""
    from pytest_unchanged.import_syntax import parse_file

    assert bool(parse_file(source.encode()).doubts) is doubted
