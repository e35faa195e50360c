"""No run of the watcher, whatever state its fetch cache is in, changes another repository.

The project and its ``--cache-dir`` lie inside a git worktree (the host), as when CI keeps a
``.cache`` folder in the checkout. Before the cache was opened without searching parents, a
cache folder that was not a repository opened the host's ``.git``: its ``origin`` was rewritten
and its ``main`` force-updated to the upstream commit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from pytest_unchanged.__main__ import main
from pytest_unchanged.upstream.config import cache_path, load_upstream_config

from .helpers import NAME, PATHS, Upstream, git, write_project

HOST_ORIGIN = "https://example.invalid/host.git"

Damage = Callable[[Path, Path], None]


def missing(cache: Path, host: Path) -> None:
    pass


def empty_dir(cache: Path, host: Path) -> None:
    cache.mkdir()


def not_a_repository(cache: Path, host: Path) -> None:
    cache.mkdir()
    (cache / "notes.txt").write_text("left by something else\n")


def half_initialised(cache: Path, host: Path) -> None:
    """What an interrupted `git init --bare` can leave: folders, a config, no HEAD."""
    for folder in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (cache / folder).mkdir(parents=True)
    (cache / "config").write_text("[core]\n\tbare = true\n")


def head_only(cache: Path, host: Path) -> None:
    cache.mkdir()
    (cache / "HEAD").write_text("ref: refs/heads/main\n")


def gitdir_file_to_host(cache: Path, host: Path) -> None:
    """A `.git` file inside the cache folder pointing at the host's git directory."""
    cache.mkdir()
    (cache / ".git").write_text(f"gitdir: {host / '.git'}\n")


