"""The checks both versions of the records exchange format share, and the version-1 reader.

Version 1 (pytest-unchanged up to the sharing work of issue 12) wrote one JSON value a line:
the header ``{"format": "pytest-unchanged-records", "version": 1}``, bodies
``["b", id, text]``, and records
``["r", source, nodeid, key, inputs_id, env_id, duration, passed_at, head]``; a git ref held
them all in one blob, ``records.jsonl``. It is still read (files made by ``records export`` and
refs pushed by an older version), converted to rows as version 2 reads them; it is no longer
written. See :mod:`pytest_unchanged.exchange` for version 2.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence

from .keys import item_key

__all__ = ["Row", "check_body", "finite", "parse_v1", "valid_head", "valid_source"]

Row = tuple[str, str, str, str, str, float, float, str | None]
"""A record as the exchange reads and writes it (the column order of the ``shared_records``
table of store formats 3 to 5): ``(source, nodeid, key, inputs_id, env_id, duration,
passed_at, head)``; ``inputs_id`` is ``""`` when the writer did not ship it (a git ref)."""

_HEX128 = re.compile(r"[0-9a-f]{128}")
_HEAD = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
MAX_SECONDS = 253402300799
"""The largest ``duration`` or ``passed_at`` taken (seconds): 9999-12-31 23:59:59 UTC, the last
time :mod:`datetime` shows (``passed_at = 1e300`` broke every report of the record)."""


@functools.lru_cache(maxsize=1024)
def valid_source(source: str) -> bool:
    """Whether ``source`` is ``""`` (a local pass) or a valid source name."""
    return not source or bool(_SOURCE.fullmatch(source))


@functools.lru_cache(maxsize=4096)
def valid_head(head: str) -> bool:
    """Whether ``head`` is a hex SHA-1 or SHA-256 commit id."""
    return bool(_HEAD.fullmatch(head))


def finite(label: str, nodeid: str, value: object) -> float:
    """Return ``value`` as a float; raise :class:`ValueError` unless it is a number from 0 to
    :data:`MAX_SECONDS` (JSON ``NaN`` and ``Infinity``, which :func:`json.loads` accepts, and
    integers too large for a float are refused)."""
    if type(value) is not float and type(value) is not int:
        raise ValueError(f"{label} of {nodeid} is not a number")
    if not 0 <= value <= MAX_SECONDS:  # NaN compares false; a huge int compares exactly
        raise ValueError(f"{label} of {nodeid} is not a number of seconds from 0 to {MAX_SECONDS}")
    return float(value)


def check_body(value: Sequence[object]) -> tuple[str, str]:
    """Return ``(id, text)`` of a ``["b", id, text]`` line; raise :class:`ValueError` unless
    ``text`` is a JSON object or list whose hex SHA-256 is ``id``."""
    if len(value) != 3 or not isinstance(value[1], str) or not isinstance(value[2], str):
        raise ValueError('a body line is ["b", id, text]')
    body_id, text = value[1], value[2]
    if hashlib.sha256(text.encode()).hexdigest() != body_id:
        raise ValueError(f"body {body_id[:16]}... does not hash to its id")
    if not isinstance(json.loads(text), dict | list):
        raise ValueError(f"body {body_id[:16]}... is not a JSON object or list")
    return body_id, text


def parse_v1(
    lines: Sequence[str], values: Sequence[object] | None, source: str | None
) -> tuple[list[Row], dict[str, str]]:
    """Read the lines after the header of a version-1 file: ``(rows, bodies)``.

    ``values`` are the lines already parsed as JSON (``None``: parse each line here).
    Raises :class:`ValueError` whose message starts with ``line N:`` for the first bad line.
    """
    rows: list[Row] = []
    bodies: dict[str, str] = {}
    for number, line in enumerate(lines[1:], 2):
        try:
            value = json.loads(line) if values is None else values[number - 2]
            if not isinstance(value, list) or not value or value[0] not in ("b", "r"):
                raise ValueError('not a ["b", ...] body or ["r", ...] record line')
            if value[0] == "b":
                body_id, text = check_body(value)
                bodies[body_id] = text
                continue
            row = _record(value)
            if source is not None and row[0] != source:
                raise ValueError(f"a record of source {row[0]!r} under {source!r}")
            rows.append(row)
        except (ValueError, RecursionError) as error:  # nested too deep
            raise ValueError(f"line {number}: {error}") from None
    return rows, bodies


def _record(value: list[object]) -> Row:
    if len(value) != 9:
        raise ValueError(
            'a record line is ["r", source, nodeid, key, inputs_id, env_id, duration, '
            "passed_at, head]"
        )
    _, source, nodeid, key, inputs_id, env_id, duration, passed_at, head = value
    if type(source) is not str or not valid_source(source):
        raise ValueError(f"bad source {source!r}")
    if type(nodeid) is not str or not nodeid or "\0" in nodeid:
        raise ValueError(f"bad nodeid {nodeid!r}")
    if type(inputs_id) is not str or type(env_id) is not str:
        raise ValueError(f"the digests of {nodeid} are not hex SHA-256")
    if not _HEX128.fullmatch(inputs_id + env_id):
        raise ValueError(f"the digests of {nodeid} are not hex SHA-256")
    if key != item_key(nodeid, inputs_id, env_id):
        raise ValueError(f"the key of {nodeid} is not the key of its inputs and environment")
    if head is not None and (type(head) is not str or not valid_head(head)):
        raise ValueError(f"head of {nodeid} is not a hex commit id")
    return (
        source,
        nodeid,
        key,
        inputs_id,
        env_id,
        finite("duration", nodeid, duration),
        finite("passed_at", nodeid, passed_at),
        head,
    )
