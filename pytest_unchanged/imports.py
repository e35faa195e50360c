"""Inputs inferred from imports: the repository modules a test module imports, found statically.

With the ini value ``unchanged_default = imports``, an item with no ``depends_on`` mark has as
inputs its test module, its ``conftest.py`` files, and the transitive closure of the repository
modules they import. Imports are read from the syntax tree, never by importing:

* ``import a.b`` and ``from a.b import c`` anywhere in a module (top level, functions, classes,
  ``if``/``try`` blocks, ``if TYPE_CHECKING:`` too); ``from a import b`` also counts ``a/b.py``
  when ``b`` is a submodule;
* relative imports (``from . import x``, ``from ..pkg import y``), resolved from the file's
  package (PEP 328), in every portion of a namespace package;
* calls with a constant string: ``importlib.import_module("a.b")``, ``__import__("a")``, and
  the constant strings of a ``pytest_plugins`` assignment.

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

Dynamic imports (a computed module name, ``exec``, plugins found through entry points) cannot be
seen; ``--unchanged-audit`` shows what a test really imports and opens.

The imports of a file are memoised per blob OID, so identical files are parsed once.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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

from .worktree import ABSENT, Worktree

__all__ = [
    "ImportGraph",
    "ImportRef",
    "load_parsed",
    "parse_imports",
    "save_parsed",
    "search_roots",
]

_IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})

# The loaders of Python's default path hook, in its order (importlib._bootstrap_external.
# _get_supported_file_loaders): extension modules, then source, then bytecode.
_LOADERS = (
    (ExtensionFileLoader, EXTENSION_SUFFIXES),
    (SourceFileLoader, SOURCE_SUFFIXES),
    (SourcelessFileLoader, BYTECODE_SUFFIXES),
)
_ALL_SUFFIXES = (*EXTENSION_SUFFIXES, *SOURCE_SUFFIXES, *BYTECODE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One import statement's target.

    ``module`` is the dotted name after the dots (``""`` for ``from . import x``); ``level`` the
    number of leading dots (0 for an absolute import); ``names`` the names of a
    ``from ... import`` (each may be a submodule), empty for ``import a.b``.
    """

    module: str
    level: int = 0
    names: tuple[str, ...] = ()


