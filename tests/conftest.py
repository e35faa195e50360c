"""Shared fixtures: a pytester directory that is a real git repository."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def git(cwd: Path, *args: str) -> str:
    """Run the git command line in ``cwd`` and return its stripped standard output."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


@pytest.fixture(autouse=True)
def isolated_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the user's global and system git configuration out of every test."""
    home = tmp_path_factory.mktemp("gitconfig")
    config = home / ".gitconfig"
    config.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    """Make ``pytester.path`` a git repository with one commit holding a ``.gitignore``."""
    path = pytester.path
    git(path, "init", "-q")
    (path / ".gitignore").write_text(".pytest_cache/\n__pycache__/\n")
    commit(path, "initial")
    return path


def commit(path: Path, message: str = "change") -> str:
    """Stage everything in the worktree at ``path``, commit it, and return the commit OID."""
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD")
