"""Module summaries: the data types the fast path and the store share, and their SQL tables.

A summary describes one test module as last collected (see :mod:`pytest_unchanged.fastpath`);
the store keeps it in the ``modules`` and ``item_lists`` tables with a *tally* per mark set
(items, items with a record, their recorded seconds), recomputed in every transaction that
adds or removes records. This module imports nothing from the store or the fast path, so
neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .keys import item_key, utf8
from .passes import name_hash, pack_key

__all__ = [
    "SUMMARY_SCHEMA",
    "UNKNOWN_MARKS",
    "ModuleSummary",
    "StoredModule",
    "UnchangedModule",
    "chunks",
    "drop_orphan_lists",
    "incomplete_files",
    "module_file",
    "refresh_tallies",
    "write_summary",
]

UNKNOWN_MARKS = -1
"""The markset index of an item whose marks are not known (see :func:`observed_marks`)."""

CHUNK = 500  # SQL parameters per IN (...) list, below SQLite's limit

# Module summaries (format 5): see write_summary and refresh_tallies.
SUMMARY_SCHEMA = """
CREATE TABLE IF NOT EXISTS modules (
    file TEXT NOT NULL,
    env_id TEXT NOT NULL,
    inputs_id TEXT NOT NULL,
    specs TEXT NOT NULL,
    marksets TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    tally TEXT,
    items BLOB NOT NULL,
    groups TEXT NOT NULL,
    PRIMARY KEY (file, env_id, inputs_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS item_lists (id BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
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
    ``items`` the ``(nodeid, key, markset index, inputs digest)`` of every item collected
    from it (index :data:`UNKNOWN_MARKS` when the item's marks are not known).
    """

    file: str
    inputs_id: str
    specs_body: str
    marksets: tuple[frozenset[str], ...]
    items: tuple[tuple[str, str, int, str], ...]

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
            tuple(
                (str(nodeid), str(key), int(index), str(inputs_id))
                for nodeid, key, index, inputs_id in items
            ),
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
    """Recompute the tally of every summary of ``files`` from the records (``passes``).

    An item's key is not stored in its summary: it is :func:`~pytest_unchanged.keys.item_key`
    of its nodeid, its inputs digest and the summary's environment, as it was at collection
    (:func:`write_summary` stores no summary where that does not hold), so a record counts
    for an item exactly when the slow path would find it.
    """
    lists: dict[bytes, list[list[Any]]] = {}
    for file in sorted(set(files)):
        rows = db.execute(
            "SELECT env_id, inputs_id, items, groups FROM modules WHERE file = ?", (file,)
        ).fetchall()
        if not rows:
            continue
        passes: dict[int, dict[bytes | str, float]] = {}
        for name, key, duration in db.execute(
            """SELECT p.name, p.key, p.duration FROM passes p JOIN files f ON f.id = p.file
               WHERE f.file = ?""",
            (file,),
        ):
            passes.setdefault(name, {})[key] = duration
        updates = []
        for env_id, inputs_id, items_id, groups_text in rows:
            items = lists.get(items_id)
            if items is None:
                body = db.execute(
                    "SELECT body FROM item_lists WHERE id = ?", (items_id,)
                ).fetchone()
                items = lists[items_id] = json.loads(zlib.decompress(body[0])) if body else []
            groups = json.loads(groups_text)
            tally: dict[int, list[Any]] = {}
            for name, group, markset in items:
                counts = tally.setdefault(markset, [markset, 0, 0, 0.0])
                counts[1] += 1
                recorded = passes.get(name_hash(name))
                if recorded:
                    key = pack_key(item_key(file + name, groups[group], env_id))
                    if key in recorded:
                        counts[2] += 1
                        counts[3] += recorded[key]
            found = json.dumps(sorted(tally.values())) if items else None
            updates.append((found, file, env_id, inputs_id))
        db.executemany(
            "UPDATE modules SET tally = ? WHERE file = ? AND env_id = ? AND inputs_id = ?",
            updates,
        )


def write_summary(
    db: sqlite3.Connection, module: ModuleSummary, env_id: str, now: float, max_keys: int
) -> tuple[bool, int]:
    """Store one module summary; return whether it was (re)inserted, and how many stored
    summaries it replaced or pruned.

    The list of its items (the rest of each nodeid after the file, the index of its inputs
    digest, the index of its mark set) is stored once however many summaries share it
    (``item_lists``, by content digest, zlib-compressed JSON); the summary row keeps the
    inputs digests those indexes refer to. A summary whose keys are not those
    :func:`~pytest_unchanged.keys.item_key` gives is not stored (nothing is: it always
    collects).
    """
    if not utf8(module.file) or not utf8(module.specs_body):
        return False, 0  # SQLite holds UTF-8 text: such a module is always collected
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
    groups: dict[str, int] = {}
    items = []
    for nodeid, key, markset, inputs_id in module.items:
        if module_file(nodeid) != module.file or item_key(nodeid, inputs_id, env_id) != key:
            return False, 0
        items.append(
            [nodeid[len(module.file) :], groups.setdefault(inputs_id, len(groups)), markset]
        )
    body = json.dumps(items, separators=(",", ":")).encode()
    items_id = hashlib.sha256(body).digest()
    replaced = db.execute(
        "DELETE FROM modules WHERE file = ? AND env_id = ? AND inputs_id = ?", ident
    ).rowcount
    db.execute("INSERT OR IGNORE INTO item_lists VALUES (?, ?)", (items_id, zlib.compress(body, 9)))
    db.execute(
        "INSERT INTO modules (file, env_id, inputs_id, specs, marksets, recorded_at, items, "
        "groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *ident,
            module.specs_body,
            json.dumps([sorted(names) for names in module.marksets]),
            now,
            items_id,
            json.dumps(list(groups)),
        ),
    )
    pruned = db.execute(
        """DELETE FROM modules WHERE file = :file AND env_id = :env AND inputs_id NOT IN (
           SELECT inputs_id FROM modules WHERE file = :file AND env_id = :env
           ORDER BY recorded_at DESC LIMIT :keep)""",
        {"file": module.file, "env": env_id, "keep": max_keys},
    ).rowcount
    return True, replaced + pruned


def drop_orphan_lists(db: sqlite3.Connection) -> None:
    """Delete the item lists no module summary refers to."""
    db.execute("DELETE FROM item_lists WHERE id NOT IN (SELECT items FROM modules)")
