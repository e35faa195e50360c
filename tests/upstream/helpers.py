"""Helpers for the upstream-watcher tests: real upstream repositories and projects watching them.

The upstream repositories are built with the git command line (the package under test never
runs git); each holds a small installable package, ``upstreampkg``, built with flit_core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import pytest

from pytest_unchanged.__main__ import main

NAME = "upstreampkg"
"""The upstream's name in the projects' ``[tool.pytest-unchanged.upstream]`` tables."""
PATHS = ["upstreampkg/core.py", "upstreampkg/storage/"]
"""The upstream paths the test projects watch: one file and one directory."""

UPSTREAM_FILES = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["flit_core>=3.4,<4"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "upstreampkg"\nversion = "1.0"\ndescription = "An upstream"\n'
    ),
    "upstreampkg/__init__.py": 'from upstreampkg.core import answer\n\n__all__ = ["answer"]\n',
    "upstreampkg/core.py": "def answer() -> int:\n    return 42\n",
    "upstreampkg/storage/__init__.py": "from upstreampkg.storage.backends import CHUNK\n",
    "upstreampkg/storage/backends.py": "CHUNK = 64\n",
    "upstreampkg/other.py": "OTHER = 1\n",
    "docs/index.txt": "The upstream package.\n",
}


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run the git command line in ``cwd``; return its standard output, stripped."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return result.stdout.strip()


class Upstream:
    """A non-bare git repository on branch ``main``, reached through a ``file://`` URL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.day = 0
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        self.initial = self.commit(UPSTREAM_FILES, "Initial upstream")

    @property
    def url(self) -> str:
        """The ``file://`` URL of the repository."""
        return self.path.as_uri()

    def commit(self, files: Mapping[str, str | None], message: str) -> str:
        """Write (or, for None, delete) ``files``, commit them, and return the commit OID.

        Every commit is one day after the previous one, from 2024-01-01, so dates are known.
        """
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        git(self.path, "add", "-A")
        self.day += 1
        stamp = (date(2024, 1, 1) + timedelta(days=self.day - 1)).isoformat() + "T12:00:00+00:00"
        dates = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, env=dates)
        return self.rev_parse("HEAD")

    def rev_parse(self, revision: str) -> str:
        """Return the full OID git resolves ``revision`` to."""
        return git(self.path, "rev-parse", revision)

    def log(self, since: str, path: str, ref: str = "main") -> list[str]:
        """Return the OIDs ``git log --first-parent since..ref -- path`` lists, newest first."""
        out = git(self.path, "log", "--first-parent", "--format=%H", f"{since}..{ref}", "--", path)
        return out.split()


def write_project(directory: Path, **table: object) -> Path:
    """Write a ``pyproject.toml`` in ``directory`` with the table of ``upstreampkg``."""
    return write_table(directory, table)


def write_table(directory: Path, table: Mapping[str, object], name: str = "upstreampkg") -> Path:
    """Write a ``pyproject.toml`` in ``directory`` with one upstream table; return its path.

    Values are written as TOML: strings quoted, lists of strings as arrays, and anything else
    (for malformed tables) with ``repr``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["[project]", 'name = "consumer"', 'version = "0"', ""]
    lines.append(f"[tool.pytest-unchanged.upstream.{name}]")
    for key, value in table.items():
        if isinstance(value, str):
            lines.append(f"{key} = {toml_string(value)}")
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            lines.append(f"{key} = [{', '.join(toml_string(item) for item in value)}]")
        else:
            lines.append(f"{key} = {value!r}")
    path = directory / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_string(value: str) -> str:
    """Return ``value`` as a TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_module(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest_unchanged ARGS`` in ``cwd`` and return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", *args], cwd=cwd, capture_output=True,
        text=True, check=False,
    )  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in-process; return its exit status, stdout and stderr."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err
