"""The local records on disk (store format 5): the ``passes`` table and its interned strings.

A record is one row of ``passes``, about 80 bytes: the nodeid is split into its file (an
integer into ``files``) and the rest of it, stored as a 47-bit hash (BLAKE2b) whose text is kept
once per file in ``files.names`` (zlib-compressed JSON, a few bytes a name); the key is its 32
raw bytes; the inputs and environment digests and the ``HEAD`` commit are integers into
``digests``. Two nodeids of one file with the same hash would share a row's *name*, never a
match: a key is a digest over the whole nodeid (see :func:`pytest_unchanged.keys.item_key`), so a
record can only be found for the item it was written for; the hash only decides which name a
listing shows.

The ``records`` view shows the rows with the columns of format 4 (``nodeid``, hex ``key``,
``inputs_id``, ``env_id``, ``duration``, ``passed_at``, ``head``) on a connection where
:meth:`Names.register` defined ``unchanged_nodeid``; :mod:`pytest_unchanged.shared` reads it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterable

from .records import Record

__all__ = ["PASSES_SCHEMA", "Names", "name_hash", "pack_key", "unpack_key"]

PASSES_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL UNIQUE, names BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS digests (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS passes (
    file INTEGER NOT NULL,
    name INTEGER NOT NULL,
    key BLOB NOT NULL,
    inputs INTEGER NOT NULL,
    env INTEGER NOT NULL,
    duration REAL NOT NULL,
    passed_at REAL NOT NULL,
    head INTEGER,
    PRIMARY KEY (file, name, key)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS records AS
    SELECT unchanged_nodeid(p.file, p.name) AS nodeid,
        CASE WHEN typeof(p.key) = 'blob' THEN lower(hex(p.key)) ELSE p.key END AS key,
        i.value AS inputs_id, e.value AS env_id, p.duration, p.passed_at, h.value AS head
    FROM passes p JOIN digests i ON i.id = p.inputs JOIN digests e ON e.id = p.env
    LEFT JOIN digests h ON h.id = p.head;
"""

_COLUMNS = "name, key, inputs, env, duration, passed_at, head"
_HEX = frozenset("0123456789abcdef")


