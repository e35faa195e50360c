"""Records from other sources in the store: fetched from a git ref or imported from a file.

A local pass (source ``""``) lives in the store's ``records`` table. A record fetched or
imported keeps the name of its source and lives in ``shared_records``, apart from the local
ones, for two reasons:

* Module summaries (the fast path, :mod:`pytest_unchanged.summaries`) count local records
  only, so a shared record never lets a module go unimported; the fast path stays a
  conservative copy of the slow path, which reads shared records as below.
* Selection reads a shared record only when its source is trusted (ini option
  ``unchanged_trusted_sources`` or ``--unchanged-trust``) and no local failure of the same
  ``(nodeid, key)`` is stored: a test that failed here runs again whatever another machine saw.

This module holds the SQL on that table; :mod:`pytest_unchanged.records` its schema, which the
store (:mod:`pytest_unchanged.store`) creates.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter

from .exchange_v1 import Row
from .keys import utf8
from .records import Record, classify_error
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


def trusted_records(
    store: Store, nodeids: Iterable[str], sources: Iterable[str]
) -> dict[str, dict[str, Record]]:
    """Return ``{nodeid: {key: Record}}``: the shared records of ``nodeids`` from ``sources``.

    A record whose ``(nodeid, key)`` has a stored local failure is left out. When several
    sources hold the same ``(nodeid, key)``, the newest pass is returned. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read.
    """
    trusted = sorted({s for s in sources if s})
    wanted = list(dict.fromkeys(nodeids))
    result: dict[str, dict[str, Record]] = {}
    if not trusted or not wanted:
        return result
    marks = ", ".join("?" * len(trusted))
    query = f"""SELECT {_COLUMNS}, source FROM shared_records s WHERE source IN ({marks})
        AND NOT EXISTS (SELECT 1 FROM failures f WHERE f.nodeid = s.nodeid AND f.key = s.key)
        AND nodeid IN ({{}}) ORDER BY passed_at"""
    try:
        for chunk, chunk_marks in chunks(wanted):
            rows = _connection(store).execute(query.format(chunk_marks), [*trusted, *chunk])
            for row in rows:
                record = Record(*row)
                result.setdefault(record.nodeid, {})[record.key] = record  # newest wins
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
    return result


def matches(nodeid: str, patterns: Iterable[str]) -> bool:
    """Whether ``nodeid`` equals one of ``patterns`` or matches it as an :mod:`fnmatch` glob."""
    return any(nodeid == p or fnmatch.fnmatchcase(nodeid, p) for p in patterns)


def all_records(store: Store, patterns: Iterable[str] = ()) -> list[Record]:
    """Return every record, local and shared, of the nodeids matching ``patterns`` (all when
    empty), sorted by nodeid, source and key. Raises
    :class:`~pytest_unchanged.records.StoreError` when the store cannot be read."""
    wanted = list(patterns)
    try:
        rows = _connection(store).execute(
            f"SELECT {_COLUMNS}, '' FROM records UNION ALL "
            f"SELECT {_COLUMNS}, source FROM shared_records"
        )
        found = [Record(*row) for row in rows if not wanted or matches(row[0], wanted)]
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
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
    rows: Iterable[Row],
    bodies: Mapping[str, str],
    *,
    max_keys: int,
    max_age: float,
    now: float,
) -> int:
    """Add shared records ``rows`` (:data:`~pytest_unchanged.exchange_v1.Row`, each with its
    non-empty source) and their ``bodies`` in one transaction; a record already stored under
    the same ``(nodeid, key, source)`` keeps the newer pass. Then prune the shared records of
    those sources like local ones: the newest ``max_keys`` per nodeid and source, none older
    than ``max_age`` seconds before ``now``.

    Return how many records were new. Raises :class:`ValueError` for a record without a
    source, :class:`~pytest_unchanged.records.StoreError` when the store cannot be written
    (nothing is changed then).
    """
    # In the table's primary key order: each insert appends to the B-tree instead of landing
    # on a random page (several times faster on a store larger than SQLite's page cache).
    rows = sorted(rows, key=itemgetter(1, 2, 0))
    sources = sorted({row[0] for row in rows})
    if "" in sources:
        nodeid = next(row[1] for row in rows if not row[0])
        raise ValueError(f"a shared record of {nodeid} has no source")
    with _transaction(store) as db:
        before = db.total_changes
        # New rows first (INSERT OR IGNORE counts exactly the rows added), then the newer
        # passes of rows already stored; one executemany each, in the one transaction.
        db.executemany("INSERT OR IGNORE INTO shared_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        added = db.total_changes - before
        if added < len(rows):
            db.executemany(
                """UPDATE shared_records SET duration = ?1, passed_at = ?2, head = ?3
                   WHERE source = ?4 AND nodeid = ?5 AND key = ?6 AND passed_at < ?2""",
                [(d, p, h, s, n, k) for s, n, k, _, _, d, p, h in rows],
            )
        db.executemany("INSERT OR IGNORE INTO bodies VALUES (?, ?)", sorted(bodies.items()))
        db.execute("DELETE FROM shared_records WHERE passed_at < ?", (now - max_age,))
        for source in sources:
            crowded = db.execute(
                """SELECT nodeid FROM shared_records WHERE source = ?
                   GROUP BY nodeid HAVING count(*) > ?""",
                (source, max_keys),
            ).fetchall()
            db.executemany(
                """DELETE FROM shared_records WHERE source = :source AND nodeid = :nodeid
                   AND key NOT IN (SELECT key FROM shared_records WHERE source = :source
                       AND nodeid = :nodeid ORDER BY passed_at DESC LIMIT :keep)""",
                [{"source": source, "nodeid": n, "keep": max_keys} for (n,) in crowded],
            )
    return added


def forget_matching(store: Store, patterns: Iterable[str]) -> list[Record]:
    """Drop every record, local and shared, of the nodeids matching ``patterns``; return the
    records dropped. Local records go through :meth:`Store.update` ``forget=``, which also
    refreshes the module summaries that counted them (the fast path must not rely on them).
    Raises :class:`~pytest_unchanged.records.StoreError` when the store cannot be written."""
    wanted = list(patterns)
    found = all_records(store, wanted)
    local = sorted({r.nodeid for r in found if not r.source})
    shared = sorted({r.nodeid for r in found if r.source})
    store.update([], [], {}, max_keys=1 << 30, max_age=float("inf"), forget=local)
    with _transaction(store) as db:
        db.executemany("DELETE FROM shared_records WHERE nodeid = ?", [(n,) for n in shared])
        db.execute("DELETE FROM meta WHERE name LIKE 'fetched %'")  # the next fetch reads all
    return found


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
    query = """SELECT source, count(*), count(DISTINCT nodeid), count(DISTINCT env_id),
                      min(passed_at), max(passed_at)
               FROM (SELECT '' AS source, nodeid, env_id, passed_at FROM records
                     UNION ALL SELECT source, nodeid, env_id, passed_at FROM shared_records)
               GROUP BY source ORDER BY source"""
    try:
        rows = _connection(store).execute(query).fetchall()
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error
    return [SourceStats(*row) for row in rows]


def count_environments(store: Store) -> int:
    """Return how many distinct environments (``env_id``) the store's records were made in."""
    query = """SELECT count(*) FROM (SELECT env_id FROM records
               UNION SELECT env_id FROM shared_records)"""
    try:
        return int(_connection(store).execute(query).fetchone()[0])
    except sqlite3.Error as error:
        raise classify_error(store.path, error, "read") from error


def local_fingerprint(store: Store) -> str:
    """A digest of the local records that changes whenever one is added, replaced or dropped
    (their count, the sum and the maximum of their pass times)."""
    query = "SELECT count(*), total(passed_at), max(passed_at) FROM records"
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
