"""Records from other sources in the store: fetched from a git ref or imported from a file.

A local pass (source ``""``) lives in the store's ``passes`` table (read through the
``records`` view). A record fetched or imported keeps the name of its source and lives in the
shared table (one row per test file and source: :mod:`pytest_unchanged.shared_table`), apart
from the local ones, for two reasons:

* Module summaries (the fast path, :mod:`pytest_unchanged.summaries`) count local records
  only, so a shared record never lets a module go unimported; the fast path stays a
  conservative copy of the slow path, which reads shared records as below.
* Selection reads a shared record only when its source is trusted (ini option
  ``unchanged_trusted_sources`` or ``--unchanged-trust``) and no local failure of the same
  ``(nodeid, key)`` is stored: a test that failed here runs again whatever another machine saw.

This module reads and writes it for the store's users; :mod:`pytest_unchanged.shared_table`
holds its schema and encoding, which the store (:mod:`pytest_unchanged.store_format`) creates.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter

from . import shared_table as table
from .columns import Columns
from .exchange_v1 import Row
from .keys import utf8
from .records import CorruptStoreError, Record, classify_error
from .store import Store
from .summaries import chunks

__all__ = [
    "SourceStats",
    "add_shared",
    "all_records",
    "bodies_by_id",
    "bodies_of",
    "forget_matching",
    "local_rows",
    "matches",
    "source_stats",
    "trusted_records",
]

_COLUMNS = "nodeid, key, inputs_id, env_id, duration, passed_at, head"


def _connection(store: Store) -> sqlite3.Connection:
    return store._connection  # the store's own handle; store.py stays within its size limit


@contextlib.contextmanager
def _transaction(store: Store) -> Iterator[sqlite3.Connection]:
    # The store's own transaction, with SQLite's errors classified as the store's.
    try:
        with store._transaction() as db:
            yield db
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "written") from error


@contextlib.contextmanager
def _reading(store: Store) -> Iterator[sqlite3.Connection]:
    """One read transaction on the store (its statements see one state, whatever another
    process writes meanwhile); SQLite's errors, and a shared row that does not decode, raised
    as the store's errors."""
    db = _connection(store)
    try:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise CorruptStoreError(
            f"{store.path} holds a damaged shared record ({error!r})"
        ) from error


def trusted_records(
    store: Store, nodeids: Iterable[str], sources: Iterable[str]
) -> dict[str, dict[str, Record]]:
    """Return ``{nodeid: {key: Record}}``: the shared records of ``nodeids`` from ``sources``.

    A record whose ``(nodeid, key)`` has a stored local failure is left out. When several
    sources hold the same ``(nodeid, key)``, the newest pass is returned. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read.
    """
    trusted = sorted({s for s in sources if s})
    by_file: dict[str, set[str]] = {}
    for nodeid in dict.fromkeys(nodeids):
        by_file.setdefault(nodeid.split("::", 1)[0], set()).add(nodeid)
    result: dict[str, dict[str, Record]] = {}
    if not trusted or not by_file:
        return result
    marks = ", ".join("?" * len(trusted))
    found: list[Record] = []
    with _reading(store) as db:
        rows = []
        for chunk, chunk_marks in chunks(sorted(by_file)):
            where = f"WHERE source IN ({marks}) AND file IN ({chunk_marks})"
            rows += table.read_rows(db, where, [*trusted, *chunk])
        values = table.values_of(db, set().union(*map(table.digest_ids, rows)))
        for row in rows:
            found += table.decode(row, values).records(by_file[str(row[0])].__contains__)
    failed = store.failures(sorted({r.nodeid for r in found}))
    for record in sorted(found, key=attrgetter("passed_at")):
        if record.key not in failed.get(record.nodeid, {}):
            result.setdefault(record.nodeid, {})[record.key] = record  # newest wins
    return result


def matches(nodeid: str, patterns: Iterable[str]) -> bool:
    """Whether ``nodeid`` equals one of ``patterns`` or matches it as an :mod:`fnmatch` glob."""
    return any(nodeid == p or fnmatch.fnmatchcase(nodeid, p) for p in patterns)


def all_records(store: Store, patterns: Iterable[str] = ()) -> list[Record]:
    """Return every record, local and shared, of the nodeids matching ``patterns`` (all when
    empty), sorted by nodeid, source and key. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read."""
    wanted = list(patterns)
    test = (lambda nodeid: matches(nodeid, wanted)) if wanted else None
    with _reading(store) as db:
        rows = db.execute(f"SELECT {_COLUMNS}, '' FROM records")
        found = [Record(*row) for row in rows if test is None or test(row[0])]
        shared = table.read_rows(db)
        values = table.values_of(db, set().union(*map(table.digest_ids, shared)))
        for row in shared:
            found += table.decode(row, values).records(test)
    return sorted(found, key=lambda r: (r.nodeid, r.source, r.key))


def local_rows(store: Store) -> list[Row]:
    """Return the local records (this machine's passes) as rows with source ``""``, in the
    ``records`` table's order; those of a nodeid that is not UTF-8 text are left out. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read."""
    try:
        query = f"SELECT '', {_COLUMNS} FROM records"
        return [row for row in _connection(store).execute(query) if utf8(row[1])]
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error


def bodies_of(store: Store, records: Iterable[Record]) -> dict[str, str]:
    """Return the stored bodies (manifests, environment facets) ``records`` refer to."""
    records = list(records)
    return bodies_by_id(store, {r.inputs_id for r in records} | {r.env_id for r in records})


