"""Make an upstream commit installable: a build tree of exactly that commit, and its version.

The build tree is a new git repository in a temporary directory *outside* the user's worktree,
its worktree checked out at the commit (HEAD detached there) and its objects borrowed from the
fetch cache (``objects/info/alternates``, nothing copied). Build scripts that ask git for a
version (Django's ``setup.py`` runs ``git log -1 HEAD`` for its ``.devTIMESTAMP``) then see
the upstream commit itself, never the project that runs the tests. Projects that take their
version from git tags (setuptools-scm, hatch-vcs) get it from :func:`scm_version`, computed
from the fetched tags, through :func:`install_environment`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pygit2
from packaging.version import InvalidVersion, Version
from pygit2.enums import CheckoutStrategy, DescribeStrategy, RepositoryOpenFlag

__all__ = ["install_environment", "scm_version", "write_build_tree"]

# setuptools-scm's default tag_regex: an optional `prefix-`, then the version.
_TAG_REGEX = re.compile(r"^(?:[\w-]+-)?(?P<version>[vV]?\d+(?:\.\d+){0,2}[^\+]*)(?:\+.*)?$")
# `git describe --tags --long` output: TAG-DISTANCE-gOID.
_DESCRIBED = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g(?P<oid>[0-9a-f]+)$")


def write_build_tree(
    repo: pygit2.Repository, commit: pygit2.Commit, package: str, directory: Path
) -> Path:
    """Check out ``commit`` of the cache ``repo`` as ``DIRECTORY/PACKAGE-OID``; return its path.

    The folder is a git repository of its own whose HEAD is ``commit`` (detached) and whose
    index and worktree match that commit's tree exactly; its objects are read from ``repo``,
    and it has ``repo``'s tags (for builds that run ``git describe --tags``).
    The full commit OID in the folder name lets the installed distribution's
    ``direct_url.json`` say which commit it was built from. A folder left there by an earlier
    run is replaced. Raises :class:`pygit2.GitError` or :class:`OSError` when it cannot be
    written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{package}-{commit.id}"
    if target.exists():
        shutil.rmtree(target)
    build = pygit2.init_repository(str(target), bare=False)
    objects = Path(repo.path).resolve() / "objects"
    (Path(build.path) / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    build = pygit2.Repository(str(target), RepositoryOpenFlag.NO_SEARCH)
    build.set_head(commit.id)
    build.checkout_head(strategy=CheckoutStrategy.FORCE | CheckoutStrategy.RECREATE_MISSING)  # type: ignore[no-untyped-call]
    for name in repo.references:  # `git describe --tags` in the build tree sees the tags.
        if name.startswith("refs/tags/"):
            build.references.create(name, repo.references[name].target, force=True)
    return target


def scm_version(repo: pygit2.Repository, commit: pygit2.Commit) -> str | None:
    """Return the version setuptools-scm's default scheme (guess-next-dev) would give ``commit``.

    On a tag ``X.Y.Z``: ``X.Y.Z``. Past it by N commits, the tag's last number is bumped and
    ``.devN+gOID`` added: ``X.Y.(Z+1).devN+gOID``, after ``2.0rc1`` ``2.0rc2.devN+gOID``, after
    ``1.0.post1`` ``1.0.post2.devN+gOID``; after a ``.dev0`` tag, its release with
    ``.devN+gOID``. Without a version tag: ``0.1.devN+gOID``, N the number of commits in the
    history of ``commit``. Tag names are read with setuptools-scm's default tag regex
    (``v1.2`` reads as ``1.2``, ``release-2024`` as ``2024``). Only tags in the fetched
    history count. Returns None where setuptools-scm itself refuses (past a ``.devN`` tag with
    N > 0): the build then computes (or refuses) the version itself from the build tree's tags.
    """
    short = str(commit.id)[:9]
    try:
        described = repo.describe(
            commit, describe_strategy=DescribeStrategy.TAGS, pattern="*[0-9]*",
            always_use_long_format=True,
        )  # fmt: skip
    except (KeyError, pygit2.GitError):
        described = ""
    match = _DESCRIBED.match(described)
    version = _tag_version(match["tag"]) if match else None
    if match is None or version is None:
        count = sum(1 for _ in repo.walk(commit.id))
        return f"0.1.dev{count}+g{short}"
    distance = int(match["distance"])
    if distance == 0:
        return str(version)
    text = str(version).split("+", 1)[0]
    if version.is_devrelease:
        if version.dev != 0:
            return None  # setuptools-scm: "can't be bumped", drop the tag or end it in .dev0.
        following = text.rsplit(".dev", 1)[0]
    else:
        last = re.fullmatch(r"(.*?)(\d+)", text)
        assert last is not None  # A normalized version ends in a number.
        following = f"{last[1]}{int(last[2]) + 1}"
    return f"{following}.dev{distance}+g{short}"


def _tag_version(tag: str) -> Version | None:
    """The version in ``tag`` as setuptools-scm's default ``tag_regex`` reads it, or None."""
    match = _TAG_REGEX.match(tag)
    try:
        return Version(match["version"]) if match else None
    except InvalidVersion:
        return None


def install_environment(
    package: str, version: str | None, build_dir: Path, tree: Path | None = None
) -> dict[str, str]:
    """Return the environment variables for building and installing ``package``.

    ``SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>`` makes setuptools-scm and hatch-vcs use
    ``version`` (harmless for other build backends); ``TMPDIR`` puts pip's own temporary
    folders in ``build_dir`` (nox points it into the project's ``.nox``, inside the user's
    worktree), and ``GIT_CEILING_DIRECTORIES`` stops git from looking above it. With the
    build ``tree`` (:func:`write_build_tree`), the git variables that would send git to
    another repository (``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE``,
    ``GIT_OBJECT_DIRECTORY``, ``GIT_COMMON_DIR``, ``GIT_ALTERNATE_OBJECT_DIRECTORIES``, set
    by a git hook or exported by the user) are set to the build tree's own.
    """
    suffix = re.sub(r"[-_.]+", "_", package).upper()
    environment = {
        "TMPDIR": str(build_dir),
        "GIT_CEILING_DIRECTORIES": os.fspath(build_dir.parent),
    }
    if version is not None:  # None: no pretending, the build reads the build tree's tags.
        environment[f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{suffix}"] = version
    if tree is not None:
        git_dir = tree / ".git"
        environment |= {
            "GIT_DIR": str(git_dir),
            "GIT_WORK_TREE": str(tree),
            "GIT_INDEX_FILE": str(git_dir / "index"),
            "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
            "GIT_COMMON_DIR": str(git_dir),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        }
    return environment
