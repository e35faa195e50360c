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
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CorruptStoreError", "Record", "Store"]

STORE_FORMAT = "1"
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
"""


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
        with self._transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
            elif row[0] != STORE_FORMAT:
                raise sqlite3.DatabaseError(f"store format {row[0]!r}, expected {STORE_FORMAT}")
            db.execute("SELECT count(*) FROM records").fetchone()

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

    def update(
        self,
        passes: Iterable[Record],
        failures: Iterable[tuple[str, str]],
        bodies: Mapping[str, str],
        *,
        max_keys: int,
        max_age: float,
        now: float | None = None,
    ) -> None:
        """Write passes, forget failed ``(nodeid, key)`` pairs and prune, in one transaction.

        ``bodies`` maps a digest to its JSON text; only those some pass refers to are stored.
        Pruning keeps the newest ``max_keys`` records of each written nodeid and drops every
        record older than ``max_age`` seconds.
        """
        now = time.time() if now is None else now
        passes = list(passes)
        used = {r.inputs_id for r in passes} | {r.env_id for r in passes}
        with self._transaction() as db:
            db.executemany("DELETE FROM records WHERE nodeid = ? AND key = ?", list(failures))
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
            db.executemany(
                """DELETE FROM records WHERE nodeid = ?1 AND key NOT IN (
                       SELECT key FROM records WHERE nodeid = ?1
                       ORDER BY passed_at DESC LIMIT ?2)""",
                [(nodeid, max_keys) for nodeid in {r.nodeid for r in passes}],
            )
            db.execute("DELETE FROM records WHERE passed_at < ?", (now - max_age,))

    def vacuum_bodies(self) -> int:
        """Delete bodies no record refers to; return how many were deleted."""
        with self._transaction() as db:
            cursor = db.execute(
                """DELETE FROM bodies WHERE id NOT IN (SELECT inputs_id FROM records)
                   AND id NOT IN (SELECT env_id FROM records)"""
            )
            return cursor.rowcount
