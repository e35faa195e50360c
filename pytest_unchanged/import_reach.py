"""Submodules reached through a package's module object, not through an import statement.

Importing ``pkg.sub`` anywhere binds ``sub`` as an attribute of the module object ``pkg``
(the import system's ``setattr(parent, child, module)``, see :mod:`importlib._bootstrap`).
So a file that only does ``import pkg`` can call ``pkg.sub.f()`` once any other code imported
``pkg.sub`` first: another test module, a conftest, a plugin. pytest imports every test module
of a session before the first test runs, so this works in a whole run and fails only when the
test runs alone; and an edit of ``pkg/sub.py`` changes the test's outcome while no import the
test makes names it (adversarial review of issue 10, round 4).

The static closure (:meth:`.imports.ImportGraph.closure`) therefore also takes every submodule
of a package it holds whose name the closure's code uses where a module object's attribute can
be read, until nothing new is found:

* an attribute read anywhere (``x.sub``, on any object: the object may be the package, under
  any alias or handed through any call);
* a dotted name in a string (``"pkg.sub.f"``), a name given to ``getattr``, ``hasattr``,
  ``setattr``, ``delattr`` or ``operator.attrgetter`` (``getattr(pkg, "sub")``);
* a bare name in the package's own ``__init__`` (its globals are the package's attributes:
  ``sub.f()``), or in a file that star-imports from a package (``from pkg import *`` binds
  the submodules loaded then, when ``pkg`` has no ``__all__``).

The packages are the directories holding the closure's files (a test module's own package, the
packages of every module imported) and the namespace packages it imports. This is more than
Python would reach (an attribute ``.sub`` of an unrelated object counts), never less - except for
names computed at run time (``getattr(pkg, name)``, ``vars(pkg)``), which README "Limits" lists
with the other names reached by a string.
"""

from __future__ import annotations

import os
from collections.abc import Set
from pathlib import Path
from typing import Protocol

from .import_outside import Found
from .import_refs import Parsed
from .worktree import Worktree

__all__ = ["reached"]


class ImportGraph(Protocol):
    """What :func:`reached` needs of :class:`.imports.ImportGraph` (which imports this module)."""

    worktree: Worktree
    listings: dict[Path, frozenset[str]]

    def parsed_of(self, rel: str) -> Parsed: ...

    def namespaces_of(self, rel: str) -> frozenset[Path]: ...

    def find(self, files: set[str], locations: list[Path], name: str) -> list[Found]: ...


_INIT = ("__init__.py", "__init__.pyc", "__init__.pyi")


def reached(graph: ImportGraph, files: set[str]) -> set[str]:
    """Return the worktree files of the submodules that the code of ``files`` (relative paths
    in the worktree) can reach as attributes of a package's module object (see the module
    docstring); those already in ``files`` are included too.

    Directories that cannot be listed hold nothing (an import from them fails the same way).
    """
    root = graph.worktree.root
    attributes: set[str] = set()
    namespaces: set[Path] = set()
    directories: set[str] = set()  # relative, strings: cheaper than paths
    found: set[str] = set()
    for rel in files:
        parsed = graph.parsed_of(rel)
        attributes |= parsed.attributes
        if any("*" in ref.names for ref in parsed.refs):
            attributes |= parsed.names
        namespaces |= graph.namespaces_of(rel)
        directory, _, name = rel.rpartition("/")
        if name.startswith(_INIT) and parsed.names:
            _take(graph, found, root / directory, parsed.names)
        while directory and directory not in directories:
            directories.add(directory)
            directory = directory.rpartition("/")[0]
    packages = {root / directory for directory in directories}
    packages.update(n for n in namespaces if n.is_relative_to(root))
    pending = list(packages)
    while pending:
        for namespace in _take(graph, found, pending.pop(), attributes):
            if namespace not in packages and namespace.is_relative_to(root):
                packages.add(namespace)
                pending.append(namespace)
    return found


def _take(graph: ImportGraph, found: set[str], directory: Path, names: Set[str]) -> list[Path]:
    """Add to ``found`` the files of the submodules named in ``names`` that ``directory`` holds,
    found as Python's path-based finder finds them (:meth:`.imports.ImportGraph.find`); return
    the directories of the namespace packages among them."""
    listing = graph.listings.get(directory)
    if listing is None:
        try:
            entries = os.listdir(directory)
        except OSError:
            entries = []
        listing = graph.listings[directory] = frozenset(e.partition(".")[0] for e in entries)
    namespaces: list[Path] = []
    for name in listing.intersection(names):
        if name.isidentifier():
            for origin, below in graph.find(found, [directory], name):
                if origin is None:
                    namespaces.extend(below)
    return namespaces
