"""The records exchange format, version 2: JSON lines, versioned, deterministic; union-merge
and pruning.

One format serves ``records export``/``import`` files and the blobs a git ref holds
(:mod:`pytest_unchanged.sharing`). Each line is one JSON value (UTF-8, no ``ensure_ascii``):

* line 1, the header: ``{"format":"pytest-unchanged-records","version":2}``;
* ``["e",[env_id,...]]``: the environments the records of this file refer to (hex SHA-256
  digests of their facets), sorted; a record names one by its index in this list;
* ``["h",[head,...]]``: the HEAD commits (hex) the records were made at, sorted; by index too;
* a body (environment facets or an input manifest, for ``--unchanged-explain``):
  ``["b",id,text]``, where ``id`` is the hex SHA-256 of ``text`` and ``text`` is JSON;
* the records of one test of one source: ``["t",source,nodeid,[entry,...]]``, one entry per
  key: ``[key,env,duration,passed_at,head]`` or ``[key,env,duration,passed_at,head,inputs_id]``
  (``env``, ``head``: indexes into the ``e`` and ``h`` lists, ``head`` ``null`` before a first
  commit; ``duration`` in seconds, ``passed_at`` in Unix seconds; ``source`` ``""``: a local
  pass of the machine that wrote it).

Lines come in that order (``e``, ``h``, bodies sorted by id, then ``t`` lines sorted by source
and nodeid, entries by key), so the same records give the same bytes and the same git blob.

What a reader checks, every line before anything is used: the header; a body hashes to its id
and is a JSON object or list; a record's key is 64 hex digits, its indexes are in range, its
numbers from 0 to :data:`~.exchange_v1.MAX_SECONDS`, its source a source name
(:func:`check_source`). An entry that ships its ``inputs_id`` must have the key
:func:`~pytest_unchanged.keys.item_key` gives for its nodeid, inputs and environment, else
the file is refused. A git ref does not ship the inputs (they would double its size, and the
key alone decides a skip: a reader skips a test only when the key it computes from its own
inputs and environment is the record's key, and a key encodes both), so there the key is
checked for its form only. Version 1 files and refs are still read
(:mod:`pytest_unchanged.exchange_v1`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from json.encoder import encode_basestring

from .exchange_v1 import (
    MAX_SECONDS,
    Row,
    check_body,
    finite,
    parse_v1,
    valid_head,
    valid_source,
)
from .keys import item_key, utf8
from .records import Record

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ExchangeFormatError",
    "RecordSet",
    "Row",
    "SharingError",
    "check_source",
    "check_table",
    "dump_lines",
    "parse_lines",
    "record_of",
    "row_of",
]

FORMAT_NAME = "pytest-unchanged-records"
FORMAT_VERSION = 2
READS = (1, 2)
_HEX = re.compile(r"[0-9a-f]*")
_SOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_SHAPE = "an entry is [key, env, duration, passed_at, head] (and inputs_id)"


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


def row_of(record: Record) -> Row:
    """The :data:`Row` of ``record``."""
    r = record
    return (r.source, r.nodeid, r.key, r.inputs_id, r.env_id, r.duration, r.passed_at, r.head)


def record_of(row: Row) -> Record:
    """The :class:`~pytest_unchanged.records.Record` of ``row``."""
    source, nodeid, key, inputs_id, env_id, duration, passed_at, head = row
    return Record(nodeid, key, inputs_id, env_id, duration, passed_at, head, source)


@dataclass
class RecordSet:
    """Rows by ``(source, nodeid, key)`` and the bodies they refer to, by id."""

    rows: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)

    def add(self, rows: Iterable[Row], bodies: Mapping[str, str]) -> None:
        """Union-merge: add ``rows``; of two with the same ``(source, nodeid, key)`` the newer
        pass is kept. Bodies are added when missing."""
        found = self.rows
        for row in rows:
            slot = row[:3]
            old = found.get(slot)
            if old is None or old[6] < row[6]:
                found[slot] = row
        for body_id, text in bodies.items():
            self.bodies.setdefault(body_id, text)

    def prune(self, *, max_keys: int, max_age: float, now: float) -> None:
        """Keep, per source and nodeid, the newest ``max_keys`` rows, none older than
        ``max_age`` seconds before ``now`` (the local store's rule); drop unused bodies."""
        by_node: dict[tuple[str, str], list[Row]] = {}
        for row in self.rows.values():
            if row[6] >= now - max_age:
                by_node.setdefault(row[:2], []).append(row)
        kept: dict[tuple[str, str, str], Row] = {}
        for group in by_node.values():
            group.sort(key=lambda r: (-r[6], r[2]))
            for row in group[:max_keys]:
                kept[row[:3]] = row
        self.rows = kept
        used = {r[3] for r in kept.values()} | {r[4] for r in kept.values()}
        self.bodies = {i: text for i, text in self.bodies.items() if i in used}


def dump_lines(rows: Iterable[Row], bodies: Mapping[str, str], *, inputs: bool) -> Iterator[str]:
    """Yield the lines (each ending in a newline) of ``rows`` and ``bodies`` in the exchange
    format; ``inputs``: ship each row's ``inputs_id`` (when not ``""``)."""
    ordered = sorted(rows)
    envs = sorted({r[4] for r in ordered})
    heads = sorted({r[7] for r in ordered if r[7] is not None})
    env_at = {e: i for i, e in enumerate(envs)}
    head_at: dict[str | None, str] = {h: str(i) for i, h in enumerate(heads)}
    head_at[None] = "null"
    compact = (",", ":")
    yield json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}, separators=compact)
    yield "\n"
    yield f'["e",{json.dumps(envs, separators=compact)}]\n'
    yield f'["h",{json.dumps(heads, separators=compact)}]\n'
    # Written by hand for speed, the same text as json.dumps(..., ensure_ascii=False,
    # separators=(",", ":")): digests and heads are hex, floats use repr() as json does.
    text = encode_basestring
    for body_id in sorted(bodies):
        yield f'["b","{body_id}",{text(bodies[body_id])}]\n'
    for (source, nodeid), group in groupby(ordered, key=lambda r: (r[0], r[1])):
        entries = ",".join(
            f'["{r[2]}",{env_at[r[4]]},{float(r[5])!r},{float(r[6])!r},{head_at[r[7]]}'
            + (f',"{r[3]}"]' if inputs and r[3] else "]")
            for r in group
        )
        yield f'["t",{text(source)},{text(nodeid)},[{entries}]]\n'


