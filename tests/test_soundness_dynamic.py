"""A worktree module reached by a string (``pickle``, entry points, ``getattr(importlib, ...)``)
where no static closure predicted it is *dynamically reached*: every later test of the session
whose inputs miss it is recorded against the whole worktree (adversarial review of issue 10,
round 3: findings 1, 4 and 7). Each test edits a module only such an import reaches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import commit
from .test_soundness_imports import INI, recorded_then_edited, run

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

# pickle's GLOBAL opcode: find_class imports ``helper`` by its name and returns helper.X.
BY_PICKLE = "import pickle\n\ndef test_{0}():\n    assert pickle.loads(b'chelper\\nX\\n.') == 1\n"


@pytest.fixture
def dynamic_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (repo / "pytest.ini").write_text(INI)
    return repo


def test_a_module_reached_by_a_string_is_charged_to_every_later_test(
    dynamic_repo: Path, pytester: pytest.Pytester
) -> None:
    """The second test finds ``helper`` in ``sys.modules``: no window sees it loaded."""
    files = {"helper.py": "X = 1\n", "test_p.py": BY_PICKLE.format("a") + BY_PICKLE.format("b")}
    results = recorded_then_edited(pytester, files, {"helper.py": "X = 2\n"}, passed=2)
    for result in results:
        result.assert_outcomes(failed=2)


def test_a_module_reached_by_a_string_at_collection_is_charged_to_later_tests(
    dynamic_repo: Path, pytester: pytest.Pytester
) -> None:
    """Loaded while ``test_a.py`` was collected, reached from the cache by ``test_b``."""
    files = {
        "helper.py": "X = 1\n",
        "test_a.py": "import pickle\nV = pickle.loads(b'chelper\\nX\\n.')\n\n"
        "def test_a():\n    assert V == 1\n",
        "test_b.py": BY_PICKLE.format("b"),
    }
    results = recorded_then_edited(pytester, files, {"helper.py": "X = 2\n"}, passed=2)
    for result in results:
        result.assert_outcomes(failed=2)


def test_the_summary_says_why(dynamic_repo: Path, pytester: pytest.Pytester) -> None:
    (pytester.path / "helper.py").write_text("X = 1\n")
    (pytester.path / "test_p.py").write_text(BY_PICKLE.format("a") + BY_PICKLE.format("b"))
    commit(pytester.path)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*2 tests imported worktree modules*reached dynamically*", "*test_p.py::test_b: helper.py"]
    )


def test_a_project_without_dynamic_imports_keeps_its_narrow_keys(
    dynamic_repo: Path, pytester: pytest.Pytester
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
