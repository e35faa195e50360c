"""Index entries whose edits ``git status`` hides (``assume-unchanged``, ``skip-worktree``), and
the symlinks the index holds.

``git update-index --assume-unchanged PATH`` sets the ``CE_VALID`` bit of the entry's flags
(``0x8000``) and ``--skip-worktree`` the ``CE_SKIP_WORKTREE`` bit of its extended flags
(``0x4000``; both from git's ``Documentation/gitformat-index.txt``, libgit2's
``GIT_INDEX_ENTRY_VALID`` and ``GIT_INDEX_ENTRY_SKIP_WORKTREE``). libgit2's status honours both
bits: an edited file so flagged is reported as unchanged, and its content would be read from
``HEAD``. :class:`~pytest_unchanged.worktree.Worktree` hashes such files from disk instead.

pygit2's :class:`pygit2.IndexEntry` does not expose the flags, so they are read through
pygit2's own cffi binding of ``git_index_get_byindex`` (read-only; the index is not written).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pygit2

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


class IndexScan(NamedTuple):
    """What one pass over the index finds: ``hidden`` maps each path flagged
    ``assume-unchanged`` (``True``) or only ``skip-worktree`` (``False``); ``links`` lists the
    paths staged as symlinks, in index order (sorted)."""

    hidden: dict[str, bool]
    links: list[str]


class HiddenEntriesError(Exception):
    """The index flags cannot be read (pygit2's cffi binding changed); the message says why."""


def hidden_entries(repository: pygit2.Repository) -> IndexScan:
    """Return the index paths flagged ``assume-unchanged`` or ``skip-worktree``, and those
    staged as symlinks.

    In ``hidden``, the value is ``True`` for ``assume-unchanged`` and ``False`` for
    ``skip-worktree`` only (a sparse checkout's entries: git treats a missing such file as its
    index blob, not as deleted). Paths are relative to the top, POSIX style, as the index
    stores them.

    Raises :class:`HiddenEntriesError` when the flags cannot be read.
    """
    try:
        from pygit2.ffi import C, ffi

        index: Any = repository.index
        handle = index._index
        found = IndexScan({}, [])
        for position in range(C.git_index_entrycount(handle)):
            entry = C.git_index_get_byindex(handle, position)
            if entry == ffi.NULL:
                continue
            assume = bool(entry.flags & ASSUME_UNCHANGED)
            if assume or entry.flags_extended & SKIP_WORKTREE:
                found.hidden[ffi.string(entry.path).decode("utf-8", "surrogateescape")] = assume
            if entry.mode == MODE_LINK:
                found.links.append(ffi.string(entry.path).decode("utf-8", "surrogateescape"))
        return found
    except (ImportError, AttributeError, TypeError) as error:
        raise HiddenEntriesError(f"cannot read the index flags: {error}") from error
