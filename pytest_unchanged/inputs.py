"""The inputs of a test item: its ``depends_on`` marks, implicit inputs, defaults, environment.

Nothing here imports pytest's internals beyond the item's public attributes: ``item.path``,
``item.iter_markers`` and ``item.nodeid``.
"""

from __future__ import annotations

import contextlib
import glob as globmod
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .imports import ImportGraph, ImportRef, search_roots
from .keys import canonical_json, digest
from .worktree import ABSENT, Worktree

if TYPE_CHECKING:
    import pytest
    from _pytest.nodes import Node

__all__ = [
    "DEPENDS_ON",
    "InputError",
    "ItemInputs",
    "Resolver",
]

DEPENDS_ON = "depends_on"
ALWAYS_RUN = "always_run"
_MARK_NAMES = frozenset({DEPENDS_ON, ALWAYS_RUN})
IMPORTS = "imports"
"""In ``unchanged_default``: the test module's static import closure (see :mod:`.imports`)."""


class InputError(Exception):
    """A ``depends_on`` argument that cannot be read; the message names it and says why."""


def _depends_on(*paths: str | os.PathLike[str]) -> tuple[str | os.PathLike[str], ...]:
    """The signature of ``@pytest.mark.depends_on``, called with a mark's arguments."""
    return paths


@dataclass(frozen=True, slots=True)
class ItemInputs:
    """What an item's key is made of, or why it cannot have one.

    ``manifest`` holds the sorted ``(path, mode, OID)`` triples; ``inputs_id`` is their digest
    and ``body`` their canonical JSON. ``unkeyable`` is a reason the item must always run (an
    ``always_run`` mark, a declared path that matches nothing, a dirty submodule...), and
    ``missing`` lists declared paths that matched nothing. ``specs`` are the arguments the
    manifest was expanded from (global inputs, then the declared or default paths and globs):
    expanding them again finds new matches of a glob without importing the test module.
    """

    manifest: tuple[tuple[str, str, str], ...]
    inputs_id: str
    body: str
    unkeyable: str | None = None
    missing: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()


