"""The verified-state file: per upstream and ref, the commit last verified and the one failing.

The file is small, human-readable JSON that a project commits (so a scheduled job and every
developer share it) or keeps in a CI cache. One file may hold several upstreams, each with the
URL it was verified against and one entry per followed ref::

    {"schema": 2, "upstreams": {"django": {"url": "...", "refs": {"main": {
        "commit": OID, "verified_at": TIME, "paths": {PATH: OID or null},
        "failing": {"commit": OID, "failed_at": TIME, "paths": {...}}}}}}}

A path's OID is null when the path did not exist at that commit (removed upstream). Writing one
ref keeps the others. Writes are atomic (a temporary file in the same directory, then
``os.replace``) and keep the existing file's permissions, or the umask's for a new file; a
state file that is a symbolic link is written through (its target is replaced). Each
read-modify-write holds an exclusive :func:`fcntl.flock` on the file's directory, so runs
writing other refs at once lose nothing. Schema 1 files (one ref per upstream) are read, and
rewritten as schema 2. Only a regular file (or none) is read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import UpstreamError

__all__ = ["STATE_SCHEMA", "CommitPaths", "RefState", "read_state", "write_state"]

STATE_SCHEMA = 2


def utc_now() -> str:
    """Return the current time as ISO 8601 UTC with a ``Z``, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class CommitPaths:
    """A commit and the hex OID of each watched path there (None: the path did not exist).

    ``at`` is the ISO 8601 UTC time it was verified (or found failing).
    """

    commit: str
    paths: dict[str, str | None]
    at: str


@dataclass(frozen=True)
class RefState:
    """What the state file says about one ref of one upstream.

    ``url`` is the URL it was verified against ("" when nothing was stored); ``verified`` the
    last commit the tests passed against; ``failing`` the last commit they failed against,
    if that happened after the verified one.
    """

    url: str
    ref: str
    verified: CommitPaths | None = None
    failing: CommitPaths | None = None


def read_state(state_file: Path, name: str, ref: str) -> RefState:
    """Return the state of ``ref`` of upstream ``name`` in ``state_file``.

    A missing file or entry gives a state with neither ``verified`` nor ``failing``. Raises
    :class:`UpstreamError` when the file cannot be read or is not a valid state file.
    """
    upstream = _read_document(state_file)["upstreams"].get(name)
    if upstream is None:
        return RefState(url="", ref=ref)
    where = f"the entry of {name!r}"
    if not isinstance(upstream, dict) or not isinstance(upstream.get("refs", {}), dict):
        raise _corrupt(state_file, f"{where} is not an object with a 'refs' object")
    url = upstream.get("url", "")
    if not isinstance(url, str):
        raise _corrupt(state_file, f"{where} has a 'url' that is not a string")
    entry = upstream.get("refs", {}).get(ref)
    if entry is None:
        return RefState(url=url, ref=ref)
    where = f"the entry of {name!r}, ref {ref!r},"
    if not isinstance(entry, dict):
        raise _corrupt(state_file, f"{where} is not an object")
    if "commit" not in entry and set(entry) != {"failing"}:
        raise _corrupt(state_file, f"{where} has no 'commit' (nor only a 'failing')")
    verified = _commit_paths(state_file, where, entry, "verified_at") if "commit" in entry else None
    failing = entry.get("failing")
    if failing is not None and not isinstance(failing, dict):
        raise _corrupt(state_file, f"{where} has a bad 'failing'")
    return RefState(
        url=url,
        ref=ref,
        verified=verified,
        failing=_commit_paths(state_file, where, failing, "failed_at") if failing else None,
    )


def write_state(state_file: Path, name: str, url: str, *states: RefState) -> None:
    """Store each of ``states`` as the entry of its ref of upstream ``name`` in ``state_file``.

    ``url`` is stored as the upstream's URL. Other upstreams and refs are kept; all ``states``
    are written in one atomic write, under the lock of :mod:`this module <.state>`. Raises
    :class:`UpstreamError` when the existing file is not a valid state file or the new one
    cannot be written; the old file is then intact.
    """
    target = Path(os.path.realpath(state_file))  # A symbolic link is written through.
    with _locked(state_file, target.parent):
        document = _read_document(state_file)
        upstream = document["upstreams"].setdefault(name, {})
        if not isinstance(upstream, dict) or not isinstance(upstream.get("refs", {}), dict):
            raise _corrupt(state_file, f"the entry of {name!r} is not an object with 'refs'")
        upstream["url"] = url
        for state in states:
            upstream.setdefault("refs", {})[state.ref] = _entry(state)
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        _write_atomically(state_file, target, text)


