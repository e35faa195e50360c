"""Records in columns: the tests of one source, each with its entries, in parallel lists.

A fetch reads hundreds of thousands of records, and one Python object per record (a
:data:`~.exchange_v1.Row` tuple, a loop iteration of checks) cost more than the JSON parse
itself. A :class:`Columns` holds the records of one source the way the shared table
(:mod:`pytest_unchanged.shared_table`) stores them: per test its nodeid and how many entries
it has; per entry, in test order, its key (32 raw bytes each, in one bytes object), its
environment digest, ``HEAD`` commit, inputs digest (``""``: not shipped), duration and pass
time (seconds).

:func:`parse_shard` reads a shard blob of a ref (format 2) in the shape the writer gives it
(after the ``e`` and ``h`` lines, one test line per nodeid, sorted) with whole-column checks
(``set(map(type, ...))``, ``min``/``max``, one hex decode of all the keys) instead of a loop
per record. Whatever it does not take (another shape, any failed check) it leaves to
:func:`~pytest_unchanged.exchange.parse_lines`, the reference reader, which names the bad line
or returns rows (then :func:`from_rows`). So it takes a subset of what the reference reader
takes, giving the same records; ``tests/test_columns.py`` checks that on crafted lines.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, count, groupby
from operator import itemgetter
from typing import Any

from .exchange import check_table
from .exchange_v1 import MAX_SECONDS, Row
from .records import Record

__all__ = ["Columns", "from_rows", "merge", "parse_shard", "parse_values"]

KEY_BYTES = 32


@dataclass
class Columns:
    """The records of one ``source``: per test ``nodeids`` (each once, the tests of one file
    next to each other) and ``counts`` (entries, at least one); per entry ``keys`` (32 bytes
    each), ``envs``, ``heads`` (``None``: before a first commit), ``inputs`` (``""``: not
    shipped), ``durations`` and ``passed`` (Unix seconds)."""

    source: str
    nodeids: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    keys: bytes = b""
    envs: list[str] = field(default_factory=list)
    heads: list[str | None] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    passed: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        """The number of records (entries)."""
        return len(self.envs)

    @classmethod
    def concat(cls, source: str, parts: Sequence[Columns]) -> Columns:
        """The records of ``parts`` (all of ``source``; no test in two of them) one after
        the other."""
        assert all(part.source == source for part in parts)

        def joined(name: str) -> list[Any]:
            return list(chain.from_iterable(getattr(part, name) for part in parts))

        return cls(
            source, joined("nodeids"), joined("counts"), b"".join(p.keys for p in parts),
            joined("envs"), joined("heads"), joined("inputs"), joined("durations"),
            joined("passed"),
        )  # fmt: skip

    def offsets(self) -> list[int]:
        """The index of each test's first entry, and the number of entries at the end."""
        return [0, *accumulate(self.counts)]

    def slice(self, a: int, b: int, starts: Sequence[int]) -> Columns:
        """The tests ``a`` to ``b`` (``starts``: :meth:`offsets`)."""
        ea, eb = starts[a], starts[b]
        return Columns(
            self.source, self.nodeids[a:b], self.counts[a:b],
            self.keys[KEY_BYTES * ea : KEY_BYTES * eb], self.envs[ea:eb], self.heads[ea:eb],
            self.inputs[ea:eb], self.durations[ea:eb], self.passed[ea:eb],
        )  # fmt: skip

    def records(self, wanted: Callable[[str], bool] | None = None) -> Iterator[Record]:
        """The :class:`~pytest_unchanged.records.Record` of each record whose nodeid is
        ``wanted`` (all when ``None``)."""
        starts, keys = self.offsets(), self.keys
        for test, nodeid in enumerate(self.nodeids):
            if wanted is not None and not wanted(nodeid):
                continue
            for i in range(starts[test], starts[test + 1]):
                yield Record(
                    nodeid, keys[KEY_BYTES * i : KEY_BYTES * (i + 1)].hex(), self.inputs[i],
                    self.envs[i], self.durations[i], self.passed[i], self.heads[i], self.source,
                )  # fmt: skip

    def rows(self) -> Iterator[Row]:
        """The records as rows ``(source, nodeid, key, inputs_id, env_id, duration,
        passed_at, head)``, in test order."""
        keys, nodeids = self.keys, self.nodeids
        starts = self.offsets()
        for test, nodeid in enumerate(nodeids):
            for i in range(starts[test], starts[test + 1]):
                key = keys[KEY_BYTES * i : KEY_BYTES * (i + 1)].hex()
                yield (
                    self.source, nodeid, key, self.inputs[i], self.envs[i],
                    self.durations[i], self.passed[i], self.heads[i],
                )  # fmt: skip


