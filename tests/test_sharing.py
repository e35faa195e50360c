"""Records through git refs: the CI recipe end to end, trust, concurrency, bounded refs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import git
from .sharing_helpers import (
    clone,
    fill_store,
    make_origin,
    records_cli,
    ref_records,
    run_pytest,
)

REF = "refs/pytest-unchanged/records/"


def ref_lines(origin: Path, source: str) -> list[list[object]]:
    """The record lines of a source's ref in the bare ``origin``."""
    return ref_records(origin, f"{REF}{source}")


def test_ci_recipe_pr_then_squash_merge_on_main(tmp_path: Path, pytester: pytest.Pytester) -> None:
    """A PR job runs and pushes --as pr; after a squash merge, main fetches --from pr main and
    runs only what the PR did not test with the same inputs."""
    origin = make_origin(tmp_path)
    pr = clone(origin, tmp_path / "pr")
    git(pr, "checkout", "-q", "-b", "feature")
    (pr / "src" / "a.py").write_text("A = 2\n")
    git(pr, "commit", "-q", "-am", "change a")
    result = run_pytest(pr, "--unchanged")
    assert "3 passed" in result.stdout, result.stdout
    pushed = records_cli(pr, "push", "--as", "pr")
    assert pushed.returncode == 0, pushed.stderr
    assert len(ref_lines(origin, "pr")) == 3
    assert git(origin, "rev-list", "--count", f"{REF}pr") == "1"  # one parentless commit

    # Meanwhile main moves (src/b.py), then the PR is squash-merged.
    maintainer = clone(origin, tmp_path / "maintainer")
    (maintainer / "src" / "b.py").write_text("B = 2\n")
    git(maintainer, "commit", "-q", "-am", "change b on main")
    git(maintainer, "fetch", "-q", str(pr), "feature:feature")
    git(maintainer, "merge", "-q", "--squash", "feature")
    git(maintainer, "commit", "-q", "-m", "feature (squashed)")
    git(maintainer, "push", "-q", "origin", "main")

    main = pytester.path
    git(main.parent, "clone", "-q", "-b", "main", str(origin), str(main))
    fetched = records_cli(main, "fetch", "--from", "pr", "main")
    assert fetched.returncode == 0, fetched.stderr
    assert "pr: 3 record(s)" in fetched.stdout and "main: no such ref" in fetched.stdout
    run = pytester.runpytest("--unchanged", "-rs", "-p", "no:randomly")
    # test_a's input is what the PR tested; test_b's input and the whole tree differ.
    run.assert_outcomes(passed=2, skipped=1)
    run.stdout.fnmatch_lines(["*test_project.py:*unchanged since it passed at*from source pr)*"])
    pushed = records_cli(main, "push", "--as", "main")
    assert pushed.returncode == 0, pushed.stderr
    # main's ref holds main's own passes only: the record fetched from pr is not re-pushed.
    lines = ref_lines(origin, "main")
    assert sorted(str(v[2]) for v in lines) == [
        "test_project.py::test_b",
        "test_project.py::test_unmarked",
    ]
    assert {v[1] for v in lines} == {"main"}
    # A second main run: everything unchanged now.
    pytester.runpytest("--unchanged", "-p", "no:randomly").assert_outcomes(skipped=3)


