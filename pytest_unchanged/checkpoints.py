"""Checkpoints for deploy scripts: did a path change since it was checkpointed?

``checkpoint(path)`` remembers the git OID of a path; later ``same(path)`` / ``changed(path)``
compare its current OID with that one, and :class:`NotCheckpointed` is raised for a path that
was never checkpointed. The identity of a path is the one the pytest plugin uses:

* inside a git worktree, the OIDs of :class:`~pytest_unchanged.worktree.Worktree` (same code,
  read-only): a file is the blob OID ``git hash-object PATH`` prints (filters such as
  ``.gitattributes`` ``text``/``eol`` and ``core.autocrlf`` applied) with its tree-entry mode; a
  directory is the tree OID ``git add -A`` + ``git write-tree`` would give it (untracked files
  count, ignored files do not); a submodule is its checked-out commit and whether it is dirty;
* outside any git worktree (and inside a bare repository or a ``.git`` directory), plain files
  and directories still work: a file is what ``git hash-object --no-filters PATH`` prints, a
  directory the tree of every file below it (no filters, nothing ignored), as ``git add -A -f``
  into an empty repository would write it;
* an ignored path named explicitly is hashed as ``git add -f`` would stage it; a directory that
  is the top of a repository (a submodule's included) is the tree of that repository's worktree;
* a missing path (or an empty directory, which git does not store) has the value
  :data:`~pytest_unchanged.worktree.ABSENT`, so creating it later is a change;
* a symlink named as the path is its git blob (the target's path, mode ``120000``) plus the
  value of what it resolves to, so editing the file it points at is a change too (symlinks
  inside a checkpointed directory count as git stores them: retargeting is a change);
* a glob (``*``, ``?``, ``[...]``, ``**``) is every path it matches with its value, so a new
  match, a vanished match and an edited match are all changes.

Checkpoints are kept per name (default ``"default"``), so one script can keep several
(``"before-pull"``, ``"before-migrate"``), in a JSON state file (see :class:`Checkpoints`).
"""

from __future__ import annotations

import glob as globmod
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryOpenFlag

from .checkpoints_state import (
    DEFAULT_NAME,
    CheckpointError,
    CorruptCheckpointsError,
    NotCheckpointed,
    StateFile,
    default_state_file,
)
from .gitobjects import (
    ABSENT,
    MODE_BLOB,
    MODE_COMMIT,
    MODE_EXECUTABLE,
    MODE_LINK,
    MODE_TREE,
    Entry,
    hash_tree,
)
from .pathglob import expand
from .worktree import Worktree

__all__ = [
    "DEFAULT_NAME",
    "Change",
    "CheckpointError",
    "Checkpoints",
    "CorruptCheckpointsError",
    "NotCheckpointed",
    "changed",
    "checkpoint",
    "compare",
    "default_state_file",
    "same",
    "state_file_of",
]

PathArg = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Change:
    """One path of a checkpointed spec: its value at the checkpoint (``old``) and now (``new``).

    ``spec`` is the checkpointed path or glob (absolute), ``path`` the absolute path the values
    belong to (a glob's match, a symlink's resolved target, or ``spec`` itself).
    """

    spec: str
    path: str
    old: Entry
    new: Entry

    @property
    def changed(self) -> bool:
        """True when the mode, the OID or a submodule's dirtiness differs."""
        return self.old != self.new


