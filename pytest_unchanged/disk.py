"""Where git's view of a worktree path can differ from what a reader of the disk sees.

git keys content through its own lens: the clean filters (``.gitattributes`` ``text``, ``eol``,
``filter``, ``ident``, ``working-tree-encoding``, ``core.autocrlf``) turn a CRLF file into the
same blob as an LF one; git stores no empty directory; ``core.fileMode=false`` drops the
executable bit; ``core.trustctime=false`` lets an edit that restores the mtime pass. A key must
follow the disk. This module says, cheaply, where git's view may differ, so that only there a
path is hashed from disk (raw bytes, ``lstat`` mode, the on-disk listing); everywhere else
the blob and tree OIDs of ``HEAD`` and status stand, which is the common case and the fast one.

* :func:`global_filters`: content filters may apply to every path (``core.autocrlf``, or an
  attributes file outside the worktree mentioning a filter attribute);
* :func:`mentions_filters`: a ``.gitattributes`` file mentions one (a word scan: conservative,
  ``*.png binary`` does not count, ``* text=auto`` does);
* :func:`relaxed_stat`: a setting that makes git skip part of the stat data;
* :func:`scan_directories`: one walk of the worktree finding empty directories and the
  directories holding a ``.gitattributes`` file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pygit2
from pygit2.enums import ConfigLevel

__all__ = [
    "FILTER_WORDS",
    "DiskScan",
    "global_filters",
    "mentions_filters",
    "relaxed_stat",
    "scan_directories",
]

FILTER_WORDS = (b"text", b"eol", b"crlf", b"filter", b"ident", b"encoding")
"""The attribute names (and their macros' texts) that make git's clean filter change content
(git's ``Documentation/gitattributes.txt``, "Effects": ``text``, ``eol``, ``crlf``, ``ident``,
``filter``, ``working-tree-encoding``)."""

_FALSE = frozenset({"false", "no", "off", "0", ""})


def _config(repository: pygit2.Repository, name: str) -> str | None:
    config = repository.config
    try:
        return str(config[name]) if name in config else None
    except (pygit2.GitError, KeyError, ValueError):
        return None


def mentions_filters(path: Path | str) -> bool:
    """Whether the attributes file at ``path`` mentions a content filter attribute.

    A file that cannot be read counts (git may read it): returns True. A missing file: False.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read().lower()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return any(word in text for word in FILTER_WORDS)


def global_filters(repository: pygit2.Repository) -> str | None:
    """Return why content filters may apply to every worktree path, or None.

    ``core.autocrlf`` set to anything but false, or an attributes file read for every path
    that mentions a filter: ``$GIT_DIR/info/attributes``, ``core.attributesFile``, the XDG
    ``git/attributes`` and the system ``gitattributes`` (libgit2's search paths).
    """
    autocrlf = _config(repository, "core.autocrlf")
    if autocrlf is not None and autocrlf.lower() not in _FALSE:
        return f"core.autocrlf={autocrlf}"
    candidates = [os.path.join(d, "info", "attributes") for d in _git_dirs(repository.path)]
    configured = _config(repository, "core.attributesFile")
    if configured:
        candidates.append(os.path.expanduser(configured))
    for level, name in ((ConfigLevel.XDG, "attributes"), (ConfigLevel.SYSTEM, "gitattributes")):
        try:
            found = pygit2.settings.search_path[level]
        except (pygit2.GitError, ValueError, KeyError):
            continue
        candidates.extend(os.path.join(d, name) for d in str(found or "").split(os.pathsep) if d)
    for candidate in candidates:
        if mentions_filters(candidate):
            return f"attributes in {candidate}"
    return None


def _git_dirs(path: str) -> list[str]:
    """The git directory and, for a linked worktree (``git worktree add``), the common one its
    ``commondir`` file names (where ``info/attributes`` lives; git's ``gitrepository-layout``)."""
    try:
        with open(os.path.join(path, "commondir"), encoding="utf-8") as handle:
            common = handle.read().strip()
    except (OSError, UnicodeError):
        return [path]
    return [path, os.path.normpath(os.path.join(path, common))]


def relaxed_stat(repository: pygit2.Repository) -> str | None:
    """Return the setting that makes git compare less than the full stat data, or None:
    ``core.trustctime=false``, ``core.checkStat=minimal``, ``core.fileMode=false``,
    ``core.symlinks=false`` (git's ``Documentation/config/core.txt``)."""
    for name in ("core.trustctime", "core.filemode", "core.symlinks"):
        value = _config(repository, name)
        if value is not None and value.lower() in _FALSE:
            return f"{name}={value}"
    check = _config(repository, "core.checkStat")
    if check is not None and check.lower() == "minimal":
        return "core.checkStat=minimal"
    return None


class DiskScan:
    """What one walk of the worktree found: ``empty`` directories (relative to the top, no
    entry at all on disk, not ignored) and ``attributes``: the directories whose
    ``.gitattributes`` mentions a content filter."""

    def __init__(self) -> None:
        self.empty: set[str] = set()
        self.attributes: set[str] = set()


def scan_directories(
    root: Path,
    *,
    skip: Callable[[str], bool],
    is_ignored: Callable[[str], bool],
) -> DiskScan:
    """Walk the worktree at ``root`` once and return a :class:`DiskScan`.

    A directory below which nothing counts is not entered: ``.git``, one holding a ``.git``
    (a submodule or a nested repository, opaque to git), one ``skip`` names (``skip(rel)``: an
    ignored directory with nothing tracked in it), and symlinks (git never looks through one).
    An empty directory counts unless ``is_ignored(rel)``.
    """
    found = DiskScan()
    leaf = _LeafRule()
    stack = [""]
    while stack:
        rel = stack.pop()
        directory = os.path.join(root, rel) if rel else os.fspath(root)
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        if not names:
            if rel and not is_ignored(rel):
                found.empty.add(rel)
            continue
        if rel and ".git" in names:
            continue  # a repository of its own: its content is not this worktree's
        if ".gitattributes" in names and mentions_filters(
            os.path.join(directory, ".gitattributes")
        ):
            found.attributes.add(rel)
        prefix = f"{rel}/" if rel else ""
        for name in leaf.subdirectories(directory):
            child = prefix + name
            if name != ".git" and not skip(child):
                stack.append(child)
    return found


class _LeafRule:
    """Lists the subdirectories of a directory, using find's leaf optimisation where it holds.

    On most POSIX filesystems (ext4, xfs, tmpfs) a directory's link count is 2 plus its
    subdirectories (the ``..`` of each): a directory with 2 links has none and is not listed
    again, and a listing stops once that many are found. Some do not keep the rule (btrfs and
    overlayfs report 1, some network filesystems a constant): it is trusted only on the
    filesystem of the first directory listed (the worktree's top), and only when that directory
    keeps it.
    """

    def __init__(self) -> None:
        self.device: int | None = None

    def subdirectories(self, directory: str) -> list[str]:
        """Return the names of the directories (not symlinks) in ``directory``."""
        try:
            st = os.lstat(directory)
        except OSError:
            return []
        first = self.device is None
        trusted = not first and st.st_dev == self.device
        if trusted and st.st_nlink == 2:
            return []
        expected = st.st_nlink - 2 if trusted else -1
        found: list[str] = []
        try:
            with os.scandir(directory) as listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        found.append(entry.name)
                        if len(found) == expected:
                            break
        except OSError:
            return found
        if first:
            # Trusted only when the top keeps the rule (it has subdirectories: `.git`...).
            self.device = st.st_dev if found and st.st_nlink == 2 + len(found) else -1
        return found
