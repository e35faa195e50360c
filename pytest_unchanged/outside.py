"""Environment facets for code outside the repository that no distribution's version names.

A distribution's name and version (see :func:`.environment.installed_distributions`) stand for
the files it installed. Two kinds of code Python imports are not named by any version:

* **An editable install** (PEP 610 ``direct_url.json`` with ``dir_info.editable``): its modules
  are read from its source directory, which changes without the version changing. The facet
  ``editable:<name>`` is the digest of that directory: when it lies in a git worktree, the tree
  OID ``git add -A && git write-tree`` would give it (HEAD and status, read-only with pygit2,
  ignored files left out), else the SHA-256 over each file's path and content (``__pycache__``,
  ``.git`` and virtual environments, directories holding ``pyvenv.cfg``, left out). A source
  directory inside this repository is not digested: its files are inputs like any other.
* **Loose files in site-packages**: an entry of a ``site-packages`` directory (on
  :data:`sys.path`, holding distributions) that no distribution's ``RECORD`` lists (a module or
  package copied there, a ``.pth`` file written by hand): ``loose:<name>`` is the SHA-256 of its
  content. A ``.pth`` file's directories outside the repository are digested as above.

Every other ``sys.path`` entry outside the repository (a directory a ``.pth`` file's ``import``
line, ``PYTHONPATH`` or pytest's ``pythonpath`` adds, a zip archive) is digested by
:mod:`.search_path`; the directories above (site-packages, editable sources, a ``.pth`` file's
directories) are not digested twice.

What cannot be digested (unreadable, more than :data:`MAX_FILES` files or :data:`MAX_BYTES`
bytes in a directory that is not a git worktree) is a *problem*: every item then runs, with an
``UnkeyableInputWarning``. Distributions named in ``unchanged_ignore_distributions`` are left out
(their files still count as listed: they are not loose; an ignored editable install's source
directory is not digested as a ``sys.path`` entry either).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import os
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pygit2

from .keys import canonical_name, encode
from .search_path import MAX_BYTES, MAX_FILES, Undigestable, search_path_facets, walk_code
from .search_path import read_file as _read
from .worktree import NotARepositoryError, Worktree

__all__ = ["MAX_BYTES", "MAX_FILES", "OutsideCode", "directory_digest", "outside_code"]


@dataclass
class OutsideCode:
    """The facets of code outside the repository (``editable:<name>``, ``loose:<name>``) and
    the reasons (``problems``) some of it could not be digested."""

    facets: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def outside_code(
    root: Path, ignore_distributions: Iterable[str] = (), path: Iterable[str] | None = None
) -> OutsideCode:
    """Return the facets of the editable installs, loose site-packages files and other
    ``sys.path`` entries Python can import from, for the repository whose worktree top is
    ``root`` (see the module's docstring); ``path`` is ``sys.path`` as the session began
    (default: :data:`sys.path`).

    Raises nothing: what cannot be read is a problem in the result.
    """
    found = OutsideCode()
    ignored = {canonical_name(name) for name in ignore_distributions}
    top = Path(os.path.realpath(root))
    listed: dict[Path, set[str]] = {}
    real: dict[str, Path] = {}
    covered: list[Path] = []  # digested here (or left out on purpose): not again by sys.path
    for dist in importlib.metadata.distributions():
        try:
            where = str(dist.locate_file(""))
            location = real.get(where) or real.setdefault(where, Path(os.path.realpath(where)))
            listed.setdefault(location, set()).update(_listed_names(dist))
            source = _editable_source(dist)
            if source is None:
                continue
            covered.append(source)
            name = _name(dist)
            if name is None or name in ignored or f"editable:{name}" in found.facets:
                continue
            found.facets[f"editable:{name}"] = directory_digest(source, top)
        except Undigestable as error:
            found.problems.append(str(error))
        except (OSError, ValueError) as error:
            found.problems.append(f"cannot read an installed distribution: {error}")
    for site in _site_directories(listed):
        covered.append(site)
        try:
            _loose(site, listed.get(site, set()), top, found, covered)
        except Undigestable as error:
            found.problems.append(str(error))
        except OSError as error:
            found.problems.append(f"cannot list {site}: {error}")
    facets, problems = search_path_facets(list(sys.path if path is None else path), top, covered)
    found.facets.update(facets)
    found.problems.extend(problems)
    return found


def _site_directories(listed: dict[Path, set[str]]) -> list[Path]:
    """The ``site-packages`` directories on :data:`sys.path`: those holding distributions,
    and the interpreter's own ``purelib``/``platlib``."""
    paths = sysconfig.get_paths()
    candidates = {Path(os.path.realpath(paths[key])) for key in ("purelib", "platlib")}
    candidates.update(listed)
    on_path = {Path(os.path.realpath(entry)) for entry in sys.path if entry}
    return sorted(site for site in candidates if site in on_path and site.is_dir())


def _listed_names(dist: importlib.metadata.Distribution) -> set[str]:
    """The first path component of every file the distribution's ``RECORD`` lists, and its
    metadata directory; ``top_level.txt`` names when there is no ``RECORD``."""
    names: set[str] = set()
    path = getattr(dist, "_path", None)
    if isinstance(path, Path):
        names.add(path.name)
    text = dist.read_text("RECORD")
    if text is not None:
        # The path is the first CSV field, quoted only when it holds a comma or a quote.
        lines = text.replace("\\", "/").splitlines()
        names.update(line.partition("/")[0].partition(",")[0] for line in lines if line[:1] != '"')
        for row in csv.reader(line for line in lines if line[:1] == '"'):
            names.add(row[0].split("/", 1)[0])
        return names
    for name in (dist.read_text("top_level.txt") or "").split():
        names.update((name, f"{name}.py"))
    return names


def _editable_source(dist: importlib.metadata.Distribution) -> Path | None:
    """The source directory of an editable install (PEP 610), else ``None``."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
        editable = bool(info.get("dir_info", {}).get("editable"))
        url = urlparse(str(info.get("url", "")))
    except (ValueError, AttributeError) as error:
        raise Undigestable(f"cannot read direct_url.json of {_name(dist)}: {error}") from None
    if not editable:
        return None
    if url.scheme != "file":
        raise Undigestable(f"editable install of {_name(dist)} from {url.geturl()}")
    return Path(unquote(url.path))


def _name(dist: importlib.metadata.Distribution) -> str | None:
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = HeaderParser().parsestr(text.split("\n\n", 1)[0])["Name"]
    return canonical_name(str(name)) if name else None


def _loose(
    site: Path, listed: set[str], top: Path, found: OutsideCode, covered: list[Path]
) -> None:
    for entry in sorted(os.scandir(site), key=lambda e: e.name):
        name = entry.name
        if name in listed or name == "__pycache__" or name.endswith((".dist-info", ".egg-info")):
            continue
        path = Path(entry.path)
        if entry.is_dir():
            found.facets[f"loose:{name}"] = directory_digest(path, top)
            continue
        content = _read(path)
        found.facets[f"loose:{name}"] = hashlib.sha256(content).hexdigest()
        if name.endswith(".pth"):
            for directory in _pth_directories(site, content):
                covered.append(directory)
                found.facets[f"loose:{name}:{directory}"] = directory_digest(directory, top)


def _pth_directories(site: Path, content: bytes) -> list[Path]:
    """The existing directories a ``.pth`` file adds to :data:`sys.path` (``site``'s rule:
    one path per line, ``#`` comments and ``import`` lines aside)."""
    found = []
    for line in content.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "import ", "import\t")):
            continue
        directory = Path(os.path.realpath(site / line))
        if directory.is_dir():
            found.append(directory)
    return found


