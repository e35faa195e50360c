"""Store format 5: at most 120 bytes on disk per (test, key), older formats migrated with every
record, and names no record uses any more dropped."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from pytest_unchanged.keys import item_key
from pytest_unchanged.records import Record
from pytest_unchanged.store import Store
from pytest_unchanged.store_format import STORE_FORMAT

from .conftest import commit, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

STORE = Path(".pytest_cache", "d", "unchanged", "store.sqlite3")
# Long parametrized nodeids, most items deselected by -m (the shape of pallets/click's suite).
SUITE = """
import pytest

@pytest.mark.parametrize("case", [f"some-fairly-long-parameter-{n:05d}" for n in range(1500)])
def test_a_parametrized_check_with_a_long_name(case):
    pass

@pytest.mark.stress
@pytest.mark.parametrize("n", range(3000))
def test_stress_with_a_long_descriptive_name(n):
    pass
"""


def test_a_store_keeps_at_most_120_bytes_per_test_and_key(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nmarkers = stress\naddopts = -m 'not stress'\n")
    pytester.makepyfile(test_big=SUITE)
    commit(repo)
    for _ in range(3):
        pytester.runpytest("--unchanged")
    result = pytester.runpytest("--unchanged")
    result.assert_outcomes()  # nothing ran: every selected item unchanged
    result.stdout.fnmatch_lines(["*1,500 unchanged tests not run*"])
    size = (repo / STORE).stat().st_size
    assert len(records(repo)) == 1500
    assert size / 4500 <= 120, f"{size / 4500:.0f} bytes per (test, key)"


def _format_4_store(path: Path) -> None:
    """A store as pytest-unchanged wrote it in format 4 (its records, failures, bodies, shared
    records and a module summary)."""
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            f"""
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            INSERT INTO meta VALUES ('format', '4');
            CREATE TABLE records (nodeid TEXT NOT NULL, key TEXT NOT NULL,
                inputs_id TEXT NOT NULL, env_id TEXT NOT NULL, duration REAL NOT NULL,
                passed_at REAL NOT NULL, head TEXT, PRIMARY KEY (nodeid, key)) WITHOUT ROWID;
            INSERT INTO records VALUES
                ('t.py::a', '{"a" * 64}', 'in1', 'env', 1.25, 5.5, '{"c" * 40}'),
                ('t.py::a', 'not-hex', 'in2', 'env', 2.0, 6.0, NULL),
                ('sub/u.py::C::b[x-y]', '{"b" * 64}', 'in1', 'env2', 0.5, 7.0, NULL);
            CREATE TABLE bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
            INSERT INTO bodies VALUES ('in1', '[]'), ('env', '{{}}');
            CREATE TABLE failures (nodeid TEXT NOT NULL, key TEXT NOT NULL,
                failed_at REAL NOT NULL, PRIMARY KEY (nodeid, key)) WITHOUT ROWID;
            INSERT INTO failures VALUES ('t.py::f', 'kf', 4.0);
            CREATE TABLE modules (file TEXT NOT NULL, env_id TEXT NOT NULL,
                inputs_id TEXT NOT NULL, specs TEXT NOT NULL, marksets TEXT NOT NULL,
                recorded_at REAL NOT NULL, tally TEXT,
                PRIMARY KEY (file, env_id, inputs_id)) WITHOUT ROWID;
            INSERT INTO modules VALUES ('t.py', 'env', 'u', '{{}}', '[]', 5.0, '[]');
            CREATE TABLE module_items (file TEXT NOT NULL, env_id TEXT NOT NULL,
                inputs_id TEXT NOT NULL, nodeid TEXT NOT NULL, key TEXT NOT NULL,
                markset INTEGER NOT NULL,
                PRIMARY KEY (file, env_id, inputs_id, nodeid)) WITHOUT ROWID;
            INSERT INTO module_items VALUES ('t.py', 'env', 'u', 't.py::a', 'x', 0);
            CREATE TABLE shared_records (source TEXT NOT NULL, nodeid TEXT NOT NULL,
                key TEXT NOT NULL, inputs_id TEXT NOT NULL, env_id TEXT NOT NULL,
                duration REAL NOT NULL, passed_at REAL NOT NULL, head TEXT,
                PRIMARY KEY (nodeid, key, source)) WITHOUT ROWID;
            INSERT INTO shared_records VALUES ('ci', 't.py::a', '{"d" * 64}', 'in1', 'env', 1.0,
                2.0, NULL);
            """
        )


def test_a_format_4_store_keeps_every_record(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    _format_4_store(path)
    with closing(Store(path)) as store:
        found = store.records()
        assert store.failures(["t.py::f"]) == {"t.py::f": {"kf": 4.0}}
        assert store.body("in1") == "[]"
        assert store.module_candidates("env") == {}  # summaries are a cache: written again
    assert found == {
        "t.py::a": {
            "a" * 64: Record("t.py::a", "a" * 64, "in1", "env", 1.25, 5.5, "c" * 40),
            "not-hex": Record("t.py::a", "not-hex", "in2", "env", 2.0, 6.0, None),
        },
        "sub/u.py::C::b[x-y]": {
            "b" * 64: Record("sub/u.py::C::b[x-y]", "b" * 64, "in1", "env2", 0.5, 7.0, None)
        },
    }
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone() == (
            STORE_FORMAT,
        )
        assert db.execute("SELECT sum(records) FROM shared_files").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM passes").fetchone() == (3,)
        assert db.execute("SELECT typeof(key) FROM passes ORDER BY typeof(key)").fetchall() == [
            ("blob",),
            ("blob",),
            ("text",),
        ]


def test_forgotten_records_take_their_names_and_digests_along(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    nodeids = [f"t.py::test_{n}" for n in range(50)] + ["u.py::test_other"]
    passes = [Record(n, item_key(n, "in", "env"), "in", "env", 1.0, 10.0, "h") for n in nodeids]
    with closing(Store(path)) as store:
        store.update(passes, [], {"in": "[]"}, max_keys=4, max_age=1e9, now=10.0)
        store.update([], [], {}, max_keys=4, max_age=1e9, forget=nodeids[1:], now=11.0)
        assert list(store.records()) == [nodeids[0]]
        assert store.body("in") == "[]"
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT file FROM files").fetchall() == [("t.py",)]
        assert db.execute("SELECT count(*) FROM digests").fetchone() == (3,)  # in, env, head
    with closing(Store(path)) as store:
        store.update([], [], {}, max_keys=4, max_age=1e9, forget=nodeids[:1], now=12.0)
        assert store.records() == {}
        assert store.body("in") is None
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM digests").fetchone() == (0,)
