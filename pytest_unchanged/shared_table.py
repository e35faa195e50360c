"""The shared table (store format 6): records of other sources, one row per test file and source.

A fetch of a large ref brings hundreds of thousands of records at once, and selection reads
them by test file, so they are kept as pytest-unchanged reads and writes them: the row of
``(file, source)`` holds every record of the tests of that file (the part of a nodeid before
its first ``::``), in columns (see :class:`~pytest_unchanged.columns.Columns`):

* ``names``: the rest of each nodeid after ``file``, UTF-8, separated by NUL (a nodeid holds
  no NUL: the exchange refuses it); ``counts``: how many records each has (uint32);
* per record, in test order: ``keys`` (32 raw bytes each), ``envs``, ``heads`` and
  ``inputs`` (uint32 ids into ``shared_digests``; 0: no ``HEAD`` commit, inputs not
  shipped), ``durations`` and ``passed`` (float64 seconds); all little-endian;
* ``tests``, ``records``, ``most`` (the most records of one test), ``oldest`` and ``newest``
  (pass times), so pruning and ``records stats`` find their rows without reading the columns.

A fetch of 62,000 tests writes some 600 rows instead of half a million, so it costs a few
blob copies per file, and no Python object per record (see :mod:`~pytest_unchanged.columns`).
A row is rewritten whole when records are added to, or pruned from, its file: a fetch touches
the files of the shards that changed. The digests interned in ``shared_digests`` are the ids
of the bodies (environment facets, input manifests) shared records refer to, so the store
keeps those bodies (see ``_ORPHAN_BODIES`` in :mod:`pytest_unchanged.store`).
"""

from __future__ import annotations

import re
import sqlite3
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain

from .columns import KEY_BYTES, Columns, from_rows, merge
from .records import Record

__all__ = [
    "SHARED_SCHEMA",
    "Digests",
    "add",
    "compact",
    "decode",
    "drop_tests",
    "migrate_records",
    "read_rows",
]

SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_files (
    file TEXT NOT NULL,
    source TEXT NOT NULL,
    tests INTEGER NOT NULL,
    records INTEGER NOT NULL,
    most INTEGER NOT NULL,
    oldest REAL NOT NULL,
    newest REAL NOT NULL,
    names BLOB NOT NULL,
    counts BLOB NOT NULL,
    keys BLOB NOT NULL,
    envs BLOB NOT NULL,
    heads BLOB NOT NULL,
    inputs BLOB NOT NULL,
    durations BLOB NOT NULL,
    passed BLOB NOT NULL,
    PRIMARY KEY (file, source)
);
CREATE TABLE IF NOT EXISTS shared_digests (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
"""

COLUMNS = "file, source, names, counts, keys, envs, heads, inputs, durations, passed"
_SWAP = sys.byteorder == "big"  # the blobs are little-endian, whatever machine wrote them
assert array("I").itemsize == 4 and array("d").itemsize == 8


def _pack(code: str, values: Iterable[float]) -> bytes:
    found = array(code, values)
    if _SWAP:
        found.byteswap()
    return found.tobytes()


def _unpack(code: str, data: bytes) -> array[int] | array[float]:
    found: array[int] | array[float] = array(code)
    found.frombytes(data)
    if _SWAP:
        found.byteswap()
    return found


class Digests:
    """The ids of ``shared_digests`` on one connection, inside one transaction or read."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.ids: dict[str | None, int] = dict(db.execute("SELECT value, id FROM shared_digests"))

    def intern(self, values: Iterable[str | None]) -> dict[str | None, int]:
        """Add the digests among ``values`` not interned yet; return ``{digest: id}`` with
        ``None`` and ``""`` as 0."""
        missing = sorted({value for value in values if value} - self.ids.keys())
        if missing:
            (top,) = self.db.execute("SELECT coalesce(max(id), 0) FROM shared_digests").fetchone()
            self.db.executemany(
                "INSERT INTO shared_digests (value) VALUES (?)", [(value,) for value in missing]
            )
            self.ids.update(
                self.db.execute("SELECT value, id FROM shared_digests WHERE id > ?", (top,))
            )
        self.ids[None] = self.ids[""] = 0
        return self.ids

    def values(self) -> dict[int, str]:
        """``{id: digest}`` of every interned digest."""
        return {number: value for value, number in self.ids.items() if value}


def values_of(db: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """``{id: digest}`` of the interned ``ids`` (0 left out)."""
    wanted = sorted(set(ids) - {0})
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT id, value FROM shared_digests WHERE id IN ({marks})"
        found.update(db.execute(sql, chunk))
    return found


def _files(columns: Columns) -> list[tuple[str, int, int]]:
    """``(file, first test, end)`` of each file of ``columns``, in order."""
    files = [nodeid.split("::", 1)[0] for nodeid in columns.nodeids]
    groups = []
    start = 0
    for end in range(1, len(files) + 1):
        if end == len(files) or files[end] != files[start]:
            groups.append((files[start], start, end))
            start = end
    return groups


class _Packed:
    """The per-record columns of a :class:`Columns` packed once (digests as ids), so the row
    of each file is a few slices."""

    def __init__(self, columns: Columns, ids: Mapping[str | None, int]) -> None:
        get = ids.__getitem__
        self.columns = columns
        self.starts = columns.offsets()
        self.envs = _pack("I", map(get, columns.envs))
        self.heads = _pack("I", map(get, columns.heads))
        shipped = any(columns.inputs)  # a ref does not ship them: all 0
        self.inputs = _pack("I", map(get, columns.inputs)) if shipped else bytes(4 * len(columns))
        self.durations = _pack("d", columns.durations)
        self.passed = _pack("d", columns.passed)

    def row(self, file: str, a: int, b: int) -> tuple[object, ...]:
        """The ``shared_files`` row of the tests ``a`` to ``b`` (all those of ``file``)."""
        columns = self.columns
        ea, eb = self.starts[a], self.starts[b]
        passed = columns.passed[ea:eb]
        return (
            file, columns.source, b - a, eb - ea, max(columns.counts[a:b]), min(passed),
            max(passed),
            "\0".join([nodeid[len(file) :] for nodeid in columns.nodeids[a:b]]).encode(),
            _pack("I", columns.counts[a:b]),
            columns.keys[KEY_BYTES * ea : KEY_BYTES * eb],
            self.envs[4 * ea : 4 * eb], self.heads[4 * ea : 4 * eb],
            self.inputs[4 * ea : 4 * eb], self.durations[8 * ea : 8 * eb],
            self.passed[8 * ea : 8 * eb],
        )  # fmt: skip


def decode(row: Sequence[object], values: Mapping[int, str]) -> Columns:
    """The :class:`Columns` of a ``shared_files`` row read as :data:`COLUMNS`; ``values`` maps
    the digest ids it uses to their digests.

    Raises :class:`ValueError` (or :class:`KeyError`, :class:`TypeError`) when the row is
    damaged: columns of different lengths, a digest id not interned."""
    file, source, names, counts, keys, envs, heads, inputs, durations, passed = row
    if not isinstance(names, bytes) or not isinstance(keys, bytes):
        raise TypeError(f"the shared row of {file} holds text where blobs belong")
    heads_at: dict[int, str | None] = {0: None, **values}
    inputs_at: dict[int, str] = {0: "", **values}
    found = Columns(
        str(source),
        [f"{file}{rest}" for rest in names.decode().split("\0")],
        list(_unpack("I", counts)),  # type: ignore[arg-type]
        keys,
        list(map(values.__getitem__, _unpack("I", envs))),  # type: ignore[arg-type]
        list(map(heads_at.__getitem__, _unpack("I", heads))),  # type: ignore[arg-type]
        list(map(inputs_at.__getitem__, _unpack("I", inputs))),  # type: ignore[arg-type]
        list(_unpack("d", durations)),  # type: ignore[arg-type]
        list(_unpack("d", passed)),  # type: ignore[arg-type]
    )
    size = len(found)
    lengths = {len(found.heads), len(found.inputs), len(found.durations), len(found.passed)}
    if (
        len(found.nodeids) != len(found.counts)
        or sum(found.counts) != size
        or len(keys) != KEY_BYTES * size
        or lengths != {size}
    ):
        raise ValueError(f"the shared row of {file} and {source} has columns of other lengths")
    return found


def unpack_ids(column: bytes) -> array[int]:
    """The digest ids of a row's ``envs``, ``heads`` or ``inputs`` column."""
    return _unpack("I", column)  # type: ignore[return-value]


def digest_ids(row: Sequence[object]) -> set[int]:
    """The digest ids a ``shared_files`` row (read as :data:`COLUMNS`) refers to."""
    found: set[int] = set()
    for column in row[5:8]:
        found.update(unpack_ids(column))  # type: ignore[arg-type]
    return found


def _write(
    db: sqlite3.Connection, columns: Columns | None, digests: Digests, file: str, source: str
) -> None:
    if columns is None:
        db.execute("DELETE FROM shared_files WHERE file = ? AND source = ?", (file, source))
        return
    ids = digests.intern(chain(set(columns.envs), set(columns.heads), set(columns.inputs)))
    row = _Packed(columns, ids).row(file, 0, len(columns.nodeids))
    db.execute(f"INSERT OR REPLACE INTO shared_files VALUES ({','.join('?' * 15)})", row)


def read_rows(
    db: sqlite3.Connection, where: str = "", parameters: Sequence[object] = ()
) -> list[tuple[object, ...]]:
    """The ``shared_files`` rows (as :data:`COLUMNS`) matching the SQL ``where``."""
    sql = f"SELECT {COLUMNS} FROM shared_files {where}"
    return db.execute(sql, parameters).fetchall()


def add(db: sqlite3.Connection, batches: Iterable[Columns], *, max_keys: int, cutoff: float) -> int:
    """Add the records of ``batches`` (one source each, not ``""``) in the caller's
    transaction (see :func:`merge`); then prune the rows of every source of records passed
    before ``cutoff``, and those of the sources of ``batches`` holding a test of more than
    ``max_keys`` records. Return how many records were new."""
    digests = Digests(db)
    added, dropped = 0, False
    written: set[tuple[str, str]] = set()
    sources: set[str] = set()
    for columns in batches:
        source = columns.source
        sources.add(source)
        groups = _files(columns)
        if len({file for file, _, _ in groups}) != len(groups):  # a file's tests apart
            columns = from_rows(columns.rows())[0]
            groups = _files(columns)
        present = {
            f for (f,) in db.execute("SELECT file FROM shared_files WHERE source = ?", (source,))
        }
        ids = digests.intern(chain(set(columns.envs), set(columns.heads), set(columns.inputs)))
        packed = _Packed(columns, ids)
        starts = packed.starts
        fresh = []
        for file, a, b in groups:
            written.add((file, source))
            ea, eb = starts[a], starts[b]
            row = packed.row(file, a, b) if file not in present else None
            if row is not None and row[4] <= max_keys and row[5] >= cutoff:  # type: ignore[operator]
                fresh.append(row)
                added += eb - ea
                continue
            old = None
            if file in present:
                (row,) = read_rows(db, "WHERE file = ? AND source = ?", (file, source))
                old = decode(row, values_of(db, digest_ids(row)))
            merged, new, pruned = merge(
                old, columns.slice(a, b, starts), max_keys=max_keys, cutoff=cutoff
            )
            added += new
            dropped |= pruned
            _write(db, merged, digests, file, source)
        db.executemany(f"INSERT INTO shared_files VALUES ({','.join('?' * 15)})", fresh)
    marks = ",".join("?" * len(sources))
    crowded = read_rows(
        db,
        f"WHERE oldest < ? OR (most > ? AND source IN ({marks}))",
        (cutoff, max_keys, *sorted(sources)),
    )
    for row in crowded:
        file, source = str(row[0]), str(row[1])
        if (file, source) in written:
            continue
        merged, _, pruned = merge(
            decode(row, values_of(db, digest_ids(row))), None, max_keys=max_keys, cutoff=cutoff
        )
        dropped |= pruned
        _write(db, merged, digests, file, source)
    if dropped:
        compact(db)
    return added


def compact(db: sqlite3.Connection) -> None:
    """Drop the interned digests no row refers to any more."""
    used: set[int] = set()
    for row in db.execute("SELECT envs, heads, inputs FROM shared_files"):
        for column in row:
            used.update(_unpack("I", column))  # type: ignore[arg-type]
    unused = [(n,) for (n,) in db.execute("SELECT id FROM shared_digests") if n not in used]
    db.executemany("DELETE FROM shared_digests WHERE id = ?", unused)


def drop_tests(db: sqlite3.Connection, doomed: Callable[[str], bool]) -> list[Record]:
    """Delete every shared record of the nodeids for which ``doomed`` is true, in the
    caller's transaction; return them."""
    rows = read_rows(db)
    values = values_of(db, set().union(*map(digest_ids, rows))) if rows else {}
    digests = Digests(db)
    found: list[Record] = []
    for row in rows:
        columns = decode(row, values)
        gone = list(columns.records(doomed))
        if gone:
            found += gone
            kept = [r for r in columns.rows() if not doomed(r[1])]
            merged = from_rows(kept)
            _write(db, merged[0] if merged else None, digests, str(row[0]), columns.source)
    if found:
        compact(db)
    return found


_HEX64 = re.compile("[0-9a-f]{64}")


def migrate_records(db: sqlite3.Connection) -> int:
    """Move the records of the table ``shared_records`` (store formats 3 to 5: a row per
    record, every column text) into the shared table and drop it, in the caller's
    transaction; return how many were left out.

    A record the exchange would have refused (its key not 64 hex digits: no key computed here
    can be it; a nodeid holding a NUL; no source) is left out, and then the marks of the last
    fetches are dropped too, so the next fetch reads every shard of its refs again."""
    if not db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shared_records'"
    ).fetchone():
        return 0
    rows = db.execute(
        "SELECT source, nodeid, key, inputs_id, env_id, duration, passed_at, head "
        "FROM shared_records"
    ).fetchall()
    kept = [
        (str(source), nodeid, key, str(inputs_id), str(env_id), float(duration),
         float(passed_at), None if head is None else str(head))
        for source, nodeid, key, inputs_id, env_id, duration, passed_at, head in rows
        if source and isinstance(nodeid, str) and nodeid and "\0" not in nodeid
        and isinstance(key, str) and _HEX64.fullmatch(key)
    ]  # fmt: skip
    add(db, from_rows(kept), max_keys=1 << 62, cutoff=float("-inf"))
    if len(kept) < len(rows):
        db.execute("DELETE FROM meta WHERE name LIKE 'fetched %'")
    db.execute("DROP TABLE shared_records")
    return len(rows) - len(kept)
