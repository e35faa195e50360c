"""The records exchange format: JSON lines, versioned, deterministic; union-merge and pruning.

One format serves ``records export``/``import`` files and the blob a git ref holds
(:mod:`pytest_unchanged.sharing`). Each line is one JSON value:

* line 1, the header: ``{"format": "pytest-unchanged-records", "version": 1}``;
* a body (a manifest or environment facets, for ``--unchanged-explain``):
  ``["b", id, text]``, where ``id`` is the hex SHA-256 of ``text`` and ``text`` is JSON;
* a record: ``["r", source, nodeid, key, inputs_id, env_id, duration, passed_at, head]``
  (``source`` ``""``: a local pass of the machine that wrote it).

Bodies come first sorted by ``id``, then records sorted by ``(source, nodeid, key)``, so the
same records give the same bytes (and the same git blob). Reading validates every line before
anything is used: the key must be the one :func:`~pytest_unchanged.keys.item_key` gives for its
nodeid, inputs and environment digests, and a body must hash to its id.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring

from .keys import item_key
from .records import Record

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ExchangeFormatError",
    "RecordSet",
    "SharingError",
    "check_source",
    "dump_lines",
    "parse_lines",
]

FORMAT_NAME = "pytest-unchanged-records"
FORMAT_VERSION = 1
_HEX128 = re.compile(r"[0-9a-f]{128}")
_HEAD = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


class SharingError(Exception):
    """Raised when records cannot be exported, imported, pushed or fetched; the message is one
    paragraph saying why and what to do. The command line turns it into exit status 2."""


class ExchangeFormatError(SharingError):
    """Raised when a records file or ref blob is not valid; the message names the line."""


def check_source(name: str) -> str:
    """Return ``name`` when it is a valid source name (letters, digits, ``._-``, not starting
    with ``.`` or ``-``, not ending with ``.lock``, no ``..``: a git ref component); raise
    :class:`SharingError` otherwise."""
    if not _SOURCE.fullmatch(name) or ".." in name or name.endswith(".lock"):
        raise SharingError(
            f"{name!r} is not a valid source name: use letters, digits, '.', '_' and '-' "
            "(for example main, pr, merge-queue), starting with a letter or digit"
        )
    return name


@dataclass
class RecordSet:
    """Records by ``(source, nodeid, key)`` and the bodies they refer to, by id."""

    records: dict[tuple[str, str, str], Record] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)

    def add(self, records: Iterable[Record], bodies: Mapping[str, str]) -> None:
        """Union-merge: add ``records``; of two with the same ``(source, nodeid, key)`` the
        newer pass is kept. Bodies are added when missing."""
        for record in records:
            slot = (record.source, record.nodeid, record.key)
            found = self.records.get(slot)
            if found is None or found.passed_at < record.passed_at:
                self.records[slot] = record
        for body_id, text in bodies.items():
            self.bodies.setdefault(body_id, text)

    def prune(self, *, max_keys: int, max_age: float, now: float) -> None:
        """Keep, per source and nodeid, the newest ``max_keys`` records, none older than
        ``max_age`` seconds before ``now`` (the local store's rule); drop unused bodies."""
        by_node: dict[tuple[str, str], list[Record]] = {}
        for record in self.records.values():
            if record.passed_at >= now - max_age:
                by_node.setdefault((record.source, record.nodeid), []).append(record)
        kept: dict[tuple[str, str, str], Record] = {}
        for group in by_node.values():
            group.sort(key=lambda r: (-r.passed_at, r.key))
            for record in group[:max_keys]:
                kept[(record.source, record.nodeid, record.key)] = record
        self.records = kept
        used = {r.inputs_id for r in kept.values()} | {r.env_id for r in kept.values()}
        self.bodies = {i: text for i, text in self.bodies.items() if i in used}


def dump_lines(records: RecordSet) -> Iterator[str]:
    """Yield the lines (each ending in a newline) of ``records`` in the exchange format."""
    yield json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}, sort_keys=True) + "\n"
    used = {r.inputs_id for r in records.records.values()}
    used.update(r.env_id for r in records.records.values())
    # Written by hand for speed, the same text as json.dumps(..., ensure_ascii=False,
    # separators=(",", ":")): digests and heads are hex, floats use repr() as json does.
    text = encode_basestring
    for body_id in sorted(used & records.bodies.keys()):
        yield f'["b","{body_id}",{text(records.bodies[body_id])}]\n'
    for slot in sorted(records.records):
        r = records.records[slot]
        head = "null" if r.head is None else f'"{r.head}"'
        yield (
            f'["r",{text(r.source)},{text(r.nodeid)},"{r.key}","{r.inputs_id}","{r.env_id}",'
            f"{float(r.duration)!r},{float(r.passed_at)!r},{head}]\n"
        )


