"""The verified-state file: per upstream and ref, the commit last verified and the one failing.

The file is small, human-readable JSON that a project commits (so a scheduled job and every
developer share it) or keeps in a CI cache. One file may hold several upstreams, each with the
URL it was verified against and one entry per followed ref::

    {"schema": 2, "upstreams": {"django": {"url": "...", "refs": {"main": {
        "commit": OID, "verified_at": TIME, "paths": {PATH: OID or null},
        "failing": {"commit": OID, "failed_at": TIME, "paths": {...}}}}}}}

A path's OID is null when the path did not exist at that commit (removed upstream). Writing one
ref keeps the others. Writes are atomic (a temporary file in the same directory, then
``os.replace``) and keep the existing file's permissions, or the umask's for a new file.
Schema 1 files (one ref per upstream) are read, and rewritten as schema 2.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
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
    entry = upstream.get("refs", {}).get(ref)
    if entry is None:
        return RefState(url=url if isinstance(url, str) else "", ref=ref)
    where = f"the entry of {name!r}, ref {ref!r},"
    if not isinstance(entry, dict):
        raise _corrupt(state_file, f"{where} is not an object")
    verified = _commit_paths(state_file, where, entry, "verified_at") if "commit" in entry else None
    failing = entry.get("failing")
    if failing is not None and not isinstance(failing, dict):
        raise _corrupt(state_file, f"{where} has a bad 'failing'")
    return RefState(
        url=url if isinstance(url, str) else "",
        ref=ref,
        verified=verified,
        failing=_commit_paths(state_file, where, failing, "failed_at") if failing else None,
    )


def write_state(state_file: Path, name: str, url: str, state: RefState) -> None:
    """Store ``state`` as the entry of its ref of upstream ``name`` in ``state_file``.

    ``url`` is stored as the upstream's URL. Other upstreams and refs are kept. Raises
    :class:`UpstreamError` when the existing file is not a valid state file or the new one
    cannot be written; the old file is then intact.
    """
    document = _read_document(state_file)
    upstream = document["upstreams"].setdefault(name, {})
    upstream["url"] = url
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
    upstream.setdefault("refs", {})[state.ref] = entry
    _write_atomically(state_file, json.dumps(document, indent=2, sort_keys=True) + "\n")


def _commit_paths(state_file: Path, where: str, entry: dict[str, Any], at: str) -> CommitPaths:
    paths = entry.get("paths")
    if not isinstance(paths, dict) or not all(
        isinstance(key, str) and (value is None or _is_oid(value)) for key, value in paths.items()
    ):
        raise _corrupt(state_file, f"{where} has a bad 'paths' (path: OID or null)")
    if not _is_oid(entry.get("commit")):
        raise _corrupt(state_file, f"{where} has a bad 'commit' (a full hex OID)")
    return CommitPaths(commit=entry["commit"], paths=dict(paths), at=str(entry.get(at, "")))


def _write_atomically(state_file: Path, text: str) -> None:
    temporary = None
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_for(state_file)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=state_file.parent, prefix=f".{state_file.name}.",
            suffix=".tmp", delete=False,
        ) as stream:  # fmt: skip
            temporary = Path(stream.name)
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, state_file)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise UpstreamError(
            f"Cannot write the verified-state file {state_file}: {exc.strerror}. Check that "
            "its directory exists and is writable, or set `state` to another path."
        ) from None


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
        text = state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"schema": STATE_SCHEMA, "upstreams": {}}
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(state_file, str(exc)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(state_file, f"it is not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("upstreams"), dict):
        raise _corrupt(state_file, "it has no 'upstreams' object")
    if document.get("schema") == 1:
        return _from_schema_1(state_file, document["upstreams"])
    if document.get("schema") != STATE_SCHEMA:
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