def from_rows(rows: Iterable[Row]) -> list[Columns]:
    """The :class:`Columns` of each source of ``rows`` (whose keys are 64 lower-case hex
    digits), sorted by source, nodeid and key. Of two rows with the same source, nodeid and
    key the newer pass is kept (the union-merge rule of the exchange)."""
    rows = list(rows)
    slots = list(map(itemgetter(0, 1, 2), rows))
    if not all(map(operator.lt, slots, slots[1:])):  # not as a file or ref lists them
        newest: dict[tuple[str, str, str], Row] = {}
        for slot, row in zip(slots, rows, strict=True):
            old = newest.get(slot)
            if old is None or old[6] < row[6]:
                newest[slot] = row
        rows = [newest[slot] for slot in sorted(newest)]
    found = []
    for source, group in groupby(rows, key=itemgetter(0)):
        part = list(group)
        nodeids = list(map(itemgetter(1), part))
        found.append(
            Columns(
                source,
                [nodeid for nodeid, _ in groupby(nodeids)],
                [len(list(same)) for _, same in groupby(nodeids)],
                bytes.fromhex("".join(map(itemgetter(2), part))),
                list(map(itemgetter(4), part)),
                list(map(itemgetter(7), part)),
                list(map(itemgetter(3), part)),
                list(map(float, map(itemgetter(5), part))),
                list(map(float, map(itemgetter(6), part))),
            )
        )
    return found


def merge(
    old: Columns | None, new: Columns | None, *, max_keys: int, cutoff: float
) -> tuple[Columns | None, int, bool]:
    """Union-merge the records of one file and source: of two with the same nodeid and key
    the newer pass is kept (its duration, pass time and ``HEAD``); then keep per nodeid the
    newest ``max_keys`` records passed at ``cutoff`` or later. Return the merged records
    (``None``: none left), how many of ``new`` were not in ``old``, and whether any record
    was pruned."""
    entries: dict[tuple[str, bytes], list[object]] = {}
    added = total = 0
    for columns, is_new in ((old, False), (new, True)):
        if columns is None:
            continue
        starts, raw = columns.offsets(), columns.keys
        for test, nodeid in enumerate(columns.nodeids):
            for i in range(starts[test], starts[test + 1]):
                slot = (nodeid, raw[KEY_BYTES * i : KEY_BYTES * (i + 1)])
                entry: list[object] = [
                    columns.envs[i], columns.heads[i], columns.inputs[i],
                    columns.durations[i], columns.passed[i],
                ]  # fmt: skip
                found = entries.get(slot)
                if found is None:
                    entries[slot] = entry
                    added += is_new
                    total += 1
                elif found[4] < entry[4]:  # type: ignore[operator]
                    found[1], found[3], found[4] = entry[1], entry[3], entry[4]
    by_node: dict[str, list[tuple[bytes, list[object]]]] = {}
    for (nodeid, key), entry in entries.items():
        if entry[4] >= cutoff:  # type: ignore[operator]
            by_node.setdefault(nodeid, []).append((key, entry))
    if not by_node:
        return None, added, total > 0
    merged = Columns((new or old).source)  # type: ignore[union-attr]
    keys: list[bytes] = []
    for nodeid in sorted(by_node):
        kept = sorted(by_node[nodeid], key=lambda item: (-item[1][4], item[0]))[:max_keys]  # type: ignore[operator]
        merged.nodeids.append(nodeid)
        merged.counts.append(len(kept))
        for key, (env, head, inputs, duration, passed) in sorted(kept, key=lambda item: item[0]):
            keys.append(key)
            merged.envs.append(env)  # type: ignore[arg-type]
            merged.heads.append(head)  # type: ignore[arg-type]
            merged.inputs.append(inputs)  # type: ignore[arg-type]
            merged.durations.append(duration)  # type: ignore[arg-type]
            merged.passed.append(passed)  # type: ignore[arg-type]
    merged.keys = b"".join(keys)
    return merged, added, len(keys) < total


