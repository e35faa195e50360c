"""The pass store: records of passes, in one SQLite file written in transactions.

A record says that test item ``nodeid`` passed under ``key``; it keeps the digests of the input
manifest and the environment (each JSON body stored once), the duration in seconds, the UTC time
as Unix seconds, and the ``HEAD`` commit of the run. Several keys per nodeid are kept, so
switching branches back and forth still finds a record; old ones are pruned by age and count.

Every write is one SQLite transaction (``BEGIN IMMEDIATE``), so two pytest processes can share a
store and a crash leaves the previous state readable. Only :mod:`sqlite3`; nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .records import (
    CorruptStoreError,
    Record,
    StoreBusyError,
    StoreError,
    classify_error,
    prune_by_count,
)
from .summaries import (
    SHARED_SCHEMA,
    ModuleSummary,
    StoredModule,
    chunks,
    incomplete_files,
    module_file,
    refresh_tallies,
    write_summary,
)

__all__ = ["CorruptStoreError", "Record", "Store", "StoreBusyError", "StoreError", "StoredModule"]

STORE_FORMAT = "4"  # 4: the shared_records table (SHARED_SCHEMA)
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
    recorded_at REAL NOT NULL,
    tally TEXT,
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
# A module summary's tally is derived from the records table: a JSON list of
# [markset, items, items with a record, their recorded seconds], one per mark set of its items
# (index -1: marks not known). Every transaction that adds or removes records recomputes it for
# the modules concerned, so a reader never joins module_items with records. NULL: not known.

_ORPHAN_BODIES = """DELETE FROM bodies WHERE id NOT IN (SELECT inputs_id FROM records UNION
    SELECT env_id FROM records UNION SELECT inputs_id FROM shared_records UNION
    SELECT env_id FROM shared_records)"""


class Store:
    """A pass store in the SQLite file at ``path`` (created with its directory when missing).

    Raises :class:`CorruptStoreError` when ``path`` holds something that is not a store of this
    format (the caller may then :meth:`discard` it and open a new one), :class:`StoreBusyError`
    when another process holds it locked for longer than ``timeout`` seconds, and
    :class:`StoreError` when its directory cannot be made or SQLite cannot open it for another
    reason (permissions, or a directory in its place).
    """

    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except OSError as error:  # a read-only checkout: the cache directory cannot be made
            raise StoreError(f"{path} cannot be created ({error})") from error
        except sqlite3.Error as error:  # not a file SQLite can open (a directory, no access)
            raise classify_error(path, error, "opened") from error
        try:
            self._prepare()
        except CorruptStoreError:
            self._connection.close()
            raise
        except sqlite3.Error as error:
            self._connection.close()
            found = classify_error(path, error, "opened")
            if type(found) is StoreError and isinstance(error, sqlite3.DatabaseError):
                found = CorruptStoreError(f"{path} is not a readable pass store ({error})")
            raise found from error

    def _prepare(self) -> None:
        # The common case reads one row and writes nothing; the schema is only created (or a
        # store of the previous format migrated) under a write lock.
        if self._format() == STORE_FORMAT:
            return
        with self._transaction() as db:
            found = self._format()
            if found in ("1", "2"):
                # Formats 1 and 2 kept module summaries in other columns; summaries are only a
                # cache of the records, so they are dropped and the records kept.
                for table in _SUMMARY_TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            elif found not in (None, "3", STORE_FORMAT):
                raise CorruptStoreError(
                    f"{self.path} is a pass store of format {found!r}, not {STORE_FORMAT} "
                    "(written by a newer pytest-unchanged?)"
                )
            for statement in filter(str.strip, (_SCHEMA + SHARED_SCHEMA).split(";")):
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

        Raises :class:`StoreError` (:class:`CorruptStoreError` when damaged) when the file
        cannot be read.
        """
        query = "SELECT nodeid, key, inputs_id, env_id, duration, passed_at, head FROM records"
        result: dict[str, dict[str, Record]] = {}
        try:
            if nodeids is None:
                rows = self._connection.execute(query).fetchall()
            else:
                wanted = list(dict.fromkeys(nodeids))
                rows = []
                for chunk, marks in chunks(wanted):
                    sql = f"{query} WHERE nodeid IN ({marks})"
                    rows += self._connection.execute(sql, chunk).fetchall()
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "read") from error
        for row in rows:
            record = Record(*row)
            result.setdefault(record.nodeid, {})[record.key] = record
        return result

    def body(self, body_id: str) -> str | None:
        """Return the JSON text stored under ``body_id`` (a manifest or environment digest)."""
        try:
            row = self._connection.execute(
                "SELECT body FROM bodies WHERE id = ?", (body_id,)
            ).fetchone()
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "read") from error
        return None if row is None else str(row[0])

    def module_candidates(self, env_id: str) -> dict[str, list[StoredModule]]:
        """Return the module summaries stored for environment ``env_id``, newest first per file.

        Reads the ``modules`` table only: which items have records was worked out when the
        records were written. Raises :class:`StoreError` when the file cannot be read.
        """
        query = """
            SELECT file, inputs_id, specs, marksets, tally FROM modules
            WHERE env_id = ? AND tally IS NOT NULL ORDER BY recorded_at DESC"""
        result: dict[str, list[StoredModule]] = {}
        try:
            rows = self._connection.execute(query, (env_id,)).fetchall()
            for file, inputs_id, specs, marksets, tally in rows:
                module = StoredModule(
                    file=file,
                    inputs_id=inputs_id,
                    specs_body=specs,
                    marksets=tuple(frozenset(names) for names in json.loads(marksets)),
                    tally=tuple(
                        (int(index), int(total), int(recorded), float(seconds))
                        for index, total, recorded, seconds in json.loads(tally)
                    ),
                )
                result.setdefault(file, []).append(module)
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "read") from error
        except (ValueError, TypeError) as error:
            raise CorruptStoreError(f"{self.path} holds a damaged summary ({error})") from error
        return result

    def failures(self, nodeids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Return ``{nodeid: {key: failed_at}}``: the keys under which ``nodeids`` last failed.

        A failure is forgotten when the same ``(nodeid, key)`` passes again. Raises
        :class:`StoreError` when the file cannot be read.
        """
        result: dict[str, dict[str, float]] = {}
        wanted = list(dict.fromkeys(nodeids))
        try:
            for chunk, marks in chunks(wanted):
                sql = "SELECT nodeid, key, failed_at FROM failures WHERE nodeid IN ({})"
                for nodeid, key, failed_at in self._connection.execute(sql.format(marks), chunk):
                    result.setdefault(nodeid, {})[key] = failed_at
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "read") from error
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
        forget: Iterable[str] = (),
        now: float | None = None,
    ) -> None:
        """Write passes, forget failed ``(nodeid, key)`` pairs and prune, in one transaction.

        ``bodies`` maps a digest to its JSON text; only those some pass refers to are stored.
        ``modules`` are summaries of the modules collected under environment ``env_id`` (see
        :mod:`pytest_unchanged.fastpath`). Pruning keeps the newest ``max_keys`` records of every
        nodeid and summaries of every module, and drops every record and summary older than
        ``max_age`` seconds. Every record of the nodeids in ``forget`` is removed (an item that
        failed where its key was not known, such as a crashed pytest-xdist worker).

        Raises :class:`StoreBusyError` when another process kept the write lock past the
        timeout, :class:`CorruptStoreError` when the file is damaged, :class:`StoreError` for
        anything else SQLite reports (a full disk, say); nothing is changed then.
        """
        now = time.time() if now is None else now
        passes = list(passes)
        failures = list(failures)
        modules = list(modules)
        forget = sorted(set(forget))
        used = {r.inputs_id for r in passes} | {r.env_id for r in passes}
        # The files whose summaries may see a record go in this transaction (new records only
        # matter to summaries that still miss some: see _refresh_modules).
        added = {module_file(r.nodeid) for r in passes}
        touched = {module_file(nodeid) for nodeid, _ in failures}
        touched.update(module_file(nodeid) for nodeid in forget)
        try:
            with self._transaction() as db:
                db.executemany("DELETE FROM records WHERE nodeid = ?", [(n,) for n in forget])
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
                    added,
                )
                if forget:
                    db.execute(_ORPHAN_BODIES)
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "written") from error

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
        added: set[str],
    ) -> None:
        dropped = 0
        for module in modules:
            inserted, pruned_modules = write_summary(db, module, env_id, now, max_keys)
            dropped += pruned_modules
            if inserted:
                touched.add(module.file)  # a summary whose specs did not change is up to date
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
        if db.execute("SELECT 1 FROM failures LIMIT 1").fetchone():
            db.executemany(
                "DELETE FROM failures WHERE nodeid = ? AND key = ?",
                [(r.nodeid, r.key) for r in passes],
            )
        db.execute("DELETE FROM failures WHERE failed_at < ?", (now - max_age,))
        # A record passed again under the same key within a day is left as it was: the same
        # key means the same inputs, and most rows of a rerun need no write at all.
        db.executemany(
            """INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (nodeid, key) DO UPDATE SET duration = excluded.duration,
                   passed_at = excluded.passed_at, head = excluded.head
               WHERE records.passed_at < excluded.passed_at - 86400""",
            [
                (r.nodeid, r.key, r.inputs_id, r.env_id, r.duration, r.passed_at, r.head)
                for r in passes
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO bodies VALUES (?, ?)",
            [(i, bodies[i]) for i in used if i in bodies],
        )
        pruned = prune_by_count(db, max_keys) if passes else set()
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
        refresh_tallies(db, touched | incomplete_files(db, added - touched))

    def vacuum_bodies(self) -> int:
        """Delete bodies no record refers to; return how many were deleted."""
        with self._transaction() as db:
            return db.execute(_ORPHAN_BODIES).rowcount