def _entry(state: RefState) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if state.verified:
        entry["commit"] = state.verified.commit
        entry["verified_at"] = state.verified.at
        entry["paths"] = dict(sorted(state.verified.paths.items()))
    if state.failing:
        entry["failing"] = {
            "commit": state.failing.commit,
            "failed_at": state.failing.at,
            "paths": dict(sorted(state.failing.paths.items())),
        }
    return entry


@contextlib.contextmanager
def _locked(state_file: Path, directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``directory`` (no lock file is left in the project)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        raise _unwritable(state_file, exc) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # Closing releases the lock.


def _commit_paths(state_file: Path, where: str, entry: dict[str, Any], at: str) -> CommitPaths:
    paths = entry.get("paths")
    if not isinstance(paths, dict) or not all(
        isinstance(key, str) and (value is None or _is_oid(value)) for key, value in paths.items()
    ):
        raise _corrupt(state_file, f"{where} has a bad 'paths' (path: OID or null)")
    if not _is_oid(entry.get("commit")):
        raise _corrupt(state_file, f"{where} has a bad 'commit' (a full hex OID)")
    return CommitPaths(commit=entry["commit"], paths=dict(paths), at=str(entry.get(at, "")))


def _write_atomically(state_file: Path, target: Path, text: str) -> None:
    """Replace ``target`` (``state_file``, or its link's target) by a file holding ``text``."""
    temporary = None
    try:
        mode = _mode_for(target)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.",
            suffix=".tmp", delete=False,
        ) as stream:  # fmt: skip
            temporary = Path(stream.name)
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise _unwritable(state_file, exc) from None


def _unwritable(state_file: Path, exc: OSError) -> UpstreamError:
    return UpstreamError(
        f"Cannot write the verified-state file {state_file}: {exc.strerror}. Check that "
        "its directory exists and is writable, or set `state` to another path."
    )


def _mode_for(state_file: Path) -> int:
    """The permission bits of the existing file, else what the umask gives a new file."""
    try:
        return state_file.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _read_document(state_file: Path) -> dict[str, Any]:
    try:
        if not stat.S_ISREG(state_file.stat().st_mode):
            raise _corrupt(state_file, "it is not a regular file")
        text = state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"schema": STATE_SCHEMA, "upstreams": {}}
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(state_file, str(exc)) from None
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise _corrupt(state_file, f"it is not JSON ({why})") from None
    if not isinstance(document, dict) or not isinstance(document.get("upstreams"), dict):
        raise _corrupt(state_file, "it has no 'upstreams' object")
    schema = document.get("schema")
    if type(schema) is int and schema == 1:  # Not True, not 1.0.
        return _from_schema_1(state_file, document["upstreams"])
    if type(schema) is not int or schema != STATE_SCHEMA:
        raise _corrupt(
            state_file, f"its schema is {document.get('schema')!r}, not 1 or {STATE_SCHEMA}"
        )
    return document


def _from_schema_1(state_file: Path, upstreams: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept one ref per upstream, with ``url`` and ``ref`` beside the commit."""
    converted: dict[str, Any] = {}
    for name, entry in upstreams.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("ref", "main"), str):
            raise _corrupt(state_file, f"the entry of {name!r} is not a schema 1 entry")
        ref = entry.get("ref") or "main"
        kept = {key: entry[key] for key in ("commit", "verified_at", "paths") if key in entry}
        converted[name] = {"url": entry.get("url", ""), "refs": {ref: kept}}
    return {"schema": STATE_SCHEMA, "upstreams": converted}


def _is_oid(value: object) -> bool:
    """True for a full SHA-1 or SHA-256 OID in lowercase hex."""
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", value) is not None


def _corrupt(state_file: Path, why: str) -> UpstreamError:
    return UpstreamError(
        f"The verified-state file {state_file} cannot be used: {why}. Restore it from version "
        "control, or delete it (the next check then reports that nothing was verified yet)."
    )
