"""The plugin never breaks a run: damaged, locked or unreachable stores, odd collections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, git, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

STORE = Path(".pytest_cache", "d", "unchanged", "store.sqlite3")


def damage_store(repo: Path, pytester: pytest.Pytester) -> None:
    """Record one pass of ``test_1``, then overwrite the store with bytes SQLite refuses."""
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    (repo / STORE).write_bytes(b"this is not a database" * 100)


@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
def test_corrupt_store_is_moved_aside_under_dash_w_error(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str]
) -> None:
    damage_store(repo, pytester)
    result = pytester.runpytest_subprocess(*unchanged, "-W", "error")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*CorruptStoreWarning:*is damaged (file is not a database)*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert (repo / STORE.with_name("store.sqlite3.corrupt")).exists()
    assert [nodeid for nodeid, _ in records(repo)] == [f"{pytester.path.name[:-1]}.py::test_1"]
    clean = pytester.runpytest_subprocess("--unchanged", "-W", "error")
    assert_unchanged(clean, 1)
    clean.stdout.no_fnmatch_line("*Warning*")


def test_corrupt_store_is_moved_aside_under_filterwarnings_error(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    damage_store(repo, pytester)
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == pytest.ExitCode.OK
    assert (repo / STORE.with_name("store.sqlite3.corrupt")).exists()
    assert_unchanged(pytester.runpytest_subprocess("--unchanged"), 1)


@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
def test_store_that_cannot_be_opened_warns_and_runs_everything(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str]
) -> None:
    # A store left 0600 by root cannot be simulated as root (root reads any file): a directory
    # where the store file should be makes SQLite refuse to open it for every user alike.
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    (repo / STORE).mkdir(parents=True)
    result = pytester.runpytest_subprocess(*unchanged, "-W", "error")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*StoreUnavailableWarning:*store.sqlite3 cannot be *"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert (repo / STORE).is_dir()


@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
def test_cache_directory_that_cannot_be_made_warns_and_runs_everything(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str]
) -> None:
    # A read-only checkout, as any user (root included): the cache directory would go under a
    # regular file, so pytest's config.cache.mkdir raises.
    (repo / "blocker").write_text("a file, not a directory\n")
    pytester.makeini("[pytest]\ncache_dir = blocker/cache\n")
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    result = pytester.runpytest_subprocess(*unchanged, "-W", "ignore::pytest.PytestCacheWarning")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*StoreUnavailableWarning:*cannot be *"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize(
    "cache_dir", [".pytest_cache", "$PROBE_HOME/cache"], ids=["default", "vars"]
)
def test_the_store_leaves_no_untracked_file_in_a_repository_without_gitignore(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, cache_dir: str
) -> None:
    # pytest 8.0's Cache.mkdir makes the cache directory without its ``.gitignore`` of ``*``:
    # the store was then an untracked file, ``.`` changed on every run, and nothing was ever
    # unchanged (CI on the lowest pytest).
    monkeypatch.setenv("PROBE_HOME", "home")
    pytester.makeini(f"[pytest]\ncache_dir = {cache_dir}\n")
    pytester.makepyfile("def test_1(): pass\n")
    (pytester.path / ".gitignore").write_text("/stdout\n/stderr\n/runpytest-*\n__pycache__/\n")
    git(pytester.path, "init", "-q")
    commit(pytester.path)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert git(pytester.path, "status", "--porcelain") == ""
    assert_unchanged(pytester.runpytest_subprocess("--unchanged"), 1)


def test_pruning_issues_no_deprecation_warning(repo: Path, pytester: pytest.Pytester) -> None:
    # Python 3.12 deprecates numbered placeholders (?1) bound to a sequence; 3.14 refuses them.
    pytester.makeini("[pytest]\nunchanged_max_keys = 1\n")
    (repo / "data.txt").write_text("1\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.depends_on('data.txt')\ndef test_1(): pass\n"
    )
    commit(repo)
    for version in ("2", "3"):
        result = pytester.runpytest_subprocess("-W", "error::DeprecationWarning")
        result.assert_outcomes(passed=1)
        (repo / "data.txt").write_text(f"{version}\n")
        commit(repo)
    assert len(records(repo)) == 1


def test_duplicate_nodeids_get_no_record_and_keep_the_others(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_dup="def test_1(): pass\n", test_other="def test_2(): pass\n")
    commit(repo)
    args = ["--keep-duplicates", "test_dup.py", "test_dup.py", "test_other.py"]
    result = pytester.runpytest("-W", "error", *args)
    result.assert_outcomes(passed=3)
    assert [nodeid for nodeid, _ in records(repo)] == ["test_other.py::test_2"]
    # The twice-collected item always runs; the others are recorded and skipped as usual.
    result = pytester.runpytest("-W", "error", "--unchanged", *args)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (skipped), 2 to run"])


def test_custom_collector_with_two_items_of_one_name(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        class Item(pytest.Item):
            def runtest(self):
                pass

        class File(pytest.File):
            def collect(self):
                yield Item.from_parent(self, name="same")
                yield Item.from_parent(self, name="same")

        def pytest_collect_file(parent, file_path):
            if file_path.suffix == ".case":
                return File.from_parent(parent, path=file_path)
        """
    )
    (repo / "one.case").write_text("")
    pytester.makepyfile(test_other="def test_2(): pass\n")
    commit(repo)
    pytester.runpytest("-W", "error").assert_outcomes(passed=3)
    assert [nodeid for nodeid, _ in records(repo)] == ["test_other.py::test_2"]
    result = pytester.runpytest("-W", "error", "--unchanged")
    result.assert_outcomes(passed=2)  # test_other.py is not even collected
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (1 not collected*), 2 to run"])


