"""OIDs from :mod:`pytest_unchanged.worktree` checked against the git command line.

Every expectation comes from git itself: ``git hash-object --no-filters`` for files (the raw
bytes on disk), and ``git add -A`` + ``git write-tree`` on a scratch index and a scratch object
directory (so neither the real index nor the repository's object store is touched) for trees,
modes, symlinks and submodules; git stores no empty directory, so the empty directories on disk
are added to git's trees as the empty tree (see :func:`with_empty_dirs`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_unchanged.worktree import ABSENT, Entry, NotARepositoryError, Worktree, hash_tree

IDENTITY = ("-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=m")


# The user's git configuration is kept out by the autouse fixture in conftest.py.


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> str:
    """Run git in ``cwd`` (with a fixed identity) and return its standard output, stripped."""
    result = subprocess.run(
        ["git", *IDENTITY, *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        input=stdin,
        env=None if env is None else {**os.environ, **env},
    )
    return result.stdout.strip()


def write(path: Path, text: str | bytes = "x\n") -> None:
    """Write ``text`` at ``path``, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def write_all(repo: Path, files: dict[str, str] | dict[str, bytes]) -> None:
    for name, text in files.items():
        write(repo / name, text)


def blob(repo: Path, text: str) -> str:
    """The blob OID of ``text``, unfiltered."""
    return git(repo, "hash-object", "--no-filters", "--stdin", stdin=text)


def commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "c")


def init(path: Path, files: dict[str, str] | None = None) -> Path:
    """Create a repository at ``path``; commit ``files`` when given."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    write_all(path, files or {})
    if files is not None:
        commit(path)
    return path


def scratch_tree(repo: Path, scratch: Path, *add: str) -> tuple[str, dict[str, str]]:
    """``git add *add`` + ``git write-tree`` on a copy of the index, objects written to ``scratch``.

    Return the tree OID and the environment to read it with.
    """
    (scratch / "objects").mkdir(parents=True, exist_ok=True)
    index = scratch / "index"
    index.unlink(missing_ok=True)
    if (repo / ".git" / "index").exists():
        shutil.copyfile(repo / ".git" / "index", index)
    env = {
        "GIT_INDEX_FILE": str(index),
        "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / ".git" / "objects"),
    }
    git(repo, "add", *add, env=env)
    return git(repo, "write-tree", env=env), env


def staged_entries(repo: Path, scratch: Path) -> dict[str, Entry]:
    """Every path of the tree ``git add -A && git write-tree`` gives, without touching ``repo``."""
    tree, env = scratch_tree(repo, scratch, "-A")
    entries = {"": Entry("40000", tree)}
    listing = git(repo, "ls-tree", "-r", "-t", "-z", tree, env=env)
    for line in filter(None, listing.split("\0")):
        meta, path = line.split("\t", 1)
        mode, _, oid = meta.split()
        entries[path] = Entry(mode.lstrip("0"), oid)
    return entries


def with_empty_dirs(repo: Path, entries: dict[str, Entry]) -> dict[str, Entry]:
    """``entries`` with each empty, not ignored directory on disk as the empty tree, and the
    trees above them hashed again."""
    empty = []
    for directory, dirs, files in os.walk(repo):
        rel = Path(directory).relative_to(repo).as_posix()
        dirs[:] = [d for d in dirs if d != ".git" and not (Path(directory) / d / ".git").exists()]
        if rel != "." and not dirs and not files:
            ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=repo).returncode == 0
            if not ignored:
                empty.append(rel)
    if not empty:
        return entries
    result = dict(entries)
    parents: set[str] = set()
    for rel in empty:
        result[rel] = Entry("40000", hash_tree({}))
        while rel:
            rel = rel.rpartition("/")[0]
            parents.add(rel)
    for parent in sorted(parents, key=lambda p: -p.count("/") if p else 1):
        prefix = f"{parent}/" if parent else ""
        children = {
            p[len(prefix) :]: e
            for p, e in result.items()
            if p and p.startswith(prefix) and "/" not in p[len(prefix) :]
        }
        result[parent] = Entry("40000", hash_tree(children))
    return result


def head_paths(repo: Path) -> set[str]:
    """Every path in ``HEAD``'s tree (none on an unborn branch)."""
    try:
        listing = git(repo, "ls-tree", "-r", "-t", "--name-only", "-z", "HEAD")
    except subprocess.CalledProcessError:
        return set()
    return set(filter(None, listing.split("\0")))


