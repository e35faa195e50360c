"""The fast path: decide that a whole test module is unchanged without importing it.

The fast path is a cache of the slow path's decision, never a second rule. When a module was
last collected, its summary was stored: the nodeids, keys and mark names of all its items, the
``depends_on`` arguments (or "none: the defaults") their inputs were derived from, and one
digest over the *scope* (the identity of the configuration: config file path and content, every
ini value, the options and plugins that decide what is collected, the conftest files loaded for
the module; see :mod:`pytest_unchanged.session`) and the digest of the inputs derived from each
of those arguments. On a later run, the resolver that keys collected items derives each
argument list's inputs again (implicit inputs, ``unchanged_inputs``, ``unchanged_default``,
globs and inferred imports, in this worktree and configuration); when the digest is the same,
every item's key is the same. When each of those keys still has a record, or its item would
be deselected by the current ``-m`` expression anyway, no item of the module would run, and the
module need not be imported at all.

Anything unknown means "collect": no summary, another environment or configuration, a moved
input, a missing record, a path named explicitly on the command line.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

from .inputs import InputError, Resolver
from .keys import canonical_json, digest
from .summaries import UNKNOWN_MARKS, ModuleSummary, StoredModule, UnchangedModule

if TYPE_CHECKING:
    import pytest
    from _pytest.nodes import Node

__all__ = [
    "MarkNames",
    "mark_selector",
    "mirror_import_path",
    "observed_marks",
    "summarize",
    "unchanged_module",
]

_name = attrgetter("name")  # of a pytest.Mark

MAX_EXPRESSION_NAMES = 8
"""An ``-m`` expression naming more marks than this is not analysed (every item is selected)."""


class MarkNames:
    """The names of an item's marks: those pytest's ``-m`` matches (``item.iter_markers()``).

    Each collector's part is computed once however many items it holds, so a new instance must
    be used after hooks may have added marks.
    """

    def __init__(self) -> None:
        self._collectors: dict[Node, frozenset[str]] = {}
        self._items: dict[tuple[tuple[str, ...], Node | None], frozenset[str]] = {}

    def of(self, item: pytest.Item) -> frozenset[str]:
        """Return the mark names of ``item`` and of every collector above it."""
        # Items of one parametrized function share their names: one set for all of them.
        ident = (tuple(map(_name, item.own_markers)), item.parent)
        found = self._items.get(ident)
        if found is None:
            found = self._items[ident] = frozenset(ident[0]) | self._collector(item.parent)
        return found

    def _collector(self, node: Node | None) -> frozenset[str]:
        if node is None:
            return frozenset()
        cached = self._collectors.get(node)
        if cached is None:
            own = frozenset(map(_name, node.own_markers))
            cached = self._collectors[node] = own | self._collector(node.parent)
        return cached


def observed_marks(collected: frozenset[str], final: frozenset[str]) -> frozenset[str] | None:
    """Return the mark names to store for an item that had ``collected`` before the
    ``pytest_collection_modifyitems`` hooks ran and ``final`` after: ``collected``, or ``None``
    (not known) when a hook removed one of them.

    pytest matches ``-m`` in one of those hooks, so it saw ``collected`` plus some of the added
    names (hypothesis's plugin, for one, adds a ``hypothesis`` mark in the same hook). Only
    expressions that adding marks can never make true are used (see :func:`mark_selector`), so
    ``collected`` is enough to know the item is deselected.
    """
    return collected if collected <= final else None


class _NeedsArguments(Exception):
    pass


def analysable(keyword: str | None, expression: str | None) -> bool:
    """Whether the fast path can decide under pytest's ``-k keyword`` and ``-m expression``.

    Not under ``-k`` (it matches names and attributes only an import shows), nor under an
    ``-m`` that :func:`mark_selector` cannot analyse (``-m smoke`` may select nothing, and the
    run must then end as pytest's would, with exit status 5).
    """
    if keyword:
        return False
    return not expression or not expression.strip() or mark_selector(expression) is not _select_all


def predictable(config: pytest.Config) -> bool:
    """Whether pytest's cache provider leaves every item it collects selected, as the fast path
    assumes: not under ``--lf --lfnf=none`` (with no failures recorded, every item is
    deselected and the run exits 5) nor under ``--sw`` (items before the last failure are
    deselected); ``--lf`` otherwise collects only modules with failures, which the fast path
    leaves collected (see :meth:`.selection.UnchangedPlugin.pytest_ignore_collect`).
    """
    lf_none = config.getoption("lf", False) and (
        config.getoption("last_failed_no_failures", "all") == "none"
    )
    return not lf_none and not config.getoption("stepwise", False)


def mark_selector(expression: str | None) -> Callable[[frozenset[str]], bool]:
    """Return whether pytest's ``-m expression`` selects an item with the given mark names.

    The expression is compiled with pytest's own ``-m`` parser. Every item is selected (so the
    fast path needs a record for it) unless the expression is *antitone*: adding a mark to an
    item can only deselect it, as in ``not slow`` or ``not (network or property)``. Then an
    item deselected with the marks it was collected with stays deselected with any mark a hook
    adds, now or in a later run. Expressions such as ``smoke``, expressions on mark arguments
    (``-m "slow(reason='x')"``), expressions naming more than :data:`MAX_EXPRESSION_NAMES`
    marks, and anything pytest's parser rejects select every item.
    """
    if not expression or not expression.strip():
        return _select_all
    try:
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
    except Exception:
        return _select_all

    def selects(names: frozenset[str], seen: set[str] | None = None) -> bool:
        def matcher(name: str, /, **kwargs: object) -> bool:
            if kwargs:
                raise _NeedsArguments
            if seen is not None:
                seen.add(name)
            return name in names

        return bool(compiled.evaluate(matcher))

    try:
        antitone = _is_antitone(selects)
    except Exception:
        return _select_all
    return selects if antitone else _select_all


def _is_antitone(selects: Callable[[frozenset[str], set[str]], bool]) -> bool:
    """Whether adding a name never turns the expression from false to true.

    Every assignment of the names the expression asks about is evaluated (names hidden behind
    a short circuit are found as the assignments change), then each true assignment is checked
    against each assignment with one name fewer: on the lattice of name sets that is enough.
    """
    names: set[str] = set()
    selects(frozenset(), names)
    values: dict[frozenset[str], bool] = {}
    while True:
        known = sorted(names)
        if len(known) > MAX_EXPRESSION_NAMES:
            return False
        for bits in range(2 ** len(known)):
            present = frozenset(name for i, name in enumerate(known) if bits >> i & 1)
            if present not in values:
                values[present] = selects(present, names)
        if len(names) == len(known):
            break
    return all(
        values[present - {name}] for present, value in values.items() if value for name in present
    )


def _select_all(names: frozenset[str], seen: set[str] | None = None) -> bool:
    return True


Signature = tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]
"""What an item's inputs are derived from besides its module (see
:meth:`pytest_unchanged.inputs.Resolver.module_inputs`): its ``depends_on`` arguments
(``None``: no mark, the defaults), its ``pytest_unchanged_item_inputs`` paths, and the files
defining it other than its module (absolute)."""

Member = tuple[str, str | None, Signature, str, frozenset[str] | None]
"""``(nodeid, key, signature, inputs_id, marks)`` of one collected item (see
:func:`summarize`)."""


def summarize(
    items: Iterable[Member],
    scope: Callable[[str], str],
    conftests: Sequence[str] = (),
    describe: Callable[[str], str] = str,
) -> dict[str, ModuleSummary]:
    """Group items by module and return a summary for each module whose items all have a key.

    ``items`` yields ``(nodeid, key, signature, inputs_id, marks)`` for every collected item:
    ``key`` is ``None`` for an item that always runs (its module gets no summary),
    ``signature`` what its inputs were derived from besides its module (:data:`Signature`),
    ``inputs_id`` the digest of those inputs, ``marks`` what
    :func:`observed_marks` returned. ``scope(file)`` is the identity of the configuration the
    module was collected under (see :meth:`pytest_unchanged.session.Context.scope`);
    ``conftests`` the files of every ``conftest.py`` the session loaded (their hooks may mark
    any item), ``describe(path)`` the content identity of one (its blob OID).

    The summary's ``inputs_id`` is the digest of the scope, of the loaded conftests' content,
    and of every distinct signature with the digest of the inputs derived from it;
    :func:`unchanged_module` derives them again with this run's resolver, so the fast path
    sees exactly the inputs, and so the keys, that collecting the module would.
    """
    loaded = [[path, describe(path)] for path in sorted(conftests)]
    grouped: dict[str, list[Member]] = {}
    for item in items:
        grouped.setdefault(item[0].partition("::")[0], []).append(item)  # module_file
    summaries: dict[str, ModuleSummary] = {}
    for file, members in grouped.items():
        groups: dict[Signature, str] = {}
        marksets: dict[frozenset[str], int] = {}
        triples: list[tuple[str, str, int, str]] = []
        last: tuple[Signature | None, str] = (None, "")
        for nodeid, key, signature, inputs_id, names in members:
            if key is None:
                break
            if signature is not last[0] or inputs_id is not last[1]:  # a group's next item
                groups[signature] = inputs_id
                last = (signature, inputs_id)
            index = UNKNOWN_MARKS if names is None else marksets.setdefault(names, len(marksets))
            triples.append((nodeid, key, index, inputs_id))
        else:
            signatures = sorted(map(_wire, groups), key=canonical_json)
            summaries[file] = ModuleSummary(
                file=file,
                inputs_id=_identity(scope(file), groups, loaded),
                specs_body=canonical_json(
                    {
                        "conftests": sorted(conftests),
                        "signatures": signatures,
                        "items": _items_digest(marksets, triples),
                    }
                ),
                marksets=tuple(marksets),
                items=tuple(triples),
            )
    return summaries


def _items_digest(
    marksets: Iterable[frozenset[str]], items: Iterable[tuple[str, str, int, str]]
) -> str:
    """The hex SHA-256 of the mark sets and the ``(nodeid, key, mark set)`` of every item (a key
    covers its inputs digest): each nodeid after its length, so the text reads one way only."""
    text = canonical_json([sorted(names) for names in marksets])
    text += "".join(f"\n{len(nodeid)}:{nodeid}\0{key}\0{index}" for nodeid, key, index, _ in items)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _wire(signature: Signature) -> list[object]:
    declared, extra, defining = signature
    return [None if declared is None else list(declared), list(extra), list(defining)]


def _from_wire(data: list[object]) -> Signature:
    declared, extra, defining = data
    if not (declared is None or isinstance(declared, list)):
        raise TypeError("declared arguments are a list or null")
    if not isinstance(extra, list) or not isinstance(defining, list):
        raise TypeError("a signature holds lists")
    return (
        None if declared is None else tuple(map(str, declared)),
        tuple(map(str, extra)),
        tuple(map(str, defining)),
    )


def _identity(scope: str, groups: Mapping[Signature, str], conftests: list[list[str]]) -> str:
    return digest(
        [
            scope,
            conftests,
            sorted(([_wire(s), i] for s, i in groups.items()), key=canonical_json),
        ]
    )


def unchanged_module(
    resolver: Resolver,
    path: Path,
    summaries: Iterable[StoredModule],
    scope: str,
    selects: Callable[[frozenset[str]], bool] = _select_all,
    describe: Callable[[str], str] = str,
) -> UnchangedModule | None:
    """Return the module at ``path`` as unchanged when one of its stored ``summaries`` (newest
    first) still stands for it, else ``None`` (collect it).

    A summary stands for the module when it was written under the same ``scope`` (the
    configuration's identity), when every item the current ``-m`` selects has a record
    (``selects`` comes from :func:`mark_selector`; an item whose marks are not known is
    selected), and when the inputs ``resolver`` derives from each stored signature
    (the same derivation collecting the module does: implicit inputs, ``unchanged_inputs``,
    ``unchanged_default``, globs and inferred imports expanded again in this worktree) have
    the stored digests, and when no ``conftest.py`` the writer had loaded changed (``describe``
    gives a file's content identity): then every item's key is the one that has a record. An
    input that
    cannot be derived (outside the repository, matching nothing) makes the module collected,
    where it is reported properly.
    """
    for stored in summaries:
        found = _tally(stored, selects)
        if found is None:
            continue
        groups: dict[Signature, str] = {}
        try:
            body = json.loads(stored.specs_body)
            loaded = [[str(path), describe(str(path))] for path in body["conftests"]]
            for data in body["signatures"]:
                signature = _from_wire(data)
                inputs = resolver.module_inputs(path, *signature)
                if inputs.unkeyable:
                    return None
                groups[signature] = inputs.inputs_id
        except (InputError, KeyError, TypeError, ValueError):
            return None
        if _identity(scope, groups, loaded) == stored.inputs_id:
            return UnchangedModule(stored.file, *found)
    return None


def _tally(
    stored: StoredModule, selects: Callable[[frozenset[str]], bool]
) -> tuple[int, float, int] | None:
    """``(unchanged, their seconds, deselected)`` when no selected item lacks a record."""
    count, saved, deselected = 0, 0.0, 0
    if not stored.tally:
        return None  # not worked out yet: unknown
    for index, total, recorded, seconds in stored.tally:
        if 0 <= index < len(stored.marksets) and not selects(stored.marksets[index]):
            deselected += total
        elif recorded == total:
            count += recorded
            saved += seconds
        else:
            return None
    return count, saved, deselected


def mirror_import_path(config: pytest.Config, path: Path) -> None:
    """Change ``sys.path`` as importing the test module at ``path`` would have (pytest's
    ``import_path`` under ``config``'s ``--import-mode``), for a module the fast path leaves
    unimported.

    Under the ``prepend`` and ``append`` import modes, pytest puts the module's package root
    (the directory above its top package, or its own directory) on ``sys.path`` for good, and
    later modules may import through it: a suite whose ``tests/test_x.py`` imports a package at
    the rootdir only because ``test_top.py`` was collected before it must not break when the
    fast path leaves ``test_top.py`` out. The package root is found with pytest's own function
    (``resolve_pkg_root_and_module_name`` from pytest 8.1, with the ini option
    ``consider_namespace_packages``; ``resolve_package_path`` in 8.0). Nothing is done under
    ``importlib``.
    """
    import_mode = str(config.getoption("importmode", "prepend"))
    if import_mode not in ("prepend", "append"):
        return
    root = path.parent
    try:
        from _pytest import pathlib as pytest_pathlib

        resolve = getattr(pytest_pathlib, "resolve_pkg_root_and_module_name", None)
        if resolve is not None:
            namespace_packages = bool(config.getini("consider_namespace_packages"))
            root = resolve(path, consider_namespace_packages=namespace_packages)[0]
        else:
            package = pytest_pathlib.resolve_package_path(path)
            root = path.parent if package is None else package.parent
    except Exception:
        root = path.parent  # what pytest falls back to when it cannot resolve the path
    text = str(root)
    if import_mode == "append":
        if text not in sys.path:
            sys.path.append(text)
    elif not sys.path or sys.path[0] != text:
        sys.path.insert(0, text)
