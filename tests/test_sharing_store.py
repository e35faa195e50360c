"""Shared records in the store (format 6): one row per test file and source, pruned like local
records, and a store of format 5 migrated with every record and no false skip."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from pytest_unchanged.passes import Names
from pytest_unchanged.store import Store
from pytest_unchanged.store_format import STORE_FORMAT

from .conftest import assert_unchanged, commit, git
from .sharing_helpers import fill_store, make_origin, records_cli

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

STORE = Path(".pytest_cache", "d", "unchanged", "store.sqlite3")


def _fetch(work: Path, origin: Path, store: Path, *args: str) -> str:
    fetched = records_cli(work, "fetch", str(origin), "--store", str(store), *args)
    assert fetched.returncode == 0, fetched.stderr
    return fetched.stdout


def _stats(work: Path, store: Path) -> list[str]:
    shown = records_cli(work, "stats", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()[1:]


def test_a_fetch_stores_a_row_per_test_file_pruned_like_local_records(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    nodeids = [f"tests/t{n % 3}.py::test_{n}[x-{n}]" for n in range(12)]
    fill_store(tmp_path / "ci.sqlite3", nodeids, keys=4)
    pushed = records_cli(
        work, "push", str(origin), "--as", "ci", "--store", str(tmp_path / "ci.sqlite3")
    )
    assert pushed.returncode == 0, pushed.stderr
    mine = tmp_path / "mine.sqlite3"
    out = _fetch(work, origin, mine, "--from", "ci", "--max-keys", "3")
    assert ": 48 new record(s)" in out  # counted before pruning, as an import counts them
    with closing(sqlite3.connect(mine)) as db:
        rows = db.execute("SELECT file, source, tests, records, most FROM shared_files").fetchall()
    assert sorted(rows) == [(f"tests/t{n}.py", "ci", 4, 12, 3) for n in range(3)]
    shown = records_cli(work, "show", "tests/t1.py::*", "--store", str(mine))
    assert len(shown.stdout.splitlines()) == 12 and "  ci  env " in shown.stdout
    # Records two days old from another source; a fetch with --max-age-days 1 prunes every
    # shared record that old, whatever its source, as the local store prunes its own.
    fill_store(tmp_path / "old.sqlite3", ["tests/t9.py::test_old"], age=2 * 86400, head="ab" * 20)
    pushed = records_cli(
        work, "push", str(origin), "--as", "old", "--store", str(tmp_path / "old.sqlite3")
    )
    assert pushed.returncode == 0, pushed.stderr
    _fetch(work, origin, mine, "--from", "old")
    assert [line.split(":")[0] for line in _stats(work, mine)] == ["ci", "old"]
    with closing(sqlite3.connect(mine)) as db:
        assert db.execute("SELECT count(*) FROM shared_digests").fetchone() == (2,)  # + HEAD
    _fetch(work, origin, mine, "--from", "ci", "--max-age-days", "1")
    assert [line.split(":")[0] for line in _stats(work, mine)] == ["ci"]
    with closing(sqlite3.connect(mine)) as db:
        assert db.execute("SELECT count(*) FROM shared_files WHERE source = 'old'").fetchone() == (
            0,
        )
        # the digests only the pruned records used are dropped with them
        assert db.execute("SELECT count(*) FROM shared_digests").fetchone() == (1,)  # the env


SUITE = """
import pytest

@pytest.mark.depends_on("src/a.py")
@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_it(name):
    pass
"""
OLD_TABLE = """
CREATE TABLE shared_records (source TEXT NOT NULL, nodeid TEXT NOT NULL, key TEXT NOT NULL,
    inputs_id TEXT NOT NULL, env_id TEXT NOT NULL, duration REAL NOT NULL,
    passed_at REAL NOT NULL, head TEXT, PRIMARY KEY (nodeid, key, source)) WITHOUT ROWID;
"""


def test_a_format_5_store_is_migrated_with_every_record_and_no_false_skip(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nunchanged_trusted_sources = ci\n")
    pytester.makepyfile(test_suite=SUITE)
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=3)
    path = repo / STORE
    with closing(sqlite3.connect(path)) as db:
        Names(db).register()
        first = db.execute(
            "SELECT nodeid, key, inputs_id, env_id, duration, passed_at, head FROM records"
        ).fetchall()
    nodeids = sorted(row[0] for row in first)
    with closing(Store(path)) as store:  # those passes become records fetched from ci
        store.update([], [], {}, max_keys=8, max_age=1e9, forget=nodeids)
    (repo / "src" / "a.py").write_text("A = 2\n")
    commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=3)  # local records
    # The store as format 5 kept it: fetched records in shared_records, and test_it[c] failed
    # here under the key ci's record has.
    failed = next(row for row in first if row[0].endswith("[c]"))
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            "DROP TABLE shared_files; DROP TABLE shared_digests;"
            f"{OLD_TABLE} UPDATE meta SET value = '5' WHERE name = 'format';"
        )
        db.executemany("INSERT INTO shared_records VALUES ('ci', ?, ?, ?, ?, ?, ?, ?)", first)
        db.execute("INSERT INTO failures VALUES (?, ?, ?)", (failed[0], failed[1], time.time()))
    (repo / "src" / "a.py").write_text("A = 1\n")
    commit(repo)
    back = pytester.runpytest_subprocess("--unchanged", "-rs", "-v")
    back.assert_outcomes(passed=1, skipped=2)  # the failure here outweighs ci's record
    back.stdout.fnmatch_lines(
        ["*test_it[[]a[]] SKIPPED*", "*test_it[[]b[]] SKIPPED*", "*test_it[[]c[]] PASSED*"]
    )
    back.stdout.fnmatch_lines(["SKIPPED [[]2[]] *(HEAD *, from source ci)"])
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone() == (
            STORE_FORMAT,
        )
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'shared_records'").fetchall()
            == []
        )
        assert db.execute("SELECT sum(records) FROM shared_files").fetchone() == (3,)
    (repo / "src" / "a.py").write_text("A = 2\n")
    commit(repo)
    assert_unchanged(pytester.runpytest_subprocess("--unchanged"), 3)  # the local records kept


def test_a_damaged_shared_row_is_a_warning_and_a_full_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    commit(repo)
    pytester.runpytest_subprocess().assert_outcomes(passed=3)
    exported = repo.parent / "records.jsonl"
    assert records_cli(repo, "export", str(exported)).returncode == 0
    assert records_cli(repo, "forget", "*").returncode == 0
    imported = records_cli(repo, "import", str(exported), "--source", "ci")
    assert imported.returncode == 0, imported.stderr
    trusted = pytester.runpytest_subprocess("--unchanged", "--unchanged-trust", "ci")
    trusted.assert_outcomes(skipped=3)  # the shared records are read
    with closing(sqlite3.connect(repo / STORE)) as db, db:
        db.execute("UPDATE shared_files SET counts = x'01000000'")  # 1 record for 3 tests
    damaged = pytester.runpytest_subprocess("--unchanged", "--unchanged-trust", "ci")
    damaged.assert_outcomes(passed=3, warnings=1)
    damaged.stdout.fnmatch_lines(["*holds a damaged shared record*"])
    assert "INTERNALERROR" not in damaged.stdout.str()
