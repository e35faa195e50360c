"""Shared fixtures: a pytester directory that is a real git repository."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel

from pytest_unchanged.store import Store

pytest_plugins = ["pytester"]


def git(cwd: Path, *args: str) -> str:
    """Run the git command line in ``cwd`` and return its stripped standard output."""
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout.strip()


@pytest.fixture(autouse=True)
def isolated_git_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Keep the user's global and system git configuration out of every test."""
    home = tmp_path_factory.mktemp("gitconfig")
    config = home / ".gitconfig"
    config.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # libgit2 ignores those variables: point its search paths at the same place.
    levels = [ConfigLevel.SYSTEM, ConfigLevel.XDG, ConfigLevel.GLOBAL, ConfigLevel.PROGRAMDATA]
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    for level in levels:
        pygit2.settings.search_path[level] = str(home)
    try:
        yield
    finally:
        for level, value in saved.items():
            pygit2.settings.search_path[level] = value


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    """Make ``pytester.path`` a git repository with one commit holding a ``.gitignore``."""
    path = pytester.path
    git(path, "init", "-q")
    # pytester's runpytest_subprocess writes ./stdout, ./stderr and ./runpytest-*.
    (path / ".gitignore").write_text(
        ".pytest_cache/\n__pycache__/\n/stdout\n/stderr\n/runpytest-*\n"
    )
    commit(path, "initial")
    return path


def commit(path: Path, message: str = "change") -> str:
    """Stage everything in the worktree at ``path``, commit it, and return the commit OID."""
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")


TESTS = """
import pytest

@pytest.mark.depends_on("src/a.py")
def test_a():
    pass

@pytest.mark.depends_on("src/b.py")
def test_b():
    pass

def test_unmarked():
    pass
"""


@pytest.fixture
def project(repo: Path, pytester: pytest.Pytester) -> Path:
    """A repository with two source files and three tests, all committed."""
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    (repo / "src" / "b.py").write_text("B = 1\n")
    pytester.makepyfile(test_project=TESTS)
    commit(repo)
    return repo


def records(path: Path) -> list[tuple[str, str]]:
    """Return the (nodeid, key) pairs in the store under ``path``."""
    store = path / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"
    if not store.exists():
        return []
    with closing(Store(store)) as opened:
        found = opened.records()
    return sorted((nodeid, key) for nodeid, keys in found.items() for key in keys)


def assert_unchanged(result: pytest.RunResult, count: int) -> None:
    """Assert that the run ran nothing and reported ``count`` unchanged tests as not run.

    Unchanged tests are either skipped or, on the fast path, not collected at all.
    """
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert not {"passed", "failed", "errors", "error", "xfailed", "xpassed"} & set(outcomes)
    tests = "test" if count == 1 else "tests"
    result.stdout.fnmatch_lines([f"unchanged: {count:,} unchanged {tests} not run, *s saved*"])
