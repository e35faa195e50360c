"""The import facts of one file (:class:`ImportRef`, :class:`Parsed`), and their memo on disk.

:mod:`.import_syntax` reads them from a file's syntax tree; :mod:`.imports` resolves them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LENIENT",
    "PLUGIN",
    "STRICT",
    "TARGET",
    "ImportRef",
    "Parsed",
    "load_parsed",
    "parsed_from_json",
    "parsed_to_json",
    "save_parsed",
]

STRICT = "import"
"""A module that must exist for the import to succeed: not found anywhere is a doubt."""
TARGET = "target"
"""A dotted target: its first name is a module, the rest may be submodules or attributes."""
LENIENT = "maybe"
"""Imports that never run (``if TYPE_CHECKING:``): found modules count, nothing is a doubt."""
PLUGIN = "plugin"
"""A ``pytest_plugins`` entry: a module, or the name of one of pytest's own plugins."""

_KINDS = frozenset({STRICT, TARGET, LENIENT, PLUGIN})
_MAX_LEVEL = 255  # leading dots of a relative import; deeper than any package nesting
_FORMAT = 3  # of the file save_parsed writes


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One import's target.

    ``module`` is the dotted name after the dots (``""`` for ``from . import x``); ``level`` the
    number of leading dots (0 for an absolute import); ``names`` the names of a
    ``from ... import`` (each may be a submodule; ``"*"`` for a star import), empty for
    ``import a.b``; ``kind`` one of :data:`STRICT`, :data:`TARGET`, :data:`LENIENT`,
    :data:`PLUGIN`.
    """

    module: str
    level: int = 0
    names: tuple[str, ...] = ()
    kind: str = STRICT


@dataclass(frozen=True, slots=True)
class Parsed:
    """What :func:`parse_file` read from one file.

    ``exports`` is the file's literal ``__all__`` (``None``: it has none); ``exports_known`` is
    false when ``__all__`` is computed, so a star import of the package cannot know what it
    imports. ``doubts`` say why the file's imports cannot be known statically (line numbers).
    ``attributes`` are the names the file reads as attributes (``x.name``) or names in a string
    (``getattr(pkg, "name")``, ``"pkg.name"``); ``names`` the bare names it uses. A submodule a
    package's module object holds because some other code imported it is reached by them
    (see :mod:`.import_reach`).
    """

    refs: tuple[ImportRef, ...] = ()
    doubts: tuple[str, ...] = ()
    exports: tuple[str, ...] | None = None
    exports_known: bool = True
    attributes: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()


def load_parsed(path: Path) -> dict[str, Parsed]:
    """Return the parsed files by blob OID saved at ``path`` by :func:`save_parsed`.

    A missing, unreadable or older-format file gives an empty mapping: it is only a cache.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT:
            return {}
        return {oid: parsed_from_json(entry) for oid, entry in data["files"].items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def save_parsed(path: Path, parsed: dict[str, Parsed]) -> None:
    """Write ``parsed`` (by blob OID) to ``path`` as JSON, atomically (write, rename)."""
    files = {oid: parsed_to_json(p) for oid, p in parsed.items()}
    data = {"format": _FORMAT, "files": files}
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def parsed_to_json(parsed: Parsed) -> list[object]:
    """Return ``parsed`` as JSON-ready lists (read back by :func:`parsed_from_json`)."""
    return [
        [[r.module, r.level, list(r.names), r.kind] for r in parsed.refs],
        list(parsed.doubts),
        None if parsed.exports is None else list(parsed.exports),
        parsed.exports_known,
        sorted(parsed.attributes),
        sorted(parsed.names),
    ]


def parsed_from_json(data: Sequence[Any]) -> Parsed:
    """Return the :class:`Parsed` that :func:`parsed_to_json` gave ``data`` for.

    Every field is checked for its type and range (a memo file is only a cache: a damaged one
    must cost a parse, never a crash or a hang: adversarial review of issue 10, round 4,
    finding 06). Raises :class:`ValueError`, :class:`TypeError` or :class:`KeyError` when
    ``data`` is not such a value.
    """
    refs, doubts, exports, known, attributes, bare = data
    found = []
    for module, level, names, kind in refs:
        if not (
            isinstance(module, str)
            and type(level) is int
            and 0 <= level <= _MAX_LEVEL
            and kind in _KINDS
        ):
            raise ValueError(f"not an import: {[module, level, names, kind]!r}")
        found.append(ImportRef(module, level, _strings(names), kind))
    if not isinstance(known, bool):
        raise TypeError(f"not a bool: {known!r}")
    return Parsed(
        tuple(found),
        _strings(doubts),
        None if exports is None else _strings(exports),
        known,
        frozenset(_strings(attributes)),
        frozenset(_strings(bare)),
    )


def _strings(value: object) -> tuple[str, ...]:
    """``value``, a list of strings, as a tuple; :class:`TypeError` for anything else."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"not a list of strings: {value!r}")
    return tuple(value)
