"""The ``records`` command line: show, stats, forget, export, import; the store shared with a
running pytest; ``unchanged_ignore_distributions``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pytest_unchanged.store import Store

from .conftest import TESTS, commit
from .sharing_helpers import records_cli

STORE = Path(".pytest_cache", "d", "unchanged", "store.sqlite3")


@pytest.fixture
def project(repo: Path, pytester: pytest.Pytester) -> Path:
    """The conftest's three tests, passed once (three local records)."""
    pytester.makepyfile(test_project=TESTS)
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    (repo / "src" / "b.py").write_text("B = 1\n")
    pytester.makeini("[pytest]\n")
    commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=3)
    return repo


def test_show_lists_records_with_their_source(project: Path) -> None:
    shown = records_cli(project, "show")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 3
    assert all(" local  env " in line and " HEAD " in line for line in lines)
    assert lines[0].startswith("test_project.py::test_a  ")
    one = records_cli(project, "show", "*test_b", "--json")
    rows = json.loads(one.stdout)
    assert [(r["nodeid"], r["source"]) for r in rows] == [("test_project.py::test_b", "local")]
    assert len(rows[0]["key"]) == 64


def test_stats_counts_sources_and_environments(project: Path, tmp_path: Path) -> None:
    exported = tmp_path / "records.jsonl"
    assert records_cli(project, "export", str(exported)).returncode == 0
    assert records_cli(project, "import", str(exported), "--source", "laptop").returncode == 0
    stats = records_cli(project, "stats")
    assert stats.returncode == 0, stats.stderr
    assert "1 environment(s)" in stats.stdout.splitlines()[0]
    assert "\nlaptop: 3 records of 3 tests in 1 environment(s)" in stats.stdout
    assert "\nlocal: 3 records of 3 tests in 1 environment(s)" in stats.stdout


def test_import_puts_every_record_under_the_source_the_importer_names(
    project: Path, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    # A file can claim any source for its lines; the reader trusts sources, so the importer,
    # not the file, names the source (adversarial review round 3, finding 09).
    exported, claimed = tmp_path / "records.jsonl", tmp_path / "claimed.jsonl"
    assert records_cli(project, "export", str(exported)).returncode == 0
    lines = exported.read_text().splitlines()
    claimed.write_text(
        "\n".join(line.replace('["t","",', '["t","main",', 1) for line in lines) + "\n"
    )
    records_cli(project, "forget", "*")
    assert records_cli(project, "import", str(claimed), "--source", "pr").returncode == 0
    rows = json.loads(records_cli(project, "show", "--json").stdout)
    assert {r["source"] for r in rows} == {"pr"}
    result = pytester.runpytest_subprocess("--unchanged", "--unchanged-trust", "main")
    result.assert_outcomes(passed=3)


def test_forget_drops_records_and_the_fast_path_sees_it(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest_subprocess("--unchanged").assert_outcomes()  # fast path: none collected
    forgot = records_cli(project, "forget", "test_project.py::test_a")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.strip() == "forgot 1 record(s)"
    # The module summary counted test_a: it must not leave the module unimported now.
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=1, skipped=2)


def test_export_is_deterministic_and_imports_elsewhere(
    project: Path, tmp_path: Path, pytester: pytest.Pytester
) -> None:
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert records_cli(project, "export", str(first)).returncode == 0
    assert records_cli(project, "export", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    lines = first.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "pytest-unchanged-records", "version": 2}
    assert lines[1].startswith('["e",["') and lines[2].startswith('["h",["')
    assert sum(line.startswith('["t","",') for line in lines) == 3  # local: source ""
    other = tmp_path / "other.sqlite3"
    loaded = records_cli(project, "import", str(first), "--store", str(other))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"imported 3 record(s) from {first}, 3 new"
    shown = records_cli(project, "show", "--store", str(other)).stdout
    assert shown.count("  import  env ") == 3
    again = records_cli(project, "import", str(first), "--store", str(other))
    assert again.stdout.strip().endswith(", 0 new")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 4: Expecting value"),
        ('["t", "x"]', "line 4: a record line is"),
        ('["r", "x"]', 'line 4: not an ["e", ...]'),
        (None, "line 4: the key of test_project.py::test_a is not the key of its inputs"),
    ],
)
def test_a_bad_import_changes_nothing_and_names_the_line(
    project: Path, tmp_path: Path, line: str | None, message: str
) -> None:
    exported = tmp_path / "records.jsonl"
    assert records_cli(project, "export", str(exported)).returncode == 0
    lines = exported.read_text().splitlines()
    records = [n for n, text in enumerate(lines) if text.startswith('["t"')]
    # The fourth line is bad; the good records before and after it are not imported either.
    bad = json.loads(lines[records[0]])
    bad[3][0][0] = "0" * 64  # the key of its only entry, which ships its inputs_id
    lines.insert(3, line if line is not None else json.dumps(bad))
    exported.write_text("\n".join(lines) + "\n")
    before = records_cli(project, "show").stdout
    loaded = records_cli(project, "import", str(exported))
    assert loaded.returncode == 2
    assert message in loaded.stderr, loaded.stderr
    assert loaded.stderr.startswith("pytest-unchanged: error: ")
    assert "Traceback" not in loaded.stderr
    assert records_cli(project, "show").stdout == before


