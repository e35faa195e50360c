"""Findings of the adversarial review of selection (issue 10), each failing before its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import commit

DEFERRED_TEARDOWN = """
import pytest

@pytest.fixture(scope="module")
def res():
    yield 1
    raise RuntimeError("teardown of a module-scoped fixture")

def test_uses(res):
    assert res == 1

def test_other():
    pass
"""


def test_a_failed_teardown_charged_to_another_item_records_no_pass(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # pytest charges the module fixture's teardown error to test_other, the module's last item:
    # test_uses passed every phase of its own, yet it fails on its own (its fixture errors).
    pytester.makepyfile(test_a=DEFERRED_TEARDOWN)
    commit(repo)
    first = pytester.runpytest_subprocess("--unchanged")
    first.assert_outcomes(passed=2, errors=1)
    again = pytester.runpytest_subprocess("--unchanged")
    again.assert_outcomes(passed=2, errors=1)
    assert again.ret == pytest.ExitCode.TESTS_FAILED


def test_a_file_name_that_is_not_utf8_breaks_no_run(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    commit(repo)
    os.close(os.open(os.fsencode(repo) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY, 0o644))
    plain = pytester.runpytest_subprocess()
    plain.assert_outcomes(passed=1)
    assert plain.ret == pytest.ExitCode.OK
    plain.stdout.no_fnmatch_line("*INTERNALERROR*")
    unchanged = pytester.runpytest_subprocess("--unchanged")
    unchanged.stdout.fnmatch_lines(["unchanged: 1 unchanged*"])  # hashed as raw bytes
    unchanged.stdout.no_fnmatch_line("*INTERNALERROR*")
    with open(os.fsencode(repo) + b"/bad\xffname", "wb") as handle:
        handle.write(b"changed\n")
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=1)


def test_an_unkeyable_input_changes_no_plain_run_under_filterwarnings_error(
    repo: Path, pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A config file outside the repository cannot be keyed: the item always runs. A plain run
    # (no --unchanged) must end as it would without the plugin.
    outside = tmp_path_factory.mktemp("shared-config") / "shared.ini"
    outside.write_text("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_a="def test_ok():\n    assert True\n")
    commit(repo)
    result = pytester.runpytest_subprocess("-c", str(outside), "--rootdir", str(repo))
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("extra", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_mark_expression_selecting_nothing_exits_5(
    repo: Path, pytester: pytest.Pytester, extra: tuple[str, ...]
) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    slow\n")
    marked = "import pytest\n@pytest.mark.slow\ndef test_a():\n    pass\n"
    pytester.makepyfile(test_a=marked + "def test_b():\n    pass\n")
    commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--unchanged", "-m", "nothing", *extra)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    # An expression adding a mark cannot make true still leaves the module uncollected.
    result = pytester.runpytest_subprocess("--unchanged", "-m", "not slow", *extra)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_a_session_fixture_whose_teardown_fails_records_no_pass(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # The session fixture's teardown error is charged to the session's last item, in another
    # module than the test that used it.
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef res():\n"
        "    yield 1\n    raise RuntimeError('teardown')\n"
    )
    pytester.makepyfile(
        test_a="def test_uses(res):\n    assert res == 1\n",
        test_b="def test_last():\n    pass\n",
    )
    commit(repo)
    pytester.runpytest_subprocess("--unchanged", "-p", "no:randomly").assert_outcomes(
        passed=2, errors=1
    )
    again = pytester.runpytest_subprocess("--unchanged", "-p", "no:randomly")
    again.assert_outcomes(passed=2, errors=1)
