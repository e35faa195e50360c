"""The column reader of a ref's shard takes a subset of what the reference reader takes, with
the same records: every crafted variation of a shard is either declined (and left to the
reference reader) or read exactly as the reference reader reads it."""

from __future__ import annotations

import json
import random

import pytest

from pytest_unchanged.columns import Columns, from_rows, merge, parse_shard, parse_values
from pytest_unchanged.exchange import ExchangeFormatError, Row, dump_lines, parse_lines
from pytest_unchanged.keys import item_key

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

ENVS = ["e" * 63 + str(n) for n in range(3)]
HEADS = ["c" * 40, "d" * 40]


def _rows(source: str = "ci", tests: int = 6) -> list[Row]:
    rows: list[Row] = []
    for n in range(tests):
        nodeid = f"tests/t{n % 2}.py::test_{n}[é-{n}]"
        for k in range(1 + n % 3):
            key = item_key(nodeid, f"{k:064x}", ENVS[k])
            head = None if k == 2 else HEADS[k]
            rows.append((source, nodeid, key, "", ENVS[k], 0.25 * k, 1.7e9 + n + k / 8, head))
    return rows


def _lines() -> list[str]:
    return "".join(dump_lines(_rows(), {}, inputs=False)).splitlines()


def _both(lines: list[str]) -> tuple[Columns | None, list[Row] | None]:
    """What the column reader and the reference reader make of a shard's ``lines``."""
    _, values = parse_values("\n".join(lines) + "\n")
    fast = parse_shard(values, "ci") if values is not None else None
    try:
        slow: list[Row] | None = parse_lines(lines, name="shard", source="ci")[0]
    except ExchangeFormatError:
        slow = None
    return fast, slow


def test_a_shard_as_written_is_read_by_columns_with_the_reference_records() -> None:
    fast, slow = _both(_lines())
    assert fast is not None and slow is not None
    assert sorted(fast.rows()) == sorted(slow)
    assert fast.counts == [1, 3, 2, 2, 1, 3] and len(fast) == 12  # sorted by nodeid


def _edit_entry(lines: list[str], test: int, field: int, value: object) -> list[str]:
    line = json.loads(lines[3 + test])
    line[3][0][field] = value
    return [*lines[:3], json.dumps(line, ensure_ascii=False), *lines[4 + test :]]


def _edit_line(lines: list[str], test: int, field: int, value: object) -> list[str]:
    line = json.loads(lines[3 + test])
    line[field] = value
    return [*lines[:3], json.dumps(line, ensure_ascii=False), *lines[4 + test :]]


