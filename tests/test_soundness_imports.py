"""unchanged_default = imports never skips a test because the static closure missed an import.

Two layers: the static closure resolves imports written as strings and doctest examples, and
falls back to the whole worktree when it cannot be sure (a computed import, ``sys.path``
changed, a name found nowhere, a computed ``__all__``); at record time, a test that imported a
worktree module its inputs miss is recorded against the whole worktree. Each test edits a file
the test reads only through such an import, and expects the test to run (and fail) with the
fast path on and off, from copies of the same store.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

INI = "[pytest]\nunchanged_default = imports\n"


@pytest.fixture
def imports_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository with ``unchanged_default = imports``, and no bytecode written (an edit
    of the same size within the same second must never run a stale ``.pyc``)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (repo / "pytest.ini").write_text(INI)
    return repo


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--unchanged", "-p", "no:randomly", *args)


def both_paths(pytester: pytest.Pytester) -> list[pytest.RunResult]:
    """Run with the fast path on, then off, each from the same store."""
    cache = pytester.path / ".pytest_cache"
    saved = pytester.path.parent / f"{pytester.path.name}-saved"
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(cache, saved)
    results = [run(pytester)]
    shutil.rmtree(cache)
    shutil.copytree(saved, cache)
    results.append(run(pytester, "-o", "unchanged_fast_path=false"))
    return results


def recorded_then_edited(
    pytester: pytest.Pytester, files: dict[str, str], edits: dict[str, str], passed: int = 1
) -> list[pytest.RunResult]:
    """Write and commit ``files``, record a pass of every test, check a rerun skips them,
    make ``edits`` and return the runs with the fast path on and off."""
    root = pytester.path
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    commit(root)
    run(pytester).assert_outcomes(passed=passed)
    assert_unchanged(run(pytester), passed)
    for name, text in edits.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return both_paths(pytester)


STRING_IMPORTS = {
    "importorskip": (
        "import pytest\nh = pytest.importorskip('helper')\n\ndef test_it():\n    assert h.X == 1\n"
    ),
    "import_module_keyword": (
        "import importlib\n\ndef test_it():\n"
        "    assert importlib.import_module(name='pkg.helper').X == 1\n"
    ),
    "import_module_relative": (
        "import importlib\n\ndef test_it():\n"
        "    assert importlib.import_module('.rel', package='pkg').X == 1\n"
    ),
    "mock_patch": (
        "import sys\nfrom unittest import mock\n\ndef test_it():\n"
        "    with mock.patch('pkg.helper.Y', 5):\n"
        "        assert sys.modules['pkg.helper'].X == 1\n"
    ),
    "monkeypatch_setattr": (
        "import sys\n\ndef test_it(monkeypatch):\n"
        "    monkeypatch.setattr('pkg.helper.Y', 5)\n"
        "    assert sys.modules['pkg.helper'].X == 1\n"
    ),
    "star_through_all": "from pkg import *\n\ndef test_it():\n    assert helper.X == 1\n",
    "computed_name": (
        "import importlib\nNAME = 'pkg.' + 'helper'\n\ndef test_it():\n"
        "    assert importlib.import_module(NAME).X == 1\n"
    ),
    "exec_literal": "exec('import helper as h')\n\ndef test_it():\n    assert h.X == 1\n",
}


@pytest.mark.parametrize("form", sorted(STRING_IMPORTS))
def test_an_import_written_as_a_string_is_followed(
    imports_repo: Path, pytester: pytest.Pytester, form: str
) -> None:
    files = {
        "helper.py": "X = 1\n",
        "pkg/__init__.py": "__all__ = ['helper']\n",
        "pkg/helper.py": "X = 1\nY = 1\n",
        "pkg/rel.py": "X = 1\n",
        "test_it.py": STRING_IMPORTS[form],
    }
    edits = {"helper.py": "X = 22\n", "pkg/helper.py": "X = 22\nY = 1\n", "pkg/rel.py": "X = 22\n"}
    for result in recorded_then_edited(pytester, files, edits):
        result.assert_outcomes(failed=1)


def test_the_imports_of_doctest_examples_are_followed(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    (imports_repo / "pytest.ini").write_text(INI + "addopts = --doctest-modules\n")
    files = {
        "helper.py": "X = 1\n",
        "mod.py": 'def f():\n    """\n    >>> from helper import X\n    >>> X\n    1\n    """\n',
    }
    for result in recorded_then_edited(pytester, files, {"helper.py": "X = 22\n"}):
        result.assert_outcomes(failed=1)


def test_a_doctest_text_file_has_its_examples_imports(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    (imports_repo / "pytest.ini").write_text(INI + "pythonpath = .\n")
    files = {"helper.py": "X = 1\n", "test_doc.txt": ">>> from helper import X\n>>> X\n1\n"}
    for result in recorded_then_edited(pytester, files, {"helper.py": "X = 22\n"}):
        result.assert_outcomes(failed=1)


@pytest.mark.parametrize("where", ["test module", "conftest"])
def test_a_sys_path_the_tests_extend_makes_them_depend_on_the_whole_worktree(
    imports_repo: Path, pytester: pytest.Pytester, where: str
) -> None:
    extend = (
        "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'helpers'))\n"
    )
    test = "import hmod\n\ndef test_it():\n    assert hmod.X == 1\n"
    # "suite", not "tests": pytest loads a test* directory's conftest before the session
    # starts, and the sys.path it extends is then the one the closure is looked up in.
    files = {"suite/helpers/hmod.py": "X = 1\n"}
    if where == "conftest":
        files |= {"suite/conftest.py": extend, "suite/test_it.py": test}
    else:
        files |= {"suite/test_it.py": extend + test}
    for result in recorded_then_edited(pytester, files, {"suite/helpers/hmod.py": "X = 22\n"}):
        result.assert_outcomes(failed=1)
    run(pytester, "--unchanged-explain").stdout.fnmatch_lines(
        [
            "unchanged: suite/test_it.py depends on the whole worktree (imports in doubt: "
            "suite/*.py: line 2: sys.path is changed or handed on)"
        ]
    )


def test_a_module_found_nowhere_may_appear_where_another_test_directory_is_on_sys_path(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """Collecting ``b/test_y.py`` puts ``b/`` on ``sys.path`` (the ``prepend`` import mode),
    so ``b/local_helper.py``, created later, is what ``a/test_x.py``'s test imports."""
    files = {
        "a/test_x.py": (
            "def test_x():\n    try:\n        import local_helper\n"
            "    except ImportError:\n        return\n    assert local_helper.OK\n"
        ),
        "b/test_y.py": "def test_y():\n    pass\n",
    }
    created = {"b/local_helper.py": "OK = False\n"}
    for result in recorded_then_edited(pytester, files, created, passed=2):
        assert result.parseoutcomes().get("failed") == 1  # test_y is unchanged