def assert_matches_git(
    repo: Path, scratch: Path, extra: tuple[str, ...] = (), unhashed: tuple[str, ...] = ()
) -> Worktree:
    """Check every path in ``HEAD``, in the staged tree and in ``extra`` against git.

    Files (except ``unhashed``) are also checked against ``git hash-object``.
    """
    expected = with_empty_dirs(repo, staged_entries(repo, scratch))
    worktree = Worktree.discover(repo)
    paths = sorted(set(expected) | head_paths(repo) | set(extra))
    actual = {path: worktree.entry(path) for path in paths}
    assert {p: (e.mode, e.oid) for p, e in actual.items()} == {
        p: (expected.get(p, ABSENT).mode, expected.get(p, ABSENT).oid) for p in paths
    }
    files = [p for p in paths if expected.get(p, ABSENT).mode[:3] == "100" and p not in unhashed]
    if files:
        hashed = git(repo, "hash-object", "--no-filters", "--", *files).split("\n")
        assert {p: actual[p].oid for p in files} == dict(zip(files, hashed, strict=True))
    return worktree


BASE = {
    ".gitignore": "*.log\n/build/\n",
    "a.txt": "a\n",
    "b.txt": "b\n",
    "d/c.txt": "c\n",
    "d/e/f.txt": "f\n",
    "d/e/g/h.txt": "h\n",
    "gone/x.txt": "x\n",
    "gone/y/z.txt": "z\n",
}
EXTRA = ("new", "new/x", "empty", "logs", "a.txt/inner.txt", "nope", "d/nope/deeper")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with :data:`BASE` committed, at ``tmp_path / "repo"``."""
    return init(tmp_path / "repo", BASE)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A directory outside the repository for the scratch index and objects."""
    return tmp_path / "scratch"


Step = tuple[str, ...]


def apply(repo: Path, steps: tuple[Step, ...]) -> None:
    """Apply ``steps``: ("write", path, text), ("rm", path), ("add", path), ("ln", path, to)."""
    for action, name, *rest in steps:
        path = repo / name
        if action == "write":
            write(path, rest[0].encode())
        elif action == "rm":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        elif action == "add":
            git(repo, "add", "--", name)  # the test's own change to the real index
        elif action == "ln":
            path.symlink_to(rest[0])
        elif action == "mkdir":
            path.mkdir(parents=True)


