"""The checkpoint state file: JSON, written atomically under a lock, never silently reset.

Format (``schema`` 1)::

    {
      "schema": 1,
      "checkpoints": {
        "default": {
          "/srv/app/requirements": {
            "at": "2026-11-22T00:30:00Z",
            "paths": {"/srv/app/requirements": "40000 9c1e...(40 or 64 hex digits)"}
          }
        }
      }
    }

``checkpoints`` maps a checkpoint name to the checkpointed specs (absolute paths or globs);
each spec keeps the UTC time it was checkpointed and its values by absolute path, each written
``"<mode> <OID>"`` as ``git ls-tree`` shows them (``"0 000...0"`` for an absent path, an OID
followed by ``+dirty`` for a submodule with uncommitted changes).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygit2

from .worktree import Entry

__all__ = [
    "DEFAULT_NAME",
    "SCHEMA",
    "CheckpointError",
    "CorruptCheckpointsError",
    "NotCheckpointed",
    "StateFile",
    "default_state_file",
]

SCHEMA = 1
DEFAULT_NAME = "default"
"""The checkpoint name used when none is given."""

_VALUE = re.compile(r"(?P<mode>[0-7]{1,6}) (?P<oid>[0-9a-f]{40}|[0-9a-f]{64})(?P<dirty>\+dirty)?")


class CheckpointError(Exception):
    """Raised when a checkpoint cannot be taken or compared; the message is one paragraph."""


class NotCheckpointed(CheckpointError, LookupError):
    """Raised when a path was never checkpointed under the name asked for."""


class CorruptCheckpointsError(CheckpointError):
    """Raised when the state file exists but is not a valid checkpoint file (it is kept)."""


def default_state_file(path: str | os.PathLike[str] = ".") -> Path:
    """Return the state file used for ``path`` when none is given.

    Inside a git worktree: ``pytest-unchanged/checkpoints.json`` in its git directory
    (``git rev-parse --git-dir``: ``.git/``, or ``.git/worktrees/NAME/`` for a linked worktree
    whose ``.git`` is a file). Elsewhere: ``pytest-unchanged/checkpoints.json`` in
    ``$XDG_STATE_HOME`` (default ``~/.local/state``).
    """
    start = os.path.abspath(path)
    while not os.path.isdir(start) and os.path.dirname(start) != start:
        start = os.path.dirname(start)
    found = pygit2.discover_repository(start)
    if found is not None and not pygit2.Repository(found).is_bare:
        return Path(found) / "pytest-unchanged" / "checkpoints.json"
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state_home) / "pytest-unchanged" / "checkpoints.json"


class StateFile:
    """Reads and updates one checkpoint state file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_checkpoint(self, name: str, specs: list[str]) -> dict[str, dict[str, Entry]]:
        """Return the recorded values of ``specs`` under ``name``, by spec then by path.

        Raises :class:`NotCheckpointed` naming the specs missing (all of them when the file does
        not exist) and :class:`CorruptCheckpointsError` when the file is not valid.
        """
        recorded = self._read()["checkpoints"].get(name, {})
        missing = [spec for spec in specs if spec not in recorded]
        if missing:
            missing_shown = [shlex.quote(_shown(spec)) for spec in missing]
            listed = ", ".join(missing_shown)
            raise NotCheckpointed(
                f"{listed} {'was' if len(missing) == 1 else 'were'} never checkpointed under the "
                f"name {name!r} in {self.path}: checkpoint first "
                f"(`pytest-unchanged checkpoint {' '.join(missing_shown)} --name {name}`)."
            )
        return {spec: _parse_paths(self.path, recorded[spec]["paths"]) for spec in specs}

    def update(self, name: str, values: dict[str, dict[str, Entry]]) -> None:
        """Record ``values`` (by spec, then by path) under ``name``; keep everything else.

        The read-modify-write holds an exclusive lock on the file ``<path>.lock``. Raises
        :class:`CorruptCheckpointsError` when the existing file is not valid and
        :class:`CheckpointError` when the file cannot be written; the old file is then intact.
        """
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        with self._locked():
            document = self._read()
            checkpoints = document["checkpoints"].setdefault(name, {})
            for spec, entries in values.items():
                checkpoints[spec] = {
                    "at": stamp,
                    "paths": {path: _format(entry) for path, entry in sorted(entries.items())},
                }
            self._write(json.dumps(document, indent=2, sort_keys=True) + "\n")

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"schema": SCHEMA, "checkpoints": {}}
        except UnicodeDecodeError as exc:
            raise self._corrupt(f"it is not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise CheckpointError(f"Cannot read the checkpoint file {self.path}: {exc}.") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._corrupt(f"it is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            raise self._corrupt(f'it has no "schema": {SCHEMA}')
        checkpoints = document.get("checkpoints")
        if not isinstance(checkpoints, dict):
            raise self._corrupt('it has no "checkpoints" object')
        for name, specs in checkpoints.items():
            if not isinstance(specs, dict):
                raise self._corrupt(f"the checkpoint {name!r} is not an object")
            for spec, record in specs.items():
                if not isinstance(record, dict) or not isinstance(record.get("paths"), dict):
                    raise self._corrupt(f'{spec!r} under {name!r} has no "paths" object')
                _parse_paths(self.path, record["paths"])
        return document

    def _write(self, text: str) -> None:
        directory = self.path.parent
        temporary = directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            try:
                mode: int | None = stat.S_IMODE(os.stat(self.path).st_mode)
            except FileNotFoundError:
                mode = None  # a new file: 0o666 less the umask, as os.open applies it
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(descriptor, "w", encoding="utf-8") as stream:
                if mode is not None:
                    os.chmod(temporary, mode)
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(directory)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise CheckpointError(
                f"Cannot write the checkpoint file {self.path}: {exc.strerror or exc}. Check that "
                "its directory is writable, or give another file (--state FILE)."
            ) from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CheckpointError(
                f"Cannot create the checkpoint file {self.path} or its lock {lock.name}: "
                f"{exc.strerror or exc}. Give a writable file (--state FILE)."
            ) from None
        try:
            _lock(descriptor)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _corrupt(self, why: str) -> CorruptCheckpointsError:
        return CorruptCheckpointsError(
            f"The checkpoint file {self.path} cannot be used: {why}. It was left as it is: "
            "restore it, or delete it (every checkpoint in it is then forgotten)."
        )


def _parse_paths(state_file: Path, paths: dict[str, Any]) -> dict[str, Entry]:
    entries = {}
    for path, value in paths.items():
        match = _VALUE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise CorruptCheckpointsError(
                f"The checkpoint file {state_file} cannot be used: the value {value!r} of "
                f'{path!r} is not "<mode> <OID>". It was left as it is: restore it, or delete '
                "it (every checkpoint in it is then forgotten)."
            )
        entries[path] = Entry(match["mode"], match["oid"], dirty=bool(match["dirty"]))
    return entries


def _format(entry: Entry) -> str:
    return f"{entry.mode} {entry.describe()}"


def _shown(path: str) -> str:
    """``path`` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":
        return  # directories cannot be opened for fsync there; os.replace is enough
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


if sys.platform == "win32":
    import msvcrt

    def _lock(descriptor: int) -> None:
        msvcrt.locking(descriptor, msvcrt.LK_LOCK, 1)  # retries for about 10 seconds

else:
    import fcntl

    def _lock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