def test_a_file_from_a_newer_version_is_refused(project: Path, tmp_path: Path) -> None:
    newer = tmp_path / "records.jsonl"
    newer.write_text('{"format": "pytest-unchanged-records", "version": 3}\n')
    loaded = records_cli(project, "import", str(newer))
    assert loaded.returncode == 2
    assert "line 1: format version 3, this pytest-unchanged reads 1 and 2" in loaded.stderr


def test_a_version_1_file_is_converted_on_import(project: Path, tmp_path: Path) -> None:
    """A file exported by an older pytest-unchanged (format 1: a line per record, key and
    digests spelled out) still imports, and a bad key in it is still refused."""
    exported = tmp_path / "records.jsonl"
    assert records_cli(project, "export", str(exported)).returncode == 0
    values = [json.loads(line) for line in exported.read_text().splitlines()]
    envs, heads = values[1][1], values[2][1]
    old = ['{"format": "pytest-unchanged-records", "version": 1}']
    old += [json.dumps(v) for v in values[1:] if v[0] == "b"]
    for _, source, nodeid, entries in (v for v in values[1:] if v[0] == "t"):
        for key, env, duration, passed_at, head, inputs_id in entries:
            old.append(json.dumps(["r", source, nodeid, key, inputs_id, envs[env], duration,
                                   passed_at, heads[head]]))  # fmt: skip
    v1 = tmp_path / "v1.jsonl"
    v1.write_text("\n".join(old) + "\n")
    other = tmp_path / "other.sqlite3"
    loaded = records_cli(project, "import", str(v1), "--store", str(other))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"imported 3 record(s) from {v1}, 3 new"
    mine = json.loads(records_cli(project, "show", "--json").stdout)
    theirs = json.loads(records_cli(project, "show", "--json", "--store", str(other)).stdout)
    assert [{**r, "source": "local"} for r in theirs] == mine
    bad = json.loads(old[-1])
    bad[3] = "0" * 64
    v1.write_text("\n".join([*old, json.dumps(bad)]) + "\n")
    refused = records_cli(project, "import", str(v1), "--store", str(tmp_path / "x.sqlite3"))
    assert refused.returncode == 2
    assert f"line {len(old) + 1}: the key of" in refused.stderr


SLOW = """
import time

def test_slow():
    time.sleep(3)
"""


def test_commands_work_while_pytest_writes_the_store(
    project: Path, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_slow=SLOW)
    commit(project)
    running = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "--unchanged", "test_slow.py"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store(project / STORE)
    holder = threading.Thread(target=_hold_write_lock, args=(project / STORE, 1.0))
    try:
        holder.start()
        time.sleep(0.2)
        exported = tmp_path / "records.jsonl"
        assert records_cli(project, "export", str(exported)).returncode == 0
        forgot = records_cli(project, "forget", "*test_b")
        assert forgot.returncode == 0, forgot.stderr
        assert records_cli(project, "import", str(exported)).returncode == 0
        holder.join()
        _, err = running.communicate(timeout=120)
        assert running.returncode == 0, err
    finally:
        store.close()
    shown = records_cli(project, "show").stdout
    assert "test_slow.py::test_slow " in shown
    assert shown.count("test_project.py::test_b ") == 1  # the imported copy
    assert "test_project.py::test_a  " in shown


def _hold_write_lock(path: Path, seconds: float) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    time.sleep(seconds)
    db.execute("COMMIT")
    db.close()