SCENARIOS: dict[str, tuple[Step, ...]] = {
    "clean": (),
    "modified": (("write", "a.txt", "A\n"), ("write", "d/e/f.txt", "F\n")),
    "deleted": (("rm", "b.txt"), ("rm", "d/e/g/h.txt")),
    "staged": (("write", "d/c.txt", "staged\n"), ("add", "d/c.txt")),
    "staged-new": (("write", "d/e/n.txt", "new\n"), ("add", "d/e/n.txt")),
    "staged-then-reverted": (("write", "a.txt", "A"), ("add", "a.txt"), ("write", "a.txt", "a\n")),
    "untracked-file": (("write", "d/e/new.txt", "new\n"),),
    "untracked-dir": tuple(("write", f"new/{n}", n) for n in ["x/y", "x.txt", "x-y", "x0", "ü ñ"]),
    "untracked-empty-dir": (("mkdir", "empty/sub"),),
    "dir-files-deleted": (("rm", "gone/x.txt"), ("rm", "gone/y/z.txt")),
    "dir-removed": (("rm", "gone"),),
    "everything-removed": tuple(("rm", n) for n in [".gitignore", "a.txt", "b.txt", "d", "gone"]),
    "file-to-dir": (("rm", "a.txt"), ("write", "a.txt/inner.txt", "i\n")),
    "dir-to-file": (("rm", "d/e"), ("write", "d/e", "now a file\n")),
    "dir-to-symlink": (("rm", "gone"), ("ln", "gone", "d")),
    "moved": (("rm", "a.txt"), ("write", "d/e/g/a.txt", "a\n")),
    "ignored": tuple(("write", n, "") for n in ["d/x.log", "logs/a.log", "new/x/y.log", "new/z"]),
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_entries_match_git(repo: Path, scratch: Path, steps: tuple[Step, ...]) -> None:
    apply(repo, steps)
    assert_matches_git(repo, scratch, EXTRA)


@pytest.mark.parametrize("path", ["", *BASE, "d", "d/e", "d/e/g", "gone/y"])
def test_clean_entry_is_heads(repo: Path, path: str) -> None:
    worktree = Worktree.discover(repo)
    assert worktree.entry(path).oid == git(repo, "rev-parse", f"HEAD:{path}")
    assert worktree.dirty_paths == frozenset()


def test_ignored_paths_named_explicitly_are_hashed_as_git_add_f(repo: Path, scratch: Path) -> None:
    write_all(repo, {"d/x.log": "log\n", "build/out.txt": "out\n", "build/sub/deep.log": "deep\n"})
    worktree = assert_matches_git(repo, scratch)  # the trees above them leave them out
    assert worktree.entry("d/x.log").oid == git(repo, "hash-object", "--no-filters", "d/x.log")
    tree, env = scratch_tree(repo, scratch, "-f", "build")
    assert worktree.entry("build").oid == git(repo, "rev-parse", f"{tree}:build", env=env)


@pytest.mark.parametrize("setup", ["attributes", "autocrlf", "info-attributes"])
def test_content_filters_do_not_hide_raw_bytes(tmp_path: Path, setup: str) -> None:
    # git normalises CRLF to the LF blob it stores; a reader of the disk sees the CRs.
    repo = init(tmp_path / "repo", {"crlf.txt": "committed\r\nwith CRLF\r\n"})
    if setup == "attributes":
        write(repo / "d/.gitattributes", "*.txt text eol=lf\n")
    elif setup == "info-attributes":
        write(repo / ".git/info/attributes", "* text=auto\n")
    else:
        git(repo, "config", "core.autocrlf", "true")
    write_all(repo, {"d/same.txt": "1\n2\n", "d/changed.txt": "1\n2\n", "d/kept.bin": "\0b\r\n"})
    write(repo / "other.txt", "o\n")
    commit(repo)
    head = git(repo, "rev-parse", "HEAD^{tree}")
    assert Worktree.discover(repo).entry("").oid == head  # the disk is what was committed
    write_all(repo, {"d/same.txt": "1\r\n2\r\n", "d/changed.txt": "1\r\n3\r\n"})
    write_all(repo, {"d/new.txt": "n\r\n", "d/kept.bin": "\0b\r\nmore\r\n"})
    worktree = Worktree.discover(repo)
    for path in ["crlf.txt", "other.txt", "d/same.txt", "d/changed.txt", "d/new.txt", "d/kept.bin"]:
        assert worktree.entry(path).oid == git(repo, "hash-object", "--no-filters", path), path
    assert worktree.entry("d/same.txt").oid != git(repo, "rev-parse", "HEAD:d/same.txt")
    assert worktree.entry("other.txt").oid == git(repo, "rev-parse", "HEAD:other.txt")
    assert worktree.entry("").oid != head
    write_all(repo, {"d/same.txt": "1\n2\n", "d/changed.txt": "1\n2\n", "d/kept.bin": "\0b\r\n"})
    (repo / "d/new.txt").unlink()
    assert Worktree.discover(repo).entry("").oid == head  # back as committed: git's OIDs again


def test_executable_bit_and_symlinks(repo: Path, scratch: Path) -> None:
    (repo / "link").symlink_to("d/c.txt")
    (repo / "d" / "dirlink").symlink_to("e")
    write(repo / "run.sh", "#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    commit(repo)
    worktree = assert_matches_git(repo, scratch, ("d/dirlink/f.txt",))
    assert worktree.entry("run.sh").mode == "100755"
    assert worktree.entry("link") == Entry("120000", blob(repo, "d/c.txt"))
    assert worktree.entry("d/dirlink/f.txt") is ABSENT
    (repo / "a.txt").chmod(0o755)
    (repo / "run.sh").chmod(0o644)
    (repo / "link").unlink()
    (repo / "link").symlink_to("a.txt")
    (repo / "b.txt").unlink()
    (repo / "b.txt").symlink_to("nowhere")
    (repo / "new-link").symlink_to("d")
    worktree = assert_matches_git(repo, scratch, ("new-link/c.txt",))
    assert (worktree.entry("a.txt").mode, worktree.entry("run.sh").mode) == ("100755", "100644")
    assert worktree.entry("b.txt") == Entry("120000", blob(repo, "nowhere"))


@pytest.fixture
def superproject(tmp_path: Path) -> Path:
    """A repository with a submodule ``sub`` (cloned from ``subsrc``), all committed."""
    init(tmp_path / "subsrc", {"s.txt": "s\n"})
    repo = init(tmp_path / "repo", {"a.txt": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "../subsrc", "sub")
    commit(repo)
    return repo


def test_submodule_clean(superproject: Path, scratch: Path) -> None:
    exclude = git(
        superproject / "sub", "rev-parse", "--path-format=absolute", "--git-path", "info/exclude"
    )
    write(Path(exclude), "*.tmp\n")
    write(superproject / "sub/x.tmp")
    worktree = assert_matches_git(superproject, scratch)
    assert worktree.entry("sub") == Entry("160000", git(superproject, "rev-parse", "HEAD:sub"))
    assert not worktree.entry("").dirty
    # A path inside the submodule is an entry of the submodule's own worktree.
    write(superproject / "sub/new/n.txt", "n\n")
    inner = assert_matches_git(superproject / "sub", scratch / "inner", ("new/n.txt",))
    worktree = Worktree.discover(superproject)
    for path in ["s.txt", "new", "new/n.txt", "missing"]:
        assert worktree.entry(f"sub/{path}") == inner.entry(path)
    assert worktree.glob("sub/**") == ["sub", "sub/new", "sub/new/n.txt", "sub/s.txt"]  # not x.tmp


def test_submodule_not_checked_out_is_its_empty_directory(
    superproject: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(superproject), str(clone))
    assert not any((clone / "sub").iterdir())
    worktree = Worktree.discover(clone)
    assert worktree.entry("sub") == Entry("40000", hash_tree({}))
    assert worktree.entry("").oid != git(clone, "rev-parse", "HEAD^{tree}")
    assert worktree.entry("sub/s.txt") is ABSENT
    git(clone, "submodule", "update", "--init", "-q")
    worktree = Worktree.discover(clone)
    assert worktree.entry("sub") == Entry("160000", git(clone, "rev-parse", "HEAD:sub"))
    assert worktree.entry("") == Entry("40000", git(clone, "rev-parse", "HEAD^{tree}"))


def test_submodule_removed(superproject: Path, scratch: Path) -> None:
    shutil.rmtree(superproject / "sub")
    assert Worktree.discover(superproject).entry("sub") is ABSENT
    assert_matches_git(superproject, scratch)


def test_submodule_new_commit_checked_out(superproject: Path, scratch: Path) -> None:
    before = Worktree.discover(superproject).entry("sub")
    sub = superproject / "sub"
    write(sub / "s.txt", "changed\n")
    commit(sub)
    worktree = assert_matches_git(superproject, scratch)
    assert worktree.entry("sub") == Entry("160000", git(sub, "rev-parse", "HEAD"))
    assert worktree.entry("sub").oid != before.oid


@pytest.mark.parametrize("change", ["modified", "untracked", "staged"])
def test_submodule_uncommitted_changes_are_dirty(superproject: Path, change: str) -> None:
    sub = superproject / "sub"
    commit_oid = git(superproject, "rev-parse", "HEAD:sub")
    write(sub / ("new.txt" if change == "untracked" else "s.txt"), "changed\n")
    if change == "staged":
        git(sub, "add", "s.txt")
    worktree = Worktree.discover(superproject)
    assert worktree.entry("sub") == Entry("160000", commit_oid, dirty=True)
    assert worktree.entry("sub").describe() == commit_oid + "+dirty"
    assert worktree.entry("").dirty
    assert worktree.entry("").oid == git(superproject, "rev-parse", "HEAD^{tree}")


def test_unborn_head(tmp_path: Path, scratch: Path) -> None:
    repo = init(tmp_path / "repo")
    worktree = assert_matches_git(repo, scratch, ("a.txt",))
    assert worktree.head_commit is None
    assert worktree.entry("") == Entry("40000", hash_tree({}))
    write_all(repo, {".gitignore": "*.log\n", "a.txt": "a", "d/e/f.txt": "f", "d/x.log": ""})
    write(repo / "s/staged.txt", "staged\n")
    git(repo, "add", "s/staged.txt")
    worktree = assert_matches_git(repo, scratch, ("d", "s"))
    assert worktree.head_commit is None
    assert worktree.dirty_paths >= {"a.txt", "d/e/f.txt", "s/staged.txt"}


def test_memo_does_not_leak_across_instances(repo: Path) -> None:
    first = Worktree.discover(repo)
    old = (first.entry("a.txt"), first.entry("d"), first.entry(""))
    write_all(repo, {"d/e/f.txt": "later\n", "a.txt": "later\n"})
    assert (first.entry("a.txt"), first.entry("d"), first.entry("")) == old  # one snapshot
    second = Worktree.discover(repo / "d")
    new = (second.entry("a.txt"), second.entry("d"), second.entry(""))
    assert all(n.oid != o.oid for n, o in zip(new, old, strict=True))
    assert second.entry("a.txt").oid == git(repo, "hash-object", "a.txt")


def test_discover_outside_a_repository_raises(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError):
        Worktree.discover(tmp_path)
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(NotARepositoryError):
        Worktree.discover(tmp_path / "bare.git")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # Hidden names match as pathlib matches them (a test reads them with Path.glob).
        ("**/*.py", [".hidden.py", "a.py", "d/.hid/x.py", "d/b.py", "d/e/c.py"]),
        ("*.py", [".hidden.py", "a.py"]),
        (".*.py", [".hidden.py"]),
        ("d/.*/*.py", ["d/.hid/x.py"]),
        ("d/**", ["d", "d/.hid", "d/.hid/x.py", "d/b.py", "d/e", "d/e/c.py", "d/tracked.pyc"]),
        ("d/*/", ["d/.hid", "d/e"]),
        ("**/.git*", [".gitignore"]),
        ("**/*.pyc", ["d/tracked.pyc"]),
        ("nothing*", []),
        ("l*", ["lnk"]),
    ],
)
def test_glob(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    repo = init(tmp_path / "repo", {".gitignore": "*.pyc\nbuild/\n", "a.py": "", "d/b.py": ""})
    write(repo / "d/tracked.pyc")
    git(repo, "add", "-f", "d/tracked.pyc")
    git(repo, "commit", "-q", "-m", "forced")
    write_all(repo, dict.fromkeys(["d/e/c.py", ".hidden.py", "d/.hid/x.py", "build/z.py"], ""))
    write_all(repo, dict.fromkeys(["d/x.pyc", "build/y.pyc"], ""))
    (repo / "lnk").symlink_to("d")
    assert Worktree.discover(repo).glob(pattern) == expected


def git_dir_state(repo: Path) -> tuple[str, bytes, dict[str, tuple[int, int]]]:
    """``git count-objects -v``, the index, and every file under ``.git`` (size, mtime)."""
    files = {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in (repo / ".git").rglob("*")
        if path.is_file()
    }
    return git(repo, "count-objects", "-v"), (repo / ".git" / "index").read_bytes(), files


def test_nothing_is_written_into_the_repository(superproject: Path) -> None:
    repo = superproject
    write_all(repo, {"a.txt": "dirty", "d/e/new.txt": "new", "d/x.txt": "x\r\n", "sub/s.txt": "x"})
    (repo / "link").symlink_to("a.txt")
    before = git_dir_state(repo)
    worktree = Worktree.discover(repo)
    for path in ["", "a.txt", "d", "d/e", "d/e/new.txt", "d/x.txt", "sub", "sub/s.txt", "link"]:
        assert worktree.entry(path) is not ABSENT
    listed = [
        ".gitmodules",
        "a.txt",
        "d",
        "d/e",
        "d/e/new.txt",
        "d/x.txt",
        "link",
        "sub",
        "sub/s.txt",
    ]
    assert worktree.glob("**") == listed
    assert worktree.entry("").dirty
    assert git_dir_state(repo) == before


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_entries_status_hides_are_hashed_from_disk(tmp_path: Path, flag: str) -> None:
    repo = init(tmp_path / "r", {"a.txt": "1\n", "b.txt": "1\n"})
    git(repo, "update-index", flag, "a.txt")
    write(repo / "a.txt", "2\n")
    assert git(repo, "status", "--porcelain") == ""
    worktree = Worktree.discover(repo)
    assert worktree.entry("a.txt").oid == git(repo, "hash-object", "a.txt")
    assert worktree.entry("").oid != git(repo, "rev-parse", "HEAD^{tree}")


def test_a_sparse_checkout_entry_missing_on_disk_is_absent(tmp_path: Path) -> None:
    repo = init(tmp_path / "r", {"a.txt": "1\n", "b.txt": "1\n"})
    git(repo, "update-index", "--skip-worktree", "a.txt")
    (repo / "a.txt").unlink()
    worktree = Worktree.discover(repo)
    assert worktree.entry("a.txt") is ABSENT
    tree = {"b.txt": Entry("100644", git(repo, "rev-parse", "HEAD:b.txt"))}
    assert worktree.entry("") == Entry("40000", hash_tree(tree))


def test_info_attributes_of_a_linked_worktree_come_from_the_common_directory(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "repo", {"x.txt": "a\n"})
    git(repo, "worktree", "add", "-q", str(tmp_path / "linked"))
    write(repo / ".git/info/attributes", "* text=auto\n")
    linked = tmp_path / "linked"
    write(linked / "x.txt", "a\r\n")
    git(linked, "add", "x.txt")  # the index now holds the CRLF file's stat: status is clean
    assert git(linked, "status", "--porcelain") == ""
    worktree = Worktree.discover(linked)
    assert worktree.entry("x.txt").oid == git(linked, "hash-object", "--no-filters", "x.txt")
    assert worktree.entry("").oid != git(linked, "rev-parse", "HEAD^{tree}")
