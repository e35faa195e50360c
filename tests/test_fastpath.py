"""The fast path: unchanged test modules are not imported, and nothing is ever wrongly left out."""

from __future__ import annotations

import json
import sqlite3
import zlib
from contextlib import closing
from pathlib import Path

import pytest

from pytest_unchanged.fastpath import mark_selector
from pytest_unchanged.summaries import ModuleSummary

from .conftest import assert_unchanged, commit

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

# Each module appends its name to imported.txt when it is imported (outside the repository's
# tracked files: imported.txt is ignored).
MODULE = """
import pathlib
import pytest

with open(pathlib.Path(__file__).parent / "imported.txt", "a") as log:
    log.write("{name}\\n")

pytestmark = pytest.mark.depends_on("src/{name}.py")

@pytest.mark.parametrize("n", range({count}))
def test_it(n):
    pass
"""


@pytest.fixture
def suite(repo: Path, pytester: pytest.Pytester) -> Path:
    """Three test modules of 3 items each, each depending on its own source file."""
    (repo / ".gitignore").write_text(
        ".pytest_cache/\n__pycache__/\n/stdout\n/stderr\n/runpytest-*\nimported.txt\n"
    )
    (repo / "src").mkdir()
    for name in ("a", "b", "c"):
        (repo / "src" / f"{name}.py").write_text(f"{name.upper()} = 1\n")
        pytester.makepyfile(**{f"test_{name}": MODULE.format(name=name, count=3)})
    commit(repo)
    return repo


def imported(path: Path) -> list[str]:
    """Return the modules imported since the last call, and forget them."""
    log = path / "imported.txt"
    names = sorted(log.read_text().split()) if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def test_unchanged_modules_are_not_imported(suite: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    assert imported(suite) == ["a", "b", "c"]
    result = pytester.runpytest_subprocess("--unchanged")
    assert_unchanged(result, 9)
    result.stdout.fnmatch_lines(["unchanged: 9 unchanged (9 not collected, 0 skipped), 0 to run"])
    assert imported(suite) == []
    (suite / "src" / "b.py").write_text("B = 2\n")
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["unchanged: 6 unchanged (6 not collected, 0 skipped), 3 to run"])
    assert imported(suite) == ["b"]


def test_plain_runs_never_use_the_fast_path(suite: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    assert imported(suite) == ["a", "a", "b", "b", "c", "c"]


def test_new_changed_and_deleted_test_files(suite: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    imported(suite)
    pytester.makepyfile(test_d=MODULE.format(name="a", count=1).replace("test_it", "test_d"))
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=1)  # a new file is always collected
    assert imported(suite) == ["a"]
    (suite / "test_c.py").write_text(MODULE.format(name="c", count=4))
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=4)  # a changed test file: new parameters run
    assert imported(suite) == ["c"]
    (suite / "test_a.py").unlink()
    result = pytester.runpytest_subprocess("--unchanged")
    assert_unchanged(result, 8)  # the deleted file's items are gone from the count
    assert imported(suite) == []


def test_a_failed_item_keeps_its_module_collected(
    suite: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (suite / "test_b.py").write_text(
        MODULE.format(name="b", count=3) + "\nimport os\ndef test_env():\n"
        "    assert not os.environ.get('BREAK')\n"
    )
    commit(suite)
    monkeypatch.setenv("BREAK", "1")
    pytester.runpytest_subprocess().assert_outcomes(passed=9, failed=1)
    imported(suite)
    monkeypatch.delenv("BREAK")
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=1, skipped=3)
    assert imported(suite) == ["b"]
    assert_unchanged(pytester.runpytest_subprocess("--unchanged"), 10)
    assert imported(suite) == []