def test_ignored_distributions_leave_the_environment_facet(
    project: Path, pytester: pytest.Pytester
) -> None:
    def env_body() -> dict[str, str]:
        rows = json.loads(records_cli(project, "show", "*test_a", "--json").stdout)
        db = sqlite3.connect(project / STORE)
        try:
            (body,) = db.execute(
                "SELECT body FROM bodies WHERE id = ?", (rows[-1]["env_id"],)
            ).fetchone()
        finally:
            db.close()
        return dict(json.loads(body))

    assert "dist:pytest-xdist" in env_body()
    pytester.makeini("[pytest]\nunchanged_ignore_distributions = Pytest_XDist pip\n")
    commit(project)
    assert records_cli(project, "forget", "*").returncode == 0
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=3)
    facets = env_body()
    assert "dist:pytest-xdist" not in facets and "dist:pip" not in facets
    assert "dist:pytest" in facets


def test_a_store_of_format_3_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(  # the tables of format 3 that hold records
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('format', '3');
        CREATE TABLE records (nodeid TEXT NOT NULL, key TEXT NOT NULL,
            inputs_id TEXT NOT NULL, env_id TEXT NOT NULL, duration REAL NOT NULL,
            passed_at REAL NOT NULL, head TEXT, PRIMARY KEY (nodeid, key)) WITHOUT ROWID;
        INSERT INTO records VALUES ('t.py::test_old', 'k', 'i', 'e', 1.0, 5.0, NULL);
        CREATE TABLE bodies (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
        """
    )
    db.close()
    shown = records_cli(tmp_path, "show", "--store", str(path))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("t.py::test_old  ")


def _rows(project: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(project / STORE) as db:
        rows = db.execute("SELECT * FROM passes ORDER BY 1, 2").fetchall()
    db.close()
    return rows


@pytest.mark.parametrize(
    ("field", "value"),
    [(2, "1" + "0" * 400), (3, "1e300"), (3, "253402300800")],
    ids=["huge-int-duration", "far-future-passed_at", "after-year-9999"],
)
def test_import_refuses_numbers_beyond_a_date_naming_the_line(
    project: Path, tmp_path: Path, field: int, value: str
) -> None:
    exported = tmp_path / "out.jsonl"
    assert records_cli(project, "export", str(exported)).returncode == 0
    lines = exported.read_text().splitlines()
    tag, source, nodeid, entries = json.loads(lines[-1])
    entries[0][field] = "@@"
    lines[-1] = json.dumps([tag, source, nodeid, entries]).replace('"@@"', value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    before = _rows(project)
    done = records_cli(project, "import", str(bad), "--source", "ci")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"bad.jsonl, line {len(lines)}:" in done.stderr, done.stderr
    assert "from 0 to 253402300799" in done.stderr, done.stderr
    assert _rows(project) == before


def test_a_stored_time_beyond_datetime_is_shown_not_a_crash(
    project: Path, pytester: pytest.Pytester
) -> None:
    with sqlite3.connect(project / STORE) as db:  # written by hand, or by an older reader
        db.execute("UPDATE passes SET passed_at = 1e300")
    db.close()
    for command in ("show", "stats"):
        done = records_cli(project, command)
        assert done.returncode == 0, done.stderr
        assert "1e+300 (Unix seconds)" in done.stdout, done.stdout
    for fast in ("true", "false"):
        result = pytester.runpytest_subprocess(
            "--unchanged",
            "-rs",
            "-o",
            f"unchanged_fast_path={fast}",
            "-o",
            "unchanged_max_age_days=1",
        )
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize("target", ["no/such/dir/out.jsonl", "."], ids=["missing-dir", "dot"])
def test_export_to_a_path_that_cannot_be_written_is_one_line(project: Path, target: str) -> None:
    done = records_cli(project, "export", target)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("pytest-unchanged: error: cannot write"), done.stderr
    assert "Traceback" not in done.stderr
    assert not list(project.glob("*.partial"))


def test_records_before_the_first_run_make_the_cache_directory_as_pytest_does(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_a="def test_1(): pass\n")
    commit(repo)
    assert records_cli(repo, "stats").returncode == 0
    assert (repo / ".pytest_cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (repo / ".pytest_cache" / "CACHEDIR.TAG").is_file()
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=1)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert status.stdout == b"", status.stdout  # the store is ignored, `.` stays the same
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes()
    assert "1 unchanged" in result.stdout.str()
