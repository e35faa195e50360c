"""Git object IDs of worktree paths as a reader of the disk sees them, read-only through pygit2.

A value is a tree entry (see :mod:`.gitobjects`): a file is the blob OID of its raw bytes (no
clean filter: ``git hash-object --no-filters``) with the mode ``lstat`` gives (``100644``,
``100755``, ``120000`` for a symlink, whose blob is its link text); a directory is the tree OID
of its on-disk listing (untracked files count, ignored ones do not, a directory holding only
ignored files is ignored as ``git status --ignored`` says, an empty directory is git's empty
tree); a submodule is its checked-out commit (``160000``), ``dirty`` when its own worktree differs
from that commit's tree, or its directory as on disk when not checked out; a path inside a
submodule is its value there; an ignored path named explicitly is hashed with all it holds; a
missing path (a sparse checkout's entry too) or one below a symlink is :data:`ABSENT`.

Where git's view provably equals the disk (:mod:`.disk` says where it may not), the OIDs are
``HEAD``'s and status's: a clean directory is ``git rev-parse HEAD:DIR``, nothing is hashed.
Nothing is ever written into the repository (blobs: :func:`pygit2.hashfile`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryOpenFlag

from .disk import global_filters, mentions_filters, scan_directories
from .gitobjects import (
    ABSENT,
    EMPTY_TREE,
    MODE_BLOB,
    MODE_COMMIT,
    MODE_EXECUTABLE,
    MODE_LINK,
    MODE_TREE,
    Entry,
    hash_tree,
    mode_name,
)
from .hidden import GitView, HiddenEntriesError, git_view
from .pathglob import expand

__all__ = ["ABSENT", "EMPTY_TREE", "Entry", "NotARepositoryError", "Worktree", "hash_tree"]

_BLOBS = frozenset({MODE_BLOB, MODE_EXECUTABLE})


class NotARepositoryError(Exception):
    """Raised when a path is not inside a git worktree (bare repositories included)."""


class Worktree:
    """OIDs of paths in one repository's worktree, as of the moment it was opened.

    Status is read once, ``HEAD``'s tree is read once, and every OID is memoised, so a
    :class:`Worktree` stands for one snapshot: open a new one to see later changes.

    Paths are POSIX-style and relative to the repository's top directory (``""`` is the top).
    """

    def __init__(self, repository: pygit2.Repository, *, tolerant: bool = False) -> None:
        if repository.is_bare or repository.workdir is None:
            raise NotARepositoryError(f"{repository.path} is a bare repository")
        self.repository = repository
        self.root = Path(repository.workdir).resolve()
        self.head_commit: str | None = None
        self._head_tree: pygit2.Tree | None = None
        self._dirty: set[str] = set()
        self._dirty_children: dict[str, set[str]] = {}
        self.hidden_error: str | None = None
        """Why git's view of the worktree cannot be read (an index extension libgit2 does not
        know, such as a split or sparse index; index flags that cannot be read), or None.
        Only a ``tolerant`` worktree (the session's: every key is then unknown, the tests run
        with a warning) is made so; others raise :class:`pygit2.GitError`."""
        try:
            view = git_view(repository)
        except (HiddenEntriesError, pygit2.GitError) as error:
            if not tolerant:
                raise pygit2.GitError(str(error)) from None
            self.hidden_error, view = str(error), GitView()
        self.head_commit, self._head_tree = view.head_commit, view.head_tree
        for path in view.changed:
            self._mark_dirty(path)
        links, gitlinks = view.links, view.gitlinks
        # A submodule's checkout is never trusted from the superproject's status (a
        # deinitialised one, `ignore = all` in .gitmodules): each is looked at on disk.
        try:
            self._submodules = set(repository.listall_submodules()) | set(gitlinks)
        except pygit2.GitError as error:  # a .gitmodules git cannot parse
            if not tolerant:
                raise
            self._submodules, self.hidden_error = set(gitlinks), self.hidden_error or str(error)
        for path in self._submodules:
            self._mark_dirty(path)
        # The symlinks in the worktree (staged ones, and new or retyped ones status reports).
        self.links: list[str] = sorted(
            path for path in {*links, *self._dirty} if os.path.islink(self.root / path)
        )
        """Paths (relative to the top, sorted) that are symlinks in the worktree."""
        self._filters = global_filters(repository)
        self._suspects: dict[str, bool] = {}
        self._empty: set[str] | None = None
        self._memo: dict[str, Entry] = {}
        self._real_dirs: dict[str, bool] = {"": True}
        self._inner: dict[str, Worktree | None] = {}

    @classmethod
    def discover(cls, path: str | os.PathLike[str], *, tolerant: bool = False) -> Worktree:
        """Open the worktree containing ``path``.

        Raises :class:`NotARepositoryError` when ``path`` is not inside a git worktree, and
        :class:`pygit2.GitError` when git's view of it cannot be read (unless ``tolerant``:
        then :attr:`hidden_error` says why).
        """
        found = pygit2.discover_repository(os.fspath(path))
        if found is None:
            raise NotARepositoryError(f"{path} is not inside a git repository")
        return cls(pygit2.Repository(found), tolerant=tolerant)

    def _mark_dirty(self, path: str) -> None:
        self._dirty.add(path)
        self._chain(path)

    def _chain(self, path: str) -> None:
        # Register `path` below each of its parents: their trees are rebuilt around it.
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
        """Return the :class:`Entry` of ``path`` (relative to the top, ``""`` for the top); an
        ignored directory as ``git add -f PATH`` stages it, whatever is tracked below it (in a
        parent's tree: as ``git add -A`` does). Raises :class:`OSError`, :class:`pygit2.GitError`.
        """
        path = "" if path.strip("/") == "." else path.strip("/")
        found = self._entry(path)
        if not (found.is_tree and path and self._is_ignored(path)):
            return found
        if (forced := self._memo.get(f"\0{path}")) is None:  # "\0": no path holds a NUL
            forced = self._memo[f"\0{path}"] = self._disk_tree(path)
        return forced

    def _entry(self, path: str) -> Entry:
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
        st = self._lstat(path)
        is_dir = st is not None and stat.S_ISDIR(st.st_mode)
        if self._empty is None and is_dir:
            self._scan_disk()  # before any tree: empty directories and attributes below
        whole = head is not None and head.is_tree and self._suspect(path)
        if path in self._dirty_children or whole:
            if is_dir:
                if path in self._submodules:
                    return self._from_disk(path, head)
                tree = head if head is not None and head.is_tree else None
                return self._rebuild_tree(path, tree, whole=whole)
            # No longer a directory (deleted, or replaced by a file or a symlink, which status
            # reports as the path itself): nothing below it counts.
            return self._from_disk(path, head) if path in self._dirty else ABSENT
        if path in self._dirty:
            return self._from_disk(path, head)
        if head is not None:
            if head.mode == MODE_COMMIT or (
                head.mode in _BLOBS and self._suspect(path.rpartition("/")[0])
            ):
                return self._from_disk(path, head)  # a content filter may apply: raw bytes
            return head
        if not path:
            # No HEAD and nothing to stage: the empty tree, as `git write-tree` gives it.
            return EMPTY_TREE
        # Not in HEAD nor reported by status: missing, ignored, or holding only ignored files
        # (which `git add -A` leaves out). An ignored path: as `git add -f` (see entry).
        if st is None:
            return ABSENT
        return self._from_disk(path, None, include_ignored=self._is_ignored(path))

    def _suspect(self, directory: str) -> bool:
        """Whether a content filter may apply to the files of ``directory`` (or below it): one
        applies everywhere, or a ``.gitattributes`` in it or above it mentions one."""
        if self._filters is not None:
            return True
        known = self._suspects.get(directory)
        if known is None:
            own = f"{directory}/.gitattributes" if directory else ".gitattributes"
            known = mentions_filters(self.root / own) or (
                own in self._dirty and not os.path.lexists(self.root / own)
            )  # deleted but still in the index, where git reads it from
            if not known and directory:
                known = self._suspect(directory.rpartition("/")[0])
            self._suspects[directory] = known
        return known

    def _scan_disk(self) -> None:
        """Walk the worktree once: mark its empty directories, and register the directories
        whose ``.gitattributes`` mentions a filter so that the trees above them are rebuilt."""

        def skip(rel: str) -> bool:
            # Submodules are looked at on their own; an ignored directory with nothing tracked
            # or staged in it holds nothing that counts.
            tracked = self._head_entry(rel) is not None or rel in self._dirty_children
            return rel in self._submodules or (not tracked and self._is_ignored(rel))

        found = scan_directories(self.root, skip=skip, is_ignored=self._is_ignored)
        self._empty = found.empty
        for path in found.empty:
            self._mark_dirty(path)
        for path in found.attributes:
            if path:
                self._chain(path)

    def _split_submodule(self, path: str) -> tuple[str, str] | None:
        """Return (submodule, path inside it) when ``path`` is strictly inside a submodule."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in self._submodules:
                return prefix, "/".join(parts[depth:])
        return None

    def _inner_worktree(self, path: str) -> Worktree | None:
        # NO_SEARCH: an uninitialised submodule's empty directory must not open the superproject.
        if path not in self._inner:
            self._inner[path] = None
            st = self._lstat(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(pygit2.GitError, NotARepositoryError):
                    sub = pygit2.Repository(str(self.root / path), RepositoryOpenFlag.NO_SEARCH)
                    self._inner[path] = Worktree(sub, tolerant=True)  # unreadable: dirty
        return self._inner[path]

    def _is_ignored(self, path: str) -> bool:
        try:
            return bool(self.repository.path_is_ignored(path))
        except UnicodeError:  # a name that is not UTF-8: counted (hashing it then says why)
            return False

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
        except (KeyError, TypeError):  # TypeError: not UTF-8, read from disk (an OSError there)
            return None
        return Entry(mode_name(obj.filemode), str(obj.id))

    def _rebuild_tree(self, path: str, head: Entry | None, *, whole: bool) -> Entry:
        # The tree of `path` from HEAD's, with the children that may differ computed again
        # (`whole`: every child, as a content filter may apply to any file below).
        entries: dict[str, Entry] = {}
        if head is not None:
            tree = self.repository[head.oid]
            assert isinstance(tree, pygit2.Tree)
            for obj in tree:
                assert obj.name is not None
                entries[obj.name] = Entry(mode_name(obj.filemode), str(obj.id))
        prefix = f"{path}/" if path else ""
        names = set(self._dirty_children.get(path, ()))
        if whole:
            names.update(entries)
        dirty = False
        for name in names:
            child = self._entry(prefix + name)
            if child is ABSENT:
                entries.pop(name, None)
            else:
                entries[name] = child
                dirty = dirty or child.dirty
        if not entries and path:
            # Nothing that counts: an empty directory on disk is the empty tree, one holding
            # only ignored files is ignored (the top stays a tree: `git write-tree` gives it).
            return EMPTY_TREE if path in (self._empty or ()) else ABSENT
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
                return self._submodule(path)
            if include_ignored:
                return self._disk_tree(path)
            return EMPTY_TREE if path in (self._empty or ()) else ABSENT
        if not stat.S_ISREG(st.st_mode):
            return ABSENT
        # The mode lstat gives and the raw bytes, whatever core.fileMode and the filters say.
        mode = MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_BLOB
        try:
            return Entry(mode, str(pygit2.hashfile(str(full))))
        except UnicodeError as error:  # a file name that is not UTF-8: an OSError to callers
            raise OSError(f"cannot hash {path!r}: {error}") from error

    def _disk_tree(self, path: str) -> Entry:
        # An ignored directory named explicitly, or a submodule's directory with no checkout:
        # hash everything in it, as `git add -f` would (an empty one is the empty tree).
        entries: dict[str, Entry] = {}
        for name in os.listdir(self.root / path):
            if name == ".git":
                continue
            child = f"{path}/{name}"
            entry = self._memo.get(child) or self._from_disk(child, None, include_ignored=True)
            if entry is not ABSENT:
                entries[name] = entry
        return Entry(MODE_TREE, hash_tree(entries))

    def _submodule(self, path: str) -> Entry:
        inner = self._inner_worktree(path)
        if inner is None or inner.head_commit is None:
            # Not checked out (`git submodule deinit`, never initialised): what is on disk.
            return self._disk_tree(path)
        tree = str(inner.repository[inner.head_commit].peel(pygit2.Tree).id)
        top = inner.entry("")
        dirty = inner.hidden_error is not None or top.dirty or top.oid != tree
        return Entry(MODE_COMMIT, inner.head_commit, dirty=dirty)

    def glob(self, pattern: str) -> list[str]:
        """Return the sorted paths (relative to the top) that ``pattern`` matches.

        ``pattern`` is relative to the top and uses :mod:`glob` syntax (``*``, ``?``,
        ``[...]``, and ``**`` for any number of directories). Ignored paths are left out unless
        they are tracked in ``HEAD``, and so are paths below a symlink; hidden names match as
        :meth:`pathlib.Path.glob` matches them (see :mod:`.pathglob`).
        """
        result = []
        for relative in expand(self.root, pattern):
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
