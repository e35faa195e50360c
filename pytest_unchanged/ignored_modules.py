"""The modules git ignores that Python can import from the worktree: part of ``.``.

The whole worktree (``.``, the default inputs) is what ``git add -A && git write-tree`` would
record, so it leaves out what git ignores. Python does not: a ``local_settings.py`` or a
generated ``_version.py`` in ``.gitignore`` is imported like any module, and an edit of it
changes what a test does (adversarial review of issue 10, round 4, finding 09). So ``.`` also
holds each ignored module Python's path-based finder can import by name from the worktree:

* in an import root in the worktree (the rootdir, its ``src/``, the ``sys.path`` entries in
  the worktree: see :func:`.imports.search_roots`), or in a package directory (one holding an
  ``__init__`` module that git tracks or sees);
* a file whose name is an identifier followed by an import suffix
  (:func:`importlib.machinery.all_suffixes`; a ``.pyc`` only where no source of that name is
  beside it: the finder takes the source first), or a directory holding an ``__init__``
  module (an ignored package, hashed whole as ``git add -f`` would stage it).

Ignored directories that are no package (``build/``, ``.venv/``, ``node_modules/``) and
namespace portions are not entered: what is imported from them is seen only by
``unchanged_default = imports`` (its closure takes ignored files it resolves to).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import BYTECODE_SUFFIXES, all_suffixes
from pathlib import Path

from .imports import search_roots
from .worktree import Worktree

__all__ = ["ignored_modules", "whole_worktree"]

_SUFFIXES = tuple(all_suffixes())
_BYTECODE = tuple(BYTECODE_SUFFIXES)


def whole_worktree(worktree: Worktree, rootdir: Path, path: Sequence[str] | None) -> list[str]:
    """Return the inputs ``.`` stands for: the worktree's top (``""``) and the ignored modules
    Python can import from the import roots of ``rootdir`` and ``path`` (``sys.path`` as the
    session began; ``None``: :data:`sys.path`)."""
    roots = search_roots(worktree, rootdir, sys.path if path is None else path)
    return ["", *ignored_modules(worktree, roots)]


def ignored_modules(worktree: Worktree, roots: Iterable[Path]) -> list[str]:
    """Return the worktree paths (relative, POSIX) of the ignored modules Python can import
    from the import ``roots`` (absolute directories in the worktree) and from the package
    directories git tracks or sees, sorted. Raises nothing: a directory that cannot be
    listed holds nothing importable.
    """
    directories: set[str] = set()
    for root in roots:
        try:
            directories.add(worktree.relpath(root))
        except ValueError:
            continue
    try:
        tracked = [entry.path for entry in worktree.repository.index]
    except Exception:  # an index pygit2 cannot read: the worktree's own view still says
        tracked = []
    for path in [*tracked, *worktree.dirty_paths]:
        directory, _, name = path.rpartition("/")
        if name.startswith("__init__."):
            directories.add(directory)
    found: list[str] = []
    for directory in sorted(directories):
        found.extend(_ignored_in(worktree, directory))
    return sorted(set(found))


def _ignored_in(worktree: Worktree, directory: str) -> list[str]:
    try:
        with os.scandir(worktree.root / directory) as scan:
            entries = [(e.name, e.is_dir(follow_symlinks=True)) for e in scan]
    except OSError:
        return []
    names = {name for name, _ in entries}
    found = []
    for name, is_dir in entries:
        stem, dot, _ = name.partition(".")
        if not stem.isidentifier():
            continue
        if is_dir:
            inside = _listing(worktree, directory, name)
            if dot or not any(f"__init__{suffix}" in inside for suffix in _SUFFIXES):
                continue
        elif not name.endswith(_SUFFIXES) or (name.endswith(_BYTECODE) and f"{stem}.py" in names):
            continue
        rel = f"{directory}/{name}" if directory else name
        try:
            if worktree.repository.path_is_ignored(rel):
                found.append(rel)
        except Exception:
            continue
    return found


def _listing(worktree: Worktree, directory: str, name: str) -> set[str]:
    try:
        return set(os.listdir(worktree.root / directory / name))
    except OSError:
        return set()
