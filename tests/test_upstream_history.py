"""The first-parent walk against ``git log``, shallow histories, fetch progress and archives."""

from __future__ import annotations

import random
import tarfile
from pathlib import Path

import pygit2
import pytest

from pytest_unchanged.upstream.config import load_upstream_config
from pytest_unchanged.upstream.fetch import (
    FetchProgress,
    fetch_upstream,
    install_environment,
    scm_version,
    write_commit_archive,
)
from pytest_unchanged.upstream.report import touching_commits

from .upstream_helpers import Upstream, git, write_project

WATCHED = ("upstreampkg/core.py", "upstreampkg/storage", "docs")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream(tmp_path / "upstream")


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
    lines: list[str] = []
    progress = FetchProgress("upstreampkg", write=lines.append, delay=0)
    fetched = fetch_upstream(config, tmp_path / "cache", progress=progress)
    assert str(fetched.tip.id) == upstream.initial
    assert lines[0].startswith("fetching upstreampkg: ")
    assert "objects (100%)" in lines[0] or len(lines) == 2
    assert lines[-1].startswith("fetched upstreampkg in ")
    quiet: list[str] = []
    fetch_upstream(config, tmp_path / "cache", progress=FetchProgress("x", write=quiet.append))
    assert quiet == []  # Small fetches (under two seconds) say nothing.


def test_archive_holds_exactly_the_commit_tree(upstream: Upstream, tmp_path: Path) -> None:
    first = upstream.initial
    upstream.commit({"upstreampkg/core.py": "CHANGED = True\n"}, "Change")
    repo = pygit2.Repository(str(upstream.path))
    commit = repo[first].peel(pygit2.Commit)
    path = write_commit_archive(repo, commit, "upstreampkg", tmp_path / "out")
    assert path.name == f"upstreampkg-{first}.tar"
    with tarfile.open(path) as archive:
        names = sorted(m.name for m in archive.getmembers() if m.isfile())
        core = archive.extractfile(f"upstreampkg-{first[:12]}/upstreampkg/core.py")
        assert core is not None
        assert b"return 42" in core.read()
    tracked = git(upstream.path, "ls-tree", "-r", "--name-only", first).split()
    assert names == sorted(f"upstreampkg-{first[:12]}/{name}" for name in tracked)


def test_scm_version_follows_setuptools_scm(upstream: Upstream) -> None:
    repo = pygit2.Repository(str(upstream.path))

    def version_of(revision: str) -> str:
        return scm_version(repo, repo.revparse_single(revision).peel(pygit2.Commit))

    short = upstream.initial[:9]
    assert version_of("main") == f"0.1.dev0+g{short}"
    git(upstream.path, "tag", "v1.2.3")
    assert version_of("main") == "1.2.3"
    upstream.commit({"docs/index.txt": "1\n"}, "One")
    head = upstream.commit({"docs/index.txt": "2\n"}, "Two")
    assert version_of("main") == f"1.2.4.dev2+g{head[:9]}"
    git(upstream.path, "tag", "-a", "-m", "RC", "2.0.0rc1")
    head = upstream.commit({"docs/index.txt": "3\n"}, "Three")
    assert version_of("main") == f"2.0.0.dev1+g{head[:9]}"
    assert install_environment("Zope.Interface", "1.0") == {
        "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_ZOPE_INTERFACE": "1.0"
    }
