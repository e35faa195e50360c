"""The fetch cache of an upstream: one bare repository per upstream, opened without searching.

The cache directory (:func:`~pytest_unchanged.upstream.config.cache_path`) may lie inside the
user's own git worktree (a ``--cache-dir .cache`` kept by CI). pygit2's default open searches
the parent directories for a repository, so a cache folder that is not a repository (a first
run interrupted before ``git init`` finished) would open the *host* repository, and the fetch
would then rewrite its ``origin`` and force-update its branches. Here the cache is opened with
:attr:`~pygit2.enums.RepositoryOpenFlag.NO_SEARCH` and checked to be a bare repository whose
git directory is exactly the cache path; anything else is replaced by a new bare repository
made in a temporary sibling folder and renamed into place, so no half-made cache is ever seen.
A cache folder is only used when it is a repository this tool could have made: no ``commondir``,
``gitdir`` or ``.git`` file (they send libgit2 to another git directory), no
``objects/info/alternates``, and no symbolic link anywhere inside (a ``config`` or ``objects``
link would make the fetch write through it); anything else is replaced. A cache whose real path
(:func:`os.path.realpath`, every link resolved) lies inside a git directory (``--cache-dir
.cache`` where ``.cache`` links to ``.git``) is refused before anything is written there.

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

__all__ = ["cache_lock", "check_cache_location", "open_cache", "remove_cache"]

#: Files that make libgit2 read or write another git directory than the cache folder itself.
_FOREIGN_FILES = ("commondir", "gitdir", ".git", "objects/info/alternates")


def check_cache_location(path: Path) -> None:
    """Refuse a cache folder ``path`` that is, or whose real path lies inside, a git directory.

    The path is resolved with :func:`os.path.realpath` (links in any parent followed), and it
    and each parent is tested: a folder named ``.git``, or one holding ``HEAD`` and ``objects``
    or ``commondir`` (a bare repository or a worktree's git directory), is another repository's
    git directory, and the fetch would write into it. Raises :class:`UpstreamError` then, and
    when ``path`` itself is a symbolic link.
    """
    if path.is_symlink():
        raise UpstreamError(
            f"The fetch cache {path} is a symbolic link; pytest-unchanged does not follow it, so "
            "it cannot write into another repository. Remove the link, or pass --cache-dir."
        )
    real = Path(os.path.realpath(path))
    for folder in (real, *real.parents):
        if folder.name == ".git" or (
            (folder / "HEAD").is_file()
            and ((folder / "objects").is_dir() or (folder / "commondir").is_file())
            and folder != real
        ):
            raise UpstreamError(
                f"The fetch cache {path} lies inside the git directory {folder} (its real path "
                f"is {real}); pytest-unchanged would write into that repository. Pass a "
                "--cache-dir (or PYTEST_UNCHANGED_CACHE_DIR) outside any git directory."
            )


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
    :class:`UpstreamError` when :func:`check_cache_location` refuses ``path`` or it cannot be
    created.
    """
    check_cache_location(path)
    repo = _open_exactly(path)
    created = repo is None
    if repo is None:
        repo = _create(path)
    if "origin" not in repo.remotes.names():
        repo.remotes.create("origin", config.url)
    elif repo.remotes["origin"].url != config.url:
        repo.remotes.set_url("origin", config.url)
    tagopt = "remote.origin.tagopt"
    if tagopt not in repo.config or repo.config[tagopt] != "--no-tags":
        repo.config[tagopt] = "--no-tags"  # Tags follow the upstream's (fetch.py).
    return repo, created


def remove_cache(path: Path) -> None:
    """Delete the cache folder ``path`` (made by this run, found unusable); never a symlink."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)


def _open_exactly(path: Path) -> pygit2.Repository | None:
    """Return the bare repository whose git directory is ``path``, or None if it is not one."""
    if not path.is_dir() or not _made_here(path):
        return None
    try:
        with _owner_validation_off():  # Checked above: a folder this tool could have made.
            repo = pygit2.Repository(
                str(path), RepositoryOpenFlag.NO_SEARCH | RepositoryOpenFlag.BARE
            )
    except pygit2.GitError:
        return None
    real = Path(os.path.realpath(path))
    if not repo.is_bare or Path(os.path.realpath(repo.path)) != real:
        return None  # A `.git` file or folder inside pointing elsewhere: not our cache.
    for inside in (Path(repo.path) / "objects", Path(repo.path) / "config"):
        if Path(os.path.realpath(inside)).parent != real:
            return None  # Objects or config read or written elsewhere.
    try:
        repo.config["core.bare"]
        repo.lookup_reference("HEAD")  # A missing or broken HEAD raises.
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return repo


@contextlib.contextmanager
def _owner_validation_off() -> Iterator[None]:
    """Open without libgit2's ownership check (a cache restored or shared by another uid is
    still ours to use: :func:`_made_here` vouched for it); restore the setting afterwards."""
    before = pygit2.option(pygit2.enums.Option.GET_OWNER_VALIDATION)
    pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 0)
    try:
        yield
    finally:
        pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 1 if before else 0)


def _made_here(path: Path) -> bool:
    """False when the folder ``path`` holds a file sending libgit2 elsewhere, or any link."""
    if any(os.path.lexists(path / name) for name in _FOREIGN_FILES):
        return False
    for folder, folders, files in os.walk(path):
        for name in (*folders, *files):
            if os.path.islink(os.path.join(folder, name)):
                return False
    return True


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
