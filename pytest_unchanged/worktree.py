"""Git object IDs of worktree paths, computed read-only through pygit2.

The OID of a path is what git itself would give it if the worktree were staged with
``git add -A`` (git's object format: ``<type> <size>\\0<body>`` hashed with SHA-1):

* a file: the blob OID of its current content with the repository's filters (``.gitattributes``,
  ``core.autocrlf``) applied, what ``git hash-object PATH`` prints (except that, like
  ``git add``, ``core.autocrlf`` keeps the CRs of a file whose indexed blob has CRs), plus its
  tree-entry mode (``100644``, ``100755`` or ``120000`` for a symlink);
* a directory: the tree OID ``git write-tree`` would store for it: untracked files count,
  ignored files do not; when nothing under it differs from ``HEAD`` the OID is read from
  ``HEAD``'s tree (``git rev-parse HEAD:DIR``) and nothing is hashed;
* a submodule: the commit checked out in it (mode ``160000``); a path inside a submodule: its
  entry in the submodule's own worktree;
* an ignored path named explicitly: hashed as ``git add -f`` would stage it;
* a missing path, a directory holding only ignored files, a path below a symlink: :data:`ABSENT`.

Nothing is ever written into the repository (blobs: :meth:`pygit2.Repository.hashfile`).
"""

from __future__ import annotations

import glob as globmod
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, FileStatus, RepositoryOpenFlag

from .hidden import HiddenEntriesError, hidden_entries

__all__ = ["ABSENT", "Entry", "NotARepositoryError", "Worktree"]

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


