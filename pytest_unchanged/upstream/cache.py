"""The fetch cache of an upstream: one bare repository per upstream, opened without searching.

The cache directory (:func:`~pytest_unchanged.upstream.config.cache_path`) may lie inside the
user's own git worktree (a ``--cache-dir .cache`` kept by CI). pygit2's default open searches
the parent directories for a repository, so a cache folder that is not a repository (a first
run interrupted before ``git init`` finished) would open the *host* repository, and the fetch
would then rewrite its ``origin`` and force-update its branches. Here the cache is opened with
:attr:`~pygit2.enums.RepositoryOpenFlag.NO_SEARCH` and checked to be a bare repository whose
git directory is exactly the cache path; anything else is replaced by a new bare repository
made in a temporary sibling folder and renamed into place, so no half-made cache is ever seen.

Runs sharing one cache take an exclusive lock (``NAME-HASH.lock`` beside it) while they open
and fetch it; reading objects afterwards needs no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryOpenFlag

from .config import UpstreamConfig, UpstreamError

__all__ = ["cache_lock", "open_cache", "remove_cache"]


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache ``path`` (a file ``PATH.lock`` beside it).

    Blocks while another run holds it. Raises :class:`UpstreamError` when the lock file cannot
    be created (an unwritable cache directory).
    """
    lock_file = path.with_name(path.name + ".lock")
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # Closing releases the lock.


def open_cache(config: UpstreamConfig, path: Path) -> tuple[pygit2.Repository, bool]:
    """Open the bare cache repository at ``path``; make a new one when it is missing or unusable.

    Returns the repository and whether it was made now. Its ``origin`` remote is set to the
    configured URL; nothing outside ``path`` is opened or written. Raises
    :class:`UpstreamError` when ``path`` is a symbolic link or cannot be created.
    """
    if path.is_symlink():
        raise UpstreamError(
            f"The fetch cache {path} is a symbolic link; pytest-unchanged does not follow it, so "
            "it cannot write into another repository. Remove the link, or pass --cache-dir."
        )
    repo = _open_exactly(path)
    created = repo is None
    if repo is None:
        repo = _create(path)
    if "origin" not in repo.remotes.names():
        repo.remotes.create("origin", config.url)
    elif repo.remotes["origin"].url != config.url:
        repo.remotes.set_url("origin", config.url)
    return repo, created


def remove_cache(path: Path) -> None:
    """Delete the cache folder ``path`` (made by this run, found unusable); never a symlink."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def _open_exactly(path: Path) -> pygit2.Repository | None:
    """Return the bare repository whose git directory is ``path``, or None if it is not one."""
    if not path.is_dir():
        return None
    try:
        repo = pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH | RepositoryOpenFlag.BARE)
    except pygit2.GitError:
        return None
    if not repo.is_bare or Path(repo.path).resolve() != path.resolve():
        return None  # A `.git` file or folder inside pointing elsewhere: not our cache.
    try:
        repo.config["core.bare"]
        repo.lookup_reference("HEAD")  # A missing or broken HEAD raises.
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return repo


def _create(path: Path) -> pygit2.Repository:
    """Make a bare repository at ``path`` (replacing whatever is there) atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        pygit2.init_repository(str(staging), bare=True)
        if path.exists():
            discarded = path.with_name(f"{staging.name}.discarded")
            path.rename(discarded)  # Not a usable cache: a run interrupted while making it.
            remove_cache(discarded)
        staging.rename(path)
    except (OSError, pygit2.GitError) as exc:
        remove_cache(staging)
        raise _unwritable(path, exc) from None
    repo = _open_exactly(path)
    if repo is None:  # pragma: no cover - made just now under the lock
        raise UpstreamError(f"The fetch cache {path} could not be opened after it was made.")
    return repo


def _unwritable(path: Path, exc: Exception) -> UpstreamError:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return UpstreamError(
        f"Cannot create the fetch cache {path}: {why}. Pass --cache-dir or set "
        "PYTEST_UNCHANGED_CACHE_DIR to a writable directory."
    )
