"""Selection modes and interplay with pytest's own selection, xdist, options and extension hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

MARKED = """
import pytest

@pytest.mark.slow
def test_slow(): pass

def test_fast_1(): pass

def test_fast_2(): pass
"""


def test_deselect_mode_deselects_and_exits_zero(project: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    no_fast_path = ("-o", "unchanged_fast_path=false")
    result = pytester.runpytest("--unchanged", "--unchanged-mode=deselect", *no_fast_path)
    result.assert_outcomes(deselected=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["unchanged: 3 unchanged (deselected), 0 to run"])
    (project / "src" / "b.py").write_text("B = 2\n")
    pytester.makeini("[pytest]\nunchanged_mode = deselect\n")
    pytester.runpytest("--unchanged").assert_outcomes(passed=3)  # the ini file is an input
    (project / "src" / "b.py").write_text("B = 3\n")
    result = pytester.runpytest("--unchanged")
    result.assert_outcomes(passed=2, deselected=1)


def test_ini_option_turns_it_on_and_no_unchanged_off(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nunchanged = true\n")
    pytester.runpytest().assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest(), 3)
    pytester.runpytest("--no-unchanged").assert_outcomes(passed=3)


def test_bad_mode_in_ini_is_a_usage_error(project: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nunchanged_mode = delete\n")
    result = pytester.runpytest("--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unchanged_mode must be one of skip, deselect, not 'delete'"])


def test_bad_numbers_in_ini_are_usage_errors(project: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nunchanged_max_keys = many\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unchanged_max_keys must be a whole number from 1 to *"])


def test_works_with_m_in_addopts_k_and_deselect(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini('[pytest]\naddopts = -m "not slow"\nmarkers = slow: slow tests\n')
    pytester.makepyfile(test_sel=MARKED)
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2, deselected=1)
    no_fast_path = ("-o", "unchanged_fast_path=false")
    result = pytester.runpytest("--unchanged", *no_fast_path)
    result.assert_outcomes(skipped=2, deselected=1)
    result.stdout.fnmatch_lines(["unchanged: 2 unchanged (skipped), 0 to run"])
    # The fast path knows the slow test's marks: -m would deselect it again, so the module,
    # whose other tests are unchanged, is not even imported.
    result = pytester.runpytest("--unchanged")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "unchanged: 2 unchanged (2 not collected, 0 skipped), 0 to run, "
            "1 deselected by -m (not collected)"
        ]
    )
    # The slow test never ran, so it has no record: selecting it runs it.
    pytester.runpytest("--unchanged", "-m", "slow").assert_outcomes(passed=1, deselected=2)
    # Now every item of the module has a record: the module is not even imported. The slow
    # test, which -m "not slow" deselects again, is not counted as unchanged.
    result = pytester.runpytest("--unchanged")
    assert_unchanged(result, 2)
    result.stdout.fnmatch_lines(["*, 1 deselected by -m (not collected)"])
    # Under -k the module is collected (pytest matches -k against what an import shows), so
    # only what -k selects counts.
    result = pytester.runpytest("--unchanged", "-k", "fast_1")
    assert_unchanged(result, 1)
    result.assert_outcomes(skipped=1, deselected=2)
    result = pytester.runpytest("--unchanged", "-k", "fast_1", *no_fast_path)
    result.assert_outcomes(skipped=1, deselected=2)
    result = pytester.runpytest(
        "--unchanged", "-m", "", "--deselect", "test_sel.py::test_fast_2", *no_fast_path
    )
    result.assert_outcomes(skipped=2, deselected=1)
    (repo / "test_sel.py").write_text(MARKED + "\ndef test_new(): pass\n")
    result = pytester.runpytest("--unchanged", "-k", "fast or new", "-v")
    result.assert_outcomes(passed=3, deselected=1)  # the test file changed: all its tests run


def test_works_with_last_failed(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_lf="import os\ndef test_ok(): pass\ndef test_flaky(): assert os.environ.get('FIXED')\n"
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--unchanged", "--lf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    result = pytester.runpytest("--unchanged")
    result.assert_outcomes(skipped=1, failed=1)


def test_xdist_workers_hand_keys_to_the_controller(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytest.importorskip("xdist")
    first = pytester.runpytest_subprocess("-n", "2")
    first.assert_outcomes(passed=3)
    assert len(records(project)) == 3
    second = pytester.runpytest_subprocess("-n", "2", "--unchanged")
    assert_unchanged(second, 3)
    (project / "src" / "a.py").write_text("A = 2\n")
    pytester.runpytest_subprocess("-n", "2", "--unchanged").assert_outcomes(passed=2, skipped=1)
    assert_unchanged(pytester.runpytest_subprocess("-n", "2", "--unchanged"), 3)


def test_outside_a_git_repository(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_1(): pass\n")
    result = pytester.runpytest("--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --unchanged needs a git repository, and the rootdir *"])
    pytester.runpytest().assert_outcomes(passed=1)  # without the flag it stays out of the way
    assert not (pytester.path / ".pytest_cache" / "d" / "unchanged").exists()


def test_disabled_with_p_no_unchanged(project: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest("-p", "no:unchanged").assert_outcomes(passed=3)
    assert records(project) == []
    result = pytester.runpytest("-p", "no:unchanged", "--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --unchanged*"])


def test_help_and_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "skip tests whose git inputs are unchanged:",
            "  --unchanged * Skip tests whose inputs have the same git OIDs as when*",
            "*--unchanged-mode={skip,deselect}*",
            "*unchanged_inputs (linelist):*",
        ]
    )
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.depends_on(*paths): the test's inputs*", "@pytest.mark.always_run:*"]
    )


def test_extension_hooks_add_inputs_and_environment_facets(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "schema.sql").write_text("create table t (x int);\n")
    pytester.makeconftest(
        """
        import os

        def pytest_unchanged_item_inputs(item):
            if "db" in item.keywords:
                return ["schema.sql"]

        def pytest_unchanged_environment(config):
            return {"server": os.environ.get("SERVER_VERSION", "1")}
        """
    )
    pytester.makeini("[pytest]\nmarkers = db: needs the database\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.db
        @pytest.mark.depends_on("test_extension_hooks_add_inputs_and_environment_facets.py")
        def test_db(): pass

        @pytest.mark.depends_on("test_extension_hooks_add_inputs_and_environment_facets.py")
        def test_other(): pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    (repo / "schema.sql").write_text("create table t (x int, y int);\n")
    result = pytester.runpytest("--unchanged", "-v")
    result.stdout.fnmatch_lines(["*test_db PASSED*", "*test_other SKIPPED*"])
    assert_unchanged(pytester.runpytest("--unchanged"), 2)
    monkeypatch.setenv("SERVER_VERSION", "2")
    pytester.runpytest("--unchanged").assert_outcomes(passed=2)


def test_conflicting_depends_on_plugin_is_named(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real installed plugin distribution named pytest-depends-on, loaded by entry point.
    site = pytester.mkdir("site")
    (site / "pytest_depends_on.py").write_text(
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'depends_on(tests): ordering')\n"
    )
    info = site / "pytest_depends_on-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-depends-on\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\ndepends_on = pytest_depends_on\n")
    (info / "RECORD").write_text("")
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = pytester.runpytest_subprocess("--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-depends-on is installed and also defines a 'depends_on' marker*-p no:depends_on*"]
    )
    result = pytester.runpytest_subprocess("-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    assert records(repo) == []
    # Round 4, finding 11: under -W error the warning is not raised (an INTERNALERROR).
    pytester.runpytest_subprocess("-W", "error").assert_outcomes(passed=1, warnings=1)
    pytester.runpytest_subprocess("--unchanged", "-p", "no:depends_on").assert_outcomes(passed=1)


def test_item_file_outside_the_repository_always_runs(
    repo: Path, pytester: pytest.Pytester
) -> None:
    outside = pytester.path.parent / f"{pytester.path.name}_outside"
    outside.mkdir()
    (outside / "test_out.py").write_text(textwrap.dedent("def test_out(): pass\n"))
    pytester.makepyfile("def test_in(): pass\n")
    commit(repo)
    args = [str(outside / "test_out.py"), "test_item_file_outside_the_repository_always_runs.py"]
    pytester.runpytest(*args, "--rootdir", str(repo)).assert_outcomes(passed=2)
    result = pytester.runpytest("--unchanged", *args, "--rootdir", str(repo))
    result.assert_outcomes(passed=1, skipped=1)