def directory_digest(directory: Path, top: Path) -> str | None:
    """Return the content identity of ``directory``: ``None`` when it lies inside ``top`` (the
    repository: its files are inputs), ``"git <tree OID>"`` when it lies in a git worktree
    (what ``git add -A && git write-tree`` would give it), else ``"files <SHA-256>"`` over the
    path and content of each file below it (see the module's docstring for what is left out).

    Raises :class:`Undigestable` when it cannot be read or is too large.
    """
    real = Path(os.path.realpath(directory))
    if real == top or real.is_relative_to(top):
        return None
    if not real.is_dir():
        return "absent"
    try:
        worktree = Worktree.discover(real)
        rel = worktree.relpath(real)
        entry = worktree.entry(rel)
        # git keeps a symlink as its link text and a submodule as its commit; Python reads
        # through both, so a directory holding either is digested from disk.
        below = [*worktree.links, *worktree.repository.listall_submodules()]
        if not any(not rel or path == rel or path.startswith(f"{rel}/") for path in below):
            return f"git {entry.mode} {entry.oid}"
    except NotARepositoryError:
        pass
    except (pygit2.GitError, OSError, ValueError) as error:
        raise Undigestable(f"cannot digest {real} with git: {error}") from None
    return "files " + _files_digest(real)


def _files_digest(directory: Path) -> str:
    hasher = hashlib.sha256()
    count = size = 0
    # Symlinked directories are followed (Python imports through them), each real one once.
    for current, _, dirs, files in walk_code(directory, hasher):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
        for name in sorted(files):
            path = Path(current, name)
            content = _read(path)
            count += 1
            size += len(content)
            if count > MAX_FILES or size > MAX_BYTES:
                raise Undigestable(
                    f"{directory} is too large to digest (more than {MAX_FILES} files or "
                    f"{MAX_BYTES // 2**20} MiB)"
                )
            relative = path.relative_to(directory).as_posix()
            hasher.update(encode(f"{relative}\0{len(content)}\0"))
            hasher.update(content)
    return hasher.hexdigest()