def test_explicit_paths_and_node_ids_are_always_collected(
    suite: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    imported(suite)
    result = pytester.runpytest_subprocess("--unchanged", "test_a.py::test_it[1]", "test_b.py")
    result.assert_outcomes(skipped=4)
    assert imported(suite) == ["a", "b"]


def test_new_glob_match_or_conftest_makes_the_module_collected(
    repo: Path, pytester: pytest.Pytester
) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "one.json").write_text("1\n")
    pytester.makepyfile(
        test_data="""
        import pytest
        pytestmark = pytest.mark.depends_on("data/*.json")
        def test_it(): pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    (repo / "data" / "two.json").write_text("2\n")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    (repo / "conftest.py").write_text("# new\n")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    pytester.runpytest("--unchanged", "--unchanged-salt=x").assert_outcomes(passed=1)


def test_modules_with_an_always_run_item_are_always_collected(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_mixed="""
        import pytest
        def test_plain(): pass
        @pytest.mark.always_run
        def test_network(): pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("--unchanged").assert_outcomes(passed=1, skipped=1)


def test_xdist_workers_agree_on_the_fast_path(suite: Path, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=9)
    imported(suite)
    assert_unchanged(pytester.runpytest_subprocess("-n", "2", "--unchanged"), 9)
    assert imported(suite) == []
    (suite / "src" / "c.py").write_text("C = 2\n")
    result = pytester.runpytest_subprocess("-n", "2", "--unchanged")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["unchanged: 6 unchanged tests not run, *"])
    assert imported(suite) == ["c", "c"]  # each of the two workers imports the changed module


def test_a_module_with_a_last_failed_test_is_collected(
    suite: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest_subprocess().assert_outcomes(passed=9)
    imported(suite)
    # pytest's own cache still lists a failure in test_a.py (say, from a run on other inputs).
    lastfailed = suite / ".pytest_cache" / "v" / "cache" / "lastfailed"
    lastfailed.write_text('{"test_a.py::test_it[0]": true}')
    result = pytester.runpytest_subprocess("--unchanged", "--lf")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    assert imported(suite) == ["a"]
    assert not lastfailed.exists() or "test_a.py" not in lastfailed.read_text()


def test_a_summary_with_other_items_replaces_the_stored_one(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same inputs, other items (parametrized from an undeclared variable): the stored summary
    # must follow the items, never keep pointing at the old ones.
    pytester.makepyfile(
        test_param="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(int(os.environ["N"])))
        def test_it(n):
            pass
        """
    )
    commit(repo)
    store = repo / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"
    for count in (2, 3):
        monkeypatch.setenv("N", str(count))
        pytester.runpytest().assert_outcomes(passed=count)
        with closing(sqlite3.connect(store)) as db, db:
            lists = db.execute(
                "SELECT body FROM modules m JOIN item_lists i ON i.id = m.items"
            ).fetchall()
            assert db.execute("SELECT count(*) FROM item_lists").fetchone() == (1,)
        ((body,),) = lists  # the list of the old items is gone with their summary
        names = [name for name, _, _ in json.loads(zlib.decompress(body))]
        assert names == [f"::test_it[{n}]" for n in range(count)]
    assert_unchanged(pytester.runpytest("--unchanged"), 3)


MARKED = """
import pathlib
import pytest

with open(pathlib.Path(__file__).parent / "imported.txt", "a") as log:
    log.write("{name}\\n")

pytestmark = pytest.mark.depends_on("src/a.py")

def test_fast(): pass

@pytest.mark.slow
def test_slow(): pass
"""


@pytest.fixture
def marked(suite: Path, pytester: pytest.Pytester) -> Path:
    """The suite, plus test_s.py whose test_slow the configuration's -m "not slow" deselects."""
    pytester.makeini('[pytest]\naddopts = -m "not slow"\nmarkers =\n    slow: slow tests\n')
    (suite / "test_s.py").write_text(MARKED.format(name="s"))
    commit(suite)
    pytester.runpytest_subprocess().assert_outcomes(passed=10, deselected=1)
    imported(suite)
    return suite


def test_items_m_deselects_do_not_keep_their_module_collected(
    marked: Path, pytester: pytest.Pytester
) -> None:
    result = pytester.runpytest_subprocess("--unchanged")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "unchanged: 10 unchanged (10 not collected, 0 skipped), 0 to run, "
            "1 deselected by -m (not collected)"
        ]
    )
    assert imported(marked) == []
    # Another expression selects test_slow, which never ran: its module is collected and run.
    result = pytester.runpytest_subprocess("--unchanged", "-m", "slow or not slow")
    result.assert_outcomes(passed=1, skipped=1)
    assert imported(marked) == ["s"]
    result = pytester.runpytest_subprocess("--unchanged", "-m", "slow or not slow")
    assert_unchanged(result, 11)
    assert imported(marked) == []


def _matches_mark_arguments() -> bool:
    """Whether this pytest's ``-m`` takes expressions on mark arguments (pytest 8.3 and later)."""
    from _pytest.mark.expression import Expression

    try:
        Expression.compile("slow(reason='x')")
    except Exception:
        return False
    return True


@pytest.mark.skipif(
    not _matches_mark_arguments(),
    reason="this pytest's -m rejects expressions on mark arguments (they came in pytest 8.3)",
)
def test_an_expression_on_mark_arguments_keeps_the_module_collected(
    marked: Path, pytester: pytest.Pytester
) -> None:
    # pytest matches -m "slow(reason=...)" against mark arguments, which are not stored: the
    # fast path cannot decide, so every module is collected (and unchanged tests skipped).
    result = pytester.runpytest_subprocess("--unchanged", "-m", "not slow(reason='x')")
    result.assert_outcomes(passed=1, skipped=10)
    assert "s" in imported(marked)


def test_marks_a_hook_adds_keep_the_module_collected(
    marked: Path, pytester: pytest.Pytester
) -> None:
    # A conftest hook marks test_fast slow while collecting: what its marks will be next time is
    # known only by collecting it again.
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_fast":
                    item.add_marker(pytest.mark.slow)
        """
    )
    commit(marked)
    pytester.runpytest_subprocess().assert_outcomes(passed=9, deselected=2)
    imported(marked)
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(deselected=2)
    result.stdout.fnmatch_lines(["unchanged: 9 unchanged (9 not collected, 0 skipped), 0 to run"])
    assert imported(marked) == ["s"]


def test_marks_a_hook_adds_to_every_item_do_not_matter_to_other_expressions(
    marked: Path, pytester: pytest.Pytester
) -> None:
    # Like hypothesis's plugin, which marks its tests "hypothesis" in the same hook as -m.
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.seen)
        """
    )
    commit(marked)
    pytester.runpytest_subprocess().assert_outcomes(passed=10, deselected=1)
    imported(marked)
    result = pytester.runpytest_subprocess("--unchanged")
    result.stdout.fnmatch_lines(["*, 1 deselected by -m (not collected)"])
    assert imported(marked) == []
    # "not seen or slow" may select test_slow depending on when the mark was added, and adding
    # a mark can make it true: the fast path cannot decide, every module is collected.
    result = pytester.runpytest_subprocess("--unchanged", "-m", "not seen or slow")
    result.assert_outcomes(passed=1, deselected=10)
    assert "s" in imported(marked)


