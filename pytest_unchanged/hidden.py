"""One pass over the index: entries whose edits ``git status`` hides (``assume-unchanged``,
``skip-worktree``, stat data a relaxed ``core.*`` setting no longer checks), symlinks, gitlinks.

``git update-index --assume-unchanged PATH`` sets the ``CE_VALID`` bit of the entry's flags
(``0x8000``) and ``--skip-worktree`` the ``CE_SKIP_WORKTREE`` bit of its extended flags
(``0x4000``; both from git's ``Documentation/gitformat-index.txt``, libgit2's
``GIT_INDEX_ENTRY_VALID`` and ``GIT_INDEX_ENTRY_SKIP_WORKTREE``). libgit2's status honours both
bits: an edited file so flagged is reported as unchanged, and its content would be read from
``HEAD``. :class:`~pytest_unchanged.worktree.Worktree` hashes such files from disk instead.

With ``core.trustctime=false``, ``core.checkStat=minimal``, ``core.fileMode=false`` or
``core.symlinks=false`` git (and libgit2) stop comparing part of an entry's stat data, so an
edit keeping the size and restoring the mtime, or a ``chmod +x``, is invisible to status. The
audit (``audit=True``) compares every field git records (ctime, mtime, size, inode, type and
executable bit; racily clean entries count as changed, git's ``is_racy_timestamp``) against
``lstat`` itself, and reports the entries that differ: those are hashed from disk.

pygit2's :class:`pygit2.IndexEntry` does not expose the flags or the stat data, so they are read
through pygit2's own cffi binding of ``git_index_get_byindex`` (read-only; the index is not
written). :func:`git_view` puts it together with ``HEAD`` and status: git's whole view of a
worktree, read once per session.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

import pygit2
from pygit2.enums import FileStatus

from .disk import relaxed_stat

__all__ = [
    "ASSUME_UNCHANGED",
    "SKIP_WORKTREE",
    "HiddenEntriesError",
    "IndexScan",
    "hidden_entries",
]

ASSUME_UNCHANGED = 0x8000
"""``CE_VALID`` in an index entry's flags (``git update-index --assume-unchanged``)."""
SKIP_WORKTREE = 0x4000
"""``CE_SKIP_WORKTREE`` in an index entry's extended flags (``--skip-worktree``)."""


MODE_LINK = 0o120000
"""An index entry's mode for a symlink."""
MODE_GITLINK = 0o160000
"""An index entry's mode for a submodule (a gitlink)."""
MODE_EXECUTABLE = 0o100755
"""An index entry's mode for an executable file."""

_NS = 1_000_000_000
_U32 = 0xFFFFFFFF


class IndexScan(NamedTuple):
    """What one pass over the index finds: ``hidden`` maps each path flagged
    ``assume-unchanged`` (``True``) or only ``skip-worktree`` (``False``); ``links`` lists the
    paths staged as symlinks, in index order (sorted); ``gitlinks`` the submodules' paths;
    ``stale`` (only when audited) the entries whose ``lstat`` differs from the index's stat
    data, or are racily clean."""

    hidden: dict[str, bool]
    links: list[str]
    gitlinks: list[str]
    stale: list[str]


class HiddenEntriesError(Exception):
    """The index flags cannot be read (pygit2's cffi binding changed); the message says why."""


def hidden_entries(repository: pygit2.Repository, *, audit: bool = False) -> IndexScan:
    """Return the index paths flagged ``assume-unchanged`` or ``skip-worktree``, those staged as
    symlinks and as gitlinks, and with ``audit`` those whose stat data no longer matches disk.

    In ``hidden``, the value is ``True`` for ``assume-unchanged`` and ``False`` for
    ``skip-worktree`` only (a sparse checkout's entries). Paths are relative to the top, POSIX
    style, as the index stores them.

    Raises :class:`HiddenEntriesError` when the flags cannot be read.
    """
    try:
        from pygit2.ffi import C, ffi

        index: Any = repository.index
        handle = index._index
        found = IndexScan({}, [], [], [])
        root = Path(repository.workdir or ".")
        racy = _index_mtime(repository) if audit else 0
        for position in range(C.git_index_entrycount(handle)):
            entry = C.git_index_get_byindex(handle, position)
            if entry == ffi.NULL:
                continue
            assume = bool(entry.flags & ASSUME_UNCHANGED)
            mode = entry.mode
            if not (assume or entry.flags_extended & SKIP_WORKTREE or mode in _NAMED or audit):
                continue
            path = ffi.string(entry.path).decode("utf-8", "surrogateescape")
            if assume or entry.flags_extended & SKIP_WORKTREE:
                found.hidden[path] = assume
            elif mode == MODE_GITLINK:
                found.gitlinks.append(path)
            elif audit and _stale(entry, root / path, racy):
                found.stale.append(path)
            if mode == MODE_LINK:
                found.links.append(path)
        return found
    except (ImportError, AttributeError, TypeError) as error:
        raise HiddenEntriesError(f"cannot read the index flags: {error}") from error


