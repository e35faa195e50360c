"""Git's object format for the values of worktree paths: tree-entry modes, :class:`Entry`,
:data:`ABSENT` and :func:`hash_tree`.

A value is what a tree entry holds in git's object format (``<mode> <name>\\0<20-byte OID>``,
from git's ``Documentation/gitformat-tree`` and ``tree.c``): a mode written in octal without
leading zeros and the SHA-1 OID of the object.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from pygit2.enums import FileMode

__all__ = [
    "ABSENT",
    "EMPTY_TREE",
    "MODE_BLOB",
    "MODE_COMMIT",
    "MODE_EXECUTABLE",
    "MODE_LINK",
    "MODE_TREE",
    "Entry",
    "hash_tree",
    "mode_name",
]

# Tree-entry modes as git writes them into a tree object (git's object format).
MODE_TREE = "40000"
MODE_BLOB = "100644"
MODE_EXECUTABLE = "100755"
MODE_LINK = "120000"
MODE_COMMIT = "160000"

_MODE_NAMES = {
    FileMode.TREE: MODE_TREE,
    FileMode.BLOB: MODE_BLOB,
    FileMode.BLOB_EXECUTABLE: MODE_EXECUTABLE,
    FileMode.LINK: MODE_LINK,
    FileMode.COMMIT: MODE_COMMIT,
}


def mode_name(filemode: int) -> str:
    """Return the tree-entry mode text of the integer ``filemode`` (``0o100644`` → ``"100644"``)."""
    try:
        return _MODE_NAMES[FileMode(filemode)]
    except ValueError:
        return oct(filemode)[2:]


@dataclass(frozen=True, slots=True)
class Entry:
    """A tree entry: ``mode`` as git writes it (``"100644"``, ``"40000"``...) and a hex ``oid``.

    A submodule whose worktree differs from its checked-out commit has ``dirty=True``; its
    ``oid`` is still the checked-out commit, as ``git add -A`` would stage it.
    """

    mode: str
    oid: str
    dirty: bool = False

    @property
    def is_tree(self) -> bool:
        """True when the entry is a directory (a git tree)."""
        return self.mode == MODE_TREE

    def describe(self) -> str:
        """Return the OID as stored in a key: the hex OID, ``+dirty`` for a dirty submodule."""
        return self.oid + ("+dirty" if self.dirty else "")


ABSENT = Entry("0", "0" * 40)
"""The value of a path that does not exist (or holds only ignored files)."""


def _tree_sort_key(item: tuple[str, Entry]) -> bytes:
    # git sorts tree entries by name, comparing a subtree's name as if it ended in "/".
    name, entry = item
    raw = os.fsencode(name)
    return raw + b"/" if entry.is_tree else raw


def hash_tree(entries: dict[str, Entry]) -> str:
    """Return the hex OID of the tree object git would write for ``entries``.

    ``entries`` maps a plain name (no ``/``) to its :class:`Entry`. The body follows git's tree
    format: for each entry, sorted as git sorts them, ``<mode> <name>\\0<20-byte OID>``; the
    object is ``tree <size>\\0<body>`` hashed with SHA-1.
    """
    body = b"".join(
        entry.mode.encode() + b" " + os.fsencode(name) + b"\0" + bytes.fromhex(entry.oid)
        for name, entry in sorted(entries.items(), key=_tree_sort_key)
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


EMPTY_TREE = Entry(MODE_TREE, hash_tree({}))
"""The value of an empty directory on disk: git's empty tree (``4b825dc6...``), which git itself
never stores for a subdirectory."""