class Checkpoints:
    """The checkpoints kept in one JSON state file (``state_file``, a path).

    The file is written atomically (a temporary file in the same directory, fsync,
    :func:`os.replace`), keeps the mode of the file it replaces (a new one gets the umask's),
    and is locked (``fcntl.flock`` on ``STATE.lock``) around each read-modify-write, so two
    processes checkpointing different paths at once lose nothing. A state file that is not
    valid raises :class:`CorruptCheckpointsError` naming it; it is never silently reset.
    """

    def __init__(self, state_file: PathArg) -> None:
        self.state_file = Path(state_file)
        self._state = StateFile(self.state_file)

    def checkpoint(self, *paths: PathArg, name: str | None = None) -> dict[str, Entry]:
        """Record the current value of each of ``paths`` under the checkpoint ``name``.

        ``paths`` are files, directories or globs, absolute or relative to the current
        directory; a path checkpointed before under ``name`` is replaced, others are kept.
        Returns the recorded values by absolute path. Raises :class:`CheckpointError` when a
        path cannot be read or hashed, or the state file cannot be read or written (then it is
        left as it was), and :class:`CorruptCheckpointsError` when it is not a valid state file.
        """
        specs = _specs(paths)
        snapshot = Snapshot()
        values = {spec: snapshot.entries(spec) for spec in specs}
        self._state.update(name or DEFAULT_NAME, values)
        return {path: entry for entries in values.values() for path, entry in entries.items()}

    def compare(self, *paths: PathArg, name: str | None = None) -> list[Change]:
        """Return a :class:`Change` for every path of ``paths`` (and of what their globs match).

        Raises :class:`NotCheckpointed` when one of ``paths`` was never checkpointed under
        ``name``, :class:`CorruptCheckpointsError` when the state file is not valid, and
        :class:`CheckpointError` when a path cannot be read or hashed.
        """
        specs = _specs(paths)
        recorded = self._state.read_checkpoint(name or DEFAULT_NAME, specs)
        snapshot = Snapshot()
        changes: list[Change] = []
        for spec in specs:
            old, new = recorded[spec], snapshot.entries(spec)
            changes.extend(
                Change(spec, path, old.get(path, ABSENT), new.get(path, ABSENT))
                for path in sorted(old.keys() | new.keys()) or [spec]  # a glob matching nothing
            )
        return changes

    def same(self, *paths: PathArg, name: str | None = None) -> bool:
        """True when every one of ``paths`` has the value it had at checkpoint ``name``.

        Raises as :meth:`compare` does.
        """
        return not any(change.changed for change in self.compare(*paths, name=name))

    def changed(self, *paths: PathArg, name: str | None = None) -> bool:
        """True when any of ``paths`` differs from its value at checkpoint ``name``.

        Raises as :meth:`compare` does.
        """
        return not self.same(*paths, name=name)


def checkpoint(*paths: PathArg, name: str | None = None) -> dict[str, Entry]:
    """Record ``paths`` under checkpoint ``name`` in their default state file.

    The default state file of a path is ``pytest-unchanged/checkpoints.json`` in the git
    directory of the worktree holding it, else in ``$XDG_STATE_HOME`` (see
    :func:`default_state_file`). Returns and raises as :meth:`Checkpoints.checkpoint`.
    """
    recorded: dict[str, Entry] = {}
    for state_file, group in _by_state_file(paths).items():
        recorded.update(Checkpoints(state_file).checkpoint(*group, name=name))
    return recorded


def compare(*paths: PathArg, name: str | None = None) -> list[Change]:
    """Return a :class:`Change` for every path of ``paths`` (default state files).

    Raises as :meth:`Checkpoints.compare` does.
    """
    changes = []
    for state_file, group in _by_state_file(paths).items():
        changes.extend(Checkpoints(state_file).compare(*group, name=name))
    return changes


def same(*paths: PathArg, name: str | None = None) -> bool:
    """True when every one of ``paths`` is as at checkpoint ``name`` (default state files).

    Raises :class:`NotCheckpointed` for a path never checkpointed, and as
    :meth:`Checkpoints.compare` does.
    """
    return not any(change.changed for change in compare(*paths, name=name))


def changed(*paths: PathArg, name: str | None = None) -> bool:
    """True when any of ``paths`` differs from checkpoint ``name`` (default state files).

    Raises :class:`NotCheckpointed` for a path never checkpointed, and as
    :meth:`Checkpoints.compare` does.
    """
    return not same(*paths, name=name)


def state_file_of(path: PathArg) -> Path:
    """Return the default state file of ``path`` (a file, a directory or a glob).

    See :func:`default_state_file`: the git directory of the worktree holding ``path`` (the
    part before a glob's first wildcard), else ``$XDG_STATE_HOME``.
    """
    return default_state_file(_base_of(canonical(path)))


def _by_state_file(paths: Iterable[PathArg]) -> dict[Path, list[str]]:
    groups: dict[Path, list[str]] = {}
    for spec in _specs(paths):
        groups.setdefault(default_state_file(_base_of(spec)), []).append(spec)
    return groups


def _specs(paths: Iterable[PathArg]) -> list[str]:
    specs = list(dict.fromkeys(canonical(path) for path in paths))
    if not specs:
        raise TypeError("give at least one path")
    return specs


def canonical(path: PathArg) -> str:
    """Return ``path`` absolute, with the directories above its last component resolved.

    The last component is kept as it is (a symlink stays the symlink), and so is everything
    from the first component of a glob onwards. Raises :class:`CheckpointError` for an empty
    path.
    """
    text = os.fspath(path)
    if not text or "\0" in text:
        raise CheckpointError(f"{text!r} is not a path: give a file, a directory or a glob.")
    parts = Path(os.path.abspath(text)).parts
    magic = next((i for i, part in enumerate(parts) if globmod.has_magic(part)), len(parts) - 1)
    if magic == 0:
        return os.path.abspath(text)
    return os.path.join(os.path.realpath(os.path.join(*parts[:magic])), *parts[magic:])


