"""The store keeps each module summary's view of its records exact, in every transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_unchanged.fastpath import ModuleSummary
from pytest_unchanged.store import Record, Store

pytestmark = pytest.mark.depends_on("pytest_unchanged/store.py", "pytest_unchanged/fastpath.py")

DAY = 86400.0
NONE: frozenset[str] = frozenset()
SLOW = frozenset({"slow"})
SUMMARY = ModuleSummary(
    file="tests/test_m.py",
    inputs_id="inputs",
    specs_body='{"specs": []}',
    marksets=((NONE, NONE), (SLOW, NONE)),
    items=(("tests/test_m.py::test_a", "ka", 0), ("tests/test_m.py::test_slow", "ks", 1)),
)


def record(nodeid: str, key: str, passed_at: float, duration: float = 1.5) -> Record:
    return Record(nodeid, key, "inputs", "env", duration, passed_at, None)


def write(
    store: Store,
    now: float,
    *,
    passes: Sequence[Record] = (),
    failures: Sequence[tuple[str, str]] = (),
    modules: Sequence[ModuleSummary] = (),
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
        now=now,
    )


def stored(store: Store) -> tuple[frozenset[int], int, float]:
    (module,) = store.module_candidates("env")["tests/test_m.py"]
    return module.missing, module.recorded, module.saved


def test_missing_items_follow_passes_failures_and_pruning(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    a = "tests/test_m.py::test_a"
    write(store, 100.0, passes=[record(a, "ka", 100.0)], modules=[SUMMARY])
    assert stored(store) == (frozenset({1}), 1, 1.5)  # test_slow (mark set 1) has no record
    write(store, 101.0, passes=[record("tests/test_m.py::test_slow", "ks", 101.0)])
    assert stored(store) == (frozenset(), 2, 3.0)
    write(store, 102.0, failures=[(a, "ka")])
    assert stored(store) == (frozenset({0}), 1, 1.5)
    write(store, 103.0, passes=[record(a, "ka", 103.0)])
    assert stored(store) == (frozenset(), 2, 3.0)
    # Newer keys push test_a's key out (max_keys=2): the summary sees it go.
    write(store, 104.0, passes=[record(a, f"k{n}", 104.0 + n) for n in range(2)], max_keys=2)
    assert stored(store) == (frozenset({0}), 1, 1.5)
    # Records older than max_age go, and so does the summary's view of them.
    write(store, 103.0, passes=[record(a, "ka", 103.0)])
    write(store, 30 * DAY, modules=[SUMMARY])  # the summary itself is recent
    write(store, 200.0 + 60 * DAY, passes=[record("other.py::t", "k", 200.0 + 60 * DAY)])
    assert stored(store) == (frozenset({0, 1}), 0, 0.0)


def test_a_format_1_store_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as db:
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
    write(store, 10.0, passes=[record("tests/test_m.py::test_a", "ka", 10.0)], modules=[SUMMARY])
    assert stored(store) == (frozenset({1}), 1, 1.5)