def parse_imports(source: bytes) -> tuple[ImportRef, ...]:
    """Return the imports found in the Python ``source`` (in no particular order).

    A file that does not parse (a syntax error, null bytes) has no imports: importing it fails,
    so no test that needs it can pass and be recorded.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    found: list[ImportRef] = []
    # Import statements are statements: unless a call may import, expressions need no visit.
    dynamic = b"import_module" in source or b"__import__" in source
    for node in ast.walk(tree) if dynamic else _statements(tree):
        if isinstance(node, ast.Import):
            found.extend(ImportRef(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            found.append(ImportRef(node.module or "", node.level, names))
        elif isinstance(node, ast.Call) and _called_name(node.func) in _IMPORT_FUNCTIONS:
            found.extend(ImportRef(text) for text in _constant_strings(_first(node.args)))
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets):
                found.extend(ImportRef(text) for text in _constant_strings(node.value))
    return tuple(found)


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Every statement of ``tree``, at any depth (bodies of functions, classes, blocks)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if isinstance(children, list):
                pending.extend(children)


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _constant_strings(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [text for element in node.elts for text in _constant_strings(element)]
    return []


def _first(args: list[ast.expr]) -> ast.expr | None:
    return args[0] if args else None


def load_parsed(path: Path) -> dict[str, tuple[ImportRef, ...]]:
    """Return the imports by blob OID saved at ``path`` by :func:`save_parsed`.

    A missing or unreadable file gives an empty mapping: it is only a cache.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            oid: tuple(ImportRef(m, int(level), tuple(names)) for m, level, names in refs)
            for oid, refs in data.items()
        }
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_parsed(path: Path, parsed: dict[str, tuple[ImportRef, ...]]) -> None:
    """Write ``parsed`` (imports by blob OID) to ``path`` as JSON, atomically (write, rename)."""
    data = {oid: [[r.module, r.level, list(r.names)] for r in refs] for oid, refs in parsed.items()}
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


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
    """The repository modules files import, and their transitive closure.

    ``worktree`` gives blob OIDs (the parse memo key) and relative paths; ``roots`` are the
    directories absolute imports are looked up in (see :func:`search_roots`). Paths in and out
    are relative to the repository's top, POSIX style.
    """

    def __init__(
        self,
        worktree: Worktree,
        roots: Iterable[Path],
        parsed: dict[str, tuple[ImportRef, ...]] | None = None,
    ) -> None:
        self.worktree = worktree
        self.roots = list(roots)
        self.parsed = {} if parsed is None else parsed
        """Imports by blob OID; pass one loaded with :func:`load_parsed` to skip parsing."""
        self.used: set[str] = set()
        """The blob OIDs looked up: what is worth saving for the next session."""
        self._direct: dict[str, tuple[str, ...]] = {}
        self._finders: dict[Path, FileFinder] = {}

    def imports_of(self, rel: str) -> tuple[ImportRef, ...]:
        """Return the imports in the file ``rel``, parsed once per blob OID (none when absent)."""
        entry = self.worktree.entry(rel)
        if entry is ABSENT or entry.is_tree:
            return ()
        self.used.add(entry.oid)
        cached = self.parsed.get(entry.oid)
        if cached is None:
            try:
                source = (self.worktree.root / rel).read_bytes()
            except OSError:
                source = b""
            cached = self.parsed[entry.oid] = parse_imports(source)
        return cached

    def direct(self, rel: str) -> tuple[str, ...]:
        """Return the repository files the file ``rel`` imports directly, sorted."""
        cached = self._direct.get(rel)
        if cached is None:
            found: set[str] = set()
            anchor = (self.worktree.root / rel).parent
            for ref in self.imports_of(rel):
                found.update(self._resolve(ref, anchor))
            # Importing a module of a package runs the package's __init__.py files first.
            package = anchor
            while package != self.worktree.root and self._add(found, package / "__init__.py"):
                package = package.parent
            found.discard(rel)
            cached = self._direct[rel] = tuple(sorted(found))
        return cached

    def closure(self, start: Iterable[str]) -> list[str]:
        """Return the files ``start`` import directly or transitively, ``start`` excluded."""
        start = list(start)
        seen = set(start)
        pending = list(start)
        while pending:
            for found in self.direct(pending.pop()):
                if found not in seen:
                    seen.add(found)
                    pending.append(found)
        return sorted(seen.difference(start))

    def _resolve(self, ref: ImportRef, anchor: Path) -> set[str]:
        parts = [p for p in ref.module.split(".") if p]
        files: set[str] = set()
        if ref.level:
            # PEP 328: one leading dot is the importing module's package, each further dot one
            # package up; the package's __init__ runs, and its __path__ is searched.
            base = anchor
            for _ in range(ref.level - 1):
                base = base.parent
            self._add(files, base / "__init__.py")
            locations = self._package_path(base)
        else:
            locations = self.roots
        self._module_files(files, locations, parts, ref.names)
        return files

    def _module_files(
        self, files: set[str], locations: list[Path], parts: list[str], names: tuple[str, ...]
    ) -> None:
        """Add to ``files`` what importing ``parts`` (then ``names`` from it) from the search
        ``locations`` runs: each package's ``__init__`` and the module itself."""
        for part in parts:
            locations = self._find(files, locations, part)
            if not locations:
                return  # not found, or a plain module: nothing below it to import
        for name in names:
            # `from pkg import name`: name may be a submodule (or just an attribute).
            self._find(files, locations, name)

    def _find(self, files: set[str], locations: list[Path], name: str) -> list[Path]:
        """Look ``name`` up in each of ``locations`` as Python's path-based finder would, add
        the file of every regular module or package found, and return the search locations of
        what was found (its ``__path__``: the package directory, or every namespace portion).

        Within one location, :class:`importlib.machinery.FileFinder` itself decides (a
        package directory with an ``__init__`` before a module file ``name.py``, a module
        file before a namespace portion; the suffixes in ``importlib.machinery``'s order:
        extension modules, source, bytecode); it only lists directories and never imports.
        Across locations every match counts, not only the first: ``sys.path`` when a module
        was imported is not ``sys.path`` now (pytest's ``prepend`` import mode inserts a
        directory per test module), so a name found in two roots keeps both as inputs.
        """
        below: list[Path] = []
        for location in locations:
            spec = self._finder(location).find_spec(name)
            if spec is None:
                continue
            if spec.origin and spec.has_location:
                self._add(files, Path(spec.origin))
            below.extend(Path(p) for p in spec.submodule_search_locations or ())
        return below

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
