"""Environment facets of the ``sys.path`` entries no other facet or input covers.

Python imports from every entry of :data:`sys.path`, however it got there: ``PYTHONPATH``, a
``.pth`` file's path or ``import`` line, pytest's ``pythonpath`` ini option, ``sitecustomize``,
a conftest. So rather than parse how entries were added, :func:`search_path_facets` takes
``sys.path`` as the session began and makes each entry a facet of its content, unless something
else already stands for it:

* an entry inside the repository that git sees: its files are inputs (an entry git ignores, a
  ``build/lib``, is not, so it counts here);
* the standard library's directories and the interpreter's ``pythonXY.zip``: the Python
  version facet names them;
* a ``site-packages`` directory, an editable install's source directory, a ``.pth`` file's
  directory (``covered``, see :mod:`.outside`): the distributions' versions, ``editable:``
  and ``loose:`` facets stand for them and for everything below them.

A directory counts as what Python could import from it: the path (relative to the entry) and
content of every file whose name ends with an import suffix
(:func:`importlib.machinery.all_suffixes`: ``.py``, ``.pyc``, extension modules) and the path of
every directory (a package, a namespace portion), at any depth. Directories whose name holds a
dot (``.git``, ``.cache``: never a package), ``__pycache__`` and virtual environments (holding
``pyvenv.cfg``) are not entered; a symlinked directory is followed, each real one once. Any other
entry (a zip archive, an egg) counts as its bytes. An entry with nothing importable (missing,
empty, a virtualenv's ``bin`` of scripts) adds no facet, so ``pytest`` and ``python -m pytest``
key alike. Facets are named ``sys.path:<N>:<name>`` (``N`` counts the digested entries in
order, ``name`` is the entry's last component), never by absolute path, so records stay valid
on another machine with the same content.

What cannot be digested (unreadable; more than :data:`MAX_FILES` importable files,
:data:`MAX_BYTES` bytes, or :data:`MAX_LISTED` names listed) is a problem: every item
then runs with an ``UnkeyableInputWarning``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from importlib.machinery import all_suffixes
from pathlib import Path

import pygit2

from .keys import encode

__all__ = [
    "MAX_BYTES",
    "MAX_FILES",
    "MAX_LISTED",
    "Undigestable",
    "entry_digest",
    "raise_unlistable",
    "read_file",
    "search_path_facets",
    "walk_code",
]

MAX_FILES = 20_000
"""A directory with more files than this is not digested (importable files, for an entry)."""
MAX_BYTES = 200 * 2**20
"""Nor one whose files (importable files, for an entry) hold more bytes than this."""
MAX_LISTED = 200_000
"""Nor a ``sys.path`` entry whose walk lists more names than this (a home directory)."""
_SUFFIXES = tuple(all_suffixes())


class Undigestable(Exception):
    """A file or directory whose content cannot be read; the message says which and why."""


def search_path_facets(
    entries: Sequence[str], top: Path, covered: Iterable[Path]
) -> tuple[dict[str, str | None], list[str]]:
    """Return a ``sys.path:<N>:<name>`` facet for each of ``entries`` (``sys.path`` as the
    session began; ``""`` is the current directory) that neither lies inside the repository
    whose worktree top is ``top`` (and is seen by git) nor at or below one of ``covered`` or
    the standard library, and holds something importable (see the module's docstring); and
    the problems: why an entry could not be digested. Raises nothing.
    """
    facets: dict[str, str | None] = {}
    problems: list[str] = []
    skip = [*(Path(os.path.realpath(p)) for p in covered), *_standard_library()]
    repository: pygit2.Repository | None = None
    seen: set[Path] = set()
    count = 0
    for entry in entries:
        if not isinstance(entry, str):
            continue  # the path finder skips it too
        try:
            real = Path(os.path.realpath(entry or os.getcwd()))
            if real in seen or any(real.is_relative_to(p) for p in skip) or _python_zip(real):
                continue
            seen.add(real)
            if real.is_relative_to(top):
                rel = real.relative_to(top).as_posix()
                if rel == ".":
                    continue  # the worktree's top: its files are inputs
                repository = repository or pygit2.Repository(str(top))
                if not repository.path_is_ignored(rel):
                    continue  # git sees it: its files are inputs
            value = entry_digest(real)
        except Undigestable as error:
            problems.append(str(error))
            continue
        except (OSError, ValueError, pygit2.GitError) as error:
            problems.append(f"cannot digest the sys.path entry {entry!r}: {error}")
            continue
        if value is not None:
            count += 1
            facets[f"sys.path:{count}:{real.name}"] = value
    return facets, problems


def entry_digest(path: Path) -> str | None:
    """Return the content identity of the ``sys.path`` entry ``path`` (see the module's
    docstring): ``"files <SHA-256>"`` for a directory, ``"bytes <SHA-256>"`` for a file,
    ``None`` when it holds nothing importable.

    Raises :class:`Undigestable` when it cannot be read or is too large.
    """
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # Python skips it; creating it later changes the facets
    except OSError as error:
        raise Undigestable(f"cannot read the sys.path entry {path}: {error}") from None
    if not stat.S_ISDIR(status.st_mode):
        if status.st_size > MAX_BYTES:
            raise Undigestable(f"the sys.path entry {path} is larger than {MAX_BYTES // 2**20} MiB")
        return "bytes " + hashlib.sha256(read_file(path)).hexdigest()
    return _importable_digest(path)


def walk_code(
    directory: Path, hasher: hashlib._Hash
) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """:func:`os.walk` the way Python imports through ``directory``: symlinked directories are
    followed (each real one once: a directory met again adds ``RELATIVE\\0seen\\0`` to
    ``hasher`` and is not entered), a virtual environment below it (``pyvenv.cfg``) is left
    out. Yields ``(path, path relative to directory, dirs, files)``; the caller may prune
    ``dirs``. Raises :class:`Undigestable` when a directory cannot be listed."""
    seen: set[tuple[int, int]] = set()
    for current, dirs, names in os.walk(directory, onerror=raise_unlistable, followlinks=True):
        status = os.stat(current)
        relative = Path(current).relative_to(directory).as_posix()
        if (status.st_dev, status.st_ino) in seen:
            dirs.clear()
            hasher.update(encode(f"{relative}\0seen\0"))
            continue
        seen.add((status.st_dev, status.st_ino))
        if "pyvenv.cfg" in names and Path(current) != directory:
            dirs.clear()
            continue
        yield current, relative, dirs, names


def _importable_digest(directory: Path) -> str | None:
    hasher = hashlib.sha256()
    files = size = listed = 0
    anything = False
    for current, relative, dirs, names in walk_code(directory, hasher):
        listed += len(dirs) + len(names)
        if listed > MAX_LISTED:
            raise Undigestable(f"the sys.path entry {directory} lists more than {MAX_LISTED} names")
        dirs[:] = sorted(d for d in dirs if "." not in d and d != "__pycache__")
        if current != str(directory):
            anything = True
            hasher.update(encode(f"{relative}/\0"))
        for name in sorted(names):
            if not name.endswith(_SUFFIXES):
                continue
            content = read_file(Path(current, name))
            files += 1
            size += len(content)
            if files > MAX_FILES or size > MAX_BYTES:
                raise Undigestable(
                    f"the sys.path entry {directory} is too large to digest (more than "
                    f"{MAX_FILES} importable files or {MAX_BYTES // 2**20} MiB)"
                )
            anything = True
            hasher.update(encode(f"{Path(current, name).relative_to(directory).as_posix()}\0"))
            hasher.update(encode(f"{len(content)}\0"))
            hasher.update(content)
    return "files " + hasher.hexdigest() if anything else None


def _standard_library() -> list[Path]:
    """The standard library's directories (``lib-dynload`` lies below ``platstdlib``)."""
    paths = sysconfig.get_paths()
    return [Path(os.path.realpath(paths[key])) for key in ("stdlib", "platstdlib") if key in paths]


def _python_zip(path: Path) -> bool:
    """Whether ``path`` is the interpreter's own ``pythonXY.zip`` (``pythonXYt.zip``)."""
    version = f"python{sys.version_info[0]}{sys.version_info[1]}"
    if path.name not in (f"{version}.zip", f"{version}t.zip"):
        return False
    prefixes = {Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.base_exec_prefix)}
    return any(path.is_relative_to(prefix) for prefix in prefixes)


def read_file(path: Path) -> bytes:
    """Return the bytes of ``path`` (a dangling symlink reads as its link text).

    Raises :class:`Undigestable` when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        if path.is_symlink() and not path.exists():
            return b"dangling symlink to " + os.fsencode(os.readlink(path))
        raise Undigestable(f"cannot read {path}: {error}") from None


def raise_unlistable(error: OSError) -> None:
    """``os.walk``'s ``onerror``: raise :class:`Undigestable` naming what cannot be listed."""
    raise Undigestable(f"cannot list {error.filename}: {error}")
