"""--unchanged-audit: repository files a test reads or imports that its inputs do not cover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_unchanged.trust.audit import covered, covering, depends_on_line

from .conftest import commit, git


def test_audit_finds_the_undeclared_data_file(repo: Path, pytester: pytest.Pytester) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "calc.py").write_text("N = 1\n")
    (repo / "data.json").write_text('{"n": 1}\n')
    (repo / "notes.txt").write_text("declared\n")
    (repo / "myenv" / "lib").mkdir(parents=True)
    (repo / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / "myenv" / "lib" / "site.txt").write_text("a virtualenv inside the repository\n")
    pytester.makepyfile(
        test_calc="""
        import json
        import pytest

        @pytest.mark.depends_on("src/calc.py", "notes.txt")
        def test_reads_undeclared_data(tmp_path):
            (tmp_path / "out.txt").write_text("outside the repository")
            open("notes.txt").close()
            open("myenv/lib/site.txt").close()
            open(".git/HEAD").close()
            with open("data.json") as file:
                assert json.load(file)["n"] == 1

        @pytest.mark.depends_on("src/calc.py")
        def test_declares_everything():
            pass

        def test_unmarked_covers_the_worktree():
            open("data.json").close()
        """
    )
    commit(repo)
    result = pytester.runpytest("--unchanged-audit")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged-audit -*",
            "1 of 3 audited tests read files their inputs do not cover",
            "test_calc.py::test_reads_undeclared_data:",
            "    data.json (read)",
            '    cover with: @pytest.mark.depends_on("data.json")',
        ]
    )
    assert "site.txt" not in result.stdout.str()
    assert ".git/HEAD" not in result.stdout.str()
    # The imports of each file are kept by blob OID for the next session.
    cache = json.loads((repo / ".pytest_cache/d/unchanged/imports.json").read_text())
    refs, doubts, *_ = cache["files"][git(repo, "rev-parse", "HEAD:test_calc.py")]
    assert sorted(refs) == [["json", 0, [], "import"], ["pytest", 0, [], "import"]]
    assert doubts == []
    again = pytester.runpytest("--unchanged-audit")
    again.stdout.fnmatch_lines(["    data.json (read)"])


def test_audit_sees_imports_at_collection_and_at_run_time(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pkg = repo / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("from . import helpers\n")
    (pkg / "helpers.py").write_text("X = 1\n")
    (pkg / "late.py").write_text("Y = 2\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "cache.py").write_text("Z = 3\n")
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "ignored/\n")
    tests = """
        import importlib
        import sys
        import pytest
        import pkg.core

        @pytest.mark.depends_on("pkg/core.py")
        def test_{name}():
            sys.path.insert(0, "ignored")
            try:
                importlib.import_module("cache")
            finally:
                sys.path.remove("ignored")
            importlib.import_module("pkg.late")
    """
    # Two modules import pkg.core: the second one's import raises no event (already loaded).
    pytester.makepyfile(test_one=tests.format(name="one"), test_two=tests.format(name="two"))
    commit(repo)
    result = pytester.runpytest("--unchanged-audit", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged-audit -*",
            "2 of 2 audited tests read files their inputs do not cover",
            "test_one.py::test_one:",
            "    pkg/__init__.py (imported at collection)",
            "    pkg/helpers.py (imported at collection)",
            "    pkg/late.py (imported)",
            '    cover with: @pytest.mark.depends_on("pkg/")',
            "test_two.py::test_two:",
            "    pkg/__init__.py (imported)",
            "    pkg/helpers.py (imported)",
        ]
    )
    assert "ignored/cache.py" not in result.stdout.str()


def test_audit_under_xdist(repo: Path, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    (repo / "data.txt").write_text("data\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.depends_on("conftest.py")
        def test_reads():
            open("data.txt").close()

        @pytest.mark.depends_on("data.txt")
        def test_declared():
            open("data.txt").close()
        """
    )
    pytester.makeconftest("")
    commit(repo)
    result = pytester.runpytest_subprocess("-n", "2", "--unchanged-audit")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- unchanged-audit -*",
            "1 of 2 audited tests read files their inputs do not cover",
            "test_audit_under_xdist.py::test_reads:",
            "    data.txt (read)",
        ]
    )


def test_covered_and_depends_on_line() -> None:
    assert covered("src/a.py", ["src"])
    assert covered("src/a.py", ["."])
    assert covered("src/a.py", ["src/a.py"])
    assert not covered("src/ab.py", ["src/a"])
    assert depends_on_line(["a.txt", "b/c.py"]) == '@pytest.mark.depends_on("a.txt", "b/c.py")'


def test_cover_with_names_directories_instead_of_many_files() -> None:
    read = [f"src/click/{name}.py" for name in "abcdefghijklmno"] + ["src/click/sub/x.py"]
    assert covering([*read, "setup.cfg", "tests/data/one.json"]) == [
        "setup.cfg",
        "src/click/",
        "tests/data/one.json",
    ]
    assert covering(["lib/x/1.py", "lib/x/2.py", "lib/x/3.py", "lib/y/1.py", "a.py", "b.py"]) == [
        "a.py",
        "b.py",
        "lib/",
    ]
    assert covering(["a.py", "b.py", "c.py"]) == ["a.py", "b.py", "c.py"]  # never "." itself