def bodies_by_id(store: Store, ids: Iterable[str]) -> dict[str, str]:
    """Return the stored bodies whose ids are in ``ids`` (those stored)."""
    wanted = sorted(ids)
    found: dict[str, str] = {}
    try:
        for chunk, marks in chunks(wanted):
            sql = f"SELECT id, body FROM bodies WHERE id IN ({marks})"
            found.update(_connection(store).execute(sql, chunk).fetchall())
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
    return found


def add_shared(
    store: Store,
    batches: Iterable[Columns],
    bodies: Mapping[str, str],
    *,
    max_keys: int,
    max_age: float,
    now: float,
) -> int:
    """Add shared records ``batches`` (:class:`~pytest_unchanged.columns.Columns`, each of a
    non-empty source) and their ``bodies`` in one transaction; a record already stored under
    the same ``(nodeid, key, source)`` keeps the newer pass. Then prune the shared records
    like local ones: those of the sources of ``batches`` to the newest ``max_keys`` per
    nodeid and source, and every one older than ``max_age`` seconds before ``now``.

    Return how many records were new. Raises :class:`ValueError` for a batch without a
    source, :class:`~pytest_unchanged.records.StoreError` when the store cannot be written
    (nothing is changed then).
    """
    batches = [columns for columns in batches if columns.nodeids]
    for columns in batches:
        if not columns.source:
            raise ValueError(f"a shared record of {columns.nodeids[0]} has no source")
    with _transaction(store) as db:
        added = table.add(db, batches, max_keys=max_keys, cutoff=now - max_age)
        db.executemany("INSERT OR IGNORE INTO bodies VALUES (?, ?)", sorted(bodies.items()))
    return added


def forget_matching(store: Store, patterns: Iterable[str]) -> list[Record]:
    """Drop every record, local and shared, of the nodeids matching ``patterns``; return the
    records dropped. Local records go through :meth:`Store.update` ``forget=``, which also
    refreshes the module summaries that counted them (the fast path must not rely on them).
    Raises :class:`~pytest_unchanged.records.StoreError` when the store cannot be written."""
    wanted = list(patterns)
    local = [r for r in all_records(store, wanted) if not r.source]
    store.update(
        [], [], {}, max_keys=1 << 30, max_age=float("inf"),
        forget=sorted({r.nodeid for r in local}),
    )  # fmt: skip
    with _transaction(store) as db:
        shared = table.drop_tests(db, lambda nodeid: matches(nodeid, wanted))
        db.execute("DELETE FROM meta WHERE name LIKE 'fetched %'")  # the next fetch reads all
    return sorted(local + shared, key=lambda r: (r.nodeid, r.source, r.key))


@dataclass(frozen=True)
class SourceStats:
    """Counts of one source (``""``: local): records, nodeids, environments, and the oldest and
    newest pass in Unix seconds."""

    source: str
    records: int
    nodeids: int
    environments: int
    oldest: float
    newest: float


def source_stats(store: Store) -> list[SourceStats]:
    """Return the counts of every source in the store, local first. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read."""
    local = """SELECT * FROM (SELECT '', count(*) AS n, count(DISTINCT nodeid),
                   count(DISTINCT env_id), min(passed_at), max(passed_at) FROM records)
               WHERE n > 0"""
    shared = """SELECT source, sum(records), sum(tests), min(oldest), max(newest)
                FROM shared_files GROUP BY source ORDER BY source"""
    with _reading(store) as db:
        found = [SourceStats(*row) for row in db.execute(local)]
        rows = db.execute(shared).fetchall()
        envs = _shared_environments(db)
    for source, records, nodeids, oldest, newest in rows:
        found.append(SourceStats(source, records, nodeids, len(envs[source]), oldest, newest))
    return found


def _shared_environments(db: sqlite3.Connection) -> dict[str, set[str]]:
    """``{source: {env_id}}`` of the shared records."""
    ids: dict[str, set[int]] = {}
    for source, envs in db.execute("SELECT source, envs FROM shared_files"):
        ids.setdefault(source, set()).update(table.unpack_ids(envs))
    values = table.values_of(db, set().union(*ids.values()))
    return {source: {values[i] for i in found} for source, found in ids.items()}


def count_environments(store: Store) -> int:
    """Return how many distinct environments (``env_id``) the store's records were made in."""
    with _reading(store) as db:
        local = {env_id for (env_id,) in db.execute("SELECT DISTINCT env_id FROM records")}
        shared = _shared_environments(db)
    return len(local.union(*shared.values()))


def local_fingerprint(store: Store) -> str:
    """A digest of the local records that changes whenever one is added, replaced or dropped
    (their count, the sum and the maximum of their pass times)."""
    # From the table, not the records view: the view names every row (a Python call each).
    query = "SELECT count(*), total(passed_at), max(passed_at) FROM passes"
    try:
        return repr(tuple(_connection(store).execute(query).fetchone()))
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error


def get_mark(store: Store, name: str) -> str | None:
    """Return the value of ``name`` in the store's ``meta`` table (push and fetch marks)."""
    try:
        row = _connection(store).execute("SELECT value FROM meta WHERE name = ?", (name,))
        found = row.fetchone()
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
    return None if found is None else str(found[0])


def set_mark(store: Store, name: str, value: str | None) -> None:
    """Set (``None``: drop) ``name`` in the store's ``meta`` table."""
    with _transaction(store) as db:
        if value is None:
            db.execute("DELETE FROM meta WHERE name = ?", (name,))
        else:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