def test_a_star_import_through_a_computed_all_depends_on_the_whole_worktree(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    files = {
        "pkg/__init__.py": "__all__ = ['hel' + 'per']\n",
        "pkg/helper.py": "X = 1\n",
        "test_it.py": "from pkg import *\n\ndef test_it():\n    assert helper.X == 1\n",
    }
    for result in recorded_then_edited(pytester, files, {"pkg/helper.py": "X = 22\n"}):
        result.assert_outcomes(failed=1)


def test_an_import_the_static_closure_cannot_see_is_caught_when_the_pass_is_recorded(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """``getattr(importlib, "import_module")`` is no call the static layer knows: the module is
    seen in ``sys.modules`` while the test runs, and its pass recorded against the whole
    worktree, so the rerun with nothing changed still skips it."""
    files = {
        "helper.py": "X = 1\n",
        "other.py": "Y = 1\n",
        "unrelated.py": "Z = 1\n",
        # Precision kept: installed and standard-library imports, pytest's own plugin names
        # and names under `if TYPE_CHECKING:` found nowhere are no doubt.
        "conftest.py": "pytest_plugins = ['pytester']\n",
        "test_it.py": (
            "import importlib\nimport json\nfrom typing import TYPE_CHECKING\n"
            "from unittest import mock\nimport pytest\n"
            "if TYPE_CHECKING:\n    import not_installed_anywhere\n\n"
            "def test_sneaky():\n"
            "    import pickle\n    assert pickle.loads(b'chelper\\nX\\n.') == 1\n\n"
            "def test_plain():\n    import other\n    with mock.patch('other.Y', 2):\n"
            "        assert other.Y == 2\n"
        ),
    }
    root = pytester.path
    for name, text in files.items():
        (root / name).write_text(text)
    commit(root)
    result = run(pytester, "--unchanged-explain")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "unchanged: 2 tests imported worktree modules their inferred imports miss*",
            "    test_it.py::test_plain: helper.py",  # helper.py was reached dynamically
            "    test_it.py::test_sneaky: helper.py",
        ]
    )
    assert_unchanged(run(pytester), 2)
    (root / "unrelated.py").write_text("Z = 22\n")  # both depend on the whole worktree
    run(pytester).assert_outcomes(passed=2)
    (root / "helper.py").write_text("X = 22\n")
    for result in both_paths(pytester):
        result.assert_outcomes(failed=1, passed=1)
    # Found while its module is collected (a module-level import) just the same.
    (root / "helper.py").write_text("X = 1\n")
    (root / "test_it.py").write_text(
        "import pickle\nH = pickle.loads(b'chelper\\nX\\n.')\n\n"
        "def test_sneaky():\n    assert H == 1\n"
    )
    commit(root)
    run(pytester).assert_outcomes(passed=1)
    (root / "helper.py").write_text("X = 22\n")
    for result in both_paths(pytester):
        result.assert_outcomes(failed=1)
