"""Every error of the upstream watcher: exit status 2, one paragraph, verified state untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_unchanged.__main__ import main
from pytest_unchanged.upstream.config import CACHE_DIR_ENV

from .helpers import NAME, PATHS, Upstream, write_project, write_table

Breaker = Callable[[Upstream, Path], None]


def table(**changes: object) -> Breaker:
    """A breaker that rewrites the project's upstream table with ``changes`` (None: delete)."""

    def rewrite(upstream: Upstream, project: Path) -> None:
        values: dict[str, object] = {"url": upstream.url, "paths": PATHS, **changes}
        write_table(project, {k: v for k, v in values.items() if v is not None})

    return rewrite


def corrupt_state(upstream: Upstream, project: Path) -> None:
    (project / ".pytest-unchanged-upstream.json").write_text('{"schema": 1, "upstreams": [')


def edit_state(change: Callable[[dict[str, Any]], None]) -> Breaker:
    """A breaker that hand-edits the state file's entry of ``main`` (schema 2)."""

    def rewrite(upstream: Upstream, project: Path) -> None:
        state_file = project / ".pytest-unchanged-upstream.json"
        document = json.loads(state_file.read_text())
        change(document)
        state_file.write_text(json.dumps(document))

    return rewrite


def _main(document: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = document["upstreams"]["upstreampkg"]["refs"]["main"]
    return entry


def deep_state(upstream: Upstream, project: Path) -> None:
    (project / ".pytest-unchanged-upstream.json").write_text("[" * 100_000 + "]" * 100_000)


def latin_1_pyproject(upstream: Upstream, project: Path) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_bytes(pyproject.read_bytes() + b"# Ren\xe9\n")


def broken_toml(upstream: Upstream, project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.pytest-unchanged.upstream.upstreampkg\n")


ERRORS: dict[str, tuple[Breaker, str]] = {
    "unreachable URL": (
        table(url="file:///nonexistent/upstream.git"),
        "Cannot reach the upstream 'upstreampkg' at file:///nonexistent/upstream.git",
    ),
    "unknown ref": (table(ref="no-such-branch"), "has no branch or tag 'no-such-branch'"),
    "missing watched path": (
        table(paths=[*PATHS, "upstreampkg/missing.py"]),
        "The watched path 'upstreampkg/missing.py' does not exist at commit",
    ),
    "missing url": (table(url=None), "the key 'url' is missing"),
    "missing paths": (table(paths=None), "the key 'paths' is missing"),
    "paths not a list": (table(paths="upstreampkg/"), "'paths' must be a list of strings"),
    "empty paths": (table(paths=[]), "'paths' is empty"),
    "path outside": (table(paths=["../x"]), "'paths' entry '../x' is not a path inside"),
    "install not a list": (table(install="."), "'install' must be a list of strings"),
    "pytest_args not strings": (table(pytest_args=[1]), "'pytest_args' must be a list of strings"),
    "ref not a string": (table(ref=1), "'ref' must be a non-empty string"),
    "unknown key": (table(paht=["x"]), "unknown key 'paht'"),
    "invalid TOML": (broken_toml, "is not valid TOML"),
    "corrupt state": (corrupt_state, "cannot be used: it is not JSON"),
    "state: refs not an object": (
        edit_state(lambda d: d["upstreams"]["upstreampkg"].update(refs=[])),
        "the entry of 'upstreampkg' is not an object with a 'refs' object",
    ),
    "state: abbreviated commit": (
        edit_state(lambda d: _main(d).update(commit="abc1234")),
        "has a bad 'commit' (a full hex OID)",
    ),
    "state: uppercase OID": (
        edit_state(lambda d: _main(d).update(commit=_main(d)["commit"].upper())),
        "has a bad 'commit'",
    ),
    "state: path OID not hex": (
        edit_state(lambda d: _main(d)["paths"].update({"upstreampkg/core.py": "zz"})),
        "has a bad 'paths' (path: OID or null)",
    ),
    "state: failing not an object": (
        edit_state(lambda d: _main(d).update(failing="yes")),
        "has a bad 'failing'",
    ),
    "state: failing without commit": (
        edit_state(lambda d: _main(d).update(failing={"paths": {}})),
        "has a bad 'commit'",
    ),
    "state: ref entry not an object": (
        edit_state(lambda d: d["upstreams"]["upstreampkg"]["refs"].update(main=1)),
        "ref 'main', is not an object",
    ),
    "state: unknown schema": (edit_state(lambda d: d.update(schema=3)), "its schema is 3"),
    "state: schema true": (edit_state(lambda d: d.update(schema=True)), "its schema is True"),
    "state: schema 2.0": (edit_state(lambda d: d.update(schema=2.0)), "its schema is 2.0"),
    "state: nested too deeply": (deep_state, "it is not JSON (nested too deeply)"),
    "state: entry without commit": (
        edit_state(lambda d: _main(d).pop("commit")),
        "ref 'main', has no 'commit'",
    ),
    "state: commit is a tree": (
        lambda up, project: edit_state(
            lambda d: _main(d).update(commit=up.rev_parse("main^{tree}"))
        )(up, project),
        "is a tree, not a commit of",
    ),
    "state: commit of another hash length": (
        edit_state(lambda d: _main(d).update(commit="a" * 64)),
        "is an OID of another hash length, not a commit",
    ),
    "pyproject not UTF-8": (latin_1_pyproject, "is not valid TOML: it is not UTF-8"),
    "package not a distribution name": (
        table(package="/tmp/evil"),
        "'package' '/tmp/evil' is not a distribution name",
    ),
    "state: url not a string": (
        edit_state(lambda d: d["upstreams"]["upstreampkg"].update(url=["x"])),
        "has a 'url' that is not a string",
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Upstream, Path]:
    """An upstream, and a project that has recorded its first commit as verified."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    upstream = Upstream(tmp_path / "upstream")
    directory = tmp_path / "project"
    write_project(directory, url=upstream.url, paths=PATHS)
    monkeypatch.chdir(directory)
    assert main(["upstream", "record", NAME]) == 0
    return upstream, directory


@pytest.mark.parametrize("action", ["check", "record"])
@pytest.mark.parametrize("error", ERRORS)
def test_error(
    project: tuple[Upstream, Path],
    capsys: pytest.CaptureFixture[str],
    error: str,
    action: str,
) -> None:
    upstream, directory = project
    breaker, message = ERRORS[error]
    breaker(upstream, directory)
    state_file = directory / ".pytest-unchanged-upstream.json"
    before = state_file.read_bytes()
    capsys.readouterr()
    assert main(["upstream", action, NAME]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("pytest-unchanged: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert state_file.read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == [state_file.name, "pyproject.toml"]


def test_unknown_name_lists_the_configured_ones(
    project: tuple[Upstream, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["upstream", "check", "django"]) == 2
    err = capsys.readouterr().err
    assert "No upstream named 'django'" in err
    assert "the configured upstreams are upstreampkg" in err


def test_unknown_commit_is_not_recorded(
    project: tuple[Upstream, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project[1]
    before = (directory / ".pytest-unchanged-upstream.json").read_bytes()
    assert main(["upstream", "record", NAME, "--commit", "deadbeef"]) == 2
    assert "The commit 'deadbeef' is not in the fetched history" in capsys.readouterr().err
    assert (directory / ".pytest-unchanged-upstream.json").read_bytes() == before


def test_no_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["upstream", "check", NAME]) == 2
    assert "No pyproject.toml found" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["upstream"], ["upstream", "check"], ["upstream", "bogus", NAME]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "usage: pytest-unchanged" in capsys.readouterr().err
