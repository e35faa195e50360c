"""The upstream watcher through its command line: check, record, the report, and every error."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from pytest_unchanged.upstream.config import CACHE_DIR_ENV

from .helpers import NAME, PATHS, Upstream, git, run, run_module, write_project


def verified(project: Path, ref: str = "main") -> dict[str, object]:
    """The state file's entry of ``ref``, with the upstream's ``url`` and the ``ref``."""
    state = json.loads((project / ".pytest-unchanged-upstream.json").read_text())
    assert state["schema"] == 2
    upstream = state["upstreams"][NAME]
    return {"url": upstream["url"], "ref": ref, **upstream["refs"][ref]}


def listed(report: str, path: str) -> list[str]:
    """Return the short commit OIDs the report lists under the watched ``path``."""
    section = re.split(r"\n  (?=\S)", report.split(f"\n  {path}: ", 1)[1], maxsplit=1)[0]
    return re.findall(r"^    ([0-9a-f]{7,}) ", section, re.MULTILINE)


def test_check_record_check(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "nothing verified yet" in out
    core, storage = (
        upstream.rev_parse("main:upstreampkg/core.py"),
        upstream.rev_parse("main:upstreampkg/storage"),
    )
    assert f"  upstreampkg/core.py: {core[:10]}\n" in out
    assert f"  upstreampkg/storage/: {storage[:10]}\n" in out
    assert not (project / ".pytest-unchanged-upstream.json").exists()

    status, out, _ = run(capsys, "upstream", "record", NAME)
    assert status == 0
    assert f"recorded {upstream.initial[:7]}" in out
    entry = verified(project)
    assert entry["commit"] == upstream.initial
    assert entry["paths"] == {"upstreampkg/core.py": core, "upstreampkg/storage": storage}
    assert entry["url"] == upstream.url
    assert entry["ref"] == "main"

    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 0
    assert f"no watched path moved since the verified commit {upstream.initial[:10]}" in out

    upstream.commit({"docs/index.txt": "Moved docs.\n", "upstreampkg/other.py": "X = 2\n"}, "Docs")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 0, out
    assert sorted(p.name for p in project.iterdir()) == [
        ".pytest-unchanged-upstream.json",
        "pyproject.toml",
    ]


def test_report_lists_commits_like_git_log_first_parent(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    old_core = upstream.rev_parse("main:upstreampkg/core.py")
    change = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 43\n"}, "Change it"
    )
    upstream.commit({"docs/index.txt": "Unwatched.\n"}, "Unwatched change")
    git(upstream.path, "checkout", "-q", "-b", "side")
    upstream.commit({"upstreampkg/storage/backends.py": "CHUNK = 128\n"}, "Side: storage")
    upstream.commit({"upstreampkg/core.py": "def answer() -> int:\n    return 44\n"}, "Side: core")
    git(upstream.path, "checkout", "-q", "main")
    upstream.commit({"upstreampkg/storage/__init__.py": "CHUNK = 1\n"}, "Main: storage")
    git(upstream.path, "merge", "-q", "--no-ff", "-m", "Merge side", "side")
    upstream.commit({"upstreampkg/other.py": "OTHER = 3\n"}, "Unwatched again")

    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "2 of 2 watched paths moved since the verified commit" in out
    new_core = upstream.rev_parse("main:upstreampkg/core.py")
    assert f"  upstreampkg/core.py: {old_core[:10]} -> {new_core[:10]}\n" in out
    assert re.search(rf"^    {change[:7]}[0-9a-f]* 2024-01-02 Change it$", out, re.MULTILINE)
    for path in ("upstreampkg/core.py", "upstreampkg/storage"):
        label = path if path.endswith(".py") else path + "/"
        shown = [upstream.rev_parse(short) for short in listed(out, label)]
        assert shown == upstream.log(upstream.initial, path)
        assert shown  # The merge, and the commits on main itself.
    assert "Side:" not in out  # Not on the first-parent history.
    assert "Unwatched change" not in out


def test_path_that_moved_back_is_unchanged(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    upstream.commit({"upstreampkg/core.py": "def answer() -> int:\n    return 0\n"}, "Break")
    upstream.commit({"upstreampkg/core.py": "def answer() -> int:\n    return 42\n"}, "Revert")
    assert run(capsys, "upstream", "check", NAME)[0] == 0


def test_record_commit_option(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    first = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "First")
    second = upstream.commit({"upstreampkg/core.py": "A = 2\n"}, "Second")
    status, out, _ = run(capsys, "upstream", "record", NAME, "--commit", first[:8])
    assert status == 0, out
    assert verified(project)["commit"] == first
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert [upstream.rev_parse(s) for s in listed(out, "upstreampkg/core.py")] == [second]
    assert "  upstreampkg/storage/: unchanged" in out


def test_newly_watched_path_counts_as_moved(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    write_project(project, url=upstream.url, paths=[*PATHS, "upstreampkg/other.py"])
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "  upstreampkg/other.py: not recorded -> " in out


def test_tag_as_ref(capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path) -> None:
    git(upstream.path, "tag", "-a", "-m", "Release", "v1.0")
    upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "After the tag")
    write_project(project, url=upstream.url, paths=PATHS, ref="v1.0")
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert verified(project, "v1.0")["commit"] == upstream.initial
    assert run(capsys, "upstream", "check", NAME)[0] == 0


def test_rewritten_upstream_history_is_said(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Later dropped")
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    git(upstream.path, "reset", "-q", "--hard", upstream.initial)
    replacement = upstream.commit({"upstreampkg/core.py": "A = 2\n"}, "Force-pushed")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "is not an ancestor of" in out
    assert [upstream.rev_parse(s) for s in listed(out, "upstreampkg/core.py")] == [replacement]


def test_verified_commit_missing_from_history_is_said(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    state_file = project / ".pytest-unchanged-upstream.json"
    state = json.loads(state_file.read_text())
    state["upstreams"][NAME]["refs"]["main"]["commit"] = "0123456789" * 4
    state["upstreams"][NAME]["refs"]["main"]["paths"]["upstreampkg/core.py"] = "f" * 40
    state_file.write_text(json.dumps(state))
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "note: the verified commit 0123456789 is not in the fetched history" in out
    assert listed(out, "upstreampkg/core.py") == []


def test_state_file_is_configurable_and_keeps_other_upstreams(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    write_project(project, url=upstream.url, paths=PATHS, state="ci/upstream.json")
    state_file = project / "ci" / "upstream.json"
    state_file.parent.mkdir()
    other = {"url": "u", "ref": "main", "commit": "a" * 40, "paths": {}, "verified_at": "x"}
    state_file.write_text(json.dumps({"schema": 1, "upstreams": {"other": other}}))
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    state = json.loads(state_file.read_text())
    assert state["schema"] == 2  # A schema 1 file is read, and rewritten as schema 2.
    kept = {key: other[key] for key in ("commit", "paths", "verified_at")}
    assert state["upstreams"]["other"] == {"url": "u", "refs": {"main": kept}}
    assert state["upstreams"][NAME]["refs"]["main"]["commit"] == upstream.initial
    assert [p.name for p in state_file.parent.iterdir()] == ["upstream.json"]
    assert not (project / ".pytest-unchanged-upstream.json").exists()


def test_cache_lives_outside_the_project(
    capsys: pytest.CaptureFixture[str],
    upstream: Upstream,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hashlib.sha256(upstream.url.encode()).hexdigest()[:12]
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    cache = tmp_path / "xdg" / "pytest-unchanged" / "upstream" / f"{NAME}-{digest}"
    assert git(cache, "rev-parse", "--is-bare-repository", "refs/heads/main").split() == [
        "true",
        upstream.initial,
    ]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    assert (tmp_path / "home" / ".cache" / "pytest-unchanged" / "upstream").is_dir()
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env"))
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    assert (tmp_path / "env" / f"{NAME}-{digest}").is_dir()
    assert run(capsys, "upstream", "check", NAME, "--cache-dir", str(tmp_path / "opt"))[0] == 1
    assert (tmp_path / "opt" / f"{NAME}-{digest}").is_dir()
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml"]


def test_command_line_entry_point(upstream: Upstream, project: Path) -> None:
    result = run_module(project, "upstream", "check", NAME)
    assert result.returncode == 1, result.stderr
    assert "nothing verified yet" in result.stdout
    result = run_module(project, "upstream", "record", NAME)
    assert result.returncode == 0, result.stderr
    assert run_module(project, "upstream", "check", NAME).returncode == 0
    write_project(project, url="file:///nonexistent/upstream.git", paths=PATHS)
    result = run_module(project, "upstream", "check", NAME)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("pytest-unchanged: error: Cannot reach the upstream")
    assert result.stderr.count("\n") == 1  # One paragraph.
