"""Checkpoints on real git repositories, checked against the git command line.

Expected OIDs come from git itself: ``git hash-object`` for files and ``git add -A`` +
``git write-tree`` on a scratch index and a scratch object directory for trees (so neither the
real index nor the repository's object store is touched).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

from pytest_unchanged import (
    NotCheckpointed,
    changed,
    checkpoint,
    same,
)
from pytest_unchanged.checkpoints import CheckpointError, compare, default_state_file
from pytest_unchanged.worktree import ABSENT

from .conftest import commit, git


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A repository at ``path`` with ``files`` committed, ignoring ``*.log``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    write(path / ".gitignore", "*.log\n")
    for name, text in files.items():
        write(path / name, text)
    commit(path, "initial")
    return path


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def staged_oid(repo: Path, scratch: Path, path: str) -> str:
    """The OID of ``path`` in the tree ``git add -A`` + ``git write-tree`` would write."""
    (scratch / "objects").mkdir(parents=True, exist_ok=True)
    index = scratch / "index"
    index.unlink(missing_ok=True)
    shutil.copyfile(repo / ".git" / "index", index)
    env = {
        **os.environ,
        "GIT_INDEX_FILE": str(index),
        "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / ".git" / "objects"),
    }
    git_env(repo, env, "add", "-A")
    return git_env(repo, env, "rev-parse", git_env(repo, env, "write-tree") + ":" + path)


def git_env(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run git in ``cwd`` with the environment ``env``; return its stripped standard output."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def objects_and_index(repo: Path) -> tuple[list[str], float]:
    """Every file under ``.git/objects`` and the index's mtime: what a write would change."""
    objects = sorted(str(p) for p in (repo / ".git" / "objects").rglob("*") if p.is_file())
    return objects, (repo / ".git" / "index").stat().st_mtime


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with ``requirements/base.txt`` and ``app.py``, the current directory."""
    path = make_repo(tmp_path / "repo", {"requirements/base.txt": "pytest\n", "app.py": "x = 1\n"})
    monkeypatch.chdir(path)
    return path


def test_edit_is_a_change_and_revert_to_same_content_is_not(repo: Path) -> None:
    checkpoint("requirements/base.txt")
    assert same("requirements/base.txt")
    write(repo / "requirements/base.txt", "pytest\nrequests\n")
    assert changed("requirements/base.txt")
    write(repo / "requirements/base.txt", "pytest\n")  # same bytes again: a new mtime only
    assert same("requirements/base.txt")
    checkpoint("requirements")
    write(repo / "requirements/base.txt", "pytest>=8\n")
    assert changed("requirements")
    write(repo / "requirements/base.txt", "pytest\n")
    assert same("requirements", "requirements/base.txt")


def test_oids_equal_git_hash_object_and_write_tree(repo: Path, tmp_path: Path) -> None:
    write(repo / "requirements/dev.txt", "ruff\n")  # untracked: counts
    write(repo / "requirements/debug.log", "noise\n")  # ignored: does not
    write(repo / "app.py", "x = 2\n")  # modified
    before = objects_and_index(repo)
    recorded = checkpoint("requirements", "app.py", "requirements/dev.txt")
    top = str(repo.resolve())
    assert recorded == {
        f"{top}/requirements": recorded[f"{top}/requirements"],
        f"{top}/app.py": recorded[f"{top}/app.py"],
        f"{top}/requirements/dev.txt": recorded[f"{top}/requirements/dev.txt"],
    }
    assert recorded[f"{top}/app.py"].oid == git(repo, "hash-object", "app.py")
    assert recorded[f"{top}/requirements/dev.txt"].oid == git(
        repo, "hash-object", "requirements/dev.txt"
    )
    tree = recorded[f"{top}/requirements"]
    assert (tree.mode, tree.oid) == (
        "40000",
        staged_oid(repo, tmp_path / "scratch", "requirements"),
    )
    assert tree.oid != git(repo, "rev-parse", "HEAD:requirements")  # dev.txt made it dirty
    # The state file holds the same values, in git's "<mode> <OID>" form.
    document = json.loads(default_state_file(repo).read_text())
    paths = document["checkpoints"]["default"][f"{top}/requirements"]["paths"]
    assert paths == {f"{top}/requirements": f"40000 {tree.oid}"}
    # Nothing was written into the repository: no object, no index update.
    assert same("requirements", "app.py")
    assert objects_and_index(repo) == before


def test_clean_directory_is_its_tree_in_head(repo: Path) -> None:
    recorded = checkpoint("requirements")
    [entry] = recorded.values()
    assert entry.oid == git(repo, "rev-parse", "HEAD:requirements")


def test_git_pull_of_a_commit_touching_the_path_is_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = make_repo(tmp_path / "origin", {"requirements/base.txt": "pytest\n", "app.py": "1\n"})
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(remote))
    deploy = tmp_path / "deploy"
    git(tmp_path, "clone", "-q", str(remote), str(deploy))
    developer = tmp_path / "developer"
    git(tmp_path, "clone", "-q", str(remote), str(developer))
    monkeypatch.chdir(deploy)

    checkpoint("requirements", "app.py", name="before-pull")
    write(developer / "app.py", "2\n")  # a commit that does not touch requirements/
    commit(developer, "app only")
    git(developer, "push", "-q", "origin", "HEAD")
    git(deploy, "pull", "-q", "--ff-only")
    assert same("requirements", name="before-pull")
    assert changed("app.py", name="before-pull")

    write(developer / "requirements/base.txt", "pytest\nrequests\n")
    commit(developer, "requirements")
    git(developer, "push", "-q", "origin", "HEAD")
    git(deploy, "pull", "-q", "--ff-only")
    assert changed("requirements", name="before-pull")
    assert git(deploy, "status", "--porcelain") == ""  # clean after the pull: HEAD moved


def test_untracked_file_in_checkpointed_directory_is_a_change(repo: Path) -> None:
    checkpoint("requirements")
    write(repo / "requirements/extra.txt", "numpy\n")
    assert changed("requirements")
    (repo / "requirements/extra.txt").unlink()
    assert same("requirements")


def test_ignored_file_in_checkpointed_directory_is_not_a_change(repo: Path) -> None:
    checkpoint("requirements", ".", "requirements/*")
    write(repo / "requirements/pip.log", "installed\n")
    write(repo / "build.log", "built\n")
    assert same("requirements", ".")
    assert same("requirements/*")  # a glob leaves ignored matches out too
    write(repo / "requirements/more.txt", "x\n")
    assert changed(".")


@pytest.mark.parametrize("setup", ["attributes", "autocrlf"])
def test_crlf_filter(repo: Path, tmp_path: Path, setup: str) -> None:
    if setup == "attributes":
        write(repo / ".gitattributes", "*.txt text eol=crlf\n")
        commit(repo, "attributes")
    else:
        git(repo, "config", "core.autocrlf", "true")
    checkpoint("requirements/base.txt", "requirements")
    write(repo / "requirements/base.txt", b"pytest\r\n")  # what a Windows checkout holds
    # Git stores the normalized LF blob, but a reader of the file sees the CRs: a change, and
    # the OID is the raw bytes' (git's own OID is kept only while the disk matches it).
    assert changed("requirements/base.txt", "requirements")
    [change] = compare("requirements/base.txt")
    assert change.new.oid == git(repo, "hash-object", "--no-filters", "requirements/base.txt")
    assert change.new.oid != git(repo, "hash-object", "requirements/base.txt")
    assert staged_oid(repo, tmp_path / "scratch", "requirements/base.txt") == change.old.oid
    checkpoint("requirements/base.txt", "requirements")
    assert same("requirements/base.txt", "requirements")
    write(repo / "requirements/base.txt", b"pytest\r\nrequests\r\n")
    assert changed("requirements/base.txt", "requirements")


def test_symlink_is_its_target_path_and_follows_what_it_points_at(
    repo: Path, tmp_path: Path
) -> None:
    write(repo / "requirements/prod.txt", "gunicorn\n")
    write(repo / "requirements/staging.txt", "gunicorn\n")
    (repo / "requirements.txt").symlink_to("requirements/prod.txt")
    commit(repo, "link")
    recorded = checkpoint("requirements.txt")
    top = str(repo.resolve())
    link, target = recorded[f"{top}/requirements.txt"], recorded[f"{top}/requirements/prod.txt"]
    assert link.mode == "120000"
    assert link.oid == git(repo, "rev-parse", "HEAD:requirements.txt")
    assert link.oid == staged_oid(repo, tmp_path / "scratch", "requirements.txt")
    assert target.oid == git(repo, "hash-object", "requirements/prod.txt")

    write(repo / "requirements/prod.txt", "gunicorn\nsentry\n")  # the file it points at
    assert changed("requirements.txt")
    write(repo / "requirements/prod.txt", "gunicorn\n")
    assert same("requirements.txt")
    (repo / "requirements.txt").unlink()  # same content, another target
    (repo / "requirements.txt").symlink_to("requirements/staging.txt")
    assert changed("requirements.txt")


def test_symlink_inside_a_checkpointed_directory_counts_as_git_stores_it(repo: Path) -> None:
    (repo / "requirements/current").symlink_to("base.txt")
    checkpoint("requirements")
    (repo / "requirements/current").unlink()
    (repo / "requirements/current").symlink_to("other.txt")
    assert changed("requirements")


def test_executable_bit_is_a_change(repo: Path) -> None:
    checkpoint("app.py")
    (repo / "app.py").chmod(0o755)
    [change] = compare("app.py")
    assert (change.old.mode, change.new.mode) == ("100644", "100755")
    assert change.old.oid == change.new.oid
    assert changed("app.py")


def test_missing_path_is_absent_and_creating_it_is_a_change(repo: Path) -> None:
    recorded = checkpoint("migrations/0002.sql")
    assert list(recorded.values()) == [ABSENT]
    assert same("migrations/0002.sql")
    write(repo / "migrations/0002.sql", "ALTER TABLE t;\n")
    assert changed("migrations/0002.sql")


def test_glob_new_match_edited_match_and_vanished_match(repo: Path) -> None:
    write(repo / "requirements/dev.txt", "ruff\n")
    checkpoint("requirements/*.txt")
    assert same("requirements/*.txt")
    write(repo / "requirements/docs.txt", "sphinx\n")
    assert changed("requirements/*.txt")
    (repo / "requirements/docs.txt").unlink()
    write(repo / "requirements/dev.txt", "ruff\nmypy\n")
    assert changed("requirements/*.txt")
    write(repo / "requirements/dev.txt", "ruff\n")
    assert same("requirements/*.txt")
    (repo / "requirements/dev.txt").unlink()
    assert changed("requirements/*.txt")


def test_named_checkpoints_are_kept_apart(repo: Path) -> None:
    checkpoint("app.py", name="before-pull")
    write(repo / "app.py", "x = 2\n")
    checkpoint("app.py", name="before-migrate")
    assert changed("app.py", name="before-pull")
    assert same("app.py", name="before-migrate")
    with pytest.raises(NotCheckpointed, match="'other'"):
        same("app.py", name="other")


def test_not_checkpointed_names_the_path_and_the_file(repo: Path) -> None:
    with pytest.raises(NotCheckpointed) as raised:
        changed("app.py")
    assert "app.py was never checkpointed under the name 'default'" in str(raised.value)
    assert str(default_state_file(repo)) in str(raised.value)
    checkpoint("app.py")
    with pytest.raises(NotCheckpointed, match=r"^requirements was never"):
        changed("app.py", "requirements")
    assert isinstance(raised.value, LookupError)


def test_outside_git_plain_files_and_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    assert pygit2.discover_repository(str(tmp_path)) is None
    write(plain / "site/index.html", "<h1>hi</h1>\r\n")
    write(plain / "site/.gitignore", "*.html\n")  # not a repository: nothing is ignored
    write(plain / "site/assets/app.js", "go()\n")
    (plain / "site/run.sh").write_text("#!/bin/sh\n")
    (plain / "site/run.sh").chmod(0o755)
    (plain / "site/latest").symlink_to("index.html")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(plain)

    recorded = checkpoint("site", "site/index.html")
    site, index = recorded[f"{plain}/site"], recorded[f"{plain}/site/index.html"]
    assert index.oid == git(plain, "hash-object", "--no-filters", "site/index.html")
    # The tree of every file: `git add -A -f` into a repository kept outside the directory.
    env = {**os.environ, "GIT_DIR": str(tmp_path / "scratch.git"), "GIT_WORK_TREE": str(plain)}
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "scratch.git")], check=True)
    git_env(plain, env, "add", "-A", "-f", "site")
    expected = git_env(plain, env, "rev-parse", git_env(plain, env, "write-tree") + ":site")
    assert (site.mode, site.oid) == ("40000", expected)
    assert (tmp_path / "state/pytest-unchanged/checkpoints.json").exists()

    # A nested repository is its HEAD commit, as `git add` records an embedded repository.
    vendored = make_repo(plain / "site/vendor", {"lib.js": "lib()\n"})
    git_env(plain, env, "add", "-A", "-f", "site")
    expected = git_env(plain, env, "rev-parse", git_env(plain, env, "write-tree") + ":site")
    assert git_env(plain, env, "rev-parse", git_env(plain, env, "write-tree") + ":site/vendor") == (
        git(vendored, "rev-parse", "HEAD")
    )
    [change] = compare("site")
    assert (change.old.oid, change.new.oid) == (site.oid, expected)
    checkpoint("site")

    write(plain / "site/index.html", "<h1>hi</h1>\n")  # no filters: CRLF to LF is a change
    assert changed("site/index.html")
    assert changed("site")
    write(plain / "site/index.html", "<h1>hi</h1>\r\n")
    assert same("site", "site/index.html")
    write(plain / "site/assets/new.js", "x\n")
    assert changed("site")


def test_default_state_file_is_in_the_git_directory_of_a_linked_worktree(
    repo: Path, tmp_path: Path
) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    assert (linked / ".git").is_file()
    git_dir = Path(git(linked, "rev-parse", "--absolute-git-dir"))
    assert default_state_file(linked / "app.py") == git_dir / "pytest-unchanged/checkpoints.json"
    assert default_state_file(repo / "app.py") == repo / ".git/pytest-unchanged/checkpoints.json"
    checkpoint(linked / "app.py")
    write(linked / "app.py", "x = 3\n")
    assert changed(linked / "app.py")
    assert (git_dir / "pytest-unchanged/checkpoints.json").exists()
    assert not (repo / ".git/pytest-unchanged/checkpoints.json").exists()


def test_relative_and_absolute_spellings_are_the_same_checkpoint(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint("requirements/", "requirements/*.txt")
    monkeypatch.chdir(repo / "requirements")
    assert same("../requirements", str(repo / "requirements"), ".", "*.txt")
    alias = repo.parent / "alias"
    alias.symlink_to(repo)  # a directory reached through a symlink: the same checkpoint
    assert same(alias / "requirements", f"{alias}/requirements/*.txt")
    write(repo / "requirements/new.txt", "x\n")
    assert changed(alias / "requirements")
    assert changed(f"{alias}/requirements/*.txt")


def test_not_a_path(repo: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a path"):
        checkpoint("")


def test_a_glob_outside_any_repository_matches_hidden_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a repository a glob follows the same rule as inside (:mod:`.pathglob`): hidden
    names match, as :meth:`pathlib.Path.glob` matches them."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    data = tmp_path / "plain" / "data"
    data.mkdir(parents=True)
    (data / ".local.json").write_text("{}")
    monkeypatch.chdir(tmp_path / "plain")
    checkpoint("data/**/*.json")
    (data / ".local.json").write_text('{"a": 1}')
    assert changed("data/**/*.json")