@dataclass
class Resolver:
    """Turns an item's marks into :class:`ItemInputs`, memoising per module and mark set.

    ``rootdir`` is pytest's rootdir (mark arguments are relative to it); ``config_file`` the
    pytest configuration file, if any; ``global_inputs`` and ``default`` the ini lists
    ``unchanged_inputs`` and ``unchanged_default``; ``import_path`` the ``sys.path`` the
    inferred imports are looked up in (taken when the session began; ``None``: the current one).
    """

    worktree: Worktree
    rootdir: Path
    config_file: Path | None = None
    global_inputs: Sequence[str] = ()
    default: Sequence[str] = (".",)
    _paths: dict[str, list[str]] = field(default_factory=dict)
    _implicit: dict[Path, list[str]] = field(default_factory=dict)
    _memo: dict[tuple[Path, tuple[str, ...]], ItemInputs] = field(default_factory=dict)
    _node_marks: dict[object, tuple[pytest.Mark, ...]] = field(default_factory=dict)
    import_path: Sequence[str] | None = None
    _graphs: dict[tuple[Path, ...], ImportGraph] = field(default_factory=dict)
    _parsed: dict[str, tuple[ImportRef, ...]] = field(default_factory=dict)
    _last_marks: tuple[pytest.Item, tuple[pytest.Mark, ...]] | None = None
    _mark_args: dict[int, tuple[pytest.Mark, list[str]]] = field(default_factory=dict)

    def marks(self, item: pytest.Item) -> tuple[pytest.Mark, ...]:
        """Return the ``depends_on`` and ``always_run`` marks of ``item``, closest first.

        The same marks as ``item.iter_markers(name)`` (the item's ``own_markers``, then each
        parent's), with each collector's part computed once however many items it holds.
        """
        last = self._last_marks
        if last is not None and last[0] is item:
            return last[1]  # declared() and item_inputs() ask in turn for the same item
        own = tuple(m for m in item.own_markers if m.name in _MARK_NAMES)
        found = (
            own + self._collector_marks(item.parent) if own else self._collector_marks(item.parent)
        )
        self._last_marks = (item, found)
        return found

    def _collector_marks(self, node: Node | None) -> tuple[pytest.Mark, ...]:
        if node is None:
            return ()
        cached = self._node_marks.get(node)
        if cached is None:
            own = tuple(m for m in node.own_markers if m.name in _MARK_NAMES)
            cached = self._node_marks[node] = own + self._collector_marks(node.parent)
        return cached

    def declared(self, item: pytest.Item, extra: Iterable[str] = ()) -> list[str] | None:
        """Return the ``depends_on`` arguments of ``item`` (all marks, closest first) plus
        ``extra``, or ``None`` when it has no mark.

        Raises :class:`InputError` for a mark with no argument, a keyword argument, or an
        argument that is not a string or path.
        """
        found: list[str] | None = None
        for mark in self.marks(item):
            if mark.name != DEPENDS_ON:
                continue
            found = (found or []) + self._mark_paths(mark)
        extra = list(extra)
        if extra:
            found = (found or []) + extra
        return found

    def _mark_paths(self, mark: pytest.Mark) -> list[str]:
        """The paths of one ``depends_on`` mark, checked once per mark object (the marks of a
        module or class are shared by all its items)."""
        cached = self._mark_args.get(id(mark))
        if cached is not None and cached[0] is mark:
            return cached[1]
        paths = self._check_mark(mark)
        self._mark_args[id(mark)] = (mark, paths)
        return paths

    @staticmethod
    def _check_mark(mark: pytest.Mark) -> list[str]:
        try:
            _depends_on(*mark.args, **mark.kwargs)
        except TypeError as error:
            reason = str(error).replace("_depends_on()", "depends_on()")
            raise InputError(f"depends_on{_call_text(mark.args, mark.kwargs)}: {reason}") from None
        if not mark.args:
            raise InputError("depends_on() needs at least one path")
        for arg in mark.args:
            if not isinstance(arg, str | os.PathLike):
                raise InputError(
                    f"depends_on({arg!r}): arguments must be paths (str), not {type(arg).__name__}"
                )
        return [os.fspath(a) for a in mark.args]

    def item_inputs(self, item: pytest.Item, declared: list[str] | None) -> ItemInputs:
        """Return the inputs of ``item`` whose ``depends_on`` arguments are ``declared``.

        Raises :class:`InputError` for a path outside the repository.
        """
        if any(mark.name == ALWAYS_RUN for mark in self.marks(item)):
            return ItemInputs((), "", "", unkeyable="marked always_run")
        return self.module_inputs(item.path, declared)

    def module_inputs(self, path: Path, declared: Sequence[str] | None) -> ItemInputs:
        """Return the inputs of an item of the test module at ``path`` (absolute) whose
        ``depends_on`` arguments are ``declared`` (``None``: no mark): what :meth:`item_inputs`
        derives without the item itself. The fast path calls it with the arguments a module
        summary stored, so it derives every input exactly as collecting the module would.

        Raises :class:`InputError` for a path outside the repository.
        """
        signature = tuple(declared) if declared is not None else ("\0default",)
        cached = self._memo.get((path, signature))
        if cached is None:
            cached = self._memo[(path, signature)] = self._resolve(
                path, None if declared is None else list(declared)
            )
        return cached

    def _resolve(self, path: Path, declared: list[str] | None) -> ItemInputs:
        try:
            own = self.worktree.relpath(path)
        except ValueError:
            return ItemInputs((), "", "", unkeyable=f"{path} is outside the repository")
        paths = {own, *self._implicit_for(path)}
        missing: list[str] = []
        specs = (*self.global_inputs, *(declared if declared is not None else self.default))
        for arg in specs:
            if arg == IMPORTS:
                paths.update(self._import_closure(paths))
                continue
            matched = self._expand(arg)
            if not matched:
                missing.append(arg)
                continue
            paths.update(matched)
        manifest_list: list[tuple[str, str, str]] = []
        dirty: list[str] = []
        for rel in sorted(paths):
            entry = self.worktree.entry(rel)
            manifest_list.append((rel or ".", entry.mode, entry.oid))
            if entry.dirty:
                dirty.append(rel)
        manifest = tuple(manifest_list)
        body = canonical_json(manifest)
        unkeyable = None
        if missing:
            unkeyable = "depends_on path matches nothing: " + ", ".join(missing)
        elif dirty:
            unkeyable = "submodule with uncommitted changes: " + ", ".join(dirty)
        return ItemInputs(manifest, digest(manifest), body, unkeyable, tuple(missing), specs)

    def _import_closure(self, start: Iterable[str]) -> list[str]:
        """The repository files the existing files in ``start`` import, transitively.

        Names are looked up in ``import_path`` (``sys.path`` when the session began), after the
        directory pytest's import modes insert for each Python file of ``start`` (the first
        directory above it without an ``__init__.py``): never in the ``sys.path`` of the
        moment, which holds the directories of whichever modules were imported so far, so the
        closure of a module is the same whether it is derived at collection or by the fast
        path before anything was imported.
        """
        present = [p for p in start if self.worktree.entry(p) is not ABSENT]
        bases = tuple(
            sorted({_basedir(self.worktree.root / p) for p in present if p.endswith(".py")})
        )
        graph = self._graphs.get(bases)
        if graph is None:
            path = [*map(str, bases), *(sys.path if self.import_path is None else self.import_path)]
            roots = search_roots(self.worktree, self.rootdir, path)
            graph = self._graphs[bases] = ImportGraph(self.worktree, roots, self._parsed)
        return graph.closure(present)

    def _implicit_for(self, path: Path) -> list[str]:
        directory = path.parent
        cached = self._implicit.get(directory)
        if cached is None:
            candidates = [] if self.config_file is None else [self.config_file]
            current = directory
            while True:
                # Missing conftest.py files count as absent: creating one changes the key.
                candidates.append(current / "conftest.py")
                if current == self.rootdir or not current.is_relative_to(self.rootdir):
                    break
                current = current.parent
            found = []
            for candidate in candidates:
                with contextlib.suppress(ValueError):
                    found.append(self.worktree.relpath(candidate))
            cached = self._implicit[directory] = found
        return cached

    def manifest_of(self, specs: Iterable[str], paths: Iterable[str]) -> list[tuple[str, str, str]]:
        """Return the sorted ``(path, mode, OID)`` triples of ``paths`` plus what ``specs`` match.

        Raises :class:`InputError` for a spec outside the repository.
        """
        union = {p if p != "." else "" for p in paths}
        for spec in specs:
            union.update(self._expand(spec))
        # describe(): a submodule that became dirty must not match its clean manifest.
        return [
            (rel or ".", entry.mode, entry.describe())
            for rel in sorted(union)
            for entry in (self.worktree.entry(rel),)
        ]

    def _expand(self, arg: str) -> list[str]:
        cached = self._paths.get(arg)
        if cached is not None:
            return cached
        absolute = os.path.normpath(self.rootdir / arg)
        try:
            rel = self.worktree.relpath(absolute)
        except ValueError:
            raise InputError(
                f"depends_on({arg!r}): the path is outside the git repository at "
                f"{self.worktree.root}; declare paths inside it, relative to the rootdir "
                f"{self.rootdir}"
            ) from None
        if globmod.has_magic(arg):
            matched = self.worktree.glob(rel)
        else:
            matched = [rel] if self.worktree.entry(rel) is not ABSENT else []
        self._paths[arg] = matched
        return matched


def _basedir(path: Path) -> Path:
    """The directory pytest's ``prepend`` and ``append`` import modes put on ``sys.path`` for
    the module at ``path``: the first directory above it that is not a package."""
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory


def _call_text(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
