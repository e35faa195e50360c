"""The pass store: records of passes, in one SQLite file written in transactions.

A record says that test item ``nodeid`` passed under ``key``, with the digests of its input
manifest and environment (each JSON body stored once), its duration (seconds), UTC time (Unix
seconds) and the run's ``HEAD``. Several keys per nodeid are kept, pruned by age and count; a
nodeid that is not UTF-8 text (a file name that is not) is never stored.

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

from .keys import utf8
from .passes import Names, name_hash, pack_key, split
from .records import (
    CorruptStoreError,
    Record,
    StoreBusyError,
    StoreError,
    classify_error,
)
from .store_format import STORE_FORMAT, migrate
from .summaries import (
    ModuleSummary,
    StoredModule,
    chunks,
    drop_orphan_lists,
    incomplete_files,
    module_file,
    refresh_tallies,
    write_summary,
)

__all__ = ["CorruptStoreError", "Record", "Store", "StoreBusyError", "StoreError", "StoredModule"]

# A module summary's tally is derived from the records: a JSON list of [markset, items, items
# with a record, their recorded seconds], one per mark set of its items (index -1: marks not
# known). Every transaction that adds or removes records recomputes it for the modules
# concerned, so a reader never reads the item lists. NULL: not known.

_ORPHAN_BODIES = """DELETE FROM bodies WHERE id NOT IN (SELECT value FROM digests UNION
    SELECT value FROM shared_digests)"""


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
        except StoreError:  # damaged, or of a newer format
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
        # store of an older format migrated) under a write lock.
        self._names = Names(self._connection)
        self._names.register()
        if self._format() == STORE_FORMAT:
            return
        with self._transaction() as db:
            migrate(db, self._names, self._format(), self.path)

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
        self._names.reset()  # another process may have written since
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            self._names.reset()
            raise
        db.execute("COMMIT")
        self._names.reset()  # a later read through the records view reads them afresh

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
        result: dict[str, dict[str, Record]] = {}
        names = self._names
        try:
            with self._read():
                files = names.files()
                found: list[Record] = []
                if nodeids is None:
                    for number in files.values():
                        found += names.records(number)
                else:
                    by_file: dict[str, list[str]] = {}
                    for nodeid in dict.fromkeys(nodeids):
                        by_file.setdefault(split(nodeid)[0], []).append(nodeid)
                    for file, wanted in by_file.items():
                        if file in files:
                            found += names.records(files[file], wanted)
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "read") from error
        for record in found:
            result.setdefault(record.nodeid, {})[record.key] = record
        return result

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """One read transaction (a consistent snapshot), with the interned names read afresh."""
        db = self._connection
        db.execute("BEGIN")
        self._names.reset()
        try:
            yield
        finally:
            db.execute("COMMIT")
            self._names.reset()

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
        passes, modules = [p for p in passes if utf8(p.nodeid)], list(modules)
        failures = [failure for failure in failures if utf8(failure[0])]
        forget = sorted(nodeid for nodeid in set(forget) if utf8(nodeid))
        # The files whose summaries may see a record go in this transaction (new records only
        # matter to summaries that still miss some: see incomplete_files).
        added = {module_file(r.nodeid) for r in passes}
        try:
            with self._transaction() as db:
                changed = self._forget(db, forget, failures)
                dropped = 0
                for module in modules:
                    inserted, pruned_modules = write_summary(db, module, env_id, now, max_keys)
                    dropped += pruned_modules
                    if inserted:
                        changed.add(module.file)  # a summary with the same specs is up to date
                dropped += db.execute(
                    "DELETE FROM modules WHERE recorded_at < ?", (now - max_age,)
                ).rowcount
                if dropped:
                    drop_orphan_lists(db)
                changed |= self._write(db, passes, failures, bodies, now, max_keys, max_age)
                refresh_tallies(db, changed | incomplete_files(db, added - changed))
        except sqlite3.Error as error:
            raise classify_error(self.path, error, "written") from error

    def _locate(self, nodeids: Iterable[str]) -> dict[int, set[int]]:
        """``{file id: {name hash}}`` of the stored ``nodeids`` (unknown ones left out)."""
        files = self._names.files()
        found: dict[int, set[int]] = {}
        for nodeid in nodeids:
            file, name = split(nodeid)
            if file in files:
                found.setdefault(files[file], set()).add(name_hash(name))
        return found

    def _forget(
        self, db: sqlite3.Connection, forget: list[str], failures: list[tuple[str, str]]
    ) -> set[str]:
        """Delete every record of ``forget`` and the failed ``(nodeid, key)`` pairs; record
        the failures. Return the files concerned."""
        located = self._locate(forget)
        db.executemany(
            "DELETE FROM passes WHERE file = ? AND name = ?",
            [(number, name) for number, hashes in located.items() for name in hashes],
        )
        files = self._names.files()
        doomed = []
        for nodeid, key in failures:
            file, name = split(nodeid)
            if file in files:
                doomed.append((files[file], name_hash(name), pack_key(key)))
        db.executemany("DELETE FROM passes WHERE file = ? AND name = ? AND key = ?", doomed)
        self._deleted = set(located) | {number for number, _, _ in doomed}
        return {module_file(nodeid) for nodeid in forget} | {
            module_file(nodeid) for nodeid, _ in failures
        }

    def _write(
        self,
        db: sqlite3.Connection,
        passes: list[Record],
        failures: list[tuple[str, str]],
        bodies: Mapping[str, str],
        now: float,
        max_keys: int,
        max_age: float,
    ) -> set[str]:
        """Write passes and failures, prune; return the files whose records were pruned."""
        names = self._names
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
        located = names.add(r.nodeid for r in passes)
        # A record passed again under the same key within a day is left as it was: the same
        # key means the same inputs, and most rows of a rerun need no write at all.
        db.executemany(
            """INSERT INTO passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (file, name, key) DO UPDATE SET duration = excluded.duration,
                   passed_at = excluded.passed_at, head = excluded.head
               WHERE passes.passed_at < excluded.passed_at - 86400""",
            [
                (
                    *located[r.nodeid],
                    pack_key(r.key),
                    names.intern(r.inputs_id),
                    names.intern(r.env_id),
                    r.duration,
                    r.passed_at,
                    None if r.head is None else names.intern(r.head),
                )
                for r in passes
            ],
        )
        used = {r.inputs_id for r in passes} | {r.env_id for r in passes}
        db.executemany(
            "INSERT OR IGNORE INTO bodies VALUES (?, ?)",
            [(i, bodies[i]) for i in used if i in bodies],
        )
        pruned = prune_by_count(db, max_keys) if passes else set()
        pruned.update(
            number
            for (number,) in db.execute(
                "SELECT DISTINCT file FROM passes WHERE passed_at < ?", (now - max_age,)
            )
        )
        if pruned:
            db.execute("DELETE FROM passes WHERE passed_at < ?", (now - max_age,))
        deleted = pruned | self._deleted
        if deleted:
            file_names = {number: file for file, number in names.files().items()}
            touched = {file_names[number] for number in pruned if number in file_names}
            names.compact(deleted)
            db.execute(_ORPHAN_BODIES)
            return touched
        return set()

    def vacuum_bodies(self) -> int:
        """Delete bodies no record refers to; return how many were deleted."""
        with self._transaction() as db:
            return db.execute(_ORPHAN_BODIES).rowcount


def prune_by_count(db: sqlite3.Connection, max_keys: int) -> set[int]:
    """Keep the newest ``max_keys`` records of every nodeid; return the file ids pruned."""
    # One scan of the primary key finds the few nodeids over the limit; only those are pruned.
    crowded = db.execute(
        "SELECT file, name FROM passes GROUP BY file, name HAVING count(*) > ?", (max_keys,)
    ).fetchall()
    for number, name in crowded:
        db.execute(
            """DELETE FROM passes WHERE file = :file AND name = :name AND key NOT IN (
                   SELECT key FROM passes WHERE file = :file AND name = :name
                   ORDER BY passed_at DESC LIMIT :keep)""",
            {"file": number, "name": name, "keep": max_keys},
        )
    return {number for number, _ in crowded}
