"""The import-parse memo kept across sessions: what each file imports, by blob OID.

Reading a file's imports (:func:`.import_syntax.parse_file`) is the costliest part of a
module's collection closure (:mod:`.collection`), which every session computes for every
collected module to write its summary, and of ``unchanged_default = imports``. What a file
imports depends only on its bytes, on the parser's code and on the Python that parses
(``ast``'s grammar): so :class:`ParseMemo` keeps the parse of each blob OID in a JSON file
next to the store, named after the digest of the parser's source files and ``sys.version``
(:func:`parser_id`), and a session reads again only the files whose content it has not seen.
Only parses of the bytes of that very blob are kept (:meth:`.imports.ImportGraph.parsed_of`
checks the OID of what it read). The file is only a cache: a missing, damaged or unwritable
one means every file is parsed, as without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, overload

from . import import_nodes, import_refs, import_syntax
from .import_refs import Parsed, parsed_from_json, parsed_to_json

__all__ = ["MAX_UNUSED", "STALE_SECONDS", "ParseMemo", "parser_id"]

MAX_UNUSED = 1000
"""Entries a session did not look up are kept while they number at most the entries it looked
up plus this (the parses of a subset of the files, ``pytest tests/test_one.py``, keep those of
the others); beyond that, only the looked-up entries are written (edited files drop out)."""

STALE_SECONDS = 7 * 86400
"""A memo file of another parser or Python unused this long is deleted when one is saved."""

_T = TypeVar("_T")


@cache
def parser_id() -> str | None:
    """Return the hex SHA-256 of ``sys.version`` and of the source of the modules that parse
    (:mod:`.import_syntax`, :mod:`.import_nodes`, :mod:`.import_refs`); ``None`` when one of
    them cannot be read (then no memo is read or written)."""
    text = hashlib.sha256(sys.version.encode())
    try:
        for module in (import_syntax, import_nodes, import_refs):
            text.update(Path(str(module.__file__)).read_bytes())
    except (OSError, TypeError):
        return None
    return text.hexdigest()


class ParseMemo(dict[str, Parsed]):
    """Parsed files by blob OID (``OID`` or ``OID:text``, see
    :meth:`.imports.ImportGraph.parsed_of`), read from the memo file in ``directory`` (the
    store's) and decoded on first look-up; :meth:`save` writes what this session added.
    ``directory`` ``None``: an in-memory memo only."""

    def __init__(self, directory: Path | None) -> None:
        super().__init__()
        identity = parser_id()
        self.path = None if directory is None or identity is None else _memo_path(directory)
        self._stored: dict[str, Any] = {} if self.path is None else _read(self.path)
        self.looked_up: set[str] = set()
        self.added: set[str] = set()

    @overload
    def get(self, key: str, default: None = None, /) -> Parsed | None: ...
    @overload
    def get(self, key: str, default: Parsed, /) -> Parsed: ...
    @overload
    def get(self, key: str, default: _T, /) -> Parsed | _T: ...
    def get(self, key: str, default: object = None, /) -> object:
        """Return the parse of ``key`` (decoded from the memo file on first use), else
        ``default``."""
        self.looked_up.add(key)
        found = super().get(key)
        if found is None and key in self._stored:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                found = parsed_from_json(self._stored[key])
                super().__setitem__(key, found)
        return default if found is None else found

    def __setitem__(self, key: str, value: Parsed) -> None:
        super().__setitem__(key, value)
        self.added.add(key)

    def save(self) -> None:
        """Write the memo file when this session parsed a file it did not hold, atomically
        (write, rename); never raises (an unwritable directory leaves the cache as it was).

        Entries not looked up this session are kept within :data:`MAX_UNUSED`.
        """
        if self.path is None or not self.added:
            return
        kept = (self.looked_up | self.added).intersection(self)
        files = {key: parsed_to_json(self[key]) for key in kept}
        unused = {k: v for k, v in self._stored.items() if k not in files}
        if len(unused) <= len(files) + MAX_UNUSED:
            files.update(unused)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps({"files": files}, separators=(",", ":")), "utf-8")
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        for other in self.path.parent.glob("parsed-*.json"):  # another parser's or Python's,
            with contextlib.suppress(OSError):  # unused for a week
                if other != self.path and time.time() - other.stat().st_mtime > STALE_SECONDS:
                    other.unlink()


def _memo_path(directory: Path) -> Path:
    return directory / f"parsed-{parser_id()}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    return files if isinstance(files, dict) else {}