def _variations() -> list[tuple[str, list[str]]]:
    lines = _lines()
    key = json.loads(lines[4])[3][0][0]
    third = json.loads(lines[5])
    found = [
        ("upper-case key", _edit_entry(lines, 1, 0, key.upper())),
        ("short key", _edit_entry(lines, 1, 0, key[:63])),
        ("key with a blank", _edit_entry(lines, 1, 0, key[:62] + " 0")),
        ("key with two blanks", _edit_entry(lines, 1, 0, f"{key[:30]} {key[30:60]} {key[60:62]}")),
        ("key not text", _edit_entry(lines, 1, 0, 7)),
        ("env out of range", _edit_entry(lines, 1, 1, 3)),
        ("env negative", _edit_entry(lines, 1, 1, -1)),
        ("env a bool", _edit_entry(lines, 1, 1, True)),
        ("env a float", _edit_entry(lines, 1, 1, 0.0)),
        ("duration an int", _edit_entry(lines, 1, 2, 1)),
        ("duration negative", _edit_entry(lines, 1, 2, -0.5)),
        ("duration huge", _edit_entry(lines, 1, 2, 1e300)),
        ("duration text", _edit_entry(lines, 1, 2, "1.0")),
        ("passed_at null", _edit_entry(lines, 1, 3, None)),
        ("head out of range", _edit_entry(lines, 1, 4, 2)),
        ("head negative", _edit_entry(lines, 1, 4, -1)),
        ("head a float", _edit_entry(lines, 1, 4, 1.0)),
        ("head a bool", _edit_entry(lines, 1, 4, False)),
        ("other source", _edit_line(lines, 1, 1, "main")),
        ("empty nodeid", _edit_line(lines, 0, 2, "")),
        ("nodeid with a NUL", _edit_line(lines, 1, 2, "tests/t1.py::a\0b")),
        ("nodeid not text", _edit_line(lines, 1, 2, 5)),
        ("no entries", _edit_line(lines, 1, 3, [])),
        ("entry not a list", _edit_line(lines, 1, 3, ["x"])),
        ("entry too long", _edit_line(lines, 1, 3, [[key, 0, 0.5, 1.0, None, "a", "b"]])),
        ("entry with inputs", _edit_line(lines, 1, 3, [[key, 0, 0.5, 1.0, None, "0" * 64]])),
        ("line too long", [*lines[:4], json.dumps([*json.loads(lines[4]), 1]), *lines[5:]]),
        ("a body line", [*lines[:3], '["b","x","[]"]', *lines[3:]]),
        ("nodeids unsorted", [*lines[:3], lines[4], lines[3], *lines[5:]]),
        ("a nodeid twice", [*lines[:4], lines[3], *lines[4:]]),
        ("keys unsorted", _edit_line(lines, 2, 3, third[3][::-1])),
        ("a key twice", _edit_line(lines, 2, 3, [third[3][0], third[3][0]])),
        ("a key twice, newer", _edit_line(lines, 2, 3, [third[3][0], [*third[3][0][:3], 2e9, 0]])),
        ("NaN", [*lines[:4], lines[4].replace("0.25", "NaN"), *lines[5:]]),
        ("Infinity", [*lines[:4], lines[4].replace("0.25", "Infinity"), *lines[5:]]),
        ("lone surrogate", [*lines[:4], lines[4].replace("\u00e9", "\\udc80"), *lines[5:]]),
        ("h before e", [lines[0], lines[2], lines[1], *lines[3:]]),
        ("no tests", lines[:3]),
        ("header spaced", [lines[0].replace(",", ", "), *lines[1:]]),
        ("bad head id", [*lines[:2], '["h",["xyz"]]', *lines[3:]]),
        ("two values a line", [*lines[:4], lines[4] + "," + lines[5], *lines[6:]]),
    ]
    rng = random.Random(12)
    for n in range(60):  # random single-character edits of a test line
        index = rng.randrange(3, len(lines))
        line = lines[index]
        at = rng.randrange(len(line))
        edited = line[:at] + rng.choice('0123456789abcdefABCDEF.,-e"[]nul ') + line[at + 1 :]
        found.append((f"random {n}", [*lines[:index], edited, *lines[index + 1 :]]))
    return found


@pytest.mark.parametrize(
    ("lines"), [v[1] for v in _variations()], ids=[v[0] for v in _variations()]
)
def test_a_crafted_shard_is_declined_or_read_as_the_reference_reads_it(lines: list[str]) -> None:
    fast, slow = _both(lines)
    if fast is not None:
        assert slow is not None, "the column reader took a shard the reference reader refuses"
        assert sorted(fast.rows()) == sorted(r for c in from_rows(slow) for r in c.rows())


def test_merge_keeps_the_newer_pass_and_prunes_per_test() -> None:
    rows = _rows()
    (old,) = from_rows(rows)
    newer = [(*r[:6], r[6] + 100, "f" * 40) for r in rows if r[1].endswith("[é-2]")]
    (new,) = from_rows(newer)
    merged, added, pruned = merge(old, new, max_keys=2, cutoff=1.7e9 + 1)
    assert merged is not None and added == 0 and pruned
    found = {(r[1], r[2]): r for r in merged.rows()}
    assert max(map(merged.counts.__getitem__, range(len(merged.counts)))) == 2
    assert not any(r[1].endswith("[é-0]") for r in found.values())  # older than the cutoff
    kept = [r for r in found.values() if r[1].endswith("[é-2]")]
    assert len(kept) == 2 and all(r[7] == "f" * 40 and r[6] > 1.7e9 + 100 for r in kept)