@dataclass(frozen=True, slots=True)
class Entry:
    """A tree entry: ``mode`` as git writes it (``"100644"``, ``"40000"``...) and a hex ``oid``.

    A submodule with uncommitted changes has ``dirty=True``; its ``oid`` is still the
    checked-out commit, as ``git add -A`` would stage it.
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


class NotARepositoryError(Exception):
    """Raised when a path is not inside a git worktree (bare repositories included)."""


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


class Worktree:
    """OIDs of paths in one repository's worktree, as of the moment it was opened.

    Status is read once, ``HEAD``'s tree is read once, and every OID is memoised, so a
    :class:`Worktree` stands for one snapshot: open a new one to see later changes.

    Paths are POSIX-style and relative to the repository's top directory (``""`` is the top).
    """

    def __init__(self, repository: pygit2.Repository) -> None:
        if repository.is_bare or repository.workdir is None:
            raise NotARepositoryError(f"{repository.path} is a bare repository")
        self.repository = repository
        self.root = Path(repository.workdir).resolve()
        self.head_commit: str | None = None
        self._head_tree: pygit2.Tree | None = None
        if not repository.head_is_unborn:
            commit = repository.head.peel(pygit2.Commit)
            self.head_commit = str(commit.id)
            self._head_tree = commit.tree
        self._filemode = self._config_bool("core.filemode", default=True)
        self._dirty: set[str] = set()
        self._dirty_children: dict[str, set[str]] = {}
        for path, flags in repository.status(untracked_files="all", ignored=False).items():
            if flags == FileStatus.CURRENT or flags & FileStatus.IGNORED:
                continue
            self._mark_dirty(path.rstrip("/"))
        # status() honours assume-unchanged and skip-worktree (it hides their edits): hash
        # those entries from disk. A skip-worktree file missing on disk is a sparse checkout's:
        # git keeps its blob (libgit2's status calls it deleted).
        self.hidden_error: str | None = None
        """Why the index flags could not be read (every key is then unknown), or None."""
        try:
            hidden, links = hidden_entries(repository)
        except (HiddenEntriesError, pygit2.GitError) as error:
            self.hidden_error, hidden, links = str(error), {}, []
        for path, assume in hidden.items():
            if assume or os.path.lexists(self.root / path):
                self._mark_dirty(path)
            else:
                self._dirty.discard(path)  # libgit2 reports it deleted; `git add -A` keeps it
        # The symlinks in the worktree (staged ones, and new or retyped ones status reports).
        self.links: list[str] = sorted(
            path for path in {*links, *self._dirty} if os.path.islink(self.root / path)
        )
        """Paths (relative to the top, sorted) that are symlinks in the worktree."""
        self._submodules = set(repository.listall_submodules())
        self._memo: dict[str, Entry] = {}
        self._real_dirs: dict[str, bool] = {"": True}
        self._inner: dict[str, Worktree | None] = {}

    @classmethod
    def discover(cls, path: str | os.PathLike[str]) -> Worktree:
        """Open the worktree containing ``path``.

        Raises :class:`NotARepositoryError` when ``path`` is not inside a git worktree.
        """
        found = pygit2.discover_repository(os.fspath(path))
        if found is None:
            raise NotARepositoryError(f"{path} is not inside a git repository")
        return cls(pygit2.Repository(found))

    def _config_bool(self, name: str, *, default: bool) -> bool:
        config = self.repository.config
        return config.get_bool(name) if name in config else default

    def _mark_dirty(self, path: str) -> None:
        self._dirty.add(path)
        parent, _, name = path.rpartition("/")
        while True:
            children = self._dirty_children.setdefault(parent, set())
            if name in children:
                return
            children.add(name)
            if not parent:
                return
            parent, _, name = parent.rpartition("/")

    @property
    def dirty_paths(self) -> frozenset[str]:
        """Paths whose worktree state differs from ``HEAD`` (modified, new, deleted, staged)."""
        return frozenset(self._dirty)

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """Return ``path`` (absolute, or relative to the current directory) relative to the top.

        Raises :class:`ValueError` when ``path`` is outside the worktree.
        """
        absolute = Path(os.path.abspath(path))
        try:
            relative = absolute.relative_to(self.root)
        except ValueError:
            resolved = absolute.resolve()
            relative = resolved.relative_to(self.root)  # raises ValueError when outside
        text = relative.as_posix()
        return "" if text == "." else text

    def entry(self, path: str) -> Entry:
        """Return the :class:`Entry` of ``path`` (relative to the top, ``""`` for the top).

        Raises :class:`pygit2.GitError` when a file cannot be hashed (for example a CRLF
        conversion refused by ``core.safecrlf``) and :class:`OSError` when it cannot be read.
        """
        path = path.strip("/")
        if path == ".":
            path = ""
        cached = self._memo.get(path)
        if cached is None:
            cached = self._memo[path] = self._compute(path)
        return cached

    def _compute(self, path: str) -> Entry:
        split = self._split_submodule(path)
        if split is not None:
            # Inside a submodule: the path belongs to the submodule's own worktree.
            inner = self._inner_worktree(split[0])
            return ABSENT if inner is None else inner.entry(split[1])
        head = self._head_entry(path)
        if path in self._dirty_children:
            st = self._lstat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                if path in self._dirty and path in self._submodules:
                    return self._from_disk(path, head)
                return self._rebuild_tree(path, head if head is not None and head.is_tree else None)
            # No longer a directory (deleted, or replaced by a file or a symlink, which status
            # reports as the path itself): nothing below it counts.
            return self._from_disk(path, head) if path in self._dirty else ABSENT
        if path in self._dirty:
            return self._from_disk(path, head)
        if head is not None:
            if head.mode == MODE_COMMIT:
                return self._submodule(path, head)
            return head
        if not path:
            # No HEAD and nothing to stage: the empty tree, as `git write-tree` gives it.
            return Entry(MODE_TREE, hash_tree({}))
        # Not in HEAD and not reported by status: missing, ignored, or a directory holding only
        # ignored files (which `git add -A` leaves out). An ignored path named explicitly is
        # hashed as `git add -f` would.
        if self._lstat(path) is None:
            return ABSENT
        return self._from_disk(path, None, include_ignored=self._is_ignored(path))

    def _split_submodule(self, path: str) -> tuple[str, str] | None:
        """Return (submodule, path inside it) when ``path`` is strictly inside a submodule."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in self._submodules:
                return prefix, "/".join(parts[depth:])
        return None

    def _inner_worktree(self, path: str) -> Worktree | None:
        if path not in self._inner:
            sub = self._open_submodule(path)
            self._inner[path] = None if sub is None else Worktree(sub)
        return self._inner[path]

    def _open_submodule(self, path: str) -> pygit2.Repository | None:
        # NO_SEARCH: an uninitialised submodule's empty directory must not open the superproject.
        st = self._lstat(path)
        if st is None or not stat.S_ISDIR(st.st_mode):
            return None
        try:
            sub = pygit2.Repository(str(self.root / path), RepositoryOpenFlag.NO_SEARCH)
        except pygit2.GitError:
            return None
        return None if sub.is_bare or sub.workdir is None else sub

    def _is_ignored(self, path: str) -> bool:
        return bool(self.repository.path_is_ignored(path))

    def _is_real_dir(self, path: str) -> bool:
        # True when `path` is a directory and no component of it is a symlink: git never
        # looks through a symlink, so nothing below one is in the worktree.
        known = self._real_dirs.get(path)
        if known is None:
            parent = path.rpartition("/")[0]
            st = self._lstat(path) if self._is_real_dir(parent) else None
            known = self._real_dirs[path] = st is not None and stat.S_ISDIR(st.st_mode)
        return known

    def _lstat(self, path: str) -> os.stat_result | None:
        """Return ``lstat`` of ``path``, or None when it is missing or below a non-directory."""
        if path and not self._is_real_dir(path.rpartition("/")[0]):
            return None
        try:
            return (self.root / path).lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _head_entry(self, path: str) -> Entry | None:
        if self._head_tree is None:
            return None
        if not path:
            return Entry(MODE_TREE, str(self._head_tree.id))
        try:
            obj = self._head_tree[path]
        except KeyError:
            return None
        return Entry(_MODE_NAMES.get(FileMode(obj.filemode), oct(obj.filemode)[2:]), str(obj.id))

    def _rebuild_tree(self, path: str, head: Entry | None) -> Entry:
        entries: dict[str, Entry] = {}
        if head is not None:
            tree = self.repository[head.oid]
            assert isinstance(tree, pygit2.Tree)
            for obj in tree:
                assert obj.name is not None
                mode = _MODE_NAMES.get(FileMode(obj.filemode), oct(obj.filemode)[2:])
                entries[obj.name] = Entry(mode, str(obj.id))
        prefix = f"{path}/" if path else ""
        dirty = False
        for name in self._dirty_children[path]:
            child = self.entry(prefix + name)
            if child is ABSENT:
                entries.pop(name, None)
            else:
                entries[name] = child
                dirty = dirty or child.dirty
        if not entries and path:
            return ABSENT  # the top stays a tree: `git write-tree` gives the empty tree
        return Entry(MODE_TREE, hash_tree(entries), dirty=dirty)

    def _from_disk(self, path: str, head: Entry | None, *, include_ignored: bool = False) -> Entry:
        full = self.root / path
        st = self._lstat(path)
        if st is None:
            return ABSENT
        if stat.S_ISLNK(st.st_mode):
            return Entry(MODE_LINK, str(pygit2.hash(os.readlink(os.fsencode(full)))))
        if stat.S_ISDIR(st.st_mode):
            if path in self._submodules or (full / ".git").exists():
                return self._submodule(path, head)
            return self._disk_tree(path) if include_ignored else ABSENT
        if not stat.S_ISREG(st.st_mode):
            return ABSENT
        if self._filemode:
            mode = MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_BLOB
        else:
            mode = head.mode if head is not None and head.mode != MODE_TREE else MODE_BLOB
        try:
            return Entry(mode, str(self.repository.hashfile(str(full), as_path=path)))
        except UnicodeError as error:  # a file name that is not UTF-8: an OSError to callers
            raise OSError(f"cannot hash {path!r}: {error}") from error

    def _disk_tree(self, path: str) -> Entry:
        # An ignored directory named explicitly: hash everything in it, as `git add -f` would.
        entries: dict[str, Entry] = {}
        for name in os.listdir(self.root / path):
            if name == ".git":
                continue
            child = f"{path}/{name}"
            entry = self._memo.get(child) or self._from_disk(child, None, include_ignored=True)
            if entry is not ABSENT:
                entries[name] = entry
        return Entry(MODE_TREE, hash_tree(entries)) if entries else ABSENT

    def _submodule(self, path: str, head: Entry | None) -> Entry:
        sub = self._open_submodule(path)
        if sub is None or sub.head_is_unborn:
            # Not checked out: git keeps the gitlink recorded in HEAD.
            return head if head is not None else ABSENT
        commit = str(sub.head.peel(pygit2.Commit).id)
        dirty = any(
            flags != FileStatus.CURRENT and not flags & FileStatus.IGNORED
            for flags in sub.status(untracked_files="all").values()
        )
        return Entry(MODE_COMMIT, commit, dirty=dirty)

    def glob(self, pattern: str) -> list[str]:
        """Return the sorted paths (relative to the top) that ``pattern`` matches.

        ``pattern`` is relative to the top and uses :mod:`glob` syntax (``*``, ``?``,
        ``[...]``, and ``**`` for any number of directories). Ignored paths are left out unless
        they are tracked in ``HEAD``, and so are paths below a symlink; hidden names match only
        when the pattern names them.
        """
        matches = globmod.glob(pattern, root_dir=self.root, recursive=True)
        result = []
        for match in matches:
            relative = Path(match).as_posix().rstrip("/")
            if relative.split("/", 1)[0] == ".git":
                continue
            if not self._is_real_dir(relative.rpartition("/")[0]):
                continue  # found through a symlink to a directory: not in the worktree
            if self._globbed(relative):
                result.append(relative)
        return sorted(set(result))

    def _globbed(self, path: str) -> bool:
        # Left out: ignored and not tracked in HEAD (by the submodule's rules inside one).
        split = self._split_submodule(path)
        if split is not None:
            inner = self._inner_worktree(split[0])
            return inner is not None and inner._globbed(split[1])
        return not self._is_ignored(path) or self._head_entry(path) is not None
