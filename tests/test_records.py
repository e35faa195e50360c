"""What counts as a pass, and what happens to records on failures, interrupts and bad stores."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, git, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

STORE = Path(".pytest_cache", "d", "unchanged", "store.sqlite3")


def test_only_full_passes_are_recorded(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup")

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown")

        def test_pass(): pass
        def test_fail(): assert False
        def test_setup_error(broken_setup): pass
        def test_teardown_error(broken_teardown): pass
        @pytest.mark.skip(reason="no")
        def test_skip(): pass
        @pytest.mark.xfail(reason="known")
        def test_xfail(): assert False
        @pytest.mark.xfail(reason="known", strict=False)
        def test_xpass(): pass
        """
    )
    commit(repo)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, errors=2, skipped=1, xfailed=1, xpassed=1)
    assert [nodeid for nodeid, _ in records(repo)] == [
        "test_only_full_passes_are_recorded.py::test_pass"
    ]
    again = pytester.runpytest("--unchanged")
    again.assert_outcomes(passed=1, skipped=2, failed=1, errors=2, xfailed=1, xpassed=1)


def test_a_failure_removes_the_record_of_its_key(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test reads an undeclared environment variable: same key, different outcome.
    pytester.makepyfile("import os\ndef test_env():\n    assert not os.environ.get('BREAK')\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    assert len(records(repo)) == 1
    monkeypatch.setenv("BREAK", "1")
    pytester.runpytest().assert_outcomes(failed=1)
    assert records(repo) == []
    monkeypatch.delenv("BREAK")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)


def test_exitfirst_keeps_only_completed_passes(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_1(): pass\ndef test_2(): assert False\ndef test_3(): pass\n")
    commit(repo)
    pytester.runpytest("-x").assert_outcomes(passed=1, failed=1)
    assert [n for n, _ in records(repo)] == [
        "test_exitfirst_keeps_only_completed_passes.py::test_1"
    ]
    pytester.runpytest("--unchanged").assert_outcomes(passed=1, failed=1, skipped=1)


def test_keyboard_interrupt_keeps_only_completed_passes(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        def test_1(): pass
        def test_2(): raise KeyboardInterrupt
        def test_3(): pass
        """
    )
    commit(repo)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert [n for n, _ in records(repo)] == [
        "test_keyboard_interrupt_keeps_only_completed_passes.py::test_1"
    ]


def test_collect_only_records_nothing(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    pytester.runpytest("--collect-only").assert_outcomes()
    assert records(repo) == []
    result = pytester.runpytest("--unchanged", "--collect-only")
    result.stdout.fnmatch_lines(["unchanged: 0 unchanged (would be skipped), 1 to run"])


def test_corrupt_store_warns_runs_everything_and_is_rebuilt(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    (repo / STORE).write_bytes(b"this is not a database" * 100)
    result = pytester.runpytest("--unchanged", "-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*CorruptStoreWarning:*is damaged (file is not a database)*"])
    assert (repo / STORE.with_name("store.sqlite3.corrupt")).exists()
    assert_unchanged(pytester.runpytest("--unchanged", "-W", "always::pytest.PytestWarning"), 1)


def test_store_from_a_newer_format_is_left_as_it_is_not_misread(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # Two plugin versions sharing one cache (two virtualenvs): the older one runs everything
    # and keeps its hands off the newer one's records (adversarial review round 3, finding 08).
    pytester.makepyfile("def test_1(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    with closing(sqlite3.connect(repo / STORE)) as db, db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'format'")
    for _ in range(2):
        result = pytester.runpytest("--unchanged", "-W", "always::pytest.PytestWarning")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["*StoreUnavailableWarning:*format '99'*newer*"])
    assert not (repo / STORE.with_name("store.sqlite3.corrupt")).exists()
    with closing(sqlite3.connect(repo / STORE)) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone() == ("99",)
        assert db.execute("SELECT count(*) FROM passes").fetchone() == (1,)


def test_records_are_pruned_by_count(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nunchanged_max_keys = 2\nunchanged_default = data.txt\n")
    pytester.makepyfile("def test_1(): pass\n")
    for version in range(4):
        (repo / "data.txt").write_text(f"{version}\n")
        pytester.runpytest().assert_outcomes(passed=1)
    assert len(records(repo)) == 2
    with closing(sqlite3.connect(repo / STORE)) as db, db:
        (bodies,) = db.execute("SELECT count(*) FROM bodies").fetchone()
    assert bodies == 3  # the manifests of the two kept records and the one environment


def test_switching_branches_back_still_hits(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "data.txt").write_text("main\n")
    pytester.makepyfile("import pytest\n@pytest.mark.depends_on('data.txt')\ndef test_1(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "data.txt").write_text("feature\n")
    commit(repo)
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)
    git(repo, "checkout", "-q", "main")
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    git(repo, "checkout", "-q", "feature")
    assert_unchanged(pytester.runpytest("--unchanged"), 1)


def test_same_tree_after_a_squash_merge_hits(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "data.txt").write_text("v1\n")
    pytester.makepyfile("import pytest\n@pytest.mark.depends_on('data.txt')\ndef test_1(): pass\n")
    commit(repo)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "data.txt").write_text("v2\n")
    commit(repo, "one")
    (repo / "data.txt").write_text("v3\n")
    commit(repo, "two")
    pytester.runpytest().assert_outcomes(passed=1)  # tested on the branch
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--squash", "feature")
    commit(repo, "squashed")
    assert_unchanged(pytester.runpytest("--unchanged"), 1)


def test_two_processes_at_once_share_the_store(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        **{f"test_m{i}": "\n".join(f"def test_{j}(): pass" for j in range(50)) for i in range(2)}
    )
    commit(repo)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]
    processes = [
        subprocess.Popen([*command, f"test_m{i}.py"], cwd=repo, stdout=subprocess.DEVNULL)
        for i in range(2)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    assert len(records(repo)) == 100
    assert_unchanged(pytester.runpytest("--unchanged"), 100)


def test_command_line_settings_that_change_outcomes_are_part_of_the_key(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        import warnings

        def test_warns():
            warnings.warn("old", DeprecationWarning)
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1, warnings=1)
    result = pytester.runpytest("--unchanged", "-W", "error::DeprecationWarning")
    result.assert_outcomes(failed=1)  # not skipped: under -W error it fails
    result = pytester.runpytest("--unchanged", "-p", "no:nonexistent", "-o", "unchanged_mode=skip")
    result.assert_outcomes(skipped=1)  # blocking an absent plugin, our own ini: same key


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_a_record_keeps_the_seconds_of_setup_call_and_teardown(
    repo: Path, pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    if workers:
        pytest.importorskip("xdist")
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.fixture
        def slow_fixture():
            time.sleep(0.2)
            yield
            time.sleep(0.2)

        def test_slow(slow_fixture):
            time.sleep(0.2)
        """
    )
    commit(repo)
    pytester.runpytest_subprocess(*workers).assert_outcomes(passed=1)
    with closing(sqlite3.connect(repo / STORE)) as db, db:
        ((duration,),) = db.execute("SELECT duration FROM passes").fetchall()
    assert 0.6 <= duration < 5
    result = pytester.runpytest_subprocess("--unchanged", *workers)
    result.stdout.re_match_lines(
        [r"unchanged: 1 unchanged test not run, (0\.[6-9]|[1-4]\.)\d*s saved"]
    )
