"""What a maintainer needs to judge a move: removed paths, known failures, the patch, markdown
and JSON reports, several refs, the URL the state was verified against, context commits."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_unchanged.__main__ import main
from pytest_unchanged.upstream.formats import forge_links

from .helpers import NAME, PATHS, Upstream, git, run, write_project

STATE = ".pytest-unchanged-upstream.json"


def state(project: Path) -> dict[str, dict[str, object]]:
    refs: dict[str, dict[str, object]] = json.loads((project / STATE).read_text())["upstreams"][
        NAME
    ]["refs"]
    return refs


def test_removed_watched_path_is_a_move_naming_the_commit(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    core_moved = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Core moves too")
    removal = upstream.commit(
        {"upstreampkg/storage/__init__.py": None, "upstreampkg/storage/backends.py": None},
        "Remove storage",
    )
    status, out, err = run(capsys, "upstream", "check", NAME)
    assert (status, err) == (1, "")
    assert "2 of 2 watched paths moved" in out  # The other path's move is not hidden.
    old = upstream.rev_parse(f"{upstream.initial}:upstreampkg/storage")
    assert f"  upstreampkg/storage/: {old[:10]} -> removed by {removal[:7]}\n" in out
    assert f"    {removal[:7]} 2024-01-03 Remove storage\n" in out
    assert f"    {core_moved[:7]} 2024-01-02 Core moves too\n" in out
    # Passing against it records the path as absent; it is then unchanged until it comes back.
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert state(project)["main"]["paths"] == {
        "upstreampkg/core.py": upstream.rev_parse("main:upstreampkg/core.py"),
        "upstreampkg/storage": None,
    }
    assert run(capsys, "upstream", "check", NAME)[0] == 0
    upstream.commit({"upstreampkg/storage/backends.py": "CHUNK = 1\n"}, "Back again")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "  upstreampkg/storage/: absent -> " in out
    # A path that no verified commit had is an error still (misspelt), not a move.
    write_project(project, url=upstream.url, paths=[*PATHS, "upstreampkg/cor.py"])
    status, _, err = run(capsys, "upstream", "check", NAME)
    assert status == 2
    assert "The watched path 'upstreampkg/cor.py' does not exist at commit" in err


def test_known_failing_commit_is_quiet_until_something_new_moves(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    broken = upstream.commit({"upstreampkg/core.py": "A = 0\n"}, "Break")
    assert run(capsys, "upstream", "record", NAME, "--failing")[0] == 0
    entry = state(project)["main"]
    assert entry["commit"] == upstream.initial  # The verified commit is kept.
    assert isinstance(entry["failing"], dict)
    assert entry["failing"]["commit"] == broken
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 3
    assert f"still failing at {broken[:10]}" in out
    assert "nothing new moved" in out
    assert f"    {broken[:7]} 2024-01-02 Break\n" in out  # The move is still reported.
    upstream.commit({"docs/index.txt": "Unwatched.\n"}, "Unwatched")
    assert run(capsys, "upstream", "check", NAME)[0] == 3  # The tip moved, the paths did not.
    upstream.commit({"upstreampkg/storage/backends.py": "CHUNK = 2\n"}, "News")
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    upstream.commit({"upstreampkg/storage/backends.py": "CHUNK = 64\n"}, "Storage back")
    assert run(capsys, "upstream", "check", NAME)[0] == 3
    upstream.commit({"upstreampkg/core.py": "def answer() -> int:\n    return 42\n"}, "Fix")
    assert run(capsys, "upstream", "check", NAME)[0] == 0  # Back to the verified OIDs.
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert "failing" not in state(project)["main"]  # A pass clears the failure.


def test_diff_shows_the_patch_of_the_watched_paths_only(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    upstream.commit(
        {
            "upstreampkg/core.py": "def answer() -> int:\n    return 43\n",
            "upstreampkg/storage/new.py": "NEW = True\n",
            "upstreampkg/other.py": "OTHER = 2\n",
        },
        "Move things",
    )
    status, out, _ = run(capsys, "upstream", "check", NAME, "--diff")
    assert status == 1
    expected = git(
        upstream.path, "diff", upstream.initial, "main", "--", "upstreampkg/core.py",
        "upstreampkg/storage",
    )  # fmt: skip
    patch = out[out.index("diff --git") :]
    assert patch.strip() == expected.strip()
    assert "other.py" not in patch
    assert "-    return 42\n+    return 43\n" in patch
    assert "diff --git" not in run(capsys, "upstream", "check", NAME)[1]  # Only when asked.


def test_markdown_and_json_reports(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    change = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Fix #12 for @someone *now*")
    status, out, _ = run(capsys, "upstream", "check", NAME, "--format", "markdown", "--diff")
    assert status == 1
    assert out.startswith(f"### Upstream `{NAME}`: `main` at `{change[:7]}`\n")
    core = upstream.rev_parse(f"{upstream.initial}:upstreampkg/core.py")
    new_core = upstream.rev_parse("main:upstreampkg/core.py")
    assert f"| `upstreampkg/core.py` | `{core[:10]}` | `{new_core[:10]}` |\n" in out
    assert "| `upstreampkg/storage/` | " in out and " | unchanged |\n" in out
    assert f"- `{change[:7]}` 2024-01-02 Fix \\#12 for \\@someone \\*now\\*\n" in out
    assert "<details><summary>Patch of the watched paths</summary>\n\n```diff\ndiff --git" in out
    assert "](" not in out  # A file URL has no web pages to link.

    status, out, _ = run(capsys, "upstream", "check", NAME, "--format", "json")
    document = json.loads(out)
    assert (status, document["exit_status"], document["upstream"]) == (1, 1, NAME)
    (ref,) = document["refs"]
    assert ref["ref"] == "main" and ref["status"] == "moved"
    assert ref["tip"]["commit"] == change
    assert ref["verified"] == upstream.initial
    core_entry, storage_entry = ref["paths"]
    assert core_entry["moved"] is True and core_entry["tip"] == new_core
    assert [c["commit"] for c in core_entry["commits"]] == [change]
    assert storage_entry["moved"] is False and storage_entry["commits"] == []
    assert ref["diff"] is None


@pytest.mark.parametrize(
    ("url", "commit", "compare"),
    [
        (
            "https://github.com/django/django.git",
            "https://github.com/django/django/commit/abc",
            "https://github.com/django/django/compare/abc...def",
        ),
        (
            "git@github.com:django/django.git",
            "https://github.com/django/django/commit/abc",
            "https://github.com/django/django/compare/abc...def",
        ),
        (
            "ssh://git@gitlab.com/group/sub/project.git",
            "https://gitlab.com/group/sub/project/-/commit/abc",
            "https://gitlab.com/group/sub/project/-/compare/abc...def",
        ),
        (
            "https://gitlab.com/group/project/",
            "https://gitlab.com/group/project/-/commit/abc",
            None,
        ),
    ],
)
def test_forge_links(url: str, commit: str, compare: str | None) -> None:
    links = forge_links(url)
    assert links is not None
    assert links.commit("abc") == commit
    if compare:
        assert links.compare("abc", "def") == compare
    assert forge_links("file:///srv/django.git") is None
    assert forge_links("https://example.com/django/django.git") is None


def test_two_refs_share_one_cache_and_keep_one_entry_each(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, cache_dir: Path
) -> None:
    git(upstream.path, "branch", "stable/1.x")
    write_project(project, url=upstream.url, paths=PATHS, refs=["main", "stable/1.x"])
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "main at " in out and "stable/1.x at " in out
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert sorted(state(project)) == ["main", "stable/1.x"]
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 1
    git(upstream.path, "checkout", "-q", "stable/1.x")
    fix = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Backport")
    git(upstream.path, "checkout", "-q", "main")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    main_report, stable_report = out.split("\nupstream ")
    assert "no watched path moved" in main_report
    assert f"    {fix[:7]} 2024-01-02 Backport\n" in stable_report
    assert run(capsys, "upstream", "check", NAME, "--ref", "main")[0] == 0
    status, _, err = run(capsys, "upstream", "record", NAME, "--commit", fix)
    assert status == 2 and "say which one --commit belongs to with --ref" in err
    status, _, err = run(capsys, "upstream", "record", NAME, "--ref", "main", "--commit", fix)
    assert status == 2 and "is not in the history of main" in err  # Another branch's commit.
    assert run(capsys, "upstream", "record", NAME, "--ref", "stable/1.x", "--commit", fix)[0] == 0
    assert run(capsys, "upstream", "check", NAME)[0] == 0
    status, _, err = run(capsys, "upstream", "check", NAME, "--ref", "stable/2.x")
    assert status == 2 and "does not follow the ref 'stable/2.x'" in err


def test_state_says_what_it_verified(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, tmp_path: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", upstream.url, str(mirror))
    write_project(project, url=mirror.as_uri(), paths=PATHS)
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 0  # Same OIDs, same content: said, not hidden.
    assert f"note: the state was verified against {upstream.url}, the table now says" in out
    write_project(project, url=upstream.url, paths=PATHS, ref="other")
    git(upstream.path, "branch", "other")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "other at " in out and "nothing verified yet" in out


def test_context_lists_unwatched_commits_nearby(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    write_project(
        project, url=upstream.url, paths=["upstreampkg/core.py"], context=["upstreampkg/"]
    )
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    nearby = upstream.commit({"upstreampkg/other.py": "OTHER = 9\n"}, "Nearby change")
    upstream.commit({"docs/index.txt": "Far away.\n"}, "Far away")
    watched = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Watched change")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert f"    {watched[:7]} 2024-01-04 Watched change\n" in out
    assert "  context: commits that touched no watched path\n" in out
    assert f"      {nearby[:7]} 2024-01-02 Nearby change (not watched; under upstreampkg)\n" in out
    assert "Far away" not in out
    assert "Watched change (not watched" not in out


def test_unknown_ref_names_the_closest_ones(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    for n in range(12):
        git(upstream.path, "branch", f"aaa/documentation-{n}")
    git(upstream.path, "branch", "stable/5.2.x")
    write_project(project, url=upstream.url, paths=PATHS, ref="stable/5.2")
    status, _, err = run(capsys, "upstream", "check", NAME)
    assert status == 2
    assert "(the closest names there: stable/5.2.x, main)" in err
    assert "documentation" not in err


@pytest.mark.parametrize(("umask", "existing"), [(0o022, None), (0o027, None), (0o022, 0o664)])
def test_state_file_keeps_its_mode(
    upstream: Upstream, project: Path, umask: int, existing: int | None
) -> None:
    state_file = project / STATE
    if existing is not None:
        state_file.write_text('{"schema": 2, "upstreams": {}}')
        state_file.chmod(existing)
    old = os.umask(umask)
    try:
        assert main(["upstream", "record", NAME]) == 0
    finally:
        os.umask(old)
    expected = existing if existing is not None else 0o666 & ~umask
    assert stat.S_IMODE(state_file.stat().st_mode) == expected
    assert state(project)["main"]["commit"] == upstream.initial


@pytest.mark.parametrize(
    ("revision", "message"),
    [
        ("", "is not in the fetched history"),
        ("-x", "is not in the fetched history"),
        ("main:upstreampkg/core.py", "names a blob of the upstream"),  # A blob.
        ("main^{tree}", "names a tree of the upstream"),
        ("0000000", "is not in the fetched history"),
        ("SIDE", "is not in the history of main"),  # Another branch's commit, by OID.
    ],
)
def test_odd_record_commit_values(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, revision: str,
    message: str,
) -> None:  # fmt: skip
    git(upstream.path, "checkout", "-q", "-b", "side")
    upstream.commit({"upstreampkg/core.py": "SIDE = 1\n"}, "Side")
    git(upstream.path, "checkout", "-q", "main")
    revision = revision.replace("SIDE", upstream.rev_parse("side"))
    status, _, err = run(capsys, "upstream", "record", NAME, f"--commit={revision}")
    assert status == 2
    assert message in err
    assert not (project / STATE).exists()


def test_record_commit_takes_tags_and_relative_revisions(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    git(upstream.path, "tag", "-a", "-m", "Release", "v1.0")
    upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "After")
    assert run(capsys, "upstream", "record", NAME, "--commit", "v1.0")[0] == 0
    assert state(project)["main"]["commit"] == upstream.initial
    assert run(capsys, "upstream", "record", NAME, "--commit", "main~1")[0] == 0
    assert state(project)["main"]["commit"] == upstream.initial


def test_schema_1_state_is_read(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    paths = {
        "upstreampkg/core.py": upstream.rev_parse("main:upstreampkg/core.py"),
        "upstreampkg/storage": upstream.rev_parse("main:upstreampkg/storage"),
    }
    entry = {"url": upstream.url, "ref": "main", "commit": upstream.initial, "paths": paths}
    (project / STATE).write_text(json.dumps({"schema": 1, "upstreams": {NAME: entry}}))
    assert run(capsys, "upstream", "check", NAME)[0] == 0


def test_concurrent_checks_on_a_new_cache(upstream: Upstream, project: Path) -> None:
    """Four processes making the same cache at once: each fetches, none sees a half-made one."""
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest_unchanged", "upstream", "check", NAME],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(process.wait(timeout=120), process.communicate()) for process in runs]
    assert [status for status, _ in results] == [1, 1, 1, 1], results
    assert all("nothing verified yet" in out for _, (out, _) in results)
    assert re.search(r"fetching upstreampkg from ", "".join(err for _, (_, err) in results))