def non_bare_repository(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", str(cache))


def wrong_remote_url(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", "--bare", str(cache))
    git(cache, "remote", "add", "origin", "https://example.invalid/other.git")


def corrupt_head(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", "--bare", str(cache))
    (cache / "HEAD").write_text("garbage\n")


def commondir_to_host(cache: Path, host: Path) -> None:
    """A linked worktree's git-directory layout: `commondir` sends refs and config to the host."""
    for folder in ("objects", "refs"):
        (cache / folder).mkdir(parents=True)
    (cache / "HEAD").write_text("ref: refs/heads/main\n")
    (cache / "config").write_text("[core]\n\tbare = true\n")
    (cache / "commondir").write_text(f"{host / '.git'}\n")


def config_link_to_host(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", "--bare", str(cache))
    (cache / "config").unlink()
    (cache / "config").symlink_to(host / ".git" / "config")


def objects_link_to_host(cache: Path, host: Path) -> None:
    (cache / "refs").mkdir(parents=True)
    (cache / "HEAD").write_text("ref: refs/heads/main\n")
    (cache / "config").write_text("[core]\n\tbare = true\n")
    (cache / "objects").symlink_to(host / ".git" / "objects")


def refs_link_to_host(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", "--bare", str(cache))
    shutil.rmtree(cache / "refs")
    (cache / "refs").symlink_to(host / ".git" / "refs")


def alternates_to_host(cache: Path, host: Path) -> None:
    git(cache.parent, "init", "-q", "--bare", str(cache))
    (cache / "objects" / "info" / "alternates").write_text(f"{host / '.git' / 'objects'}\n")


DAMAGES: dict[str, Damage] = {
    "missing": missing,
    "empty dir": empty_dir,
    "not a repository": not_a_repository,
    "half-initialised": half_initialised,
    "HEAD only": head_only,
    "gitdir file to the host": gitdir_file_to_host,
    "non-bare repository": non_bare_repository,
    "wrong remote URL": wrong_remote_url,
    "corrupt HEAD": corrupt_head,
    "commondir to the host": commondir_to_host,
    "config link to the host": config_link_to_host,
    "objects link to the host": objects_link_to_host,
    "refs link to the host": refs_link_to_host,
    "alternates to the host": alternates_to_host,
}


def snapshot(host: Path) -> dict[str, str]:
    """Everything of the host repository a fetch could change."""
    dot_git = host / ".git"
    return {
        "refs": git(host, "for-each-ref", "--format=%(objectname) %(refname)"),
        "HEAD": (dot_git / "HEAD").read_text(),
        "config": (dot_git / "config").read_text(),
        "status": git(host, "status", "--porcelain"),
        "worktree": git(host, "rev-parse", "HEAD:"),
        "files": "\n".join(sorted(str(p.relative_to(dot_git)) for p in dot_git.rglob("*"))),
    }


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Upstream, Path, Path]:
    """An upstream; a host repository holding the project and its cache folder (ignored)."""
    monkeypatch.delenv("PYTEST_UNCHANGED_CACHE_DIR", raising=False)
    upstream = Upstream(tmp_path / "upstream")
    host = tmp_path / "host"
    host.mkdir()
    git(host, "init", "-q", "-b", "main")
    git(host, "remote", "add", "origin", HOST_ORIGIN)
    project = host / "project"
    write_project(project, url=upstream.url, paths=PATHS)
    (host / ".gitignore").write_text(".cache/\n.pytest-unchanged-upstream.json\n")
    git(host, "add", "-A")
    git(host, "commit", "-q", "-m", "Host")
    monkeypatch.chdir(project)
    return upstream, host, host / ".cache"


@pytest.mark.parametrize("damage", DAMAGES)
def test_no_run_changes_the_host_repository(
    host: tuple[Upstream, Path, Path], damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, host_dir, cache_dir = host
    config = load_upstream_config(host_dir / "project" / "pyproject.toml", NAME)
    cache = cache_path(config, cache_dir)
    cache.parent.mkdir(parents=True)
    DAMAGES[damage](cache, host_dir)
    before = snapshot(host_dir)
    options = ["--cache-dir", str(cache_dir)]
    assert main(["upstream", "check", NAME, *options]) == 1
    assert snapshot(host_dir) == before
    assert main(["upstream", "record", NAME, *options]) == 0
    upstream.commit({"upstreampkg/core.py": "A = 1\n"}, "Move")
    assert main(["upstream", "check", NAME, *options]) == 1
    assert main(["upstream", "record", NAME, *options, "--commit", upstream.initial]) == 0
    assert snapshot(host_dir) == before
    # The cache is now a bare repository of its own, fetching from the upstream.
    repo = pygit2.Repository(str(cache), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    assert repo.is_bare
    assert Path(repo.path).resolve() == cache.resolve()
    assert repo.remotes["origin"].url == upstream.url
    assert str(repo.references["refs/heads/main"].target) == upstream.rev_parse("main")
    leftovers = sorted(p.name for p in cache.parent.iterdir())
    assert leftovers == [cache.name, f"{cache.name}.lock"]
    capsys.readouterr()


def test_symlinked_cache_is_refused(
    host: tuple[Upstream, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, host_dir, cache_dir = host
    config = load_upstream_config(host_dir / "project" / "pyproject.toml", NAME)
    cache = cache_path(config, cache_dir)
    cache.parent.mkdir(parents=True)
    os.symlink(host_dir / ".git", cache)
    before = snapshot(host_dir)
    capsys.readouterr()
    assert main(["upstream", "check", NAME, "--cache-dir", str(cache_dir)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert snapshot(host_dir) == before
    assert cache.is_symlink()


def test_bad_url_leaves_no_cache_behind(
    host: tuple[Upstream, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, host_dir, cache_dir = host
    write_project(host_dir / "project", url="file:///nonexistent/upstream.git", paths=PATHS)
    assert main(["upstream", "check", NAME, "--cache-dir", str(cache_dir)]) == 2
    assert "Cannot reach the upstream" in capsys.readouterr().err
    write_project(host_dir / "project", url=upstream.url, paths=PATHS, ref="no-such")
    assert main(["upstream", "check", NAME, "--cache-dir", str(cache_dir)]) == 2
    assert [p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_cache_dir_linked_into_a_git_directory_is_refused(
    host: tuple[Upstream, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cache-dir .cache` where `.cache` links to the host's `.git`: nothing is made there."""
    _, host_dir, cache_dir = host
    os.symlink(host_dir / ".git", cache_dir)
    before = snapshot(host_dir)
    capsys.readouterr()
    for action in ("check", "record"):
        assert main(["upstream", action, NAME, "--cache-dir", str(cache_dir)]) == 2
        assert "lies inside the git directory" in capsys.readouterr().err
    assert snapshot(host_dir) == before
