"""--unchanged-explain: one reason per test that runs, grouped and counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_unchanged.trust.explain import environment_changes, input_changes

from .conftest import commit, git

OID_A = "a" * 40
OID_B = "b" * 40


def explain(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--unchanged", "--unchanged-explain", "-p", "no:randomly", *args)


def test_no_record_yet(project: Path, pytester: pytest.Pytester) -> None:
    result = explain(pytester)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged: why 3 tests ran -*",
            "no record yet: 3 tests",
            "    test_project.py::test_a",
            "    test_project.py::test_b",
            "    test_project.py::test_unmarked",
        ]
    )


def test_input_changed_names_old_and_new_oid(project: Path, pytester: pytest.Pytester) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    old = git(project, "rev-parse", "HEAD:src/a.py")
    (project / "src" / "a.py").write_text("A = 2\n")
    new = git(project, "hash-object", "src/a.py")
    result = explain(pytester)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged: why 2 tests ran -*",
            "input . (the whole worktree) changed (* → *): 1 test",
            "    test_project.py::test_unmarked",
            f"input src/a.py changed ({old[:7]} → {new[:7]}): 1 test",
            "    test_project.py::test_a",
        ]
    )


def test_input_appeared_and_disappeared(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "one.txt").write_text("1")
    (repo / "data" / "two.txt").write_text("2")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("data/*.txt")
        def test_data():
            pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    (repo / "data" / "three.txt").write_text("3")
    explain(pytester).stdout.fnmatch_lines(["input data/three.txt appeared: 1 test"])
    (repo / "data" / "one.txt").unlink()
    explain(pytester).stdout.fnmatch_lines(["input data/one.txt deleted: 1 test"])
    (repo / "conftest.py").write_text("")
    explain(pytester).stdout.fnmatch_lines(["input conftest.py appeared: 1 test"])


def test_input_no_longer_an_input_after_a_configuration_change(
    repo: Path, pytester: pytest.Pytester
) -> None:
    (repo / "setup.cfg").write_text("[x]\n")
    pytester.makeini("[pytest]\nunchanged_inputs = setup.cfg\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.depends_on('tox.ini')\ndef test_1(): pass\n")
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeini("[pytest]\n")
    explain(pytester).stdout.fnmatch_lines(
        ["inputs changed: setup.cfg no longer an input, tox.ini changed (*): 1 test"]
    )


def test_skipped_and_xfailed_tests_have_their_own_reason(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.skipif(True, reason="not here")
        def test_skipif(): pass

        @pytest.mark.xfail(reason="known")
        def test_xfail(): assert False

        def test_new(): pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1, skipped=1, xfailed=1)
    (repo / "new.txt").write_text("")  # every test depends on the whole worktree
    result = explain(pytester)
    result.stdout.fnmatch_lines(
        [
            "skipped/xfailed last time: 2 tests",
            "    *::test_skipif",
            "    *::test_xfail",
            "input . (the whole worktree) changed (*): 1 test",
        ]
    )


def test_many_changed_inputs_are_named_up_to_a_limit(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "data").mkdir()
    for n in range(8):
        (repo / "data" / f"{n}.txt").write_text("old")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("data/*.txt")
        def test_data():
            pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=1)
    for n in range(7):
        (repo / "data" / f"{n}.txt").write_text("new")
    result = explain(pytester)
    result.stdout.fnmatch_lines(
        [
            "inputs changed: data/0.txt changed (*), data/1.txt changed (*), data/2.txt "
            "changed (*), data/3.txt changed (*), data/4.txt changed (*) and 2 more: 1 test"
        ]
    )


def test_environment_facets(
    project: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nunchanged_env = TOKEN\n")
    pytester.makeconftest(
        """
        import os

        def pytest_unchanged_environment(config):
            return {"dist:django": os.environ.get("FAKE_DJANGO", "5.1.4")}
        """
    )
    commit(project)
    pytester.runpytest().assert_outcomes(passed=3)
    monkeypatch.setenv("FAKE_DJANGO", "5.2")
    explain(pytester).stdout.fnmatch_lines(
        ["environment changed: django 5.1.4 → 5.2: 3 tests", "    test_project.py::test_a"]
    )
    monkeypatch.setenv("TOKEN", "secret-value")
    result = explain(pytester, "--unchanged-salt", "new")
    # Compared with the newest pass, which already had django 5.2.
    result.stdout.fnmatch_lines(
        ["environment changed: environment variable TOKEN, the salt: 3 tests"]
    )
    assert "secret-value" not in result.stdout.str()


def test_environment_changes_name_python_and_installs() -> None:
    old = {"python": "CPython 3.11.7", "dist:attrs": "23.1", "dist:six": "1.16"}
    new = {"python": "CPython 3.12.1", "dist:attrs": "23.1", "dist:idna": "3.7"}
    assert environment_changes(old, new) == [
        "idna 3.7 installed",
        "six 1.16 uninstalled",
        "Python CPython 3.11.7 → CPython 3.12.1",
    ]


def test_input_changes_of_manifests() -> None:
    old = [("a.py", "100644", OID_A), ("b.py", "100644", OID_A), ("gone.py", "100644", OID_A)]
    new = [("a.py", "100644", OID_B), ("b.py", "100755", OID_A), ("conftest.py", "0", "0" * 40)]
    assert input_changes(old, new) == [
        ("a.py", "changed (aaaaaaa → bbbbbbb)"),
        ("b.py", "mode changed (100644 → 100755)"),
        ("gone.py", "deleted"),
    ]
    assert input_changes(old, new, exists=lambda path: path == "gone.py")[2] == (
        "gone.py",
        "no longer an input",
    )


def test_always_run_marker_and_failed_last_time(repo: Path, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.always_run
        def test_network():
            pass

        def test_flaky():
            assert not os.environ.get("BREAK")

        def test_stable():
            pass
        """
    )
    commit(repo)
    pytester.runpytest().assert_outcomes(passed=3)
    result = explain(pytester)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["always-run marker: 1 test", "    *::test_network"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BREAK", "1")
        pytester.runpytest().assert_outcomes(passed=2, failed=1)
    result = explain(pytester)
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged: why 2 tests ran -*",
            "always-run marker: 1 test",
            "    *::test_network",
            "failed last time: 1 test",
            "    *::test_flaky",
        ]
    )
    # It passed again: the failure is forgotten and the record is back.
    explain(pytester).stdout.fnmatch_lines(["*- unchanged: why 1 test ran -*"])


def test_unchanged_tests_that_run_because_skipping_is_off(
    project: Path, pytester: pytest.Pytester
) -> None:
    pytester.runpytest().assert_outcomes(passed=3)
    result = pytester.runpytest("--unchanged-explain", "-q")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["unchanged, runs because --unchanged is off: 3 tests"])
    assert "test_project.py::test_a" not in result.stdout.str()  # -q: counts only


def test_explain_from_ini_and_under_xdist(project: Path, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeini("[pytest]\nunchanged_explain = true\n")
    pytester.makepyfile(
        test_always="import pytest\n\n@pytest.mark.always_run\ndef test_net():\n    pass\n"
    )
    commit(project)
    pytester.runpytest_subprocess("-n", "2").stdout.fnmatch_lines(["no record yet: 3 tests"])
    (project / "src" / "b.py").write_text("B = 2\n")
    result = pytester.runpytest_subprocess("-n", "2", "--unchanged")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged: why 3 tests ran -*",
            "always-run marker: 1 test",
            "    test_always.py::test_net",
            "input src/b.py changed (* → *): 1 test",
        ]
    )