def test_records_of_a_source_not_trusted_are_never_used(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    origin = make_origin(tmp_path)
    evil = clone(origin, tmp_path / "evil")
    assert "3 passed" in run_pytest(evil).stdout
    assert records_cli(evil, "push", "--as", "evil").returncode == 0
    main = pytester.path
    git(main.parent, "clone", "-q", "-b", "main", str(origin), str(main))
    assert records_cli(main, "fetch", "--from", "evil").returncode == 0
    shown = records_cli(main, "show").stdout
    assert shown.count(" evil ") == 3, shown
    # The ini trusts pr and main only: the evil records are in the store and never used.
    pytester.runpytest("--unchanged", "-p", "no:randomly").assert_outcomes(passed=3)
    # Naming the source on the command line trusts it (the records are only now used).
    assert records_cli(main, "forget", "*").returncode == 0
    assert records_cli(main, "fetch", "--from", "evil").returncode == 0
    run = pytester.runpytest("--unchanged", "--unchanged-trust", "evil", "-p", "no:randomly")
    run.assert_outcomes(skipped=3)


def test_a_local_failure_outweighs_a_trusted_record(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    origin = make_origin(tmp_path)
    pr = clone(origin, tmp_path / "pr")
    assert "3 passed" in run_pytest(pr).stdout
    assert records_cli(pr, "push", "--as", "pr").returncode == 0
    main = pytester.path
    git(main.parent, "clone", "-q", "-b", "main", str(origin), str(main))
    assert records_cli(main, "fetch", "--from", "pr").returncode == 0
    # test_a fails here under the key the pr record has (an input not declared: flaky).
    failed = run_pytest(main, env={"FAIL_A": "1"})
    assert "1 failed" in failed.stdout, failed.stdout
    run = pytester.runpytest("--unchanged", "-p", "no:randomly")
    run.assert_outcomes(passed=1, skipped=2)


def test_pushing_what_the_remote_has_creates_no_commit(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    pr = clone(origin, tmp_path / "pr")
    assert "3 passed" in run_pytest(pr).stdout
    store = pr / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(store, copy)  # the same records, no mark of a push
    assert records_cli(pr, "push", "--as", "pr").returncode == 0
    before = git(origin, "rev-parse", f"{REF}pr")
    again = records_cli(pr, "push", "--as", "pr")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("up to date, nothing pushed: no new record since")
    merged = records_cli(pr, "push", "--as", "pr", "--store", str(copy))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.startswith("up to date, nothing pushed: 3 record(s)")
    assert git(origin, "rev-parse", f"{REF}pr") == before


def test_the_ref_stays_bounded(tmp_path: Path) -> None:
    """Pruned by count and age like the local store; one commit without parents."""
    origin = make_origin(tmp_path)
    pr = clone(origin, tmp_path / "pr")
    store = tmp_path / "store.sqlite3"
    fill_store(store, [f"t.py::test_{n}" for n in range(5)], keys=4)
    for max_keys in ("3", "2"):
        pushed = records_cli(
            pr, "push", "--as", "ci", "--store", str(store), "--max-keys", max_keys
        )
        assert pushed.returncode == 0, pushed.stderr
    assert len(ref_lines(origin, "ci")) == 10  # 5 tests x 2 keys
    assert git(origin, "rev-list", "--count", f"{REF}ci") == "1"
    assert git(origin, "log", "--format=%P", "-1", f"{REF}ci") == ""
    # Every record on the ref is two days old now: --max-age-days 1 prunes them all.
    old = tmp_path / "old.sqlite3"
    fill_store(old, [f"t.py::test_old{n}" for n in range(3)], age=2 * 86400)
    assert records_cli(pr, "push", "--as", "aged", "--store", str(old)).returncode == 0
    assert len(ref_lines(origin, "aged")) == 3
    fill_store(tmp_path / "new.sqlite3", ["t.py::test_new"])
    aged = records_cli(
        pr, "push", "--as", "aged", "--store", str(tmp_path / "new.sqlite3"), "--max-age-days", "1"
    )
    assert aged.returncode == 0, aged.stderr
    assert [v[2] for v in ref_lines(origin, "aged")] == ["t.py::test_new"]


PUSHER = """
import sys, time
from pytest_unchanged.__main__ import main
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start together
sys.exit(main(["records", "push", sys.argv[1], "--as", "shard", "--store", sys.argv[2]]))
"""


def test_eight_concurrent_pushers_lose_no_record(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    processes = []
    start = str(time.time() + 4)
    expected = 0
    for shard in range(8):
        repo = tmp_path / f"shard{shard}"
        repo.mkdir()
        git(repo, "init", "-q")
        store = tmp_path / f"shard{shard}.sqlite3"
        expected += fill_store(store, [f"t{shard}.py::test_{n}" for n in range(20)], keys=2)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", PUSHER, str(origin), str(store), start],
                cwd=repo,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    lines = ref_lines(origin, "shard")
    assert len(lines) == expected == 8 * 20 * 2
    assert git(origin, "rev-list", "--count", f"{REF}shard") == "1"


def test_fetch_of_a_ref_with_another_source_is_refused(tmp_path: Path) -> None:
    """A ref's records all carry its own source: a record is never taken under another."""
    origin = make_origin(tmp_path)
    pr = clone(origin, tmp_path / "pr")
    assert "3 passed" in run_pytest(pr).stdout
    assert records_cli(pr, "push", "--as", "pr").returncode == 0
    # Someone copies the pr ref to main's name by hand.
    git(origin, "update-ref", f"{REF}main", git(origin, "rev-parse", f"{REF}pr"))
    main = clone(origin, tmp_path / "main")
    fetched = records_cli(main, "fetch", "--from", "main")
    assert fetched.returncode == 2
    assert "line " in fetched.stderr and "a record of source 'pr' under 'main'" in fetched.stderr
    assert records_cli(main, "show").stdout == ""
