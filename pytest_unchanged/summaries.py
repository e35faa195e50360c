"""Module summaries: the data types the fast path and the store share, and their SQL tables.

A summary describes one test module as last collected (see :mod:`pytest_unchanged.fastpath`);
the store keeps it in the ``modules`` and ``module_items`` tables with a *tally* per mark set
(items, items with a record, their recorded seconds), recomputed in every transaction that
adds or removes records. This module imports nothing from the store or the fast path, so
neither imports the other.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SHARED_SCHEMA",
    "UNKNOWN_MARKS",
    "ModuleSummary",
    "StoredModule",
    "UnchangedModule",
    "chunks",
    "incomplete_files",
    "module_file",
    "refresh_tallies",
    "write_summary",
]

UNKNOWN_MARKS = -1
"""The markset index of an item whose marks are not known (see :func:`observed_marks`)."""

CHUNK = 500  # SQL parameters per IN (...) list, below SQLite's limit

# The table of records fetched or imported from other sources (see pytest_unchanged.shared).
SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_records (
    source TEXT NOT NULL,
    nodeid TEXT NOT NULL,
    key TEXT NOT NULL,
    inputs_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    duration REAL NOT NULL,
    passed_at REAL NOT NULL,
    head TEXT,
    PRIMARY KEY (nodeid, key, source)
) WITHOUT ROWID;
"""


def chunks(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """Split ``values`` into lists short enough for one ``IN (...)``, each with its ``?,?``."""
    for start in range(0, len(values), CHUNK):
        chunk = list(values[start : start + CHUNK])
        yield chunk, ",".join("?" * len(chunk))


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
    marksets: tuple[frozenset[str], ...]
    items: tuple[tuple[str, str, int], ...]

    def to_wire(self) -> list[Any]:
        """Return the summary as JSON-serialisable lists (sent by pytest-xdist workers)."""
        return [
            self.file,
            self.inputs_id,
            self.specs_body,
            [sorted(names) for names in self.marksets],
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
            tuple(frozenset(map(str, names)) for names in marksets),
            tuple((str(nodeid), str(key), int(index)) for nodeid, key, index in items),
        )


@dataclass(frozen=True, slots=True)
class UnchangedModule:
    """A module the fast path leaves uncollected.

    ``count`` is how many of its items are unchanged (each has a record and is selected),
    ``saved`` their recorded seconds, ``deselected`` how many the current ``-m`` deselects.
    """

    file: str
    count: int
    saved: float
    deselected: int = 0


def module_file(nodeid: str) -> str:
    """Return the file part of ``nodeid`` (``"tests/test_x.py"`` for ``"tests/test_x.py::t"``)."""
    return nodeid.split("::", 1)[0]


@dataclass(frozen=True, slots=True)
class StoredModule:
    """One stored summary of a test module, as read back for the fast path.

    ``marksets`` are the distinct sets of mark names of its items (what pytest's ``-m``
    matches); ``tally`` holds, per mark set, ``(index into marksets, items, items with a
    record, their recorded seconds)``; index ``-1`` stands for items whose marks are not known.
    An empty tally means it is not known.
    """

    file: str
    inputs_id: str
    specs_body: str
    marksets: tuple[frozenset[str], ...]
    tally: tuple[tuple[int, int, int, float], ...]


def incomplete_files(db: sqlite3.Connection, files: Iterable[str]) -> set[str]:
    """The files among ``files`` with a summary that misses some record: new records can
    only change the tally of those (a complete tally already counts every item)."""
    files = sorted(set(files))
    found: set[str] = set()
    for chunk, marks in chunks(files):
        for file, tally in db.execute(
            f"SELECT file, tally FROM modules WHERE file IN ({marks})", chunk
        ):
            groups = json.loads(tally) if tally is not None else None
            if not groups or any(recorded != total for _, total, recorded, _ in groups):
                found.add(file)
    return found


def refresh_tallies(db: sqlite3.Connection, files: Iterable[str]) -> None:
    """Recompute the tally of every summary of ``files`` from the records table."""
    files = sorted(set(files))
    for chunk, marks in chunks(files):
        # Unknown until shown otherwise.
        db.execute(f"UPDATE modules SET tally = NULL WHERE file IN ({marks})", chunk)
        tallies: dict[tuple[str, str, str], list[tuple[int, int, int, float]]] = {}
        for file, env_id, inputs_id, markset, count, present, seconds in db.execute(
            f"""SELECT i.file, i.env_id, i.inputs_id, i.markset, count(*), count(r.key),
                       total(r.duration)
                FROM module_items i
                LEFT JOIN records r ON r.nodeid = i.nodeid AND r.key = i.key
                WHERE i.file IN ({marks})
                GROUP BY i.file, i.env_id, i.inputs_id, i.markset""",
            chunk,
        ):
            tallies.setdefault((file, env_id, inputs_id), []).append(
                (int(markset), int(count), int(present), float(seconds))
            )
        db.executemany(
            """UPDATE modules SET tally = ?
               WHERE file = ? AND env_id = ? AND inputs_id = ?""",
            [(json.dumps(sorted(tally)), *ident) for ident, tally in tallies.items()],
        )


def write_summary(
    db: sqlite3.Connection, module: ModuleSummary, env_id: str, now: float, max_keys: int
) -> tuple[bool, int]:
    """Store one module summary; return whether it was (re)inserted, and how many stored
    summaries it replaced or pruned."""
    ident = (module.file, env_id, module.inputs_id)
    # The specs text also holds a digest of the items (nodeid, key, marks): a summary whose
    # items differ from the stored one (another key encoding, new nodeids, other marks)
    # replaces it whole.
    unchanged = db.execute(
        """UPDATE modules SET recorded_at = ?
           WHERE file = ? AND env_id = ? AND inputs_id = ? AND specs = ?""",
        (now, *ident, module.specs_body),
    ).rowcount
    if unchanged:
        return False, 0
    replaced = db.execute(
        "DELETE FROM modules WHERE file = ? AND env_id = ? AND inputs_id = ?", ident
    ).rowcount
    db.execute("DELETE FROM module_items WHERE file = ? AND env_id = ? AND inputs_id = ?", ident)
    db.execute(
        "INSERT INTO modules (file, env_id, inputs_id, specs, marksets, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            *ident,
            module.specs_body,
            json.dumps([sorted(names) for names in module.marksets]),
            now,
        ),
    )
    db.executemany(
        "INSERT INTO module_items VALUES (?, ?, ?, ?, ?, ?)",
        [(*ident, nodeid, key, markset) for nodeid, key, markset in module.items],
    )
    pruned = db.execute(
        """DELETE FROM modules WHERE file = :file AND env_id = :env AND inputs_id NOT IN (
           SELECT inputs_id FROM modules WHERE file = :file AND env_id = :env
           ORDER BY recorded_at DESC LIMIT :keep)""",
        {"file": module.file, "env": env_id, "keep": max_keys},
    ).rowcount
    return True, replaced + pruned
