"""Soundness: a record needs a call that ran; settings that change how a test ends are facets.

Issue 10, classes 1 and 2. Each test records a pass under one setting, then runs
``--unchanged`` under another setting with which the test fails: it must run (and fail), never
be skipped as unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_unchanged.settings import NOT_FACETS, override_ini_facets
from pytest_unchanged.trust.explain import environment_changes

from .conftest import assert_unchanged, commit, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

ALWAYS_FAILS = """
import pytest

@pytest.fixture
def resource():
    yield 1

def test_fails(resource):
    assert False
"""


# -- class 1: a record without a call ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--setup-only"],
        ["--setup-plan"],
        ["--setup-only", "--setup-show"],
        ["--collect-only"],
        ["--fixtures"],
        ["--markers"],
        ["--fixtures-per-test"],
    ],
)
def test_a_run_that_calls_no_test_records_nothing(
    repo: Path, pytester: pytest.Pytester, args: list[str]
) -> None:
    pytester.makepyfile(ALWAYS_FAILS)
    commit(repo)
    pytester.runpytest(*args)
    assert records(repo) == []
    pytester.runpytest("--unchanged").assert_outcomes(failed=1)


def test_a_test_skipped_in_setup_records_nothing(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.fixture
        def gate():
            if os.environ.get("SKIP_IN_SETUP"):
                pytest.skip("not here")

        def test_gated(gate):
            assert not os.environ.get("BREAK")
        """
    )
    commit(repo)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKIP_IN_SETUP", "1")
        pytester.runpytest().assert_outcomes(skipped=1)
    assert records(repo) == []