def _ok(values: Sequence[object], kind: type) -> bool:
    return set(map(type, values)) == {kind}


def _seconds(values: Sequence[float]) -> bool:
    """Whether every value is a float from 0 to MAX_SECONDS (NaN is not: a sum with a NaN is
    NaN, and a NaN is not equal to itself)."""
    total = sum(values) if _ok(values, float) else math.nan
    return total == total and min(values) >= 0 and max(values) <= MAX_SECONDS


def parse_shard(values: Sequence[object], source: str) -> Columns | None:
    """The records of a version-2 shard blob of ``source`` whose lines after the header parse
    as ``values``, or ``None`` when the blob is not in the writer's shape (an ``e`` line, an
    ``h`` line, then test lines) or a check fails: then the reference reader decides. Never
    raises."""
    try:
        return _parse(values, source)
    except (TypeError, ValueError, KeyError, IndexError, UnicodeError):
        return None


def _parse(values: Sequence[object], source: str) -> Columns | None:
    if len(values) < 3:
        return None
    env_list = check_table("e", values[0])
    head_list = check_table("h", values[1])
    tests = values[2:]
    if not tests or not _ok(tests, list) or set(map(len, tests)) != {4}:  # type: ignore[arg-type]
        return None
    tags, sources, nodeids, entries = zip(*tests, strict=True)
    if set(tags) != {"t"} or set(sources) != {source} or not _ok(sources, str):
        return None
    # Nodeids: text, not empty, no NUL, UTF-8 (a lone surrogate does not encode), sorted and
    # each once (so the tests of one file are next to each other).
    if not _ok(nodeids, str) or min(map(len, nodeids)) == 0:
        return None
    joined = "".join(nodeids)
    if "\0" in joined or not all(map(operator.lt, nodeids, nodeids[1:])):
        return None
    joined.encode("utf-8")
    if not _ok(entries, list):
        return None
    counts = list(map(len, entries))
    flat = list(chain.from_iterable(entries))
    if min(counts) == 0 or not _ok(flat, list) or set(map(len, flat)) != {5}:
        return None  # an entry shipping its inputs digest: the reference reader checks it
    keys, envs, durations, passed, heads = zip(*flat, strict=True)
    if not _ok(keys, str) or set(map(len, keys)) != {64}:
        return None
    hex_keys = "".join(keys)
    raw = bytes.fromhex(hex_keys)  # skips blanks: then it is short
    if 2 * len(raw) != len(hex_keys) or any(digit in hex_keys for digit in "ABCDEF"):
        return None
    # The writer sorts the keys of a test: each once (a key twice is merged by the reference
    # reader). Keys out of order are only allowed where a test starts.
    starts = set(accumulate(counts))
    unordered = compress(count(1), map(operator.ge, keys, keys[1:]))
    if not starts.issuperset(unordered):
        return None
    if not _ok(envs, int) or min(envs) < 0 or max(envs) >= len(env_list):
        return None
    if not set(map(type, heads)) <= {int, type(None)}:
        return None
    head_at: dict[int | None, str | None] = dict(enumerate(head_list))
    head_at[None] = None
    if not _seconds(durations) or not _seconds(passed):
        return None
    return Columns(
        source,
        list(nodeids),
        counts,
        raw,
        list(map(env_list.__getitem__, envs)),
        list(map(head_at.__getitem__, heads)),  # KeyError: an index out of range
        [""] * len(flat),
        list(durations),
        list(passed),
    )


def parse_values(text: str, *, parse: bool = True) -> tuple[list[str], list[object] | None]:
    """The lines of ``text`` (split at ``\\n`` only: U+2028 in a nodeid is not a line break;
    no empty last line) and, when ``parse``, the JSON values of the lines after the first,
    parsed in one go (``None`` when that fails or a line holds more than one value)."""
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    if not parse or not lines:
        return lines, None
    try:
        values: list[object] | None = json.loads("[" + ",".join(lines[1:]) + "]")
    except (ValueError, RecursionError):
        values = None
    if values is not None and len(values) != len(lines) - 1:
        values = None
    return lines, values