@pytest.mark.parametrize(
    ("expression", "used"),
    [
        ("not slow", True),
        ("not slow and not network", True),
        ("not (slow or network)", True),
        ("slow", False),
        ("not slow or network", False),
        ("not (slow and not network)", False),
        ("not slow(reason='x')", False),
        ("", False),
        ("   ", False),
    ],
)
def test_only_expressions_that_added_marks_cannot_make_true_are_used(
    expression: str, used: bool
) -> None:
    selects = mark_selector(expression)
    assert selects(frozenset()) is True
    assert selects(frozenset({"slow", "other"})) is not used


def test_a_summary_survives_the_trip_from_an_xdist_worker() -> None:
    summary = ModuleSummary(
        "t.py", "i", "{}", (frozenset({"a", "b"}), frozenset()), (("t.py::x", "k", 1, "i"),)
    )
    assert ModuleSummary.from_wire(summary.to_wire()) == summary


def test_marks_a_hook_adds_only_sometimes_cannot_hide_a_test_from_a_positive_expression(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -m smoke selects by presence: a hook may add smoke to test_b next time (here when SMOKE
    # is set), so test_b, deselected and never run, keeps its module collected.
    pytester.makeini("[pytest]\nmarkers =\n    smoke: smoke tests\n")
    pytester.makeconftest(
        """
        import os
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_b" and os.environ.get("SMOKE"):
                    item.add_marker(pytest.mark.smoke)
        """
    )
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.smoke
        def test_a(): pass

        def test_b(): pass
        """
    )
    commit(repo)
    pytester.runpytest_subprocess("--unchanged", "-m", "smoke").assert_outcomes(
        passed=1, deselected=1
    )
    monkeypatch.setenv("SMOKE", "1")
    result = pytester.runpytest_subprocess("--unchanged", "-m", "smoke")
    result.assert_outcomes(passed=1, skipped=1)


def test_a_module_collected_in_part_stores_no_summary(
    suite: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest_subprocess("test_a.py::test_it[0]").assert_outcomes(passed=1)
    imported(suite)
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=8, skipped=1)  # test_a.py's other items never ran
    assert imported(suite) == ["a", "b", "c"]


def test_last_failed_runs_store_no_summary(
    suite: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (suite / "test_b.py").write_text(
        MODULE.format(name="b", count=3) + "\nimport os\ndef test_env():\n"
        "    assert not os.environ.get('BREAK')\n"
    )
    commit(suite)
    monkeypatch.setenv("BREAK", "1")
    pytester.runpytest_subprocess("-k", "test_env").assert_outcomes(failed=1, deselected=9)
    monkeypatch.delenv("BREAK")
    pytester.runpytest_subprocess("--lf").assert_outcomes(passed=1)  # collects test_env only
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(passed=9, skipped=1)


def test_a_crashed_xdist_worker_leaves_no_record(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_crash="""
        import os

        def test_ok(): pass

        def test_crash():
            if os.environ.get("CRASH"):
                os._exit(1)
        """
    )
    commit(repo)
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=2)
    monkeypatch.setenv("CRASH", "1")
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=1, failed=1)
    monkeypatch.delenv("CRASH")
    result = pytester.runpytest_subprocess("-n", "2", "--unchanged")
    result.assert_outcomes(passed=1, skipped=1)


# -- the fast path decides as the slow path: same configuration, inputs derived again ---------

WARNS = """
import warnings
import pytest

pytestmark = pytest.mark.depends_on("src/a.py")

def test_warns():
    warnings.warn(UserWarning("deprecated"))
"""


@pytest.fixture
def warns(repo: Path, pytester: pytest.Pytester) -> Path:
    """A test that passes while warnings are only shown, recorded (no config file yet).

    Tests using it are marked ``filterwarnings("default")``: pytester's in-process runs start
    from this suite's own warning filters, and this suite turns warnings into errors."""
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    pytester.makepyfile(test_warns=WARNS)
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1, warnings=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    return repo


@pytest.mark.filterwarnings("default")
@pytest.mark.parametrize("fast_path", ["true", "false"])
def test_a_new_config_file_makes_the_module_collected(
    warns: Path, pytester: pytest.Pytester, fast_path: str
) -> None:
    (warns / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    result = pytester.runpytest("--unchanged", "-o", f"unchanged_fast_path={fast_path}")
    result.assert_outcomes(failed=1)


@pytest.mark.filterwarnings("default")
def test_a_config_file_named_with_c_makes_the_module_collected(
    warns: Path, pytester: pytest.Pytester
) -> None:
    (warns / "strict.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    pytester.runpytest("--unchanged", "-c", "strict.ini").assert_outcomes(failed=1)
    # The config file is part of the summary's identity: its own summary, then unchanged.
    (warns / "strict.ini").write_text("[pytest]\n")
    pytester.runpytest("--unchanged", "-c", "strict.ini").assert_outcomes(passed=1, warnings=1)
    assert_unchanged(pytester.runpytest("--unchanged", "-c", "strict.ini"), 1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)


def test_global_inputs_given_with_o_make_the_module_collected(
    repo: Path, pytester: pytest.Pytester
) -> None:
    (repo / "data.txt").write_text("good\n")
    pytester.makepyfile(
        test_data="""
        import pathlib
        import pytest

        @pytest.mark.depends_on("test_data.py")
        def test_reads():
            assert pathlib.Path("data.txt").read_text() == "good\\n"
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    (repo / "data.txt").write_text("bad\n")
    for fast_path in ("true", "false"):  # the fast path first: from the store as it was
        result = pytester.runpytest(
            "--unchanged",
            "-o",
            "unchanged_inputs=data.txt",
            "-o",
            f"unchanged_fast_path={fast_path}",
        )
        result.assert_outcomes(failed=1)


def test_a_default_given_with_o_makes_the_module_collected(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_plain="def test_it(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    # Under the imports default the test has other inputs, so another key, never recorded.
    result = pytester.runpytest("--unchanged", "-o", "unchanged_default=imports")
    result.assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged", "-o", "unchanged_default=imports"), 1)


SHADOWED = """
try:
    import local_settings
except ImportError:
    local_settings = None

def test_default_settings():
    assert getattr(local_settings, "DEBUG", False) is False
"""


@pytest.mark.parametrize("where", [".", "tests"])
def test_a_new_module_an_import_now_finds_makes_the_module_collected(
    repo: Path, pytester: pytest.Pytester, where: str
) -> None:
    pytester.makeini("[pytest]\nunchanged_default = imports\n")
    (repo / where).mkdir(exist_ok=True)
    (repo / where / "test_settings.py").write_text(SHADOWED)
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    assert_unchanged(pytester.runpytest("--unchanged"), 1)
    # Next to the test module: the directory pytest puts on sys.path for it.
    (repo / where / "local_settings.py").write_text("DEBUG = True\n")
    pytester.runpytest("--unchanged").assert_outcomes(failed=1)
    pytester.runpytest("--unchanged", "-o", "unchanged_fast_path=false").assert_outcomes(failed=1)


def test_a_module_left_out_still_puts_its_directory_on_sys_path(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # tests/test_b.py imports pkg from the rootdir only because pytest put the rootdir on
    # sys.path when it imported test_a.py (prepend import mode): leaving test_a.py unimported
    # must not break that. (In-process: the rootdir is not the current directory of a
    # `python -m pytest` here.)
    (repo / "pkg").mkdir()
    (repo / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    pytester.makepyfile(
        test_a="""
        import pytest
        pytestmark = pytest.mark.depends_on("test_a.py")
        def test_a(): pass
        """
    )
    (repo / "tests").mkdir()
    (repo / "tests" / "test_b.py").write_text(
        "import pytest\nfrom pkg import VALUE\n\n"
        'pytestmark = pytest.mark.depends_on("data.txt")\n\n'
        "def test_b():\n    assert VALUE == 1\n"
    )
    (repo / "data.txt").write_text("1\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    (repo / "data.txt").write_text("2\n")
    result = pytester.runpytest("--unchanged")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["unchanged: 1 unchanged (1 not collected, 0 skipped), 1 to run"])


def test_a_conftest_elsewhere_that_marks_the_module_keeps_it_collected_when_it_changes(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # A conftest's pytest_collection_modifyitems sees every item, not only those below it:
    # tests/z/conftest.py (loaded after tests/a/ was collected) declares test_x's input.
    hook = """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_x":
            item.add_marker(pytest.mark.depends_on({path!r}))
"""
    for name in ("a", "z"):
        (repo / "tests" / name).mkdir(parents=True)
    (repo / "tests" / "a" / "test_x.py").write_text(
        "import pathlib\nimport pytest\n\n@pytest.mark.depends_on('tests/a/')\ndef test_x():\n"
        "    assert pathlib.Path('data2.txt').read_text() == 'good'\n"
    )
    (repo / "tests" / "z" / "conftest.py").write_text(hook.format(path="data1.txt"))
    (repo / "tests" / "z" / "test_z.py").write_text(
        "import pytest\n\n@pytest.mark.depends_on('data1.txt')\ndef test_z(): pass\n"
    )
    (repo / "data1.txt").write_text("good")
    (repo / "data2.txt").write_text("good")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    # Collecting tests/a alone loads no tests/z/conftest.py: its summary is another one.
    pytester.runpytest("tests/a").assert_outcomes(passed=1)
    (repo / "data2.txt").write_text("bad")
    assert_unchanged(pytester.runpytest("--unchanged"), 2)  # as declared: unchanged
    (repo / "tests" / "z" / "conftest.py").write_text(hook.format(path="data2.txt"))
    pytester.runpytest("--unchanged").assert_outcomes(failed=1, passed=1)  # test_z: conftest
