"""End-to-end behaviour of ``pytest --unchanged`` on real git repositories, through pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import TESTS, assert_unchanged, commit, records

pytestmark = pytest.mark.depends_on("pytest_unchanged/")


def test_second_run_skips_everything_and_exits_zero(
    project: Path, pytester: pytest.Pytester
) -> None:
    first = pytester.runpytest("--unchanged")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines(["unchanged: 0 unchanged (skipped), 3 to run"])
    # With the fast path off, unchanged tests are collected and skipped one by one.
    second = pytester.runpytest("--unchanged", "-rs", "-o", "unchanged_fast_path=false")
    second.assert_outcomes(skipped=3)
    assert second.ret == pytest.ExitCode.OK
    head = project.joinpath(".git", "HEAD").read_text()
    assert head  # the skip reason names the commit the pass was recorded at
    second.stdout.fnmatch_lines(
        [
            "unchanged: 3 unchanged (skipped), 0 to run",
            "unchanged: 3 unchanged tests not run, *s saved (their recorded durations)",
            "SKIPPED * unchanged since it passed at * UTC (HEAD *)",
        ]
    )
    # With it on (the default), the unchanged module is not even imported.
    third = pytester.runpytest("--unchanged")
    assert_unchanged(third, 3)
    third.stdout.fnmatch_lines(["unchanged: 3 unchanged (3 not collected, 0 skipped), 0 to run"])


def test_editing_one_dependency_runs_only_its_tests(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    (project / "src" / "a.py").write_text("A = 2\n")
    result = pytester.runpytest("--unchanged", "-v")
    # test_unmarked depends on the whole worktree by default, so it runs too.
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*test_a PASSED*", "*test_b SKIPPED*", "*test_unmarked PASSED*"])


def test_unmarked_test_ignores_ignored_files_but_not_untracked_ones(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    (project / ".gitignore").write_text(
        ".pytest_cache/\n__pycache__/\n/stdout\n/stderr\n/runpytest-*\n*.log\n"
    )
    commit(project)
    pytester.runpytest().assert_outcomes(passed=3)
    (project / "debug.log").write_text("ignored\n")
    assert_unchanged(pytester.runpytest("--unchanged"), 3)
    (project / "notes.txt").write_text("untracked\n")
    pytester.runpytest("--unchanged", "-v").assert_outcomes(passed=1, skipped=2)


def test_marks_on_module_class_and_function_add_up(repo: Path, pytester: pytest.Pytester) -> None:
    for name in ("m", "c", "f", "other"):
        (repo / f"{name}.txt").write_text("1\n")
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.depends_on("m.txt")

        @pytest.mark.depends_on("c.txt")
        class TestThing:
            @pytest.mark.depends_on("f.txt")
            def test_it(self):
                pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    for name in ("m", "c", "f"):
        (repo / f"{name}.txt").write_text("2\n" + name)
        pytester.runpytest("--unchanged").assert_outcomes(passed=1)
        assert_unchanged(pytester.runpytest("--unchanged"), 1)
    (repo / "other.txt").write_text("2\n")
    assert_unchanged(pytester.runpytest("--unchanged"), 1)


def test_directories_and_globs(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "deep.py").write_text("1\n")
    (repo / "pkg" / "data.json").write_text("{}\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("pkg/")
        def test_dir():
            pass

        @pytest.mark.depends_on("pkg/**/*.py")
        def test_glob():
            pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=2)
    (repo / "pkg" / "data.json").write_text('{"a": 1}\n')
    pytester.runpytest("--unchanged", "-v").stdout.fnmatch_lines(
        ["*test_dir PASSED*", "*test_glob SKIPPED*"]
    )
    (repo / "pkg" / "sub" / "new.py").write_text("new\n")  # untracked, matched by the glob
    result = pytester.runpytest("--unchanged", "-v")
    result.stdout.fnmatch_lines(["*test_dir PASSED*", "*test_glob PASSED*"])
    (repo / "pkg" / "sub" / "deep.py").unlink()
    pytester.runpytest("--unchanged").assert_outcomes(passed=2)


def test_implicit_inputs_test_file_conftest_config_and_global_inputs(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.makeini("[pytest]\nunchanged_inputs = requirements*.txt\n")
    (project / "requirements.txt").write_text("x==1\n")
    commit(project)
    pytester.runpytest().assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest("--unchanged"), 3)
    edits = [
        ("requirements.txt", "x==2\n"),
        ("conftest.py", "# a new conftest\n"),
        ("tox.ini", "[pytest]\nunchanged_inputs = requirements*.txt\nmarkers = x: y\n"),
        ("test_project.py", TESTS + "\n# edited\n"),
    ]
    for name, text in edits:
        (project / name).write_text(text)
        pytester.runpytest("--unchanged").assert_outcomes(passed=3)
        assert_unchanged(pytester.runpytest("--unchanged"), 3)


def test_environment_variables_and_salt_are_part_of_the_key(
    project: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nunchanged_env = DATABASE_URL\n")
    monkeypatch.setenv("DATABASE_URL", "sqlite://one")
    pytester.runpytest().assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest("--unchanged"), 3)
    monkeypatch.setenv("DATABASE_URL", "sqlite://two")
    pytester.runpytest("--unchanged").assert_outcomes(passed=3)
    monkeypatch.delenv("DATABASE_URL")
    pytester.runpytest("--unchanged").assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest("--unchanged"), 3)
    pytester.runpytest("--unchanged", "--unchanged-salt=v2").assert_outcomes(passed=3)
    assert_unchanged(pytester.runpytest("--unchanged", "--unchanged-salt=v2"), 3)


def test_always_run_marker_is_never_skipped(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.always_run
        @pytest.mark.depends_on("test_always_run_marker_is_never_skipped.py")
        def test_network():
            pass
        """
    )
    commit(repo)
    for _ in range(2):
        pytester.runpytest("--unchanged", "--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ('"../outside.txt"', "*depends_on('../outside.txt'): the path is outside the git*"),
        ('"/etc/hostname"', "*depends_on('/etc/hostname'): the path is outside the git*"),
        ("42", "*depends_on(42): arguments must be paths (str), not int*"),
        ("", "*depends_on() needs at least one path*"),
        (
            'tests=["test_a"]',
            "*depends_on(tests=?'test_a'?): depends_on() got an unexpected keyword argument*",
        ),
    ],
)
def test_bad_marks_fail_the_run_naming_test_and_argument(
    repo: Path, pytester: pytest.Pytester, mark: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.depends_on({mark})
        def test_it():
            pass
        """
    )
    commit(repo)
    result = pytester.runpytest("--unchanged")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: bad depends_on mark:", "  test_bad.py::test_it: " + message.lstrip("*")]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_path_matching_nothing_warns_and_always_runs(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("src/tpyo.py")
        def test_it():
            pass
        """
    )
    commit(repo)
    for _ in range(2):
        result = pytester.runpytest("--unchanged", "-W", "always::pytest.PytestWarning")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(
            ["*UnknownPathWarning: depends_on path 'src/tpyo.py' matches nothing*"]
        )
    assert records(repo) == []
    # Under -W error the warning fails that one test, with the same message.
    result = pytester.runpytest("--unchanged", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["E * depends_on path 'src/tpyo.py' matches nothing*"])


def test_marks_added_by_a_conftest_hook_count(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "data.txt").write_text("1\n")
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.depends_on("data.txt"))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("test_marks_added_by_a_conftest_hook_count.py")
        def test_it():
            pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    (repo / "data.txt").write_text("2\n")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)
