"""The first-parent walk against ``git log``, shallow histories, fetch progress, build trees."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pygit2

from pytest_unchanged.upstream.build import install_environment, scm_version, write_build_tree
from pytest_unchanged.upstream.config import load_upstream_config
from pytest_unchanged.upstream.fetch import FetchProgress, fetch_upstream
from pytest_unchanged.upstream.report import touching_commits

from .helpers import Upstream, git, write_project

WATCHED = ("upstreampkg/core.py", "upstreampkg/storage", "docs")


def touched(repo: pygit2.Repository, tip: str, since: str, path: str) -> list[str]:
    history = touching_commits(repo, repo.revparse_single(tip).peel(pygit2.Commit), since, (path,))
    assert history.note is None
    return [str(commit.id) for commit in history.touched[path]]


def test_walk_matches_git_log_on_a_history_with_merges(upstream: Upstream) -> None:
    rng = random.Random(7)
    files = [
        "upstreampkg/core.py",
        "upstreampkg/storage/backends.py",
        "upstreampkg/storage/new.py",
        "upstreampkg/other.py",
        "docs/index.txt",
    ]
    main_commits = [upstream.initial]
    for step in range(30):
        if step % 7 == 3:  # A side branch of two commits, merged without fast-forward.
            *side_files, main_file = rng.sample(files, 3)  # Disjoint: no merge conflict.
            git(upstream.path, "checkout", "-q", "-b", f"side{step}")
            for name in side_files:
                upstream.commit({name: f"side {step}\n"}, f"Side {step}")
            git(upstream.path, "checkout", "-q", "main")
            upstream.commit({main_file: f"main {step}\n"}, f"Main {step}")
            git(upstream.path, "merge", "-q", "--no-ff", "-m", f"Merge {step}", f"side{step}")
            main_commits.append(upstream.rev_parse("HEAD"))
        else:
            main_commits.append(upstream.commit({rng.choice(files): f"{step}\n"}, f"Step {step}"))
    repo = pygit2.Repository(str(upstream.path))
    side_commit = upstream.rev_parse("side3")
    for since in [*main_commits[::3], side_commit]:
        for path in WATCHED:
            assert touched(repo, "main", since, path) == upstream.log(since, path), (since, path)


def test_shallow_history_is_said_not_guessed(upstream: Upstream, tmp_path: Path) -> None:
    core = "upstreampkg/core.py"
    git(upstream.path, "checkout", "-q", "-b", "side")
    side = upstream.commit({"docs/index.txt": "side\n"}, "Side")
    git(upstream.path, "checkout", "-q", "main")
    older = [upstream.commit({core: f"A = {n}\n"}, f"Core {n}") for n in range(4)]
    shallow = tmp_path / "shallow.git"
    git(tmp_path, "clone", "-q", "--bare", "--depth", "2", upstream.url, str(shallow))
    git(shallow, "fetch", "-q", "--depth", "1", "origin", "side:side")
    repo = pygit2.Repository(str(shallow))
    assert repo.is_shallow
    tip = repo.revparse_single("main").peel(pygit2.Commit)

    history = touching_commits(repo, tip, older[0], (core,))
    assert history.touched == {core: []}
    assert history.note is not None
    assert f"the verified commit {older[0][:10]} is not in the fetched history" in history.note

    history = touching_commits(repo, tip, side, (core,))
    assert [str(c.id) for c in history.touched[core]] == [older[3]]
    assert history.note is not None
    assert f"the history before {older[2][:7]}" in history.note
    assert "shallow" in history.note


def test_fetch_progress_lines(upstream: Upstream, tmp_path: Path) -> None:
    pyproject = write_project(tmp_path / "project", url=upstream.url, paths=["docs/"])
    config = load_upstream_config(pyproject, "upstreampkg")
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    progress = FetchProgress("upstreampkg", write=lambda t: lines.append((time.monotonic(), t)))
    fetched = fetch_upstream(config, tmp_path / "cache", progress=progress)
    assert str(fetched.tip.id) == upstream.initial
    first_time, first = lines[0]
    assert first_time - start < 1.0  # A first fetch says so at once, however small.
    assert first == (
        f"fetching upstreampkg from {upstream.url} (first fetch: the whole history of main)\n"
    )
    assert lines[-1][1].startswith("fetched upstreampkg in ")
    quiet: list[str] = []
    fetch_upstream(config, tmp_path / "cache", progress=FetchProgress("x", write=quiet.append))
    assert quiet == []  # Later small fetches (under a second) say nothing.


def test_fetch_progress_shows_the_remote_and_the_transfer() -> None:
    lines: list[str] = []
    progress = FetchProgress("django", write=lines.append, delay=0)
    progress.sideband_progress("Counting objects:  10% (100/1000)\rCounting objects:  20% (2")
    progress.sideband_progress("00/1000)\r")  # The same phase within the interval: no line.
    progress.sideband_progress("Compressing objects:   1% (1/100)\r")
    assert [line.split(", ")[0] for line in lines] == [
        "fetching django: remote: Counting objects:  10% (100/1000)",
        "fetching django: remote: Compressing objects:   1% (1/100)",
    ]
    assert all(line.endswith("s\n") for line in lines)


def test_fetch_progress_on_a_real_repository_shows_both_phases(tmp_path: Path) -> None:
    """libgit2's local transport counts objects through the sideband, then they arrive."""
    source = Upstream(tmp_path / "big")
    for batch in range(3):
        files = {f"data/{batch}/{n}.txt": os.urandom(2048).hex() for n in range(400)}
        source.commit(files, f"Batch {batch}")
    pyproject = write_project(tmp_path / "project", url=source.url, paths=["data/"])
    config = load_upstream_config(pyproject, "upstreampkg")
    lines: list[str] = []
    progress = FetchProgress("big", write=lines.append, delay=0)
    fetch_upstream(config, tmp_path / "cache", progress=progress)
    text = "".join(lines)
    assert "\nfetching big: remote: Counting objects " in text
    assert re.search(r"\nfetching big: \d+/\d+ objects \(\d+%\), ", text)
    assert lines[-1].startswith("fetched big in ")