def parse_lines(lines: Iterable[str], *, name: str, source: str | None = None) -> RecordSet:
    """Read and validate every line of an exchange file; return its records and bodies.

    ``name`` names the file or ref in messages. When ``source`` is given, every record must
    carry it (a ref holds the records of its own source only). Raises
    :class:`ExchangeFormatError` naming the first bad line.
    """
    result = RecordSet()
    lines = list(lines)
    if not lines:
        raise ExchangeFormatError(f"{name}, line 1: empty, expected the {FORMAT_NAME} header")
    try:
        # One parse of the whole file is several times faster than one per line; when it
        # fails, the lines are parsed one by one to name the first bad one.
        values = json.loads("[" + ",".join(lines[1:]) + "]")
    except ValueError:
        values = None
    if values is not None and len(values) != len(lines) - 1:
        values = None  # a line holding two values: the per-line parse names it
    records = result.records
    for number, line in enumerate(lines, 1):
        try:
            if number == 1:
                _check_header(line)
                continue
            value = json.loads(line) if values is None else values[number - 2]
            if not isinstance(value, list) or not value or value[0] not in ("b", "r"):
                raise ValueError('not a ["b", ...] body or ["r", ...] record line')
            if value[0] == "b":
                body_id, text = _body(value)
                result.bodies[body_id] = text
                continue
            record = _record(value)
            if source is not None and record.source != source:
                raise ValueError(f"a record of source {record.source!r} under {source!r}")
            slot = (record.source, record.nodeid, record.key)
            found = records.get(slot)
            if found is None or found.passed_at < record.passed_at:
                records[slot] = record
        except ValueError as error:
            raise ExchangeFormatError(f"{name}, line {number}: {error}") from None
    return result


def _check_header(line: str) -> None:
    header = json.loads(line)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a {FORMAT_NAME} file (no header line)")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"format version {header.get('version')!r}, this pytest-unchanged reads "
            f"{FORMAT_VERSION} (written by a newer pytest-unchanged?)"
        )


def _body(value: list[object]) -> tuple[str, str]:
    if len(value) != 3 or not isinstance(value[1], str) or not isinstance(value[2], str):
        raise ValueError('a body line is ["b", id, text]')
    body_id, text = value[1], value[2]
    if hashlib.sha256(text.encode()).hexdigest() != body_id:
        raise ValueError(f"body {body_id[:16]}... does not hash to its id")
    if not isinstance(json.loads(text), dict | list):
        raise ValueError(f"body {body_id[:16]}... is not a JSON object or list")
    return body_id, text


def _record(value: list[object]) -> Record:
    # The checks every line pays for are kept few: a key that is the item_key() of its nodeid
    # and digests is hex by construction; sources and heads repeat, so their checks are cached.
    if len(value) != 9:
        raise ValueError(
            'a record line is ["r", source, nodeid, key, inputs_id, env_id, duration, '
            "passed_at, head]"
        )
    _, source, nodeid, key, inputs_id, env_id, duration, passed_at, head = value
    if type(source) is not str or not _valid_source(source):
        raise ValueError(f"bad source {source!r}")
    if type(nodeid) is not str or not nodeid or "\0" in nodeid:
        raise ValueError(f"bad nodeid {nodeid!r}")
    if type(inputs_id) is not str or type(env_id) is not str:
        raise ValueError(f"the digests of {nodeid} are not hex SHA-256")
    if not _HEX128.fullmatch(inputs_id + env_id):
        raise ValueError(f"the digests of {nodeid} are not hex SHA-256")
    if key != item_key(nodeid, inputs_id, env_id):
        raise ValueError(f"the key of {nodeid} is not the key of its inputs and environment")
    if head is not None and (type(head) is not str or not _valid_head(head)):
        raise ValueError(f"head of {nodeid} is not a hex commit id")
    return Record(
        nodeid,
        key,
        inputs_id,
        env_id,
        _number("duration", nodeid, duration),
        _number("passed_at", nodeid, passed_at),
        head,
        source,
    )


@functools.lru_cache(maxsize=1024)
def _valid_source(source: str) -> bool:
    return not source or bool(_SOURCE.fullmatch(source))


@functools.lru_cache(maxsize=4096)
def _valid_head(head: str) -> bool:
    return bool(_HEAD.fullmatch(head))


def _number(label: str, nodeid: str, value: object) -> float:
    if type(value) is not float and type(value) is not int:
        raise ValueError(f"{label} of {nodeid} is not a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{label} of {nodeid} is not a finite number >= 0")
    return float(value)
