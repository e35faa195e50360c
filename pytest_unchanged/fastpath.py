"""The fast path: decide that a whole test module is unchanged without importing it.

When a module was last collected, its summary was stored: the nodeids and keys of all its items,
the specs (``depends_on`` arguments, defaults, global inputs) and paths their inputs came from,
and the digest of the union manifest of those inputs. On a later run, the union manifest is
computed again from the stored specs and paths (globs are expanded again, so a new matching file
is seen); when its digest is the same, every item's inputs are the same, so every item's key is
the same; when every one of those keys still has a record, no item of the module would run, and
the module need not be imported at all.

Anything unknown means "collect": no summary, a different environment, a moved input, a missing
record, a path named explicitly on the command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .inputs import InputError, Resolver
from .keys import canonical_json, digest

if TYPE_CHECKING:
    import pytest
    from _pytest.nodes import Node

    from .store import StoredModule

__all__ = [
    "MarkNames",
    "MarkSet",
    "ModuleSummary",
    "UnchangedModule",
    "deselected_by",
    "mark_selector",
    "module_file",
    "observed_marks",
    "summarize",
    "unchanged_modules",
]

UNKNOWN_MARKS = -1
"""The markset index of an item whose marks are not known (see :func:`observed_marks`)."""

MAX_ADDED_MARKS = 4
"""At most this many mark names added by ``pytest_collection_modifyitems`` hooks are followed."""

MarkSet = tuple[frozenset[str], frozenset[str]]
"""An item's mark names when collected, and the names hooks added to them afterwards."""


@dataclass(frozen=True, slots=True)
class ModuleSummary:
    """What is needed to decide about one test module without importing it.

    ``file`` is the file part of its nodeids (relative to the rootdir); ``specs_body`` the
    canonical JSON of ``{"specs": [...], "paths": [...], "items": digest}``; ``inputs_id`` the
    digest of the union manifest; ``marksets`` the distinct sets of mark names of its items;
    ``items`` the ``(nodeid, key, markset index)`` triples of every item collected from it
    (index :data:`UNKNOWN_MARKS` when the item's marks are not known).
    """

    file: str
    inputs_id: str
    specs_body: str
    marksets: tuple[MarkSet, ...]
    items: tuple[tuple[str, str, int], ...]

    def to_wire(self) -> list[Any]:
        """Return the summary as JSON-serialisable lists (sent by pytest-xdist workers)."""
        return [
            self.file,
            self.inputs_id,
            self.specs_body,
            [[sorted(pre), sorted(added)] for pre, added in self.marksets],
            [list(item) for item in self.items],
        ]

    @classmethod
    def from_wire(cls, data: Sequence[Any]) -> ModuleSummary:
        """Return the summary :meth:`to_wire` turned into ``data``."""
        file, inputs_id, specs_body, marksets, items = data
        return cls(
            str(file),
            str(inputs_id),
            str(specs_body),
            tuple(
                (frozenset(map(str, pre)), frozenset(map(str, added))) for pre, added in marksets
            ),
            tuple((str(nodeid), str(key), int(index)) for nodeid, key, index in items),
        )


@dataclass(frozen=True, slots=True)
class UnchangedModule:
    """A module the fast path leaves uncollected.

    ``count`` is how many of its items have a record (they count as unchanged), ``saved`` their
    recorded seconds, ``deselected`` how many have none but would be deselected by ``-m``.
    """

    file: str
    count: int
    saved: float
    deselected: int = 0


def module_file(nodeid: str) -> str:
    """Return the file part of ``nodeid`` (``"tests/test_x.py"`` for ``"tests/test_x.py::t"``)."""
    return nodeid.split("::", 1)[0]


class MarkNames:
    """The names of an item's marks: those pytest's ``-m`` matches (``item.iter_markers()``).

    Each collector's part is computed once however many items it holds, so a new instance must
    be used after hooks may have added marks.
    """

    def __init__(self) -> None:
        self._collectors: dict[Node, frozenset[str]] = {}

    def of(self, item: pytest.Item) -> frozenset[str]:
        """Return the mark names of ``item`` and of every collector above it."""
        return frozenset(m.name for m in item.own_markers) | self._collector(item.parent)

    def _collector(self, node: Node | None) -> frozenset[str]:
        if node is None:
            return frozenset()
        cached = self._collectors.get(node)
        if cached is None:
            own = frozenset(m.name for m in node.own_markers)
            cached = self._collectors[node] = own | self._collector(node.parent)
        return cached


def observed_marks(collected: frozenset[str], final: frozenset[str]) -> MarkSet | None:
    """Return the mark set of an item with mark names ``collected`` before the
    ``pytest_collection_modifyitems`` hooks ran and ``final`` after, or ``None`` when the hooks
    changed them in a way that cannot be followed (removed a mark, or added many).

    pytest deselects by ``-m`` in one of those hooks, so the names it matched lie between the
    two: the collected ones plus some of the added ones (hypothesis's plugin, for one, adds a
    ``hypothesis`` mark in the same hook). :func:`deselected_by` tries every such combination.
    """
    added = final - collected
    if not collected <= final or len(added) > MAX_ADDED_MARKS:
        return None
    return collected, added


