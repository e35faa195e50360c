"""The verified-state file: per upstream, the commit last verified and its watched-path OIDs.

The file is small, human-readable JSON that a project commits (so a scheduled job and every
developer share it) or keeps in a CI cache. One file may hold several upstreams; writing one
keeps the others. Writes are atomic: a temporary file in the same directory, then
``os.replace``.
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

__all__ = ["STATE_SCHEMA", "VerifiedUpstream", "read_verified", "write_verified"]

STATE_SCHEMA = 1


@dataclass(frozen=True)
class VerifiedUpstream:
    """The state of one upstream that was last verified.

    ``commit`` is a full commit OID in hex; ``paths`` maps each watched path to the hex OID of
    its tree or blob at that commit; ``verified_at`` is an ISO 8601 UTC time.
    """

    url: str
    ref: str
    commit: str
    paths: dict[str, str]
    verified_at: str

    @classmethod
    def now(cls, url: str, ref: str, commit: str, paths: dict[str, str]) -> VerifiedUpstream:
        """Return a state verified at the current time."""
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        return cls(url=url, ref=ref, commit=commit, paths=dict(paths), verified_at=stamp)


def read_verified(state_file: Path, name: str) -> VerifiedUpstream | None:
    """Return the verified state of upstream ``name`` in ``state_file``.

    Returns None when the file does not exist or holds nothing for ``name``. Raises
    :class:`UpstreamError` when the file cannot be read or is not a valid state file.
    """
    entry = _read_document(state_file)["upstreams"].get(name)
    if entry is None:
        return None
    try:
        paths = entry["paths"]
        if not isinstance(paths, dict) or not all(
            isinstance(key, str) and _is_oid(value) for key, value in paths.items()
        ):
            raise TypeError("paths")
        if not _is_oid(entry["commit"]):
            raise TypeError("commit")
        return VerifiedUpstream(
            url=str(entry.get("url", "")),
            ref=str(entry.get("ref", "")),
            commit=entry["commit"],
            paths=dict(paths),
            verified_at=str(entry.get("verified_at", "")),
        )
    except (KeyError, TypeError) as exc:
        raise _corrupt(state_file, f"the entry of {name!r} has a bad {exc.args[0]!r}") from None


def write_verified(state_file: Path, name: str, verified: VerifiedUpstream) -> None:
    """Store ``verified`` as the state of upstream ``name`` in ``state_file``, atomically.

    Other upstreams in the file are kept. Raises :class:`UpstreamError` when the existing file
    is not a valid state file or the new one cannot be written; the old file is then intact.
    """
    document = _read_document(state_file)
    document["upstreams"][name] = {
        "url": verified.url,
        "ref": verified.ref,
        "commit": verified.commit,
        "verified_at": verified.verified_at,
        "paths": dict(sorted(verified.paths.items())),
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    temporary = None
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=state_file.parent, prefix=f".{state_file.name}.",
            suffix=".tmp", delete=False,
        ) as stream:  # fmt: skip
            temporary = Path(stream.name)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, state_file)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise UpstreamError(
            f"Cannot write the verified-state file {state_file}: {exc.strerror}. Check that "
            "its directory exists and is writable, or set `state` to another path."
        ) from None


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
    if document.get("schema") != STATE_SCHEMA:
        raise _corrupt(state_file, f"its schema is {document.get('schema')!r}, not 1")
    return document


def _is_oid(value: object) -> bool:
    """True for a full SHA-1 or SHA-256 OID in lowercase hex."""
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", value) is not None


def _corrupt(state_file: Path, why: str) -> UpstreamError:
    return UpstreamError(
        f"The verified-state file {state_file} cannot be used: {why}. Restore it from version "
        "control, or delete it (the next check then reports that nothing was verified yet)."
    )
