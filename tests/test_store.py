"""The store keeps each module summary's tally of its records exact, in every transaction, and
reports a damaged, locked or unusable file without losing anything."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pytest_unchanged.keys import item_key
from pytest_unchanged.recording import Recorder
from pytest_unchanged.store import (
    CorruptStoreError,
    Record,
    Store,
    StoreBusyError,
    StoreError,
)
from pytest_unchanged.summaries import ModuleSummary

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

DAY = 86400.0
A = "tests/test_m.py::test_a"
SLOW = "tests/test_m.py::test_slow"
KA = item_key(A, "inputs", "env")  # a summary's keys are those of its items' inputs
KS = item_key(SLOW, "inputs", "env")
KB = item_key(A, "other inputs", "env")
SUMMARY = ModuleSummary(
    file="tests/test_m.py",
    inputs_id="inputs",
    specs_body='{"specs": []}',
    marksets=(frozenset(), frozenset({"slow"})),
    items=((A, KA, 0, "inputs"), (SLOW, KS, 1, "inputs")),
)


def record(nodeid: str, key: str, passed_at: float, duration: float = 1.5) -> Record:
    return Record(nodeid, key, "inputs", "env", duration, passed_at, None)


@pytest.fixture(autouse=True)
def close_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every store a test opens (Python 3.13 warns about an unclosed connection)."""
    opened: list[Store] = []
    original = Store.__init__

    def init(self: Store, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Store, "__init__", init)
    yield
    for store in opened:
        store.close()


def write(
    store: Store,
    now: float,
    *,
    passes: Sequence[Record] = (),
    failures: Sequence[tuple[str, str]] = (),
    modules: Sequence[ModuleSummary] = (),
    forget: Sequence[str] = (),
    max_keys: int = 8,
) -> None:
    store.update(
        passes,
        failures,
        {},
        max_keys=max_keys,
        max_age=60 * DAY,
        modules=modules,
        env_id="env",
        forget=forget,
        now=now,
    )


def tally(store: Store) -> tuple[tuple[int, int, int, float], ...]:
    """``(markset, items, items with a record, their seconds)`` of the one stored summary."""
    (module,) = store.module_candidates("env")["tests/test_m.py"]
    return module.tally