def parse_lines(
    lines: Iterable[str], *, name: str, source: str | None = None
) -> tuple[list[Row], dict[str, str]]:
    """Read and validate every line of an exchange file (version 2, or 1 converted): return
    its rows, in file order, and its bodies by id.

    ``name`` names the file or blob in messages. When ``source`` is given, every record must
    carry it (a ref holds the records of its own source only). Raises
    :class:`ExchangeFormatError` naming the first bad line.
    """
    lines = list(lines)
    if not lines:
        raise ExchangeFormatError(f"{name}, line 1: empty, expected the {FORMAT_NAME} header")
    try:
        version = _check_header(lines[0])
    except (ValueError, RecursionError) as error:  # nested too deep
        raise ExchangeFormatError(f"{name}, line 1: {error}") from None
    try:
        # One parse of the whole file is several times faster than one per line; when it
        # fails, the lines are parsed one by one to name the first bad one.
        values: list[object] | None = json.loads("[" + ",".join(lines[1:]) + "]")
    except (ValueError, RecursionError):
        values = None
    if values is not None and len(values) != len(lines) - 1:
        values = None  # a line holding two values: the per-line parse names it
    try:
        if version == 1:
            return parse_v1(lines, values, source)
        return _parse_v2(lines, values, source)
    except (ValueError, RecursionError) as error:  # nested too deep
        raise ExchangeFormatError(f"{name}, {error}") from None


def _check_header(line: str) -> int:
    header = json.loads(line)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a {FORMAT_NAME} file (no header line)")
    version = header.get("version")
    if version not in READS or type(version) is not int:
        raise ValueError(
            f"format version {version!r}, this pytest-unchanged reads "
            f"{' and '.join(map(str, READS))} (written by a newer pytest-unchanged?)"
        )
    return version


def _parse_v2(
    lines: Sequence[str], values: Sequence[object] | None, source: str | None
) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    bodies: dict[str, str] = {}
    tables: dict[str, list[str]] = {}
    for number, line in enumerate(lines[1:], 2):
        try:
            value = json.loads(line) if values is None else values[number - 2]
            if type(value) is not list or not value or value[0] not in ("e", "h", "b", "t"):
                raise ValueError('not an ["e", ...], ["h", ...], ["b", ...] or ["t", ...] line')
            tag = value[0]
            if tag == "t":
                if len(tables) != 2:
                    raise ValueError('a record line before the ["e", ...] and ["h", ...] lines')
                _test_line(value, tables["e"], tables["h"], source, rows)
            elif tag == "b":
                body_id, text = check_body(value)
                bodies[body_id] = text
            else:
                tables[tag] = _table(tag, value, tables, rows)
        except (ValueError, RecursionError) as error:  # nested too deep
            raise ValueError(f"line {number}: {error}") from None
    return rows, bodies