def name_hash(name: str) -> int:
    """The 47-bit hash of a nodeid's part after its file (stored in 6 bytes by SQLite)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=6).digest()
    return int.from_bytes(digest, "big") >> 1


def split(nodeid: str) -> tuple[str, str]:
    """``("tests/t.py", "::test_x")`` for ``"tests/t.py::test_x"``: file and the rest."""
    file = nodeid.split("::", 1)[0]
    return file, nodeid[len(file) :]


def pack_key(key: str) -> bytes | str:
    """A key as stored: its 32 raw bytes when it is 64 lower-case hex digits, else as given."""
    return bytes.fromhex(key) if len(key) == 64 and _HEX.issuperset(key) else key


def unpack_key(stored: bytes | str) -> str:
    """The key :func:`pack_key` stored as ``stored``."""
    return stored.hex() if isinstance(stored, bytes) else str(stored)


class Names:
    """The interned strings of one store connection, cached for one transaction or read.

    :meth:`reset` must be called whenever another process may have written (before every read
    or transaction) and after a rollback.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.reset()

    def register(self) -> None:
        """Define the SQL function the ``records`` view calls on this connection."""
        self.db.create_function("unchanged_nodeid", 2, self.nodeid, deterministic=True)

    def reset(self) -> None:
        """Forget every cached id and name."""
        self._files: dict[str, int] | None = None
        self._digests: dict[str, int] | None = None
        self._values: dict[int, str] | None = None
        self._names: dict[int, dict[int, str]] = {}
        self._by_id: dict[int, str] | None = None

    # -- reading ---------------------------------------------------------------------------

    def files(self) -> dict[str, int]:
        """``{file: id}`` of every file with names."""
        if self._files is None:
            self._files = dict(self.db.execute("SELECT file, id FROM files"))
        return self._files

    def digest_ids(self) -> dict[str, int]:
        """``{digest: id}`` of every interned digest (inputs, environments, ``HEAD`` commits)."""
        if self._digests is None:
            self._digests = dict(self.db.execute("SELECT value, id FROM digests"))
            self._values = {number: value for value, number in self._digests.items()}
        return self._digests

    def value(self, number: int | None) -> str | None:
        """The digest interned as ``number`` (``None`` for ``None``)."""
        if number is None:
            return None
        self.digest_ids()
        assert self._values is not None
        return self._values[number]

    def names(self, file_id: int) -> dict[int, str]:
        """``{hash: name}`` of the names kept for the file ``file_id``."""
        found = self._names.get(file_id)
        if found is None:
            row = self.db.execute("SELECT names FROM files WHERE id = ?", (file_id,)).fetchone()
            listed = json.loads(zlib.decompress(row[0])) if row is not None else []
            found = self._names[file_id] = {name_hash(name): name for name in listed}
        return found

    def nodeid(self, file_id: int, name: int) -> str:
        """The nodeid of the row ``(file_id, name)`` of ``passes``."""
        if file_id not in self._file_names() or name not in self.names(file_id):
            self.reset()  # written by another process since they were read
        return self._file_names().get(file_id, "") + self.names(file_id).get(name, "")

    def _file_names(self) -> dict[int, str]:
        files = self.files()
        if self._by_id is None or len(self._by_id) != len(files):
            self._by_id = {number: file for file, number in files.items()}
        return self._by_id

    def records(self, file_id: int, wanted: Iterable[str] | None = None) -> list[Record]:
        """The records of file ``file_id``: those of the nodeids ``wanted``, or all."""
        file = self._file_names()[file_id]
        if wanted is None:
            names = self.names(file_id)
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM passes WHERE file = ?", (file_id,))
            return [self._record(file + names.get(row[0], ""), row) for row in rows]
        by_hash: dict[int, list[str]] = {}
        for nodeid in wanted:
            by_hash.setdefault(name_hash(split(nodeid)[1]), []).append(nodeid)
        found = []
        hashes = sorted(by_hash)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_COLUMNS} FROM passes WHERE file = ? AND name IN ({marks})"
            for row in self.db.execute(sql, (file_id, *chunk)):
                found += [self._record(nodeid, row) for nodeid in by_hash[row[0]]]
        return found

    def _record(self, nodeid: str, row: tuple[object, ...]) -> Record:
        _, key, inputs, env, duration, passed_at, head = row
        return Record(
            nodeid,
            unpack_key(key),  # type: ignore[arg-type]
            str(self.value(inputs)),  # type: ignore[arg-type]
            str(self.value(env)),  # type: ignore[arg-type]
            float(duration),  # type: ignore[arg-type]
            float(passed_at),  # type: ignore[arg-type]
            self.value(head),  # type: ignore[arg-type]
        )

    # -- writing (inside a transaction) ----------------------------------------------------

    def intern(self, value: str) -> int:
        """The id of ``value`` in ``digests``, added when missing."""
        ids = self.digest_ids()
        number = ids.get(value)
        if number is None:
            self.db.execute("INSERT INTO digests (value) VALUES (?)", (value,))
            number = ids[value] = int(self.db.execute("SELECT last_insert_rowid()").fetchone()[0])
            assert self._values is not None
            self._values[number] = value
        return number

    def add(self, nodeids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Intern the files and names of ``nodeids``; return ``{nodeid: (file id, hash)}``."""
        by_file: dict[str, list[str]] = {}
        for nodeid in nodeids:
            file, name = split(nodeid)
            by_file.setdefault(file, []).append(name)
        result: dict[str, tuple[int, int]] = {}
        files = self.files()
        for file, added in by_file.items():
            if file not in files:
                self.db.execute("INSERT INTO files (file, names) VALUES (?, ?)", (file, _pack([])))
                files[file] = int(self.db.execute("SELECT last_insert_rowid()").fetchone()[0])
            number = files[file]
            names = self.names(number)
            new = {name_hash(name): name for name in added if name_hash(name) not in names}
            if new:
                names.update(new)
                self._write_names(number, names.values())
            result.update({file + name: (number, name_hash(name)) for name in added})
        return result

    def compact(self, file_ids: Iterable[int]) -> None:
        """Keep only the names some record of ``file_ids`` still uses; forget unused files and
        digests."""
        for number in sorted(set(file_ids)):
            used = {
                h for (h,) in self.db.execute("SELECT name FROM passes WHERE file = ?", (number,))
            }
            names = self.names(number)
            if not used:
                self.db.execute("DELETE FROM files WHERE id = ?", (number,))
                self._files = self._by_id = None
                self._names.pop(number, None)
            elif used != set(names):
                kept = {h: n for h, n in names.items() if h in used}
                self._names[number] = kept
                self._write_names(number, kept.values())
        self.db.execute(
            """DELETE FROM digests WHERE id NOT IN (SELECT inputs FROM passes UNION
               SELECT env FROM passes UNION SELECT head FROM passes WHERE head IS NOT NULL)"""
        )
        self._digests = self._values = None

    def _write_names(self, number: int, names: Iterable[str]) -> None:
        self.db.execute("UPDATE files SET names = ? WHERE id = ?", (_pack(sorted(names)), number))


def _pack(names: list[str]) -> bytes:
    return zlib.compress(json.dumps(names).encode(), 9)  # ASCII: lone surrogates escaped