def _base_of(spec: str) -> str:
    """The part of ``spec`` before its first glob component (``spec`` itself when none)."""
    parts = Path(spec).parts
    magic = next((i for i, part in enumerate(parts) if globmod.has_magic(part)), None)
    return spec if magic is None else os.path.join(*parts[:magic])


class Snapshot:
    """The values of absolute paths at one moment: one :class:`Worktree` per repository."""

    def __init__(self) -> None:
        self._worktrees: dict[str, Worktree | None] = {}

    def entries(self, spec: str) -> dict[str, Entry]:
        """Return the values that make up ``spec`` (see the module docstring), by path."""
        base = _base_of(spec)
        if base != spec:
            return {path: self.entry(path) for path in self._glob(spec, base)}
        _check_kind(spec)
        values = {spec: self.entry(spec)}
        if os.path.islink(spec):
            target = os.path.realpath(spec)
            values[target] = self.entry(target)
        return values

    def entry(self, path: str) -> Entry:
        """Return the value of the absolute ``path``; raise :class:`CheckpointError` on failure."""
        found = self._worktree_of(path)
        try:
            if found is None:
                return plain_entry(path)
            worktree, relative = found
            return worktree.entry(relative)
        except (OSError, pygit2.GitError) as exc:
            raise CheckpointError(f"Cannot hash {path}: {exc}.") from None

    def _glob(self, spec: str, base: str) -> list[str]:
        found = self._worktree_of(base)
        if found is None:  # outside any repository: the same glob rule (hidden names match)
            return [
                os.path.join(base, match)
                for match in expand(Path(base), os.path.relpath(spec, base))
            ]
        worktree, relative = found
        pattern = os.path.relpath(spec, base)
        if relative:
            pattern = f"{relative}/{pattern}"
        return [str(worktree.root / match) for match in worktree.glob(pattern)]

    def _worktree_of(self, path: str) -> tuple[Worktree, str] | None:
        """The worktree holding ``path`` and the path relative to its top, if any."""
        start = path
        while not os.path.isdir(start) or os.path.islink(start):
            parent = os.path.dirname(start)
            if parent == start:
                return None
            start = parent
        found = pygit2.discover_repository(start)
        if found is None:
            return None
        if found not in self._worktrees:
            try:
                repository = pygit2.Repository(found)
                bare = repository.is_bare or repository.workdir is None
                self._worktrees[found] = None if bare else Worktree(repository)
            except (OSError, pygit2.GitError) as exc:
                raise CheckpointError(f"Cannot read the repository at {found}: {exc}.") from None
        worktree = self._worktrees[found]
        if worktree is None:
            return None
        try:
            relative = Path(path).relative_to(worktree.root).as_posix()
        except ValueError:
            return None
        if relative == ".git" or relative.startswith(".git/"):
            return None  # inside the git directory: plain files, not worktree content
        return worktree, "" if relative == "." else relative


def _check_kind(path: str) -> None:
    """Raise :class:`CheckpointError` when ``path`` exists but git could not store it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return  # missing (absent), or unreadable: hashing it says why
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise CheckpointError(
            f"{path} is not a path git can store (a FIFO, a socket or a device): give a file, a "
            "directory, a symlink or a glob."
        )


def plain_entry(path: str) -> Entry:
    """Return the value of ``path`` outside any git worktree: no filters, nothing ignored.

    A file is its blob (``git hash-object --no-filters``) with mode ``100644`` or ``100755``
    (owner's execute bit), a symlink the blob of its target's path, a directory the tree of
    every entry below it (a nested repository: its ``HEAD`` commit, as ``git add`` records a
    gitlink). Missing paths, empty directories and special files are
    :data:`~pytest_unchanged.worktree.ABSENT`. Raises :class:`OSError` when a file cannot be
    read.
    """
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ABSENT
    if stat.S_ISLNK(st.st_mode):
        return Entry(MODE_LINK, str(pygit2.hash(os.readlink(os.fsencode(path)))))
    if stat.S_ISREG(st.st_mode):
        mode = MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_BLOB
        return Entry(mode, str(pygit2.hashfile(path)))
    if not stat.S_ISDIR(st.st_mode):
        return ABSENT
    if os.path.lexists(os.path.join(path, ".git")):
        return _nested_repository(path)
    entries = {name: plain_entry(os.path.join(path, name)) for name in os.listdir(path)}
    children = {name: entry for name, entry in entries.items() if entry is not ABSENT}
    return Entry(MODE_TREE, hash_tree(children)) if children else ABSENT


def _nested_repository(path: str) -> Entry:
    try:
        repository = pygit2.Repository(path, RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        return ABSENT
    if repository.head_is_unborn:
        return ABSENT
    return Entry(MODE_COMMIT, str(repository.head.peel(pygit2.Commit).id))
