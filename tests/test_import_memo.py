"""The import-parse memo kept across sessions (:mod:`pytest_unchanged.import_memo`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import pytest_unchanged.imports
from pytest_unchanged.import_refs import Parsed
from pytest_unchanged.import_syntax import parse_file
from pytest_unchanged.imports import ImportGraph
from pytest_unchanged.worktree import Worktree

from .conftest import commit

MODULES = {
    "helper": "import other\n\nVALUE = other.VALUE\n",
    "other": "VALUE = 1\n",
    "test_one": "import helper\n\ndef test_one():\n    assert helper.VALUE == 1\n",
    "test_two": "import other\n\ndef test_two():\n    assert other.VALUE == 1\n",
}


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record the source of every file the import graph parses."""
    parsed: list[bytes] = []
    original: Callable[..., Parsed] = parse_file

    def counting(source: bytes, *, text: bool = False) -> Parsed:
        parsed.append(source)
        return original(source, text=text)

    monkeypatch.setattr(pytest_unchanged.imports, "parse_file", counting)
    return parsed


def recorded(pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record a pass of both :data:`MODULES` under ``imports``; return the parse log."""
    pytester.makeini("[pytest]\nunchanged_default = imports\n")
    pytester.makepyfile(**MODULES)
    commit(repo)
    parsed = count_parses(monkeypatch)
    pytester.runpytest().assert_outcomes(passed=2)
    return parsed


def test_a_later_session_parses_only_what_it_has_not_seen(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = recorded(pytester, repo, monkeypatch)
    assert len(parsed) >= 4  # each module's collection closure
    parsed.clear()
    result = pytester.runpytest("--unchanged")
    result.stdout.fnmatch_lines(["unchanged: 2 unchanged (2 not collected, 0 skipped), 0 to run"])
    assert parsed == []
    # An edited file is read again, and only it; its new import counts for the keys.
    (repo / "helper.py").write_text("import other\nimport third\n\nVALUE = other.VALUE\n")
    (repo / "third.py").write_text("")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)  # test_two not collected
    assert sorted(parsed) == [b"", (repo / "helper.py").read_bytes()]
    (repo / "third.py").write_text("CHANGED = 1\n")
    pytester.runpytest("--unchanged").assert_outcomes(passed=1)  # helper imports third


def test_a_partial_session_keeps_the_parses_of_the_other_files(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = recorded(pytester, repo, monkeypatch)
    (repo / "test_two.py").write_text(MODULES["test_two"] + "\n# edited\n")
    pytester.runpytest("test_two.py").assert_outcomes(passed=1)
    parsed.clear()
    pytester.runpytest().assert_outcomes(passed=2)
    assert parsed == []


def test_a_file_changed_after_its_oid_was_taken_is_not_memoised(repo: Path) -> None:
    (repo / "mod.py").write_text("import first\n")
    commit(repo)
    worktree = Worktree.discover(repo)
    memo: dict[str, Parsed] = {}
    graph = ImportGraph(worktree, [repo], memo)
    oid = worktree.entry("mod.py").oid
    (repo / "mod.py").write_text("import second\n")  # after its OID was taken
    assert [ref.module for ref in graph.imports_of("mod.py")] == ["second"]
    assert oid not in memo


@pytest.mark.parametrize(
    "damage",
    [
        [[[1, 0, [], "import"]], [], None, True, [], []],  # a module that is no string
        [[["helper", 10**20, [], "import"]], [], None, True, [], []],  # a level to hang on
        [[["helper", 0, [], "import"]], [], None, "yes", [], []],  # exports_known no bool
        [[["helper", 0, [7], "import"]], [], None, True, [], []],  # a name that is no string
        [[["helper", 0, [], "import"]], [], None, True, [None], []],
    ],
    ids=["module", "level", "known", "names", "attributes"],
)
def test_a_damaged_memo_costs_a_parse_not_a_crash(
    pytester: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch, damage: list[object]
) -> None:
    """Round 4, finding 06: each field of a memo entry is checked, not only its shape."""
    recorded(pytester, repo, monkeypatch)
    (memo,) = (repo / ".pytest_cache/d/unchanged").glob("parsed-*.json")
    data = json.loads(memo.read_text())
    data["files"] = {oid: damage for oid in data["files"]}
    memo.write_text(json.dumps(data))
    result = pytester.runpytest_subprocess("--unchanged", timeout=60)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    (repo / "helper.py").write_text("import other\n\nVALUE = other.VALUE + 1\n")
    pytester.runpytest_subprocess("--unchanged", timeout=60).assert_outcomes(failed=1)