def test_build_tree_is_exactly_the_commit(upstream: Upstream, tmp_path: Path) -> None:
    first = upstream.initial
    upstream.commit({"upstreampkg/core.py": "CHANGED = True\n"}, "Change")
    cache = tmp_path / "cache.git"
    git(tmp_path, "clone", "-q", "--bare", upstream.url, str(cache))
    repo = pygit2.Repository(str(cache))
    commit = repo[first].peel(pygit2.Commit)
    path = write_build_tree(repo, commit, "upstreampkg", tmp_path / "out")
    assert path == tmp_path / "out" / f"upstreampkg-{first}"
    assert (path / "upstreampkg" / "core.py").read_text() == "def answer() -> int:\n    return 42\n"
    tracked = git(upstream.path, "ls-tree", "-r", "--name-only", first).split()
    on_disk = sorted(
        str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and ".git" not in p.parts
    )
    assert on_disk == sorted(tracked)
    # A repository of its own at that commit: `git log` there names the upstream commit,
    # `git status` is clean, and no object was copied (they are read from the cache).
    assert git(path, "rev-parse", "HEAD", "--show-toplevel").split() == [first, str(path)]
    assert git(path, "status", "--porcelain") == ""
    assert not list((path / ".git" / "objects").glob("??/*"))
    again = write_build_tree(repo, commit, "upstreampkg", tmp_path / "out")  # Replaced.
    assert git(again, "rev-parse", "HEAD") == first


def test_scm_version_follows_setuptools_scm(upstream: Upstream) -> None:
    repo = pygit2.Repository(str(upstream.path))

    def version_of(revision: str) -> str | None:
        return scm_version(repo, repo.revparse_single(revision).peel(pygit2.Commit))

    short = upstream.initial[:9]
    assert version_of("main") == f"0.1.dev1+g{short}"  # One commit, no tag.
    git(upstream.path, "tag", "v1.2.3")
    assert version_of("main") == "1.2.3"
    upstream.commit({"docs/index.txt": "1\n"}, "One")
    head = upstream.commit({"docs/index.txt": "2\n"}, "Two")
    assert version_of("main") == f"1.2.4.dev2+g{head[:9]}"
    # Each expected value below is what setuptools-scm 10.3 prints for the same history.
    git(upstream.path, "tag", "-a", "-m", "RC", "2.0.0rc1")
    head = upstream.commit({"docs/index.txt": "3\n"}, "Three")
    assert version_of("main") == f"2.0.0rc2.dev1+g{head[:9]}"
    git(upstream.path, "tag", "1.0.post1")
    head = upstream.commit({"docs/index.txt": "4\n"}, "Four")
    assert version_of("main") == f"1.0.post2.dev1+g{head[:9]}"
    git(upstream.path, "tag", "v3.1")
    head = upstream.commit({"docs/index.txt": "5\n"}, "Five")
    assert version_of("main") == f"3.2.dev1+g{head[:9]}"
    git(upstream.path, "tag", "4.0.dev0")
    head = upstream.commit({"docs/index.txt": "6\n"}, "Six")
    assert version_of("main") == f"4.0.dev1+g{head[:9]}"
    environment = install_environment("Zope.Interface", "1.0", Path("/tmp/build"))
    assert environment == {
        "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_ZOPE_INTERFACE": "1.0",
        "TMPDIR": "/tmp/build",
        "GIT_CEILING_DIRECTORIES": "/tmp",
    }
