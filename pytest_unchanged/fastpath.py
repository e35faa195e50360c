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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .inputs import InputError, Resolver
from .keys import canonical_json, digest

__all__ = ["ModuleSummary", "UnchangedModule", "module_file", "summarize"]


@dataclass(frozen=True, slots=True)
class ModuleSummary:
    """What is needed to decide about one test module without importing it.

    ``file`` is the file part of its nodeids (relative to the rootdir); ``specs_body`` the
    canonical JSON of ``{"specs": [...], "paths": [...]}``; ``inputs_id`` the digest of the union
    manifest; ``items`` the ``(nodeid, key)`` pairs of every item collected from it.
    """

    file: str
    inputs_id: str
    specs_body: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class UnchangedModule:
    """A module the fast path leaves uncollected: how many items, and their recorded seconds."""

    file: str
    count: int
    saved: float


def module_file(nodeid: str) -> str:
    """Return the file part of ``nodeid`` (``"tests/test_x.py"`` for ``"tests/test_x.py::t"``)."""
    return nodeid.split("::", 1)[0]


def summarize(
    items: Iterable[tuple[str, str | None, tuple[str, ...], Iterable[tuple[str, str, str]]]],
) -> dict[str, ModuleSummary]:
    """Group items by module and return a summary for each module whose items all have a key.

    ``items`` yields ``(nodeid, key, specs, manifest)`` for every collected item (``key`` is
    ``None`` for an item that always runs: its module gets no summary).
    """
    grouped: dict[
        str, list[tuple[str, str | None, tuple[str, ...], Iterable[tuple[str, str, str]]]]
    ]
    grouped = {}
    for item in items:
        grouped.setdefault(module_file(item[0]), []).append(item)
    summaries: dict[str, ModuleSummary] = {}
    for file, members in grouped.items():
        if any(key is None for _, key, _, _ in members):
            continue
        specs: dict[str, None] = {}
        union: dict[str, tuple[str, str, str]] = {}
        for _, _, item_specs, manifest in members:
            specs.update(dict.fromkeys(item_specs))
            for entry in manifest:
                union[entry[0]] = entry
        manifest_list = [union[path] for path in sorted(union, key=_path_order)]
        summaries[file] = ModuleSummary(
            file=file,
            inputs_id=digest(manifest_list),
            specs_body=canonical_json(
                {
                    "specs": list(specs),
                    "paths": sorted(union),
                    "items": digest([[n, k] for n, k, _, _ in members]),
                }
            ),
            items=tuple((nodeid, key) for nodeid, key, _, _ in members if key is not None),
        )
    return summaries


def _path_order(path: str) -> str:
    return "" if path == "." else path


def unchanged_modules(
    resolver: Resolver, candidates: Mapping[str, Iterable[tuple[str, str, int, float]]]
) -> dict[str, UnchangedModule]:
    """Return the modules whose stored summary still matches the worktree.

    ``candidates`` maps a module file to its complete stored summaries as
    ``(inputs_id, specs_body, item count, recorded seconds)``: complete means every item's key
    still has a record. A summary matches when the manifest rebuilt from its specs and paths has
    the stored digest. A spec that can no longer be expanded (now outside the repository) makes
    the module be collected, where the error is reported properly.
    """
    result: dict[str, UnchangedModule] = {}
    for file, summaries in candidates.items():
        for inputs_id, specs_body, count, saved in summaries:
            stored = json.loads(specs_body)
            try:
                manifest = resolver.manifest_of(stored["specs"], stored["paths"])
            except InputError:
                break
            if digest(manifest) == inputs_id:
                result[file] = UnchangedModule(file, count, saved)
                break
    return result
