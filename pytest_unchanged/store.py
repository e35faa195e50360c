"""The pass store: records of passes, in one SQLite file written in transactions.

A record says that test item ``nodeid`` passed under ``key``; it keeps the digests of the input
manifest and the environment (their JSON bodies are stored once each, however many records share
them), the duration in seconds, the UTC time as Unix seconds, and the ``HEAD`` commit of the run.
Several keys per nodeid are kept, so switching branches back and forth still finds a record;
old ones are pruned by age and by count.

Every write is one SQLite transaction (``BEGIN IMMEDIATE``), so two pytest processes can share a
store and a crash leaves the previous state readable. The standard library's :mod:`sqlite3` is
the only dependency; nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .fastpath import module_file

if TYPE_CHECKING:
    from .fastpath import MarkSet, ModuleSummary

__all__ = ["CorruptStoreError", "Record", "Store", "StoredModule"]

STORE_FORMAT = "2"
_SUMMARY_TABLES = ("modules", "module_items")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    nodeid TEXT NOT NULL,
    key TEXT NOT NULL,
    inputs_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    duration REAL NOT NULL,
    passed_at REAL NOT NULL,
    head TEXT,
    PRIMARY KEY (nodeid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    nodeid TEXT NOT NULL,
    key TEXT NOT NULL,
    failed_at REAL NOT NULL,
    PRIMARY KEY (nodeid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS modules (
    file TEXT NOT NULL,
    env_id TEXT NOT NULL,
    inputs_id TEXT NOT NULL,
    specs TEXT NOT NULL,
    marksets TEXT NOT NULL,
    total INTEGER NOT NULL,
    recorded_at REAL NOT NULL,
    recorded INTEGER NOT NULL DEFAULT 0,
    saved REAL NOT NULL DEFAULT 0,
    missing TEXT NOT NULL DEFAULT '[-1]',
    PRIMARY KEY (file, env_id, inputs_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS module_items (
    file TEXT NOT NULL,
    env_id TEXT NOT NULL,
    inputs_id TEXT NOT NULL,
    nodeid TEXT NOT NULL,
    key TEXT NOT NULL,
    markset INTEGER NOT NULL,
    PRIMARY KEY (file, env_id, inputs_id, nodeid)
) WITHOUT ROWID;
"""
# A module summary's recorded, saved and missing columns are derived from the records table: how
# many of its items have a record, the sum of their durations, and the JSON list of the marksets
# (indices into its marksets column, -1 for marks not known) of the items that have none. Every
# transaction that adds or removes records recomputes them for the modules concerned, so a reader
# never has to join module_items with records.

_ORPHAN_BODIES = """DELETE FROM bodies WHERE id NOT IN (SELECT inputs_id FROM records)
                    AND id NOT IN (SELECT env_id FROM records)"""


class CorruptStoreError(Exception):
    """Raised when the store file exists but is not a readable store of this format."""


@dataclass(frozen=True, slots=True)
class Record:
    """One pass of ``nodeid`` under ``key``.

    ``duration`` is in seconds (setup + call + teardown), ``passed_at`` in Unix seconds (UTC),
    ``head`` the hex ``HEAD`` commit of the run (``None`` before the first commit).
    """

    nodeid: str
    key: str
    inputs_id: str
    env_id: str
    duration: float
    passed_at: float
    head: str | None


@dataclass(frozen=True, slots=True)
class StoredModule:
    """One stored summary of a test module, as read back for the fast path.

    ``marksets`` are the distinct mark sets of its items (the mark names pytest's ``-m`` matches
    when collected, and those hooks added; see :func:`~pytest_unchanged.fastpath.observed_marks`);
    ``missing`` the indices into ``marksets`` of the items that have no record (``-1``: an item
    whose marks are not known, because a hook changed them during collection); ``recorded`` how
    many of its ``total`` items have a record and ``saved`` the sum of their recorded durations
    in seconds.
    """

    file: str
    inputs_id: str
    specs_body: str
    marksets: tuple[MarkSet, ...]
    missing: frozenset[int]
    total: int
    recorded: int
    saved: float