def test_hook_without_optionalhook_runs_with_the_plugin_blocked(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeconftest(
        """
        def pytest_unchanged_item_inputs(item):
            return ["data.txt"]
        """
    )
    pytester.makeini(
        "[pytest]\nfilterwarnings = error\nmarkers =\n    depends_on(*paths): inputs\n"
    )
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    result = pytester.runpytest_subprocess("-p", "no:unchanged")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert records(repo) == []


MARKED = "import pytest\n\npytestmark = pytest.mark.depends_on('{}.py')\n\n"
TWO_MODULES = {
    "test_a": MARKED.format("test_a") + "def test_1(): pass\ndef test_2(): pass\n",
    "test_b": MARKED.format("test_b") + "def test_3(): pass\n",
}


def two_recorded_modules(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**TWO_MODULES)
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=3)


def test_keyword_matching_nothing_exits_5_with_modules_left_uncollected(
    repo: Path, pytester: pytest.Pytester
) -> None:
    two_recorded_modules(repo, pytester)
    result = pytester.runpytest_subprocess("--unchanged", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.no_fnmatch_line("*not run*")
    # A keyword that matches only unchanged tests: they are skipped, the run passes.
    result = pytester.runpytest_subprocess("--unchanged", "-k", "test_3")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1, deselected=2)
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (skipped), 0 to run"])


def test_not_collected_counts_only_what_the_arguments_select(
    repo: Path, pytester: pytest.Pytester
) -> None:
    two_recorded_modules(repo, pytester)
    result = pytester.runpytest_subprocess("--unchanged", "test_a.py::test_1")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (skipped), 0 to run"])
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged test not run, *s saved*"])
    (repo / "sub").mkdir()
    (repo / "sub" / "test_c.py").write_text("def test_5(): pass\n")
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=4)
    # Other path arguments are another configuration for the fast path (they decide which
    # conftests load): the module is collected and its test skipped, never counted twice.
    result = pytester.runpytest_subprocess("--unchanged", "sub")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (skipped), 0 to run"])
    result = pytester.runpytest_subprocess("--unchanged", "--deselect", "test_a.py::test_1")
    result.assert_outcomes(skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["unchanged: 3 unchanged (2 not collected, 1 skipped), 0 to run"])


def test_deselect_mode_under_xdist_exits_0_with_the_summary_line(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nunchanged_fast_path = false\n")
    two_recorded_modules(repo, pytester)
    result = pytester.runpytest_subprocess("--unchanged", "--unchanged-mode=deselect", "-n", "2")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["unchanged: 3 unchanged tests not run, *s saved*"])


