"""--unchanged-verify: run everything, and fail on a test --unchanged would have skipped wrongly."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import commit, records

PLANTED = """
import json
import pytest

@pytest.mark.depends_on("src/calc.py")
def test_reads_undeclared_data():
    with open("data.json") as file:
        assert json.load(file)["n"] == 1

@pytest.mark.depends_on("src/calc.py")
def test_declares_everything():
    pass
"""


@pytest.fixture
def planted(repo: Path, pytester: pytest.Pytester) -> Path:
    """A repository where one test reads ``data.json`` without declaring it, passed once."""
    (repo / "src").mkdir()
    (repo / "src" / "calc.py").write_text("N = 1\n")
    (repo / "data.json").write_text('{"n": 1}\n')
    pytester.makepyfile(test_calc=PLANTED)
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    (repo / "data.json").write_text('{"n": 2}\n')
    commit(repo, "change the undeclared data")
    return repo


def test_verify_catches_a_planted_false_skip(planted: Path, pytester: pytest.Pytester) -> None:
    # --unchanged alone hides the failure: that is what verify exists for.
    hidden = pytester.runpytest("--unchanged")
    assert hidden.ret == pytest.ExitCode.OK
    hidden.stdout.fnmatch_lines(["unchanged: 2 unchanged *, 0 to run"])
    result = pytester.runpytest("--unchanged", "--unchanged-verify")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "unchanged-verify: 2 of 2 tests would be skipped as unchanged; running them all",
            "*= unchanged-verify: 1 false skip =*",
            "test_calc.py::test_reads_undeclared_data: --unchanged would have skipped it "
            "(passed at * UTC, HEAD *), but it failed now (call)",
            "    its inputs: src/calc.py, test_calc.py",
            "These tests failed although their inputs are the same as when they passed:*",
        ]
    )
    # The failing test lost its record; the passing one was recorded again.
    assert [n for n, _ in records(planted)] == ["test_calc.py::test_declares_everything"]


def test_verify_with_no_false_skip(planted: Path, pytester: pytest.Pytester) -> None:
    (planted / "data.json").write_text('{"n": 1}\n')
    result = pytester.runpytest("--unchanged-verify")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*- unchanged-verify: no false skips -*",
            "every test that --unchanged would have skipped passed",
        ]
    )


def test_a_new_failure_is_not_a_false_skip(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_new(): assert False\n")
    commit(repo)
    result = pytester.runpytest("--unchanged-verify")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- unchanged-verify: no false skips -*"])


def test_verify_under_xdist_with_explain(planted: Path, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess(
        "-n", "2", "--unchanged", "--unchanged-verify", "--unchanged-explain"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "unchanged, run by --unchanged-verify: 2 tests",
            "*= unchanged-verify: 1 false skip =*",
            "test_calc.py::test_reads_undeclared_data: --unchanged would have skipped it *",
        ]
    )
