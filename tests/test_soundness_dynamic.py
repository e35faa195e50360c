"""A worktree module reached by a string (``pickle``, entry points, ``getattr(importlib, ...)``)
where no static closure predicted it is *dynamically reached*: every later test of the session
whose inputs miss it is recorded against the whole worktree (adversarial review of issue 10,
round 3: findings 1, 4 and 7). Each test edits a module only such an import reaches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import commit
from .test_soundness_imports import imports_repo, recorded_then_edited, run

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

# pickle's GLOBAL opcode: find_class imports ``helper`` by its name and returns helper.X.
BY_PICKLE = "import pickle\n\ndef test_{0}():\n    assert pickle.loads(b'chelper\\nX\\n.') == 1\n"


__all__ = ["imports_repo"]  # the fixture, used by name


def assert_all_fail(
    pytester: pytest.Pytester, files: dict[str, str], edits: dict[str, str]
) -> None:
    """Record passes of the two tests ``files`` hold, make ``edits``: both run and fail, with
    the fast path on and off."""
    for result in recorded_then_edited(pytester, files, edits, passed=2):
        result.assert_outcomes(failed=2)


def test_a_module_reached_by_a_string_is_charged_to_every_later_test(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """The second test finds ``helper`` in ``sys.modules``: no window sees it loaded."""
    files = {"helper.py": "X = 1\n", "test_p.py": BY_PICKLE.format("a") + BY_PICKLE.format("b")}
    assert_all_fail(pytester, files, {"helper.py": "X = 2\n"})


def test_a_module_reached_by_a_string_at_collection_is_charged_to_later_tests(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """Loaded while ``test_a.py`` was collected, reached from the cache by ``test_b``."""
    files = {
        "helper.py": "X = 1\n",
        "test_a.py": "import pickle\nV = pickle.loads(b'chelper\\nX\\n.')\n\n"
        "def test_a():\n    assert V == 1\n",
        "test_b.py": BY_PICKLE.format("b"),
    }
    assert_all_fail(pytester, files, {"helper.py": "X = 2\n"})


def test_the_summary_says_why(imports_repo: Path, pytester: pytest.Pytester) -> None:
    (pytester.path / "helper.py").write_text("X = 1\n")
    (pytester.path / "test_p.py").write_text(BY_PICKLE.format("a") + BY_PICKLE.format("b"))
    commit(pytester.path)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*2 tests imported worktree modules*reached dynamically*", "*test_p.py::test_b: helper.py"]
    )


def test_a_project_without_dynamic_imports_keeps_its_narrow_keys(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    files = {
        "helper.py": "X = 1\n",
        "other.py": "Y = 1\n",
        "test_a.py": "from helper import X\n\ndef test_a():\n    assert X == 1\n",
        "test_b.py": "def test_b():\n    from other import Y\n    assert Y == 1\n",
    }
    results = recorded_then_edited(pytester, files, {"helper.py": "X = 2\n"}, passed=2)
    for result in results:
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed") == 1 and "passed" not in outcomes, outcomes
        assert "reached dynamically" not in result.stdout.str()


PATH_GAMES = {
    "globals": 'import os\nglobals()["__path__"].append(os.path.join(os.path.dirname('
    '__file__), "..", "vendor", "pkg"))\n',
    "extend_path": "from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n",
    "spec": "import os\n__spec__.submodule_search_locations.append(os.path.join("
    'os.path.dirname(__file__), "..", "vendor", "pkg"))\n',
}


@pytest.mark.parametrize("form", sorted(PATH_GAMES))
def test_a_package_search_path_changed_out_of_sight_is_seen(
    imports_repo: Path, pytester: pytest.Pytester, form: str
) -> None:
    """Finding 6: ``from pkg import mod`` finds ``mod`` in a directory the package added."""
    where = "vendor/extra" if form == "extend_path" else "vendor/pkg"
    files = {
        "pkg/__init__.py": PATH_GAMES[form],
        f"{where}/mod.py": "VALUE = 1\n",
        "test_a.py": "def load():\n    from pkg import mod\n    return mod\n\n"
        "def test_a():\n    assert load().VALUE == 1\n\n"
        "def test_b():\n    assert load().VALUE == 1\n",
    }
    if form == "extend_path":  # pkgutil.extend_path reads pkg.pkg files on sys.path
        files["pkg.pkg"] = f"{pytester.path / 'vendor' / 'extra'}\n"
    assert_all_fail(pytester, files, {f"{where}/mod.py": "VALUE = 2\n"})


def test_a_module_an_unchecked_test_reached_by_a_string_is_charged_to_later_tests(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """``test_a`` depends on the whole worktree (a computed import): it is not checked, yet
    what it loads outside its file's closure marks ``test_b``, which finds it in the cache."""
    files = {
        "helper.py": "X = 1\n",
        "test_a.py": "import importlib\nNAME = 'hel' + 'per'\n\n"
        "def test_a():\n    assert importlib.import_module(NAME).X == 1\n",
        "test_b.py": BY_PICKLE.format("b"),
    }
    assert_all_fail(pytester, files, {"helper.py": "X = 2\n"})


def test_a_module_a_marked_module_reaches_by_a_string_is_charged_to_later_tests(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """Round 4, finding 04: ``test_a.py`` declares its inputs, so its items are not checked,
    yet what its collection loads outside its static closure is dynamically reached too."""
    files = {
        "helper.py": "X = 1\n",
        "test_a.py": "import pickle\nimport pytest\n\n"
        'pytestmark = pytest.mark.depends_on("test_a.py")\n'
        "V = pickle.loads(b'chelper\\nX\\n.')\n\ndef test_a():\n    assert V\n",
        "test_b.py": BY_PICKLE.format("b"),
    }
    for result in recorded_then_edited(pytester, files, {"helper.py": "X = 2\n"}, passed=2):
        outcomes = result.parseoutcomes()
        assert outcomes.get("failed") == 1, result.stdout.str()
        result.stdout.fnmatch_lines(["FAILED test_b.py::test_b*"])


def test_a_test_that_starts_a_child_process_is_recorded_against_the_whole_worktree(
    imports_repo: Path, pytester: pytest.Pytester
) -> None:
    """Round 4, finding 02: ``python -m mypkg`` in a subprocess imports nothing here, and the
    child's imports are not seen: the pass counts only while the worktree is unchanged."""
    files = {
        "mypkg/__init__.py": "",
        "mypkg/__main__.py": "print('hello')\n",
        "test_cli.py": "import subprocess\nimport sys\n\ndef test_cli():\n"
        "    out = subprocess.run([sys.executable, '-m', 'mypkg'], capture_output=True,\n"
        "                         text=True, check=True).stdout\n"
        "    assert out == 'hello\\n'\n",
        "test_other.py": "def test_other():\n    pass\n",
    }
    edits = {"mypkg/__main__.py": "print('bye')\n"}
    for result in recorded_then_edited(pytester, files, edits, passed=2):
        assert result.parseoutcomes().get("failed") == 1, result.stdout.str()
        result.stdout.fnmatch_lines(["FAILED test_cli.py::test_cli*"])
