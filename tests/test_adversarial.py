"""Inputs an adversarial review found breaking runs (issue 10/11): a declared path that cannot
be a path, values that are not UTF-8, options pytest's cache provider acts on, huge numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")


@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
@pytest.mark.parametrize("path", ["a\\0b", "data/\\ud800"], ids=["nul", "surrogate"])
def test_declared_path_that_cannot_be_a_path_is_a_usage_error(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str], path: str
) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("x\n")
    pytester.makepyfile(
        test_nul=f"import pytest\n\n@pytest.mark.depends_on('{path}')\ndef test_1(): pass\n"
    )
    commit(repo)
    result = pytester.runpytest_subprocess(*unchanged)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output, output
    assert "test_nul.py::test_1" in output, output
    assert "not a usable path" in output, output


@pytest.mark.parametrize(
    "how", ["env", "ini", "rootdir"], ids=["pythonpath", "dash-o", "repository-path"]
)
def test_values_that_are_not_utf8_key_deterministically(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    latin1 = os.fsdecode(b"lib\xe9")  # a Latin-1 name: a surrogate-escaped str
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    args: list[str] = []
    if how == "env":
        (repo.parent / latin1).mkdir()
        monkeypatch.setenv("PYTHONPATH", str(repo.parent / latin1))
    elif how == "ini":
        args = ["-o", f"unchanged_salt={latin1}"]
    else:  # a repository under a directory whose name is not UTF-8
        inner = repo / latin1
        inner.mkdir()
        (inner / "test_inner.py").write_text("def test_2(): pass\n")
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "c"]):
            subprocess.run(["git", *command], cwd=inner, check=True)
        for flags, expected in (([], b"1 passed"), (["--unchanged"], b"1 unchanged")):
            run = [sys.executable, "-m", "pytest", *flags]
            done = subprocess.run(run, cwd=inner, capture_output=True, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
            assert expected in done.stdout, done.stdout
        return
    first = pytester.runpytest_subprocess(*args)
    assert first.ret == pytest.ExitCode.OK, first.stdout.str() + first.stderr.str()
    assert records(repo)
    assert_unchanged(pytester.runpytest_subprocess("--unchanged", *args), 1)


def test_last_failed_none_deselects_everything_with_the_fast_path_on(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)  # no failures recorded
    for fast in ("true", "false"):
        flags = ("--unchanged", "--lf", "--lfnf=none", "-o", f"unchanged_fast_path={fast}")
        result = pytester.runpytest_subprocess(*flags)
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, (fast, result.stdout.str())
        result.assert_outcomes(deselected=1)


@pytest.mark.parametrize(
    "option",
    [
        f"unchanged_max_keys={2**63}",
        "unchanged_max_keys=\N{SUPERSCRIPT TWO}",
        f"unchanged_max_age_days={2**63}",
    ],
    ids=["keys-2**63", "keys-superscript", "days-2**63"],
)
def test_counts_beyond_what_sqlite_holds_are_usage_errors(
    repo: Path, pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")
    commit(repo)
    result = pytester.runpytest_subprocess("-o", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["*must be a whole number from 1 to 2147483648*"])
    biggest = option.partition("=")[0] + f"={2**31}"
    pytester.runpytest_subprocess("-o", biggest).assert_outcomes(passed=1)


@pytest.mark.parametrize("fast", ["true", "false"])
def test_glob_counts_hidden_names_as_pathlib_reads_them(
    repo: Path, pytester: pytest.Pytester, fast: str
) -> None:
    (repo / "data" / ".cache").mkdir(parents=True)
    for name in ("a.json", ".local.json", ".cache/x.json"):
        (repo / "data" / name).write_text("1\n")
    pytester.makepyfile(
        test_g="""
        import pathlib, pytest

        @pytest.mark.depends_on("data/**/*.json")
        def test_all():
            for path in pathlib.Path("data").glob("**/*.json"):
                assert path.read_text() == "1\\n", path
        """
    )
    commit(repo)
    option = ("-o", f"unchanged_fast_path={fast}")
    pytester.runpytest_subprocess("--unchanged", *option).assert_outcomes(passed=1)
    for name in (".local.json", ".cache/x.json"):
        (repo / "data" / name).write_text("2\n")
        commit(repo)
        pytester.runpytest_subprocess("--unchanged", *option).assert_outcomes(failed=1)
        (repo / "data" / name).write_text("1\n")
        commit(repo)  # the inputs of the first pass again: its record holds
        assert_unchanged(pytester.runpytest_subprocess("--unchanged", *option), 1)


@pytest.mark.parametrize("tracked", [False, True], ids=["nothing-tracked", "one-file-forced"])
def test_declared_ignored_directory_counts_its_ignored_files(
    repo: Path, pytester: pytest.Pytester, tracked: bool
) -> None:
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "keep.txt").write_text("k\n")
    (repo / "build" / "gen.txt").write_text("1\n")
    pytester.makepyfile(
        test_b="""
        import pytest

        @pytest.mark.depends_on("build")
        def test_gen():
            assert open("build/gen.txt").read() == "1\\n"
        """
    )
    commit(repo)
    if tracked:
        subprocess.run(["git", "add", "-f", "build/keep.txt"], cwd=repo, check=True)
        commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=1)
    (repo / "build" / "gen.txt").write_text("2\n")  # ignored, as `git add -f build` stages it
    for fast in ("true", "false"):
        result = pytester.runpytest_subprocess("--unchanged", "-o", f"unchanged_fast_path={fast}")
        result.assert_outcomes(failed=1)


@pytest.mark.parametrize("fast", ["true", "false"])
def test_path_below_a_symlinked_directory_counts_its_target(
    repo: Path, pytester: pytest.Pytester, fast: str
) -> None:
    (repo / "real").mkdir()
    (repo / "real" / "x.txt").write_text("1\n")
    (repo / "data").symlink_to("real")
    pytester.makepyfile(
        test_s="""
        import pathlib, pytest

        @pytest.mark.depends_on("data/x.txt")
        def test_x():
            assert pathlib.Path("data/x.txt").read_text() == "1\\n"
        """
    )
    commit(repo)
    option = ("--unchanged", "-W", "error", "-o", f"unchanged_fast_path={fast}")
    pytester.runpytest_subprocess(*option).assert_outcomes(passed=1)  # no "matches nothing"
    assert_unchanged(pytester.runpytest_subprocess(*option), 1)
    (repo / "real" / "x.txt").write_text("2\n")
    pytester.runpytest_subprocess(*option).assert_outcomes(failed=1)