def deselected_by(marks: MarkSet, selects: Callable[[frozenset[str]], bool]) -> bool:
    """Return whether ``-m`` deselects an item with ``marks`` whichever of the added mark names
    it had when pytest matched the expression."""
    collected, added = marks
    ordered = sorted(added)
    for bits in range(2 ** len(ordered)):
        subset = {name for i, name in enumerate(ordered) if bits >> i & 1}
        if selects(collected | subset):
            return False
    return True


class _NeedsArguments(Exception):
    pass


def mark_selector(expression: str | None) -> Callable[[frozenset[str]], bool]:
    """Return whether pytest's ``-m expression`` selects an item with the given mark names.

    The expression is compiled with pytest's own ``-m`` parser. Without an expression every
    item is selected; so is every item when the expression cannot be evaluated here (it matches
    mark arguments, ``-m "name(arg=1)"``, or pytest's parser is not importable or rejects it):
    the fast path then collects the module and pytest reports whatever is wrong.
    """
    if not expression:
        return _select_all
    try:
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
    except Exception:
        return _select_all

    def selects(names: frozenset[str]) -> bool:
        def matcher(name: str, /, **kwargs: object) -> bool:
            if kwargs:
                raise _NeedsArguments
            return name in names

        try:
            return bool(compiled.evaluate(matcher))
        except Exception:
            return True

    return selects


def _select_all(names: frozenset[str]) -> bool:
    return True


Member = tuple[str, str | None, tuple[str, ...], Iterable[tuple[str, str, str]], MarkSet | None]


def summarize(items: Iterable[Member]) -> dict[str, ModuleSummary]:
    """Group items by module and return a summary for each module whose items all have a key.

    ``items`` yields ``(nodeid, key, specs, manifest, marks)`` for every collected item
    (``key`` is ``None`` for an item that always runs: its module gets no summary; ``marks``
    is what :func:`observed_marks` returned).
    """
    grouped: dict[str, list[Member]] = {}
    for item in items:
        grouped.setdefault(module_file(item[0]), []).append(item)
    summaries: dict[str, ModuleSummary] = {}
    for file, members in grouped.items():
        specs: dict[str, None] = {}
        union: dict[str, tuple[str, str, str]] = {}
        marksets: dict[MarkSet, int] = {}
        triples: list[tuple[str, str, int]] = []
        for nodeid, key, item_specs, manifest, names in members:
            if key is None:
                break
            specs.update(dict.fromkeys(item_specs))
            for entry in manifest:
                union[entry[0]] = entry
            index = UNKNOWN_MARKS if names is None else marksets.setdefault(names, len(marksets))
            triples.append((nodeid, key, index))
        else:
            manifest_list = [union[path] for path in sorted(union, key=_path_order)]
            summaries[file] = ModuleSummary(
                file=file,
                inputs_id=digest(manifest_list),
                specs_body=canonical_json(
                    {
                        "specs": list(specs),
                        "paths": sorted(union),
                        "items": digest(
                            [
                                [nodeid, key, _marks_json(marks)]
                                for nodeid, key, _, _, marks in members
                            ]
                        ),
                    }
                ),
                marksets=tuple(marksets),
                items=tuple(triples),
            )
    return summaries


def _marks_json(marks: MarkSet | None) -> list[list[str]] | None:
    return None if marks is None else [sorted(marks[0]), sorted(marks[1])]


def _path_order(path: str) -> str:
    return "" if path == "." else path


def unchanged_modules(
    resolver: Resolver,
    candidates: Mapping[str, Iterable[StoredModule]],
    selects: Callable[[frozenset[str]], bool] = _select_all,
) -> dict[str, UnchangedModule]:
    """Return the modules whose stored summary still matches the worktree.

    ``candidates`` maps a module file to its stored summaries, newest first. A summary can
    stand for the module when each of its items either has a record or would be deselected by
    ``-m`` (``selects`` says whether the current expression selects a set of mark names; an item
    whose marks are not known is always selected), and when the manifest rebuilt from its specs
    and paths has the stored digest. A spec that can no longer be expanded (now outside the
    repository) makes the module be collected, where the error is reported properly.
    """
    result: dict[str, UnchangedModule] = {}
    for file, summaries in candidates.items():
        for stored in summaries:
            if any(
                index == UNKNOWN_MARKS
                or not 0 <= index < len(stored.marksets)
                or not deselected_by(stored.marksets[index], selects)
                for index in stored.missing
            ):
                continue
            body = json.loads(stored.specs_body)
            try:
                manifest = resolver.manifest_of(body["specs"], body["paths"])
            except InputError:
                break
            if digest(manifest) == stored.inputs_id:
                deselected = stored.total - stored.recorded
                result[file] = UnchangedModule(file, stored.recorded, stored.saved, deselected)
                break
    return result
