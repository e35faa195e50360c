"""A pass record and the errors of the store that keeps them.

Low in the import graph: the store (:mod:`.store`), the recorder, the session plugin and the
trust plugins all use these types without importing each other.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "MAX_COUNT",
    "CorruptStoreError",
    "Record",
    "StoreBusyError",
    "StoreError",
    "classify_error",
    "utc_text",
]


class StoreError(Exception):
    """Raised when the store cannot be used; the message says why."""


class CorruptStoreError(StoreError):
    """Raised when the store file exists but is not a readable store of this format."""


class StoreBusyError(StoreError):
    """Raised when another process held the store's write lock for longer than the timeout."""


def utc_text(seconds: float) -> str:
    """Return Unix time ``seconds`` as ``YYYY-MM-DD HH:MM UTC``, or the number itself when it
    is no date :mod:`datetime` shows (a store written by hand or an older reader). Never raises.
    """
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):
        return f"{seconds!r} (Unix seconds)"


MAX_COUNT = 2**31
"""The largest ``max_keys`` / ``max_age_days`` taken: SQLite binds 64-bit integers only, and
days are turned into seconds (``unchanged_max_keys = 9223372036854775808`` overflowed)."""

_CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT"})
_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def classify_error(path: Path, error: sqlite3.Error, doing: str) -> StoreError:
    """Classify an SQLite error by its result code (``sqlite_errorname``, Python >= 3.11)."""
    name = str(getattr(error, "sqlite_errorname", "")).split("_", 2)
    code = "_".join(name[:2])
    if code in _BUSY:
        return StoreBusyError(f"{path} stayed locked by another pytest process ({error})")
    if code in _CORRUPT:
        return CorruptStoreError(f"{path} is damaged ({error})")
    return StoreError(f"{path} cannot be {doing} ({error})")


@dataclass(frozen=True, slots=True)
class Record:
    """One pass of ``nodeid`` under ``key``.

    ``duration`` is in seconds (setup + call + teardown), ``passed_at`` in Unix seconds (UTC),
    ``head`` the hex ``HEAD`` commit of the run (``None`` before the first commit).
    ``source`` is ``""`` for a pass recorded on this machine, else the name of the source it
    was fetched or imported from (see :mod:`pytest_unchanged.shared`).
    """

    nodeid: str
    key: str
    inputs_id: str
    env_id: str
    duration: float
    passed_at: float
    head: str | None
    source: str = ""