_NAMED = frozenset({MODE_LINK, MODE_GITLINK})


def _index_mtime(repository: pygit2.Repository) -> int:
    """The index file's mtime in nanoseconds (0 when there is no index file)."""
    try:
        return os.stat(os.path.join(repository.path, "index")).st_mtime_ns
    except OSError:
        return 0


def _same_time(recorded: Any, nanoseconds: int) -> bool:
    # The index keeps seconds in 32 bits and nanoseconds only when git was built with them.
    if recorded.seconds & _U32 != (nanoseconds // _NS) & _U32:
        return False
    return not recorded.nanoseconds or recorded.nanoseconds == nanoseconds % _NS


def _stale(entry: Any, full: Path, index_mtime: int) -> bool:
    """Whether the file at ``full`` may differ from what the index ``entry`` recorded."""
    try:
        st = full.lstat()
    except OSError:
        return True
    is_link = stat.S_ISLNK(st.st_mode)
    if is_link != (entry.mode == MODE_LINK) or not (is_link or stat.S_ISREG(st.st_mode)):
        return True
    if not is_link and bool(st.st_mode & stat.S_IXUSR) != (entry.mode == MODE_EXECUTABLE):
        return True
    if st.st_size & _U32 != entry.file_size or (entry.ino and st.st_ino & _U32 != entry.ino):
        return True
    if not (_same_time(entry.mtime, st.st_mtime_ns) and _same_time(entry.ctime, st.st_ctime_ns)):
        return True
    # Racily clean (git's is_racy_timestamp): written in the same tick as the index.
    recorded = entry.mtime.seconds * _NS + entry.mtime.nanoseconds
    return not index_mtime or recorded >= (
        index_mtime if entry.mtime.nanoseconds else index_mtime // _NS * _NS
    )


class GitView(NamedTuple):
    """What git says of a worktree (:func:`git_view`); empty when it cannot be read."""

    head_commit: str | None = None
    head_tree: pygit2.Tree | None = None
    changed: tuple[str, ...] = ()
    """Paths (no trailing ``/``) status reports, the hidden entries and the stale ones."""
    links: tuple[str, ...] = ()
    gitlinks: tuple[str, ...] = ()


def git_view(repository: pygit2.Repository) -> GitView:
    """Read ``HEAD``, status (untracked files included, ignored ones not) and the index flags.

    The changed paths are those status reports and the entries status does not see as they
    are on disk: flagged assume-unchanged or skip-worktree (a sparse checkout's entry missing
    on disk is absent) and, under a setting that relaxes git's stat check
    (``core.trustctime=false``, ``core.fileMode=false``...), every entry whose lstat differs
    from the index's stat data (:func:`hidden_entries`). All are hashed from disk.

    Raises :class:`pygit2.GitError` when git's view cannot be read (an index extension
    libgit2 does not know: a split or sparse index) and :class:`HiddenEntriesError` when the
    index flags cannot.
    """
    head_commit, head_tree = None, None
    if not repository.head_is_unborn:
        commit = repository.head.peel(pygit2.Commit)
        head_commit, head_tree = str(commit.id), commit.tree
    changed = [
        path.rstrip("/")
        for path, flags in repository.status(untracked_files="all", ignored=False).items()
        if not (flags == FileStatus.CURRENT or flags & FileStatus.IGNORED)
    ]
    scan = hidden_entries(repository, audit=relaxed_stat(repository) is not None)
    changed += [*scan.stale, *scan.hidden]
    return GitView(head_commit, head_tree, tuple(changed), tuple(scan.links), tuple(scan.gitlinks))
