"""Inputs inferred from imports: the repository modules a test module imports, found statically.

With the ini value ``unchanged_default = imports``, an item with no ``depends_on`` mark has as
inputs its test module, its ``conftest.py`` files, and the transitive closure of the repository
modules they import. Imports are read from the syntax tree, never by importing:

* ``import a.b`` and ``from a.b import c`` anywhere in a module; ``from a import b`` also
  counts ``a/b.py`` when ``b`` is a submodule, ``from a import *`` the submodules ``a``'s
  ``__all__`` names;
* relative imports (``from . import x``, ``from ..pkg import y``), resolved from the file's
  package (PEP 328), in every portion of a namespace package;
* imports written as strings, doctest examples, ``pytest_plugins`` (see :mod:`.import_syntax`).

Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py``: they are inputs too, and so
are the ``__init__.py`` files of the packages a test module itself lives in. Each name is found
in a directory as Python's path-based finder finds it (:class:`importlib.machinery.FileFinder`,
asked without importing: a package ``a/b/__init__.py`` before a module ``a/b.py``, a module
before a namespace package, a namespace package's submodules in all its portions). A name
is looked up in every search root (the rootdir, its ``src/``, every ``sys.path`` entry inside the
repository, the directory pytest inserts for the module); every match counts, so a name that
resolves in two places makes both inputs (more runs, never a false skip): ``sys.path`` when a
module was imported is not ``sys.path`` when the keys are computed. Modules outside the
repository (the standard library, installed distributions) are not inputs: installed
distributions are environment facets already.

When the closure cannot be sure, :meth:`ImportGraph.doubt` says why and the resolver falls back
to the whole worktree: a file's own doubts (a computed import, ``sys.path`` changed: see
:mod:`.import_syntax`), a module name found neither in a root nor outside the worktree (see
:mod:`.import_outside`), a star import of a package whose ``__all__`` is computed, a compiled
module in the worktree, a name a namespace package does not hold, and for every file a
``sys.path`` entry in the worktree that is a file (a zip archive on ``pythonpath``: what it
holds cannot be listed like a directory, and may shadow a module of the worktree).

The imports of a file are memoised per blob OID, so identical files are parsed once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from pathlib import Path

import pygit2

from .import_outside import INSTALLED, NOWHERE, Found, Outside
from .import_reach import reached
from .import_refs import PLUGIN, STRICT, TARGET, ImportRef, Parsed, load_parsed, save_parsed
from .import_syntax import parse_file
from .worktree import ABSENT, Worktree

__all__ = [
    "ImportGraph",
    "ImportRef",
    "Parsed",
    "load_parsed",
    "parse_imports",
    "save_parsed",
    "search_roots",
]

# The loaders of Python's default path hook, in its order (importlib._bootstrap_external.
# _get_supported_file_loaders): extension modules, then source, then bytecode.
NOWHERE_DOUBTS = ("found neither in the worktree nor installed", "found nowhere")
"""How a doubt about a name found nowhere ends (see :meth:`ImportGraph.doubt`)."""

_LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)
_ALL_SUFFIXES = (*EXTENSION_SUFFIXES, *SOURCE_SUFFIXES, *BYTECODE_SUFFIXES)
_COMPILED = (*EXTENSION_SUFFIXES, *BYTECODE_SUFFIXES)


def parse_imports(source: bytes) -> tuple[ImportRef, ...]:
    """Return the imports found in the Python ``source`` (see :func:`.import_syntax.parse_file`)."""
    return parse_file(source).refs


def search_roots(worktree: Worktree, rootdir: Path, path: Sequence[str] = ()) -> list[Path]:
    """Return the directories absolute imports are looked up in, all inside the repository.

    They are ``rootdir``, ``rootdir/src`` when it exists, and the entries of ``path`` (by
    default :data:`sys.path`; ``""`` is the current directory) that lie inside the worktree,
    without duplicates, in that order. Directories git ignores and ``site-packages``
    directories (a virtualenv inside the repository) are left out: what is installed there is
    an environment facet.
    """
    candidates = [rootdir, rootdir / "src", *(Path(p or os.getcwd()) for p in path or sys.path)]
    roots: list[Path] = []
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved in roots or not resolved.is_dir():
            continue
        try:
            rel = worktree.relpath(resolved)
        except ValueError:
            continue
        parts = rel.split("/")
        if "site-packages" in parts or "dist-packages" in parts:
            continue
        if rel and worktree.repository.path_is_ignored(rel + "/"):
            continue
        roots.append(resolved)
    return roots


class ImportGraph:
    """The repository modules files import, their transitive closure, and the doubts about it.

    ``worktree`` gives blob OIDs (the parse memo key) and relative paths; ``roots`` are the
    directories absolute imports are looked up in (see :func:`search_roots`); ``path`` is the
    ``sys.path`` whose other entries hold what is installed (a name found only there is not an
    input). Paths in and out are relative to the repository's top, POSIX style.
    """

    def __init__(
        self,
        worktree: Worktree,
        roots: Iterable[Path],
        parsed: dict[str, Parsed] | None = None,
        path: Sequence[str] | None = None,
    ) -> None:
        self.worktree = worktree
        self.roots = list(roots)
        self.parsed = {} if parsed is None else parsed
        """Parsed files by blob OID; pass one loaded with :func:`load_parsed` to skip parsing."""
        self.used: set[str] = set()
        """The blob OIDs looked up: what is worth saving for the next session."""
        entries = (Path(p or os.getcwd()).resolve() for p in (sys.path if path is None else path))
        outside = [str(p) for p in dict.fromkeys(entries) if p not in self.roots]
        self.outside = Outside(worktree, outside)
        self.root_doubt = _file_root(worktree, outside)
        """Why no closure can be known: an import root in the worktree that is a file."""
        self._direct: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._finders: dict[Path, FileFinder] = {}
        self._namespaces: dict[str, frozenset[Path]] = {}
        self.listings: dict[Path, frozenset[str]] = {}
        """Module names in a directory (file names up to their first dot), by directory."""

    def parsed_of(self, rel: str) -> Parsed:
        """Return what the file ``rel`` imports, parsed once per blob OID (nothing when absent).

        A file that is not Python source (a doctest text file) is read as doctest examples.
        """
        entry = self.worktree.entry(rel)
        if entry is ABSENT or entry.is_tree:
            return Parsed()
        text = not rel.endswith(tuple(SOURCE_SUFFIXES))
        memo = f"{entry.oid}:text" if text else entry.oid
        cached = self.parsed.get(memo)
        if cached is None:
            try:
                source = (self.worktree.root / rel).read_bytes()
            except OSError:
                source = b""
            cached = parse_file(source, text=text)
            if str(pygit2.hash(source)) != entry.oid:
                return cached  # not that blob's bytes (edited since, a symlink): not memoised
            self.parsed[memo] = cached
        self.used.add(memo)
        return cached

    def imports_of(self, rel: str) -> tuple[ImportRef, ...]:
        """Return the imports in the file ``rel`` (none when absent)."""
        return self.parsed_of(rel).refs

    def direct(self, rel: str) -> tuple[str, ...]:
        """Return the repository files the file ``rel`` imports directly, sorted."""
        return self._read(rel)[0]

    def doubts_of(self, rel: str) -> tuple[str, ...]:
        """Return why the imports of the file ``rel`` cannot be known statically: a computed
        import, ``sys.path`` changed, a name found nowhere... (empty: they are known)."""
        return self._read(rel)[1]

    def namespaces_of(self, rel: str) -> frozenset[Path]:
        """Return the directories of the namespace packages the file ``rel`` imports."""
        self._read(rel)
        return self._namespaces.get(rel, frozenset())

    def _read(self, rel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        cached = self._direct.get(rel)
        if cached is None:
            found: set[str] = set()
            anchor = (self.worktree.root / rel).parent
            namespaces: set[Path] = set()
            if rel.endswith(_COMPILED):
                doubts = ["a compiled module: its imports cannot be read"]
            else:
                parsed = self.parsed_of(rel)
                doubts = list(parsed.doubts)
                for ref in parsed.refs:
                    found.update(self._resolve(ref, anchor, doubts, namespaces))
            if namespaces:
                self._namespaces[rel] = frozenset(namespaces)
            # Importing a module of a package runs the package's __init__.py files first.
            package = anchor
            while package != self.worktree.root and self._add(found, package / "__init__.py"):
                package = package.parent
            found.discard(rel)
            cached = self._direct[rel] = (tuple(sorted(found)), tuple(dict.fromkeys(doubts)))
        return cached

    def closure(self, start: Iterable[str]) -> list[str]:
        """Return the files ``start`` import directly or transitively, ``start`` excluded."""
        start = list(start)
        seen = set(start)
        pending = list(start)
        while pending:
            while pending:
                for found in self.direct(pending.pop()):
                    if found not in seen:
                        seen.add(found)
                        pending.append(found)
            # A package's module object holds the submodules anyone imported: pkg.sub.
            pending = sorted(reached(self, seen) - seen)
            seen.update(pending)
        return sorted(seen.difference(start))

    def doubt(self, files: Iterable[str], nowhere: bool = True) -> str | None:
        """Return the first doubt (``path: reason``) about the imports of ``files``, if any.

        ``nowhere=False`` leaves out names found nowhere (:data:`NOWHERE_DOUBTS`): a caller that
        derives the closure again each time finds such a module once it exists.
        """
        if self.root_doubt is not None:
            return self.root_doubt
        for rel in sorted(files):
            doubts = [d for d in self.doubts_of(rel) if nowhere or not d.endswith(NOWHERE_DOUBTS)]
            if doubts:
                return f"{rel}: {doubts[0]}"
        return None

    def _resolve(
        self, ref: ImportRef, anchor: Path, doubts: list[str], namespaces: set[Path]
    ) -> set[str]:
        parts = [p for p in ref.module.split(".") if p]
        files: set[str] = set()
        if ref.level:
            # PEP 328: one leading dot is the importing module's package, each further dot one
            # package up; the package's __init__ runs, and its __path__ is searched.
            base = anchor
            for _ in range(ref.level - 1):
                base = base.parent
            init = base / "__init__.py"
            self._add(files, init)
            found: list[Found] = [(init if init.is_file() else None, self._package_path(base))]
            if not init.is_file():
                namespaces.update(found[0][1])
        else:
            found = [(None, self.roots)]
        dotted = "." * ref.level
        for index, part in enumerate(parts):
            dotted += ("." if index else "") + part
            locations = [p for _, below in found for p in below]
            found = self.find(files, locations, part)
            namespaces.update(p for origin, below in found if origin is None for p in below)
            if not found and index == 0 and not ref.level:
                elsewhere = self.outside.find(part, ref.kind)
                if elsewhere == INSTALLED:
                    return files  # the standard library, or installed: an environment facet
                if elsewhere != NOWHERE:
                    origin, below = elsewhere
                    if origin is not None:
                        self._add(files, origin)
                    found = [(origin, below)]
            if not found:
                if ref.kind in (STRICT, PLUGIN) or (ref.kind == TARGET and index == 0):
                    doubts.append(f"import {dotted}: {NOWHERE_DOUBTS[0]}")
                return files
        packages = [f for f in found if f[1]]
        if not packages:
            return files  # a plain module: the names are its attributes
        locations = [p for _, below in packages for p in below]
        for name in ref.names:
            if name == "*":
                self._star(files, packages, locations, dotted, doubts)
            elif (
                not self.find(files, locations, name)
                and ref.kind == STRICT
                and all(origin is None for origin, _ in packages)
            ):
                # A namespace package defines no names: only a submodule can be imported, and
                # one may appear in a portion outside the roots.
                doubts.append(f"from {dotted or '.'} import {name}: {NOWHERE_DOUBTS[1]}")
        return files

    def _star(
        self,
        files: set[str],
        packages: list[Found],
        locations: list[Path],
        dotted: str,
        doubts: list[str],
    ) -> None:
        """``from package import *`` imports the submodules its ``__all__`` names."""
        for origin, _ in packages:
            if origin is None:
                continue  # a namespace package has no __all__
            try:
                rel = self.worktree.relpath(origin)
            except ValueError:
                continue
            parsed = self.parsed_of(rel)
            if not parsed.exports_known:
                doubts.append(f"from {dotted or '.'} import *: its __all__ is computed")
            for name in parsed.exports or ():
                self.find(files, locations, name)

    def find(self, files: set[str], locations: list[Path], name: str) -> list[Found]:
        """Look ``name`` up in each of ``locations`` as Python's path-based finder would, add
        the file of every regular module or package found, and return what was found (its
        file, and its search locations: the package directory, or every namespace portion).

        Within one location, :class:`importlib.machinery.FileFinder` itself decides (a
        package directory with an ``__init__`` before a module file ``name.py``, a module
        file before a namespace portion; the suffixes in ``importlib.machinery``'s order:
        extension modules, source, bytecode); it only lists directories and never imports.
        Across locations every match counts, not only the first: ``sys.path`` when a module
        was imported is not ``sys.path`` now (pytest's ``prepend`` import mode inserts a
        directory per test module), so a name found in two roots keeps both as inputs.
        """
        found: list[Found] = []
        for location in locations:
            spec = self._finder(location).find_spec(name)
            if spec is None:
                continue
            origin = Path(spec.origin) if spec.origin and spec.has_location else None
            if origin is not None:
                self._add(files, origin)
            found.append((origin, [Path(p) for p in spec.submodule_search_locations or ()]))
        return found

    def _finder(self, directory: Path) -> FileFinder:
        finder = self._finders.get(directory)
        if finder is None:
            # A new finder per session: sys.path_importer_cache's may hold a stale listing.
            finder = self._finders[directory] = FileFinder(str(directory), *_LOADERS)
        return finder

    def _package_path(self, base: Path) -> list[Path]:
        """The ``__path__`` of the package in directory ``base``: ``base`` itself, and for a
        namespace package (no ``__init__``) the same directory under every other root."""
        if any((base / f"__init__{suffix}").is_file() for suffix in _ALL_SUFFIXES):
            return [base]
        found = [base]
        for root in self.roots:
            if base.is_relative_to(root) and base != root:
                relative = base.relative_to(root)
                found.extend(other / relative for other in self.roots if other != root)
        return list(dict.fromkeys(p for p in found if p.is_dir()))

    def _add(self, files: set[str], candidate: Path) -> bool:
        if not candidate.is_file():
            return False
        try:
            files.add(self.worktree.relpath(candidate))
        except ValueError:
            return False
        return True


def _file_root(worktree: Worktree, entries: Iterable[str]) -> str | None:
    """The doubt (``path: reason``) about the first of the ``sys.path`` ``entries`` that lies
    in the worktree and is a file (a zip archive, an egg): Python imports from it through
    :mod:`zipimport`, but :class:`~importlib.machinery.FileFinder` cannot list it, so a module
    in it would not be found, or a same-named module elsewhere taken in its place."""
    for entry in entries:
        if not os.path.isfile(entry):
            continue
        try:
            rel = worktree.relpath(entry)
        except ValueError:
            continue
        return f"{rel}: an import root that is a file (a zip archive?): its modules are not read"
    return None
