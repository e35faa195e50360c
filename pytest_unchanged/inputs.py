"""The inputs of a test item: its ``depends_on`` marks, implicit inputs, defaults, environment.

The item's public attributes are read here (``item.path``, its marks, ``item.nodeid``); what
pytest and Python loaded for it (conftests, the files defining it) comes from :mod:`.implicit`,
symlink targets from :mod:`.links`.
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

import pygit2

from .ignored_modules import whole_worktree
from .implicit import ConftestFinder, Memo, basedir, defining_files, package_inits
from .imports import ImportGraph, Parsed, search_roots
from .keys import canonical_json, digest
from .links import LinkTargets, system_path
from .worktree import ABSENT, Worktree

if TYPE_CHECKING:
    import pytest
    from _pytest.nodes import Node

__all__ = ["DEPENDS_ON", "InputError", "ItemInputs", "Resolver"]

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
    manifest was expanded from (global inputs, then the declared or default paths and globs,
    then the item-input hook's paths).
    """

    manifest: tuple[tuple[str, str, str], ...]
    inputs_id: str
    body: str
    unkeyable: str | None = None
    missing: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """Why the item cannot be keyed, for an ``UnkeyableInputWarning`` when it runs."""


@dataclass
class Resolver:
    """Turns an item's marks into :class:`ItemInputs`, memoising per module and mark set.

    ``rootdir`` is pytest's rootdir (mark arguments are relative to it); ``config_file`` the
    pytest configuration file, if any; ``global_inputs`` and ``default`` the ini lists
    ``unchanged_inputs`` and ``unchanged_default``; ``import_path`` the ``sys.path`` the
    inferred imports are looked up in (taken when the session began; ``None``: the current one).
    ``plugin_files``: the plugin modules pytest registered (:func:`.implicit.plugin_files`),
    inputs of every item with what they import; ``problem``: why every item must run
    (code outside the repository that cannot be digested, see :mod:`.outside`).
    """

    worktree: Worktree
    rootdir: Path
    config_file: Path | None = None
    global_inputs: Sequence[str] = ()
    default: Sequence[str] = (".",)
    _paths: dict[str, list[str]] = field(default_factory=dict)
    conftests: ConftestFinder | None = None
    _implicit: dict[Path, tuple[list[str], list[str]]] = field(default_factory=dict)
    _memo: dict[tuple[Path, object], ItemInputs] = field(default_factory=dict)
    _defining: Memo = field(default_factory=dict)
    _links: LinkTargets = field(init=False)
    _node_marks: dict[object, tuple[pytest.Mark, ...]] = field(default_factory=dict)
    import_path: Sequence[str] | None = None
    _graphs: dict[tuple[Path, ...], ImportGraph] = field(default_factory=dict)
    parsed: dict[str, Parsed] = field(default_factory=dict)  # by blob OID (.import_memo)
    import_doubts: dict[str, str] = field(default_factory=dict)  # why imports fell back to "."
    _last_marks: tuple[pytest.Item, tuple[pytest.Mark, ...]] | None = None
    _mark_args: dict[int, tuple[pytest.Mark, list[str]]] = field(default_factory=dict)
    plugin_files: Sequence[Path] = ()
    problem: str | None = None
    _plugin_inputs: list[str] | None = None

    def __post_init__(self) -> None:
        self._links = LinkTargets(self.worktree)

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

    def declared(self, item: pytest.Item) -> list[str] | None:
        """Return the ``depends_on`` arguments of ``item`` (all marks, closest first), or
        ``None`` when it has no mark.

        Raises :class:`InputError` for a mark with no argument, a keyword argument, or an
        argument that is not a string or path.
        """
        found: list[str] | None = None
        for mark in self.marks(item):
            if mark.name != DEPENDS_ON:
                continue
            found = (found or []) + self._mark_paths(mark)
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

    def item_inputs(
        self, item: pytest.Item, declared: list[str] | None, extra: Sequence[str] = ()
    ) -> ItemInputs:
        """Return the inputs of ``item`` whose ``depends_on`` arguments are ``declared``
        (``None``: no mark, the default applies) and whose ``pytest_unchanged_item_inputs``
        paths are ``extra`` (added to the declared or default paths, never replacing them).

        Raises :class:`InputError` for a path outside the repository.
        """
        if any(mark.name == ALWAYS_RUN for mark in self.marks(item)):
            return ItemInputs((), "", "", unkeyable="marked always_run")
        return self.module_inputs(item.path, declared, extra, self.defining(item))

    def defining(self, item: pytest.Item) -> tuple[str, ...]:
        """Return the files (absolute) defining ``item`` other than its own module: its test
        function, class and MRO, fixtures (see :func:`.implicit.defining_files`)."""
        own = str(item.path)
        # Commonly the test and its fixtures are defined in its module and conftests.
        return tuple(f for f in defining_files(item, self._defining) if f != own)

    def module_inputs(
        self,
        path: Path,
        declared: Sequence[str] | None,
        extra: Sequence[str] = (),
        defining: Sequence[str] = (),
    ) -> ItemInputs:
        """Return the inputs of an item of the test module at ``path`` (absolute) whose
        ``depends_on`` arguments are ``declared`` (``None``: no mark), whose
        ``pytest_unchanged_item_inputs`` paths are ``extra`` and which is defined in the files
        ``defining`` besides its module: what :meth:`item_inputs` derives once the item is
        known. The fast path calls it with what a module summary stored, so it derives every
        input exactly as collecting the module would.

        Raises :class:`InputError` for a path outside the repository."""
        if self.worktree.hidden_error is not None:
            reason = f"git cannot read the worktree's status ({self.worktree.hidden_error})"
            return ItemInputs((), "", "", unkeyable=reason, warnings=(reason,))
        if self.problem is not None:
            return ItemInputs((), "", "", unkeyable=self.problem, warnings=(self.problem,))
        signature = (
            tuple(declared) if declared is not None else ("\0default",),
            tuple(extra),
            tuple(defining),
        )
        cached = self._memo.get((path, signature))
        if cached is None:
            try:
                cached = self._resolve(
                    path, None if declared is None else list(declared), extra, defining
                )
            except (pygit2.GitError, OSError) as error:
                # A worktree file pygit2 cannot hash (unreadable, refused by core.safecrlf):
                # this item runs, everything else proceeds.
                reason = f"cannot hash an input: {error}"
                cached = ItemInputs((), "", "", unkeyable=reason, warnings=(reason,))
            self._memo[(path, signature)] = cached
        return cached

    def _resolve(
        self,
        path: Path,
        declared: list[str] | None,
        extra: Sequence[str],
        defining: Sequence[str],
    ) -> ItemInputs:
        try:
            own = self.worktree.relpath(path)
        except ValueError:
            return ItemInputs((), "", "", unkeyable=f"{path} is outside the repository")
        implicit, problems = self._implicit_for(path, defining)
        paths = {own, *implicit}
        missing: list[str] = []
        specs = (
            *self.global_inputs,
            *(declared if declared is not None else self.default),
            *extra,
        )
        for arg in specs:
            if arg == IMPORTS:
                paths.update(self.import_closure(paths, own))
                continue
            matched = self._expand(arg)
            if not matched:
                missing.append(arg)
                continue
            paths.update(matched)
        implicit_paths = {own, *implicit}
        for rel in list(paths):
            targets, outside = self._links.targets(rel)
            paths.update(targets)
            implicit_paths.update(targets)
            problems.extend(outside)
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
        elif problems:
            unkeyable = "; ".join(problems)
        # The fast path derives a module's inputs again with module_inputs, never from specs.
        return ItemInputs(
            manifest, digest(manifest), body, unkeyable, tuple(missing), specs, tuple(problems)
        )

    def import_closure(
        self, start: Iterable[str], own: str | None = None, nowhere: bool = True
    ) -> list[str]:
        """The repository files the Python files in ``start`` (and ``own``, the item's file,
        a doctest text file too) import, transitively. For an item (``own`` given), ``[""]``,
        the whole worktree, when the closure is in doubt (:meth:`.imports.ImportGraph.doubt`;
        with ``nowhere=False`` a name found nowhere is no doubt).

        Names are looked up in ``import_path`` (``sys.path`` when the session began), after the
        directory pytest's import modes insert for each Python file of ``start``: never in the
        ``sys.path`` of the moment, so the closure of a module is the same whether it is derived
        at collection or by the fast path before anything was imported.
        """
        python = [p for p in start if p.endswith(".py") or p == own]
        present = [p for p in python if self.worktree.entry(p) is not ABSENT]
        root = self.worktree.root
        bases = tuple(sorted({basedir(root / p) for p in present if p.endswith(".py")}))
        graph = self._graphs.get(bases)
        if graph is None:
            path = [*map(str, bases), *(sys.path if self.import_path is None else self.import_path)]
            roots = search_roots(self.worktree, self.rootdir, path)
            graph = self._graphs[bases] = ImportGraph(self.worktree, roots, self.parsed, path)
        found = graph.closure(present)
        doubt = None if own is None else graph.doubt([*present, *found], nowhere)
        if own is not None and doubt is not None:
            self.import_doubts[own] = doubt  # for --unchanged-explain
        return found if doubt is None else [""]

    def _implicit_for(self, path: Path, defining: Sequence[str]) -> tuple[list[str], list[str]]:
        """The implicit inputs of a test in ``path`` defined in ``defining`` (relative to the
        top), and the reasons it cannot be keyed (an input pytest loaded outside the repository).

        The configuration file; every ``conftest.py`` pytest looks at for the directory (see
        :class:`.implicit.ConftestFinder`), existing or not; the same for ``__init__.py`` (see
        :func:`.implicit.package_inits`); the plugin modules pytest registered and the modules
        they import; the files defining the test.
        """
        directory = path.parent
        cached = self._implicit.get(directory)
        if cached is None:
            finder = self.conftests or ConftestFinder(self.rootdir)
            candidates = [] if self.config_file is None else [self.config_file]
            candidates.extend(finder.candidates(directory))
            found: list[str] = []
            problems: list[str] = []
            for candidate in candidates:
                try:
                    found.append(self.worktree.relpath(candidate))
                except ValueError:
                    # Above the repository: one that exists makes the item unkeyable.
                    if os.path.isfile(candidate):
                        problems.append(f"{candidate} is outside the repository")
            with contextlib.suppress(ValueError):
                found.extend(package_inits(self.worktree.relpath(directory)))
            found.extend(self._plugin_paths())
            cached = self._implicit[directory] = (found, problems)
        found, problems = cached
        if defining:
            found = list(found)
            for filename in defining:
                # Outside the repository: environment facets, like imports from there.
                with contextlib.suppress(ValueError):
                    found.append(self.worktree.relpath(filename))
        return found, list(problems)

    def _plugin_paths(self) -> list[str]:
        """The plugin files in the repository and their static import closure, once."""
        if self._plugin_inputs is None:
            inside = []
            for file in self.plugin_files:
                with contextlib.suppress(ValueError):
                    inside.append(self.worktree.relpath(file))
            self._plugin_inputs = sorted(
                {*inside, *(self.import_closure(inside) if inside else ())}
            )
        return self._plugin_inputs

    def _expand(self, arg: str) -> list[str]:
        cached = self._paths.get(arg)
        if cached is not None:
            return cached
        if os.path.normpath(arg) == ".":
            # `.`: the whole worktree wherever the rootdir is (py/pytest.ini, `cd tests`).
            self._paths[arg] = found = whole_worktree(self.worktree, self.rootdir, self.import_path)
            return found
        try:
            absolute = system_path(self.rootdir, arg)
        except ValueError as error:
            raise InputError(f"depends_on({arg!r}): {error}") from None
        try:
            rel = self.worktree.relpath(absolute)
        except ValueError:
            raise InputError(
                f"depends_on({arg!r}): the path is outside the git repository at "
                f"{self.worktree.root}; declare paths inside it, relative to the rootdir "
                f"{self.rootdir}"
            ) from None
        try:
            if globmod.has_magic(arg):
                matched = self.worktree.glob(rel)
            else:
                present = self.worktree.entry(rel) is not ABSENT or self._links.through_link(rel)
                matched = [rel] if present else []
        except ValueError as error:  # not a path the system takes (a NUL byte, a lone surrogate)
            raise InputError(f"depends_on({arg!r}): not a usable path: {error}") from None
        self._paths[arg] = matched
        return matched


def _call_text(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
