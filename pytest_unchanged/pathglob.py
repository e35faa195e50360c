"""Glob patterns over the worktree on disk, hidden names included and ``.git`` never entered.

:func:`glob.glob` never matches a name starting with a dot unless the pattern component does
(``data/**/*.json`` misses ``data/.local.json``), while :meth:`pathlib.Path.glob`, which a test
naturally uses next to its mark, matches it: a hidden file the test reads would not count, a
false skip. ``include_hidden=True`` would also walk ``.git`` (every object) for ``**``. So the
pattern is expanded here, one component at a time with :func:`fnmatch.fnmatchcase` (which
treats a leading dot like any character), never descending into ``.git`` nor through a symlink.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["expand"]


def expand(root: Path, pattern: str) -> list[str]:
    """Return the paths (relative to ``root``, ``/``-separated, sorted) ``pattern`` matches.

    ``pattern`` is relative to ``root`` in :mod:`glob` syntax (``*``, ``?``, ``[...]``, and
    ``**`` alone in a component for any number of directories, as ``recursive=True``); every
    name matches, hidden ones too, except ``.git``, which is never matched nor entered. A
    pattern ending in ``/`` matches directories only. Unreadable directories match nothing.
    Raises :class:`ValueError` for a pattern the system cannot take as a path (a NUL byte).
    """
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    dirs_only = pattern.endswith("/")
    found = {p for p in _match(root, "", parts) if not dirs_only or (root / p).is_dir()}
    return sorted(found)


def _children(root: Path, rel: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(root / rel if rel else root) as entries:
            return [e for e in entries if e.name != ".git"]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _match(root: Path, rel: str, parts: list[str]) -> Iterator[str]:
    if not parts:
        if rel:
            yield rel
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        yield from _match(root, rel, rest)  # zero directories
        for entry in _children(root, rel):
            child = _join(rel, entry.name)
            if not rest:
                yield child  # a final ``**``: everything below
            if _is_dir(entry):
                yield from _match(root, child, parts)
    elif globmod.has_magic(part):
        for entry in _children(root, rel):
            if fnmatch.fnmatchcase(entry.name, part) and (not rest or _is_dir(entry)):
                yield from _match(root, _join(rel, entry.name), rest)
    elif part != ".git":
        child = _join(rel, part)
        if os.path.lexists(root / child) and (not rest or (root / child).is_dir()):
            yield from _match(root, child, rest)
