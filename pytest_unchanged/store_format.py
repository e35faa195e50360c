"""The store's SQL schema (format 6) and the migration of older formats.

Format 5 keeps a record in about 80 bytes (see :mod:`pytest_unchanged.passes`) and a module
summary's item list once, compressed, however many summaries share it (see
:mod:`pytest_unchanged.summaries`). Format 6 keeps the records of other sources one row per
test file and source (:mod:`pytest_unchanged.shared_table`). A store of format 1 to 5 is
migrated in one transaction: every local record is kept (formats 3 to 5 also keep their
failures, bodies and shared records); module summaries of formats 1 to 4, a cache of the
records, are dropped and written again by the next run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .passes import PASSES_SCHEMA, Names, pack_key
from .records import StoreError
from .shared_table import SHARED_SCHEMA, migrate_records
from .summaries import SUMMARY_SCHEMA

__all__ = ["STORE_FORMAT", "migrate"]

STORE_FORMAT = "6"
"""4: the shared_records table. 5: records in ``passes`` (interned nodeids, digests and
``HEAD`` commits, raw keys), item lists of module summaries stored once and compressed.
6: shared records in ``shared_files``, one row per test file and source."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    nodeid TEXT NOT NULL,
    key TEXT NOT NULL,
    failed_at REAL NOT NULL,
    PRIMARY KEY (nodeid, key)
) WITHOUT ROWID;
"""
_OLD_SUMMARY_TABLES = ("modules", "module_items")


def migrate(db: sqlite3.Connection, names: Names, found: str | None, path: Path) -> None:
    """Bring the store of format ``found`` (``None``: empty) to :data:`STORE_FORMAT`, inside
    the caller's transaction. Raises :class:`StoreError` (not :class:`CorruptStoreError`: the
    store is left as it is, its records kept for the version that wrote it) for a newer
    format."""
    if found not in (None, "1", "2", "3", "4", "5", STORE_FORMAT):
        raise StoreError(
            f"{path} is a pass store of format {found!r}, not {STORE_FORMAT}, written by a "
            "newer pytest-unchanged: it is left as it is (upgrade pytest-unchanged, or give "
            "this version its own cache_dir)"
        )
    old: list[tuple[str, str, str, str, float, float, str | None]] = []
    if found in ("1", "2", "3", "4"):
        old = db.execute(
            "SELECT nodeid, key, inputs_id, env_id, duration, passed_at, head FROM records"
        ).fetchall()
        db.execute("DROP TABLE records")
        for table in _OLD_SUMMARY_TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in filter(
        str.strip, (_SCHEMA + PASSES_SCHEMA + SUMMARY_SCHEMA + SHARED_SCHEMA).split(";")
    ):
        db.execute(statement)
    if old:
        names.reset()
        located = names.add(row[0] for row in old)
        db.executemany(
            "INSERT OR REPLACE INTO passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    *located[nodeid],
                    pack_key(key),
                    names.intern(inputs_id),
                    names.intern(env_id),
                    duration,
                    passed_at,
                    None if head is None else names.intern(head),
                )
                for nodeid, key, inputs_id, env_id, duration, passed_at, head in old
            ],
        )
    migrate_records(db)  # formats 3 to 5: their shared_records table
    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (STORE_FORMAT,))
