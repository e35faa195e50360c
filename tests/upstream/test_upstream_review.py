"""Regressions from the adversarial review of the upstream watcher (issue 14): refs and tags."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest

from pytest_unchanged.upstream.build import install_environment, scm_version, write_build_tree
from pytest_unchanged.upstream.config import cache_path, load_upstream_config
from pytest_unchanged.upstream.state import CommitPaths, RefState, write_state

from .helpers import NAME, PATHS, Upstream, git, run, write_project


def state(project: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        (project / ".pytest-unchanged-upstream.json").read_text()
    )
    return document


def cache_repo(project: Path, cache_dir: Path) -> pygit2.Repository:
    config = load_upstream_config(project / "pyproject.toml", NAME)
    return pygit2.Repository(str(cache_path(config, cache_dir)))


def test_moved_tags_are_followed(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    """A followed tag force-moved upstream (annotated or lightweight) is a move."""
    git(upstream.path, "tag", "-a", "-m", "One", "rel")
    git(upstream.path, "tag", "lw")
    write_project(project, url=upstream.url, paths=PATHS, refs=["rel", "lw"])
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    moved = upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Move")
    git(upstream.path, "tag", "-f", "-a", "-m", "Two", "rel")
    git(upstream.path, "tag", "-f", "lw")
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert out.count(f"at {moved[:7]}): 1 of 2 watched paths moved") == 2
    assert run(capsys, "upstream", "record", NAME, "--ref", "rel", "--commit", "rel")[0] == 0


def test_deleted_and_moved_tags_leave_the_cache(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, cache_dir: Path
) -> None:
    """The cache's tags are the upstream's: scm_version never reads a deleted or stale tag."""
    git(upstream.path, "tag", "9.0")
    git(upstream.path, "tag", "-a", "-m", "Old", "2.0")
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    git(upstream.path, "tag", "-d", "9.0")
    tip = upstream.commit({"upstreampkg/other.py": "B = 2\n"}, "Second")
    git(upstream.path, "tag", "-f", "-a", "-m", "New", "2.0")
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    repo = cache_repo(project, cache_dir)
    assert sorted(n for n in repo.references if n.startswith("refs/tags/")) == ["refs/tags/2.0"]
    assert str(repo.references["refs/tags/2.0"].peel(pygit2.Commit).id) == tip
    assert scm_version(repo, repo.revparse_single(tip).peel(pygit2.Commit)) == "2.0"


def test_record_of_several_refs_writes_all_or_nothing(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    git(upstream.path, "checkout", "-q", "-b", "dev")
    upstream.commit({"upstreampkg/core.py": None}, "dev drops core.py")
    git(upstream.path, "checkout", "-q", "main")
    write_project(project, url=upstream.url, paths=PATHS, refs=["main", "dev"])
    status, out, err = run(capsys, "upstream", "record", NAME)
    assert status == 2
    assert "'upstreampkg/core.py' does not exist at commit" in err
    assert out == ""
    assert not (project / ".pytest-unchanged-upstream.json").exists()
    write_project(project, url=upstream.url, paths=["upstreampkg/storage/"], refs=["main", "dev"])
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert sorted(state(project)["upstreams"][NAME]["refs"]) == ["dev", "main"]  # type: ignore[index]


def test_concurrent_writes_of_other_refs_lose_nothing(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    """A write waits for the lock of another run's read-modify-write, then keeps its entry."""
    state_file = project / ".pytest-unchanged-upstream.json"
    dev = RefState(url=upstream.url, ref="dev", verified=CommitPaths(upstream.initial, {}, "T"))
    main_entry = {"commit": upstream.initial, "verified_at": "T", "paths": {}}
    descriptor = os.open(project, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # Another run, in its read-modify-write.
    writer = threading.Thread(target=write_state, args=(state_file, NAME, upstream.url, dev))
    writer.start()
    writer.join(0.5)
    try:
        assert writer.is_alive()  # Waiting for the other run.
        document = {"schema": 2, "upstreams": {NAME: {"url": upstream.url, "refs": {}}}}
        document["upstreams"][NAME]["refs"]["main"] = main_entry  # type: ignore[index]
        state_file.write_text(json.dumps(document))
    finally:
        os.close(descriptor)
        writer.join()
    assert sorted(state(project)["upstreams"][NAME]["refs"]) == ["dev", "main"]  # type: ignore[index]


def test_state_file_link_is_written_through_and_keeps_its_mode(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    shared = project.parent / "shared"
    shared.mkdir()
    target = shared / "state.json"
    target.write_text('{"schema": 2, "upstreams": {}}\n')
    target.chmod(0o640)
    link = project / ".pytest-unchanged-upstream.json"
    link.symlink_to(target)
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    assert link.is_symlink()
    assert json.loads(target.read_text())["upstreams"][NAME]["refs"]["main"]["commit"] == (
        upstream.initial
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in shared.iterdir()) == ["state.json"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_state_path_that_is_not_a_regular_file_is_refused(
    upstream: Upstream, project: Path, kind: str
) -> None:
    state_file = project / ".pytest-unchanged-upstream.json"
    if kind == "fifo":
        os.mkfifo(state_file)
    else:
        state_file.mkdir()
    for action in ("check", "record"):
        result = subprocess.run(
            [sys.executable, "-m", "pytest_unchanged", "upstream", action, NAME],
            cwd=project, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "cannot be used: it is not a regular file" in result.stderr


def test_cache_that_lost_its_objects_is_fetched_anew(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, cache_dir: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    objects = Path(cache_repo(project, cache_dir).path) / "objects"
    for lost in [*objects.glob("pack/*"), *objects.glob("??/*")]:
        lost.unlink()
    status, out, err = run(capsys, "upstream", "check", NAME)
    assert (status, err.count("Traceback")) == (0, 0), err
    assert "no watched path moved" in out


def test_build_tree_has_the_tags_and_ignores_the_users_git_variables(
    upstream: Upstream, tmp_path: Path
) -> None:
    """`git describe --tags` and `git log` in the build tree see the upstream commit and its
    tags, even with GIT_DIR and friends pointing at the user's repository."""
    git(upstream.path, "tag", "-a", "-m", "Release", "1.0")
    tip = upstream.commit({"docs/index.txt": "2\n"}, "After the release")
    cache = tmp_path / "cache.git"
    git(tmp_path, "clone", "-q", "--bare", upstream.url, str(cache))
    repo = pygit2.Repository(str(cache))
    commit = repo.revparse_single(tip).peel(pygit2.Commit)
    tree = write_build_tree(repo, commit, "upstreampkg", tmp_path / "out")
    user = tmp_path / "user"
    git(tmp_path, "init", "-q", str(user))
    outer = {
        "GIT_DIR": str(user / ".git"), "GIT_WORK_TREE": str(user),
        "GIT_INDEX_FILE": str(user / ".git" / "index"),
        "GIT_OBJECT_DIRECTORY": str(user / ".git" / "objects"),
        "GIT_COMMON_DIR": str(user / ".git"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(user / ".git" / "objects"),
    }  # fmt: skip
    env = {**outer, **install_environment("upstreampkg", "1.1", tmp_path / "out", tree)}
    assert git(tree, "describe", "--tags", env=env) == f"1.0-1-g{tip[:7]}"
    assert git(tree, "log", "-1", "--format=%H", env=env) == tip
    assert git(tree, "status", "--porcelain", env=env) == ""


@pytest.mark.parametrize("target", ["storage", "core.py"])
def test_watched_symbolic_link_is_refused(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, target: str
) -> None:
    """A watched link's OID would not move with its target: an error naming it, not a watch."""
    (upstream.path / "upstreampkg" / "alias").symlink_to(target)
    upstream.commit({}, "Add a link")
    write_project(project, url=upstream.url, paths=["upstreampkg/alias"])
    for action in ("check", "record"):
        status, out, err = run(capsys, "upstream", action, NAME)
        assert (status, out) == (2, "")
        assert "'upstreampkg/alias' is a symbolic link at commit" in err
        assert f"to '{target}'" in err
    assert not (project / ".pytest-unchanged-upstream.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the cache another owner")
def test_cache_of_another_owner_is_kept(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, cache_dir: Path
) -> None:
    """A valid cache restored by another uid is used, not thrown away and fetched anew."""
    assert run(capsys, "upstream", "check", NAME)[0] == 1
    cache = Path(cache_repo(project, cache_dir).path)
    (cache / "MARKER").write_text("kept\n")
    for folder, _, files in os.walk(cache):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chown(name, 12345, 12345)
    status, _, err = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "first fetch" not in err
    assert (cache / "MARKER").read_text() == "kept\n"


def test_subjects_cannot_drive_the_terminal_or_mention_anyone(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    upstream.commit(
        {"upstreampkg/core.py": "A = 1\n"}, "Fix \x1b[31mred\x07 \u202e for @alice #12 &#64;bob"
    )
    status, out, _ = run(capsys, "upstream", "check", NAME)
    assert status == 1
    assert "Fix \\x1b[31mred\\x07 \\u202e for @alice #12 &#64;bob" in out
    status, out, _ = run(capsys, "upstream", "check", NAME, "--format", "markdown")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "for \\@alice \\#12 \\&\\#64;bob" in out


def test_branch_and_tag_of_one_name_is_an_error_not_a_silent_switch(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path
) -> None:
    git(upstream.path, "tag", "2.0")
    write_project(project, url=upstream.url, paths=PATHS, ref="2.0")
    assert run(capsys, "upstream", "record", NAME)[0] == 0
    git(upstream.path, "branch", "2.0")
    upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "On main")
    status, out, err = run(capsys, "upstream", "check", NAME)
    assert (status, out) == (2, "")
    assert "has both a branch and a tag named '2.0'" in err
    write_project(project, url=upstream.url, paths=PATHS, ref="refs/tags/2.0")
    assert run(capsys, "upstream", "check", NAME)[0] == 1  # Another ref name: not verified.


def test_scm_version_edge_cases_follow_setuptools_scm(upstream: Upstream) -> None:
    """Each expected value is what setuptools-scm prints for the same history."""
    repo = pygit2.Repository(str(upstream.path))

    def version_of(revision: str) -> str | None:
        return scm_version(repo, repo.revparse_single(revision).peel(pygit2.Commit))

    upstream.commit({"docs/index.txt": "1\n"}, "One")
    head = upstream.commit({"docs/index.txt": "2\n"}, "Two")
    assert version_of("main") == f"0.1.dev3+g{head[:9]}"  # No tag: N = commits.
    git(upstream.path, "tag", "release-2024")
    assert version_of("main") == "2024"  # setuptools-scm's tag regex drops the prefix.
    head = upstream.commit({"docs/index.txt": "3\n"}, "Three")
    assert version_of("main") == f"2025.dev1+g{head[:9]}"
    git(upstream.path, "tag", "2.0.dev3")
    assert version_of("main") == "2.0.dev3"
    upstream.commit({"docs/index.txt": "4\n"}, "Four")
    assert version_of("main") is None  # setuptools-scm refuses to bump a .dev3 tag.
    environment = install_environment("upstreampkg", None, Path("/tmp/build"))
    assert not any(name.startswith("SETUPTOOLS_SCM") for name in environment)


def test_messages_of_odd_record_values(
    capsys: pytest.CaptureFixture[str], upstream: Upstream, project: Path, cache_dir: Path
) -> None:
    second = upstream.commit({"docs/index.txt": "2\n"}, "Second")
    git(upstream.path, "tag", "treetag", "main^{tree}")
    assert run(capsys, "upstream", "record", NAME, "--commit", "HEAD~1")[0] == 0
    assert state(project)["upstreams"][NAME]["refs"]["main"]["commit"] == upstream.initial  # type: ignore[index]
    tree = upstream.rev_parse("main^{tree}")
    status, _, err = run(capsys, "upstream", "record", NAME, "--commit", tree)
    assert status == 2
    assert "names a tree of the upstream 'upstreampkg', not a commit" in err
    assert run(capsys, "upstream", "record", NAME, "--commit", "HEAD")[0] == 0
    assert state(project)["upstreams"][NAME]["refs"]["main"]["commit"] == second  # type: ignore[index]
    other_cache = cache_dir.parent / "other-cache"
    write_project(project, url=upstream.url, paths=PATHS, ref="treetag")
    status, _, err = run(capsys, "upstream", "check", NAME, "--cache-dir", str(other_cache))
    assert status == 2
    assert "points to a tree, not a commit" in err
    assert [p.name for p in other_cache.iterdir() if not p.name.endswith(".lock")] == []
    write_project(project, url=str(project.parent / "nowhere.git"), paths=PATHS)
    status, _, err = run(capsys, "upstream", "check", NAME)
    assert "nowhere.git: no such directory." in err
    pyproject = write_project(project, url=upstream.url, paths=["upstreampkg@NUL@x"])
    pyproject.write_text(pyproject.read_text().replace("@NUL@", "\\u0000"))  # TOML escape
    status, _, err = run(capsys, "upstream", "check", NAME)
    assert status == 2
    assert "is not a path inside the upstream repository" in err
