"""``python -m pytest_unchanged checkpoint|changed`` through a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import commit, git


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest_unchanged *args`` in ``cwd``; HOME is kept out of libgit2."""
    env = {**os.environ, "HOME": str(cwd.parent / "home"), "XDG_STATE_HOME": str(cwd.parent)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 2, one paragraph on stderr naming ``fragments``, no traceback."""
    assert result.returncode == 2, result
    assert result.stderr.startswith("pytest-unchanged: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "requirements").mkdir()
    (path / "requirements/base.txt").write_text("pytest\n")
    (path / "app.py").write_text("x = 1\n")
    commit(path, "initial")
    return path


def test_checkpoint_then_changed_exit_statuses_and_verbose_oids(repo: Path) -> None:
    result = run(repo, "checkpoint", "requirements/", "app.py")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    unchanged = run(repo, "changed", "requirements/", "app.py", "--verbose")
    tree = git(repo, "rev-parse", "HEAD:requirements")
    assert unchanged.returncode == 1, unchanged
    assert unchanged.stdout.splitlines() == [
        f"requirements: {tree} (unchanged)",
        f"app.py: {git(repo, 'hash-object', 'app.py')} (unchanged)",
    ]
    old = git(repo, "hash-object", "requirements/base.txt")
    (repo / "requirements/base.txt").write_text("pytest\nrequests\n")
    assert run(repo, "changed", "app.py").returncode == 1
    moved = run(repo, "changed", "requirements/base.txt", "requirements", "-v")
    # requirements/base.txt was checkpointed only as part of requirements/: an error.
    assert_error(moved, "requirements/base.txt was never checkpointed", "--name default")
    moved = run(repo, "changed", "requirements", "app.py", "-v")
    assert moved.returncode == 0, moved
    new_tree = moved.stdout.splitlines()[0].rsplit(" ", 1)[1]
    assert moved.stdout.splitlines()[0] == f"requirements: {tree} → {new_tree}"
    git(repo, "add", "-A")  # the test's own staging: the command wrote nothing
    assert new_tree == git(repo, "rev-parse", f"{git(repo, 'write-tree')}:requirements")
    assert old != git(repo, "hash-object", "requirements/base.txt")


def test_shell_if_reads_naturally(repo: Path) -> None:
    script = (
        f"{sys.executable} -m pytest_unchanged checkpoint requirements --name before-pull\n"
        "echo numpy >> requirements/base.txt\n"
        f"if {sys.executable} -m pytest_unchanged changed requirements --name before-pull; then\n"
        "    echo reinstall\n"
        "fi\n"
    )
    env = {**os.environ, "HOME": str(repo.parent / "home")}
    result = subprocess.run(["sh", "-c", script], cwd=repo, env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "reinstall\n", "")


def test_name_and_state_options(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "deploy-state.json"
    assert (
        run(
            repo, "checkpoint", "app.py", "--name", "before-migrate", "--state", str(state)
        ).returncode
        == 0
    )
    assert state.exists()
    assert not (repo / ".git/pytest-unchanged/checkpoints.json").exists()
    assert (
        run(repo, "changed", "app.py", "--name", "before-migrate", "--state", str(state)).returncode
        == 1
    )
    assert_error(
        run(repo, "changed", "app.py", "--name", "before-migrate"), "app.py", "checkpoints.json"
    )
    assert_error(run(repo, "changed", "app.py", "--state", str(state)), "under the name 'default'")
    (repo / "app.py").chmod(0o755)
    result = run(repo, "changed", "app.py", "--name", "before-migrate", "--state", str(state), "-v")
    oid = git(repo, "hash-object", "app.py")
    assert (result.returncode, result.stdout) == (0, f"app.py: {oid} → {oid} (100755)\n")


def test_corrupt_state_file_exits_2_naming_it(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"schema": 1, "checkpoints": {"default": 3}}')
    assert_error(run(repo, "changed", "app.py", "--state", str(state)), str(state), "'default'")
    assert_error(run(repo, "checkpoint", "app.py", "--state", str(state)), str(state))
    assert state.read_text() == '{"schema": 1, "checkpoints": {"default": 3}}'


def test_not_a_path_and_missing_path(repo: Path) -> None:
    assert_error(run(repo, "checkpoint", ""), "'' is not a path")
    os.mkfifo(repo / "pipe")
    assert_error(run(repo, "checkpoint", "pipe"), f"{repo}/pipe is not a path git can store")
    result = run(repo, "checkpoint", "migrations/0003.sql", "-v")
    assert result.returncode == 0
    assert "migrations/0003.sql does not exist; it is recorded as absent" in result.stderr
    assert result.stdout.startswith("migrations/0003.sql: absent\ncheckpoint 'default' written to ")
    (repo / "migrations").mkdir()
    (repo / "migrations/0003.sql").write_text("ALTER TABLE t;\n")
    result = run(repo, "changed", "migrations/0003.sql", "-v")
    oid = git(repo, "hash-object", "migrations/0003.sql")
    assert (result.returncode, result.stdout) == (0, f"migrations/0003.sql: absent → {oid}\n")
    usage = run(repo, "changed")
    assert usage.returncode == 2 and "PATH" in usage.stderr


def test_glob_matching_nothing_is_noted_and_a_first_match_is_a_change(repo: Path) -> None:
    result = run(repo, "checkpoint", "migrations/*.sql")
    assert result.returncode == 0
    assert "migrations/*.sql matches nothing" in result.stderr
    result = run(repo, "changed", "migrations/*.sql", "-v")
    assert (result.returncode, result.stdout) == (1, "migrations/*.sql: absent (unchanged)\n")
    (repo / "migrations").mkdir()
    (repo / "migrations/0001.sql").write_text("CREATE TABLE t;\n")
    result = run(repo, "changed", "migrations/*.sql", "-v")
    oid = git(repo, "hash-object", "migrations/0001.sql")
    assert (result.returncode, result.stdout) == (0, f"migrations/0001.sql: absent → {oid}\n")


def test_unreadable_repository_exits_2(repo: Path) -> None:
    (repo / ".git/index").write_text("garbage\n")
    assert_error(run(repo, "checkpoint", "app.py"), f"Cannot read the repository at {repo}")
