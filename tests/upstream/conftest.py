"""Fixtures shared by the upstream-watcher tests: an upstream repository and a project watching it.

Every test keeps its fetch cache in its own temporary directory (``cache_dir``, autouse), so no
test reads another's cache or the user's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_unchanged.upstream.config import CACHE_DIR_ENV

from .helpers import PATHS, Upstream, write_project


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every fetch cache in the test's own directory; return that directory."""
    path = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(path))
    return path


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """A fresh upstream repository (branch ``main``) under the test's directory."""
    return Upstream(tmp_path / "upstream")


@pytest.fixture
def project(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project watching ``PATHS`` of ``upstream``; it is made the current directory."""
    directory = tmp_path / "project"
    write_project(directory, url=upstream.url, paths=PATHS)
    monkeypatch.chdir(directory)
    return directory