def _table(
    tag: str, value: list[object], tables: Mapping[str, object], rows: list[Row]
) -> list[str]:
    if tag in tables or rows:
        raise ValueError(f'one ["{tag}", [...]] line, before the records')
    return check_table(tag, value)


def check_table(tag: str, value: object) -> list[str]:
    """Return the list of an ``["e", [env_id, ...]]`` or ``["h", [head, ...]]`` line (``tag``
    ``"e"`` or ``"h"``); raise :class:`ValueError` when ``value`` is not such a line."""
    items = value[1] if type(value) is list and len(value) == 2 and value[0] == tag else None
    if type(items) is not list:
        raise ValueError(f'one ["{tag}", [...]] line, before the records')
    for item in items:
        ok = type(item) is str and (valid_head(item) if tag == "h" else len(item) == 64)
        if not ok or not _HEX.fullmatch(item):
            raise ValueError(f"{item!r} is not a hex {'commit id' if tag == 'h' else 'digest'}")
    return items


def _test_line(
    value: list[object], envs: list[str], heads: list[str], wanted: str | None, rows: list[Row]
) -> None:
    # The checks every entry pays for are kept few and cheap: this loop reads every record of
    # a fetched ref. Keys are checked for hex once per line.
    if len(value) != 4 or type(value[3]) is not list:
        raise ValueError('a record line is ["t", source, nodeid, [entry, ...]]')
    _, source, nodeid, entries = value
    assert isinstance(entries, list)
    if type(source) is not str or not valid_source(source):
        raise ValueError(f"bad source {source!r}")
    if wanted is not None and source != wanted:
        raise ValueError(f"a record of source {source!r} under {wanted!r}")
    if type(nodeid) is not str or not nodeid or "\0" in nodeid or not utf8(nodeid):
        raise ValueError(f"bad nodeid {nodeid!r} (empty, a NUL, or not UTF-8 text)")
    n_envs, n_heads = len(envs), len(heads)
    keys = []
    for entry in entries:
        if type(entry) is not list:
            raise ValueError(f"{nodeid}: {_SHAPE}")
        if len(entry) == 5:
            key, env, duration, passed_at, head = entry
            inputs_id = ""
        elif len(entry) == 6:
            key, env, duration, passed_at, head, inputs_id = entry
            inputs_id = _inputs(nodeid, key, inputs_id, env, envs)
        else:
            raise ValueError(f"{nodeid}: {_SHAPE}")
        if type(key) is not str or len(key) != 64:
            raise ValueError(f"the key of {nodeid} is not a hex SHA-256 digest")
        if type(env) is not int or not 0 <= env < n_envs:
            raise ValueError(f"the environment index of {nodeid} is not in the e list")
        if head is not None and (type(head) is not int or not 0 <= head < n_heads):
            raise ValueError(f"the HEAD index of {nodeid} is not in the h list")
        if type(duration) is not float or not 0 <= duration <= MAX_SECONDS:
            duration = finite("duration", nodeid, duration)
        if type(passed_at) is not float or not 0 <= passed_at <= MAX_SECONDS:
            passed_at = finite("passed_at", nodeid, passed_at)
        keys.append(key)
        rows.append(
            (source, nodeid, key, inputs_id, envs[env], duration, passed_at,
             None if head is None else heads[head])
        )  # fmt: skip
    if not _HEX.fullmatch("".join(keys)):
        raise ValueError(f"a key of {nodeid} is not a hex SHA-256 digest")


def _inputs(nodeid: str, key: object, inputs_id: object, env: object, envs: list[str]) -> str:
    if type(inputs_id) is not str or len(inputs_id) != 64 or not _HEX.fullmatch(inputs_id):
        raise ValueError(f"the inputs digest of {nodeid} is not a hex SHA-256 digest")
    env_id = envs[env] if type(env) is int and 0 <= env < len(envs) else ""
    if key != item_key(nodeid, inputs_id, env_id):
        raise ValueError(f"the key of {nodeid} is not the key of its inputs and environment")
    return inputs_id