def test_collect_only_is_a_preview_of_what_would_run(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nunchanged_fast_path = false\n")
    two_recorded_modules(repo, pytester)
    (repo / "test_b.py").write_text(TWO_MODULES["test_b"] + "def test_4(): pass\n")
    commit(repo)
    result = pytester.runpytest_subprocess("--unchanged", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "unchanged: 2 unchanged (would be skipped), 2 to run",
            "test_b.py::test_3",
            "test_b.py::test_4",
            "2/4 tests collected (2 deselected)*",
        ]
    )
    result.stdout.no_fnmatch_line("test_a.py::*")
    result.stdout.no_fnmatch_line("*not run*")
    assert len(records(repo)) == 3  # nothing recorded, nothing forgotten


def test_bad_mark_is_a_usage_error_named_once_without_summaries(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_a=MARKED.format("test_a") + "def test_1(): pass\n",
        test_bad="""
        import pytest

        @pytest.mark.depends_on("../outside.txt")
        @pytest.mark.parametrize("n", range(3))
        def test_p(n): pass
        """,
    )
    commit(repo)
    pytester.runpytest_subprocess("test_a.py").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("outside.txt") == 1, output
    assert "test_bad.py::test_p[0] (and 2 more items)" in output, output
    assert "unchanged:" not in output, output


def test_mistyped_path_under_filterwarnings_error_keeps_the_other_keys(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    (repo / "data.txt").write_text("1\n")
    good = "import pytest\n\n@pytest.mark.depends_on('data.txt')\ndef test_1(): pass\n"
    (repo / "test_typo.py").write_text(good)
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    assert len(records(repo)) == 1
    (repo / "test_typo.py").write_text(good.replace("data.txt", "dta.txt"))
    result = pytester.runpytest("--unchanged")
    result.assert_outcomes(errors=1)  # the UnknownPathWarning, an error as asked
    assert len(records(repo)) == 1  # the record of the spelling that worked is kept
    (repo / "test_typo.py").write_text(good)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)


@pytest.mark.parametrize("index", ["split", "sparse"])
@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
def test_index_libgit2_cannot_read_warns_and_runs_everything(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str], index: str
) -> None:
    # A split index ("link") or a sparse index ("sdir") is an index extension libgit2 refuses:
    # status cannot be read, so no key can be computed.
    pytester.makepyfile(test_a="def test_1(): pass\n")
    commit(repo)
    if index == "split":
        git(repo, "config", "core.splitIndex", "true")
        git(repo, "update-index", "--split-index")
    else:
        git(repo, "sparse-checkout", "init", "--cone", "--sparse-index")
    for _ in range(2):
        result = pytester.runpytest_subprocess(*unchanged)
        # The warning under --unchanged; a plain run records nothing, silently.
        result.assert_outcomes(passed=1, warnings=len(unchanged))
        if unchanged:
            result.stdout.fnmatch_lines(["*UnkeyableInputWarning:*git cannot read the worktree*"])
        result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
@pytest.mark.parametrize("unchanged", [[], ["--unchanged"]], ids=["plain", "unchanged"])
def test_a_repository_another_user_owns_warns_and_runs_like_pytest(
    repo: Path, pytester: pytest.Pytester, unchanged: list[str]
) -> None:
    """git refuses a checkout another user owns (``safe.directory``), and so does libgit2: a
    plain run warns and runs, ``--unchanged`` is a usage error naming the cure (adversarial
    review of issue 10, round 4, finding 01: an INTERNALERROR)."""
    (repo / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (repo / "test_a.py").write_text("def test_a():\n    assert True\n")
    commit(repo)
    os.chown(repo / ".git", 12345, 12345)
    result = pytester.runpytest_subprocess(*unchanged)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    if unchanged:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*git cannot open the repository*safe.directory*"])
    else:
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["*UnkeyableInputWarning*safe.directory*"])
    assert not (repo / ".pytest_cache/d/unchanged").exists()