def test_the_tally_follows_passes_failures_pruning_and_forgetting(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    write(store, 100.0, passes=[record(A, KA, 100.0)], modules=[SUMMARY])
    assert tally(store) == ((0, 1, 1, 1.5), (1, 1, 0, 0.0))  # test_slow has no record
    write(store, 101.0, passes=[record(SLOW, KS, 101.0)])
    assert tally(store) == ((0, 1, 1, 1.5), (1, 1, 1, 1.5))
    write(store, 102.0, failures=[(A, KA)])
    assert tally(store) == ((0, 1, 0, 0.0), (1, 1, 1, 1.5))
    write(store, 103.0, passes=[record(A, KA, 103.0)])
    assert tally(store)[0] == (0, 1, 1, 1.5)
    # Newer keys push test_a's key out (max_keys=2): the summary sees it go.
    write(store, 104.0, passes=[record(A, f"k{n}", 104.0 + n) for n in range(2)], max_keys=2)
    assert tally(store)[0] == (0, 1, 0, 0.0)
    write(store, 106.0, passes=[record(A, KA, 106.0)])
    write(store, 107.0, forget=[A])  # a crash: every key of test_a goes
    assert tally(store)[0] == (0, 1, 0, 0.0)
    assert list(store.records()) == [SLOW]
    # Records older than max_age go, and so does the summary's view of them.
    write(store, 30 * DAY, modules=[SUMMARY])  # the summary itself is recent
    write(store, 200.0 + 60 * DAY, passes=[record("other.py::t", "k", 200.0 + 60 * DAY)])
    assert tally(store) == ((0, 1, 0, 0.0), (1, 1, 0, 0.0))


def test_a_rewritten_summary_starts_from_the_records(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    write(store, 100.0, passes=[record(A, KA, 100.0), record(SLOW, KS, 100.0)])
    write(store, 101.0, modules=[SUMMARY])
    assert tally(store) == ((0, 1, 1, 1.5), (1, 1, 1, 1.5))
    other = ModuleSummary(
        SUMMARY.file,
        SUMMARY.inputs_id,
        '{"specs": ["x"]}',
        (frozenset(),),
        ((A, KB, -1, "other inputs"),),
    )
    write(store, 102.0, modules=[other])
    assert tally(store) == ((-1, 1, 0, 0.0),)


def test_a_format_1_store_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            INSERT INTO meta VALUES ('format', '1');
            CREATE TABLE records (nodeid TEXT NOT NULL, key TEXT NOT NULL,
                inputs_id TEXT NOT NULL, env_id TEXT NOT NULL, duration REAL NOT NULL,
                passed_at REAL NOT NULL, head TEXT, PRIMARY KEY (nodeid, key)) WITHOUT ROWID;
            INSERT INTO records VALUES ('t.py::t', 'k', 'i', 'e', 1.0, 5.0, NULL);
            CREATE TABLE modules (file TEXT NOT NULL, env_id TEXT NOT NULL,
                inputs_id TEXT NOT NULL, specs TEXT NOT NULL, recorded_at REAL NOT NULL,
                PRIMARY KEY (file, env_id, inputs_id)) WITHOUT ROWID;
            INSERT INTO modules VALUES ('t.py', 'e', 'i', '{}', 5.0);
            """
        )
    db.close()
    store = Store(path)
    assert list(store.records()) == ["t.py::t"]
    assert store.module_candidates("e") == {}
    write(store, 10.0, passes=[record(A, KA, 10.0)], modules=[SUMMARY])
    assert tally(store) == ((0, 1, 1, 1.5), (1, 1, 0, 0.0))


def test_a_locked_store_is_reported_not_discarded(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    write(Store(path), 1.0, passes=[record(A, KA, 1.0)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusyError, match="locked by another pytest process"):
            write(Store(path, timeout=0.1), 2.0, passes=[record(SLOW, KS, 2.0)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert list(Store(path).records()) == [A]


def test_a_store_damaged_inside_is_replaced_when_written(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = Store(path)
    write(store, 1.0, passes=[record(f"t.py::t{n}", "k" * 64, 1.0) for n in range(3000)])
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page : 6 * page] = b"\xff" * (3 * page)  # B-tree pages of the records table
    path.write_bytes(bytes(data))
    recorder = Recorder()
    recorder.passes.append(record(A, KA, time.time()))
    warnings: list[Exception] = []
    recorder.write(path, head=None, summaries=(), max_keys=8, max_age=DAY, warn=warnings.append)
    assert [type(w) for w in warnings] == [CorruptStoreError]
    assert path.with_name("store.sqlite3.corrupt").exists()
    assert list(Store(path).records()) == [A]  # this session's pass went into a new store
    assert issubclass(CorruptStoreError, StoreError)


def test_a_nodeid_that_is_not_utf8_is_never_stored(tmp_path: Path) -> None:
    """A test file whose name is not UTF-8 gives a nodeid with a lone surrogate, which SQLite
    cannot hold: its records, failures and summary are left out, the rest is written
    (adversarial review of issue 10, round 2: it was a traceback at the end of every run)."""
    odd = "tests/t\udcff.py::test_x"
    store = Store(tmp_path / "store.sqlite3")
    summary = ModuleSummary(
        file="tests/t\udcff.py",
        inputs_id="inputs",
        specs_body="{}",
        marksets=(frozenset(),),
        items=((odd, KA, 0, "inputs"),),
    )
    write(
        store,
        100.0,
        passes=[record(odd, KA, 100.0), record(A, KA, 100.0)],
        failures=[(odd, KS)],
        modules=[summary],
        forget=[odd],
    )
    assert list(store.records()) == [A]