class Store:
    """A pass store in the SQLite file at ``path`` (created with its directory when missing).

    Raises :class:`CorruptStoreError` when ``path`` holds something that is not a store; the
    caller may then :meth:`discard` it and open a new one.
    """

    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            self._prepare()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise CorruptStoreError(f"{path} is not a readable pass store ({error})") from error

    def _prepare(self) -> None:
        # The common case reads one row and writes nothing; the schema is only created (or a
        # store of the previous format migrated) under a write lock.
        if self._format() == STORE_FORMAT:
            return
        with self._transaction() as db:
            found = self._format()
            if found == "1":
                # Format 1 had no mark sets in its module summaries; summaries are only a cache
                # of the records, so they are dropped and the records kept.
                for table in _SUMMARY_TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            elif found not in (None, STORE_FORMAT):
                raise sqlite3.DatabaseError(f"store format {found!r}, expected {STORE_FORMAT}")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))

    def _format(self) -> str | None:
        try:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE name = 'format'"
            ).fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return None
            raise
        return None if row is None else str(row[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def discard(path: Path) -> Path:
        """Move an unreadable store at ``path`` aside and return where it went."""
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path.with_name(path.name + suffix))
        return aside

    def close(self) -> None:
        """Close the connection; the store object is unusable afterwards."""
        self._connection.close()

    def records(self, nodeids: Iterable[str] | None = None) -> dict[str, dict[str, Record]]:
        """Return ``{nodeid: {key: Record}}`` for ``nodeids`` (every nodeid when ``None``).

        Raises :class:`CorruptStoreError` when the file cannot be read.
        """
        query = "SELECT nodeid, key, inputs_id, env_id, duration, passed_at, head FROM records"
        result: dict[str, dict[str, Record]] = {}
        try:
            if nodeids is None:
                rows = self._connection.execute(query).fetchall()
            else:
                wanted = list(dict.fromkeys(nodeids))
                rows = []
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    sql = f"{query} WHERE nodeid IN ({marks})"
                    rows += self._connection.execute(sql, chunk).fetchall()
        except sqlite3.DatabaseError as error:
            raise CorruptStoreError(f"{self.path} cannot be read ({error})") from error
        for row in rows:
            record = Record(*row)
            result.setdefault(record.nodeid, {})[record.key] = record
        return result

    def body(self, body_id: str) -> str | None:
        """Return the JSON text stored under ``body_id`` (a manifest or environment digest)."""
        row = self._connection.execute(
            "SELECT body FROM bodies WHERE id = ?", (body_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def module_candidates(self, env_id: str) -> dict[str, list[StoredModule]]:
        """Return the module summaries stored for environment ``env_id``, newest first per file.

        Reads the ``modules`` table only: which items have records was worked out when the
        records were written. Raises :class:`CorruptStoreError` when the file cannot be read.
        """
        query = """
            SELECT file, inputs_id, specs, marksets, missing, total, recorded, saved
            FROM modules WHERE env_id = ? ORDER BY recorded_at DESC"""
        result: dict[str, list[StoredModule]] = {}
        try:
            rows = self._connection.execute(query, (env_id,)).fetchall()
            for file, inputs_id, specs, marksets, missing, total, recorded, saved in rows:
                module = StoredModule(
                    file=file,
                    inputs_id=inputs_id,
                    specs_body=specs,
                    marksets=tuple(
                        (frozenset(pre), frozenset(added)) for pre, added in json.loads(marksets)
                    ),
                    missing=frozenset(int(index) for index in json.loads(missing)),
                    total=int(total),
                    recorded=int(recorded),
                    saved=float(saved),
                )
                result.setdefault(file, []).append(module)
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            raise CorruptStoreError(f"{self.path} cannot be read ({error})") from error
        return result

    def failures(self, nodeids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Return ``{nodeid: {key: failed_at}}``: the keys under which ``nodeids`` last failed.

        A failure is forgotten when the same ``(nodeid, key)`` passes again. Raises
        :class:`CorruptStoreError` when the file cannot be read.
        """
        result: dict[str, dict[str, float]] = {}
        wanted = list(dict.fromkeys(nodeids))
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                sql = "SELECT nodeid, key, failed_at FROM failures WHERE nodeid IN ({})"
                for nodeid, key, failed_at in self._connection.execute(
                    sql.format(",".join("?" * len(chunk))), chunk
                ):
                    result.setdefault(nodeid, {})[key] = failed_at
        except sqlite3.DatabaseError as error:
            raise CorruptStoreError(f"{self.path} cannot be read ({error})") from error
        return result

    def update(
        self,
        passes: Iterable[Record],
        failures: Iterable[tuple[str, str]],
        bodies: Mapping[str, str],
        *,
        max_keys: int,
        max_age: float,
        modules: Iterable[ModuleSummary] = (),
        env_id: str = "",
        now: float | None = None,
    ) -> None:
        """Write passes, forget failed ``(nodeid, key)`` pairs and prune, in one transaction.

        ``bodies`` maps a digest to its JSON text; only those some pass refers to are stored.
        ``modules`` are summaries of the modules collected under environment ``env_id`` (see
        :mod:`pytest_unchanged.fastpath`). Pruning keeps the newest ``max_keys`` records of every
        nodeid and summaries of every module, and drops every record and summary older than
        ``max_age`` seconds. Raises :class:`CorruptStoreError` when the file cannot be written;
        nothing is then changed.
        """
        now = time.time() if now is None else now
        passes = list(passes)
        failures = list(failures)
        modules = list(modules)
        used = {r.inputs_id for r in passes} | {r.env_id for r in passes}
        # The files whose summaries may see a record come or go in this transaction.
        touched = {m.file for m in modules}
        touched.update(module_file(r.nodeid) for r in passes)
        touched.update(module_file(nodeid) for nodeid, _ in failures)
        try:
            with self._transaction() as db:
                self._update(
                    db,
                    passes,
                    failures,
                    bodies,
                    used,
                    modules,
                    env_id,
                    now,
                    max_keys,
                    max_age,
                    touched,
                )
        except sqlite3.DatabaseError as error:
            raise CorruptStoreError(f"{self.path} cannot be written ({error})") from error

    def _update(
        self,
        db: sqlite3.Connection,
        passes: list[Record],
        failures: list[tuple[str, str]],
        bodies: Mapping[str, str],
        used: set[str],
        modules: list[ModuleSummary],
        env_id: str,
        now: float,
        max_keys: int,
        max_age: float,
        touched: set[str],
    ) -> None:
        dropped = sum(self._write_module(db, m, env_id, now, max_keys) for m in modules)
        dropped += db.execute(
            "DELETE FROM modules WHERE recorded_at < ?", (now - max_age,)
        ).rowcount
        if dropped:
            db.execute(
                """DELETE FROM module_items WHERE NOT EXISTS (SELECT 1 FROM modules m
                   WHERE m.file = module_items.file AND m.env_id = module_items.env_id
                   AND m.inputs_id = module_items.inputs_id)"""
            )
        db.executemany("DELETE FROM records WHERE nodeid = ? AND key = ?", failures)
        db.executemany(
            "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)",
            [(nodeid, key, now) for nodeid, key in failures],
        )
        db.executemany(
            "DELETE FROM failures WHERE nodeid = ? AND key = ?",
            [(r.nodeid, r.key) for r in passes],
        )
        db.execute("DELETE FROM failures WHERE failed_at < ?", (now - max_age,))
        db.executemany(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (r.nodeid, r.key, r.inputs_id, r.env_id, r.duration, r.passed_at, r.head)
                for r in passes
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO bodies VALUES (?, ?)",
            [(i, bodies[i]) for i in used if i in bodies],
        )
        pruned = self._prune_by_count(db, max_keys) if passes else set()
        expired = [
            nodeid
            for (nodeid,) in db.execute(
                "SELECT DISTINCT nodeid FROM records WHERE passed_at < ?", (now - max_age,)
            )
        ]
        if expired:
            db.execute("DELETE FROM records WHERE passed_at < ?", (now - max_age,))
        pruned.update(expired)
        touched.update(module_file(nodeid) for nodeid in pruned)
        if pruned or failures:
            db.execute(_ORPHAN_BODIES)
        self._refresh_modules(db, touched)

    @staticmethod
    def _refresh_modules(db: sqlite3.Connection, files: Iterable[str]) -> None:
        """Recompute the derived columns of every summary of ``files`` from the records table."""
        files = sorted(set(files))
        for start in range(0, len(files), 500):
            chunk = files[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # Unknown until shown otherwise: a summary with no items left is never complete.
            db.execute(
                f"UPDATE modules SET recorded = 0, saved = 0, missing = '[-1]' "
                f"WHERE file IN ({marks})",
                chunk,
            )
            derived: dict[tuple[str, str, str], tuple[int, float, set[int]]] = {}
            for file, env_id, inputs_id, markset, count, present, saved in db.execute(
                f"""SELECT i.file, i.env_id, i.inputs_id, i.markset, count(*), count(r.key),
                           total(r.duration)
                    FROM module_items i
                    LEFT JOIN records r ON r.nodeid = i.nodeid AND r.key = i.key
                    WHERE i.file IN ({marks})
                    GROUP BY i.file, i.env_id, i.inputs_id, i.markset""",
                chunk,
            ):
                recorded, total, missing = derived.get((file, env_id, inputs_id), (0, 0.0, set()))
                if count > present:
                    missing.add(int(markset))
                derived[(file, env_id, inputs_id)] = (recorded + present, total + saved, missing)
            db.executemany(
                """UPDATE modules SET recorded = ?, saved = ?, missing = ?
                   WHERE file = ? AND env_id = ? AND inputs_id = ?""",
                [
                    (recorded, total, json.dumps(sorted(missing)), *ident)
                    for ident, (recorded, total, missing) in derived.items()
                ],
            )

    @staticmethod
    def _prune_by_count(db: sqlite3.Connection, max_keys: int) -> set[str]:
        """Keep the newest ``max_keys`` records of every nodeid; return the nodeids pruned."""
        # One scan of the primary key finds the few nodeids over the limit; only those are pruned.
        crowded = db.execute(
            "SELECT nodeid FROM records GROUP BY nodeid HAVING count(*) > ?", (max_keys,)
        ).fetchall()
        for (nodeid,) in crowded:
            db.execute(
                """DELETE FROM records WHERE nodeid = ?1 AND key NOT IN (
                       SELECT key FROM records WHERE nodeid = ?1
                       ORDER BY passed_at DESC LIMIT ?2)""",
                (nodeid, max_keys),
            )
        return {nodeid for (nodeid,) in crowded}

    @staticmethod
    def _write_module(
        db: sqlite3.Connection, module: ModuleSummary, env_id: str, now: float, max_keys: int
    ) -> int:
        """Store one module summary; return how many stored summaries it replaced or pruned."""
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
            return 0
        replaced = db.execute(
            "DELETE FROM modules WHERE file = ? AND env_id = ? AND inputs_id = ?", ident
        ).rowcount
        db.execute(
            "DELETE FROM module_items WHERE file = ? AND env_id = ? AND inputs_id = ?", ident
        )
        db.execute(
            "INSERT INTO modules (file, env_id, inputs_id, specs, marksets, total, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                *ident,
                module.specs_body,
                json.dumps([[sorted(pre), sorted(added)] for pre, added in module.marksets]),
                len(module.items),
                now,
            ),
        )
        db.executemany(
            "INSERT INTO module_items VALUES (?, ?, ?, ?, ?, ?)",
            [(*ident, nodeid, key, markset) for nodeid, key, markset in module.items],
        )
        return (
            replaced
            + db.execute(
                """DELETE FROM modules WHERE file = ?1 AND env_id = ?2 AND inputs_id NOT IN (
                   SELECT inputs_id FROM modules WHERE file = ?1 AND env_id = ?2
                   ORDER BY recorded_at DESC LIMIT ?3)""",
                (module.file, env_id, max_keys),
            ).rowcount
        )

    def vacuum_bodies(self) -> int:
        """Delete bodies no record refers to; return how many were deleted."""
        with self._transaction() as db:
            return db.execute(_ORPHAN_BODIES).rowcount