def test_a_plugin_that_never_calls_the_test_records_nothing(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plugin taking over pytest_runtest_protocol: setup and teardown pass, call never runs.
    pytester.makeconftest(
        """
        import os
        import pytest
        from _pytest.runner import call_and_report

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_protocol(item, nextitem):
            if not os.environ.get("NO_CALL"):
                return None
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            call_and_report(item, "setup")
            call_and_report(item, "teardown", nextitem=nextitem)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            return True
        """
    )
    pytester.makepyfile(ALWAYS_FAILS)
    commit(repo)
    monkeypatch.setenv("NO_CALL", "1")
    pytester.runpytest().assert_outcomes()
    assert records(repo) == []
    monkeypatch.delenv("NO_CALL")
    pytester.runpytest("--unchanged").assert_outcomes(failed=1)


# -- class 2: settings are facets by rule -----------------------------------------------------

# Each case: a test module that passes with no setting, and the setting it fails under.
CASES = {
    "assert-plain": (
        """
        def test_message():
            try:
                assert 1 == 2
            except AssertionError as error:
                assert "1 == 2" in str(error)  # assertion rewriting says what failed
        """,
        ["--assert=plain"],
    ),
    "warning-option-mentioning-unchanged": (
        """
        import warnings

        def test_warns():
            warnings.warn("unchanged input", UserWarning)
        """,
        ["-W", "error:unchanged input"],
    ),
    "ini-override-mentioning-unchanged": (
        """
        import warnings

        def test_warns():
            warnings.warn("unchanged input", UserWarning)
        """,
        ["-o", "filterwarnings=error:unchanged input"],
    ),
    "runxfail": (
        """
        import pytest

        def test_xfail_raises():
            with pytest.raises(pytest.xfail.Exception):  # --runxfail makes pytest.xfail a no-op
                pytest.xfail("raised")
        """,
        ["--runxfail"],
    ),
    "blocked-builtin-plugin": (
        """
        def test_monkeypatch(monkeypatch):
            monkeypatch.setattr("os.sep", "/")
        """,
        ["-p", "no:monkeypatch"],
    ),
    "a-plugin-option": (
        """
        def test_mode(request):
            assert request.config.getoption("--strict-mode") == "lax"
        """,
        ["--strict-mode=strict"],
    ),
}
PLUGIN_OPTION = """
def pytest_addoption(parser):
    parser.addoption("--strict-mode", default="lax")
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_setting_that_changes_the_outcome_is_a_facet(
    repo: Path, pytester: pytest.Pytester, case: str
) -> None:
    module, setting = CASES[case]
    pytester.makeconftest(PLUGIN_OPTION)
    pytester.makepyfile(module)
    commit(repo)
    first = pytester.runpytest_subprocess()
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    assert records(repo)
    result = pytester.runpytest_subprocess("--unchanged", *setting)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 1, result.stdout.str()


def test_options_from_pytest_addopts_are_facets(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(CASES["runxfail"][0])
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("PYTEST_ADDOPTS", "--runxfail")
    pytester.runpytest("--unchanged").assert_outcomes(failed=1)


def test_an_option_names_itself_in_explain(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CASES["assert-plain"][0])
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--unchanged", "--unchanged-explain", "--assert=plain")
    result.stdout.fnmatch_lines(["environment changed: option --assert: default → plain: 1 test"])
    result = pytester.runpytest_subprocess(
        "--unchanged-explain", "-o", "filterwarnings=error:unchanged"
    )
    result.stdout.fnmatch_lines(
        ["environment changed: -o filterwarnings: not given → error:unchanged: 1 test"]
    )


def test_plugin_autoload_turned_off_is_a_facet(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # worker_id comes from pytest-xdist, an autoloaded plugin.
    pytester.makepyfile("def test_worker(worker_id):\n    assert worker_id == 'master'\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest("-p", "pytest_unchanged.plugin", "--unchanged")
    result.assert_outcomes(errors=1)


def test_a_plugin_module_whose_name_mentions_unchanged_is_a_facet(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        unchanged_helpers="import pytest\n\n@pytest.fixture\ndef helper():\n    return 1\n",
        test_helped="def test_helped(helper):\n    assert helper == 1\n",
    )
    pytester.syspathinsert()
    commit(repo)
    pytester.runpytest("-p", "unchanged_helpers").assert_outcomes(passed=1)
    pytester.runpytest("--unchanged").assert_outcomes(errors=1)


@pytest.mark.parametrize(
    ("variable", "value", "check"),
    [
        ("PYTHONDEVMODE", "1", "assert not sys.flags.dev_mode"),
        ("PYTHONWARNINGS", "error::UserWarning", "warnings.warn('careful', UserWarning)"),
        ("PYTHONOPTIMIZE", "1", "if sys.flags.optimize: raise RuntimeError('optimized')"),
        ("PYTHONHASHSEED", "123", "assert hash('seeded') != SEEDED"),
    ],
)
def test_a_python_setting_of_the_environment_is_a_facet(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    check: str,
) -> None:
    seeded = subprocess.run(
        [sys.executable, "-c", "print(hash('seeded'))"],
        env={"PYTHONHASHSEED": "123"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pytester.makepyfile(
        f"import sys, warnings\nSEEDED = {seeded}\n\ndef test_python():\n    {check}\n"
    )
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    monkeypatch.setenv(variable, value)
    result = pytester.runpytest_subprocess("--unchanged", "--unchanged-explain")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["environment changed: *environment variable " + variable + "*"])


def test_pythonpath_is_a_facet(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "lib").mkdir()
    (repo / "lib" / "shared_helper.py").write_text("VALUE = 1\n")
    pytester.makepyfile("def test_import():\n    import shared_helper\n")
    commit(repo)
    before = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(repo / "lib"), before])))
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    monkeypatch.setenv("PYTHONPATH", before or "")
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(failed=1)


def test_capture_is_a_facet(repo: Path, pytester: pytest.Pytester) -> None:
    # -s changes what a test sees (sys.stdout, sys.stdin): not a reporting option.
    pytester.makepyfile(
        "import sys\n\ndef test_captured():\n    assert sys.stdout is not sys.__stdout__\n"
    )
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--unchanged", "-s").assert_outcomes(failed=1)


def test_the_working_directory_is_a_facet(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")  # the rootdir stays the repository top from tests/ too
    (repo / "tests").mkdir()
    (repo / "tests" / "test_relative.py").write_text(
        "def test_relative():\n    open('tests/test_relative.py').close()\n"
    )
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo / "tests")
        result = pytester.runpytest_subprocess("--unchanged", "--unchanged-explain")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the working directory: . → tests*"])


def test_reporting_and_selection_options_keep_records(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    result = pytester.runpytest(
        "--unchanged",
        "-v",
        "-rA",
        "--tb=short",
        "--color=yes",
        "-x",
        "--durations=2",
        "--junitxml=out.xml",
        "-k",
        "test_",
        "--deselect",
        "test_project.py::nothing",
        "-o",
        "unchanged_fast_path=false",
        "-o",
        "unchanged_mode=skip",
        "-p",
        "no:not_installed_at_all",
    )
    assert_unchanged(result, 3)


def test_options_are_read_as_given_not_as_a_plugin_rewrites_them(
    project: Path, pytester: pytest.Pytester
) -> None:
    # Like pytest-randomly's --randomly-seed: a plugin draws a new value on every run.
    pytester.makeconftest(
        """
        import random

        def pytest_addoption(parser):
            parser.addoption("--seed", default="default")

        def pytest_configure(config):
            if config.option.seed == "default":
                config.option.seed = str(random.random())
        """
    )
    commit(project)
    pytester.runpytest().assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest("--unchanged"), 3)
    result = pytester.runpytest("--unchanged", "--seed=7")
    result.assert_outcomes(passed=3)


def test_records_of_a_plain_run_hold_under_xdist(project: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest_subprocess("-n", "2", "--unchanged"), 3)


def test_the_allowlist_names_only_reporting_or_selection_options() -> None:
    # When in doubt an option is a facet: these change how a test that runs ends.
    for dest in ("capture", "assertmode", "pythonwarnings", "ignore", "runxfail", "log_level"):
        assert dest not in NOT_FACETS
    assert "unchanged_salt" not in NOT_FACETS  # a facet of its own: the salt


def test_ini_overrides_are_facets_but_this_plugins_selection_ones() -> None:
    assert override_ini_facets(
        [
            "filterwarnings=error:unchanged",
            "unchanged_fast_path=false",
            "unchanged_inputs=data.txt",
            "xfail_strict=true",
            "xfail_strict=false",
        ]
    ) == {
        "ini:filterwarnings": "error:unchanged",
        "ini:unchanged_inputs": "data.txt",
        "ini:xfail_strict": "false",
    }


def test_explain_names_settings() -> None:
    old = {"option:--assert": None, "plugin:warnings": None, "plugin:xdist": "pytest-xdist 3.8"}
    new = {
        "option:--assert": '"plain"',
        "plugin:warnings": "not loaded",
        "python:flag:dev_mode": "True",
    }
    assert environment_changes(old, new) == [
        "option --assert: default → plain",
        "plugin warnings: loaded → not loaded",
        "plugin xdist: pytest-xdist 3.8 → not loaded",
        "Python flag dev_mode: unknown → True",
    ]
