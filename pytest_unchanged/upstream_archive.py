"""An installable archive of exactly one upstream commit, made with pygit2.

pip installs the archive like an sdist. Projects that take their version from git tags
(setuptools-scm, hatch-vcs) cannot find it in an archive, so :func:`scm_version` computes the
version setuptools-scm would give from the tags in the fetched history, and
:func:`install_environment` passes it through ``SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<NAME>``.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pygit2
from packaging.version import InvalidVersion, Version
from pygit2.enums import DescribeStrategy

__all__ = ["install_environment", "scm_version", "write_commit_archive"]

_DESCRIBED = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g(?P<oid>[0-9a-f]+)$")


def write_commit_archive(
    repo: pygit2.Repository, commit: pygit2.Commit, package: str, directory: Path
) -> Path:
    """Write the tree of ``commit`` as ``PACKAGE-OID.tar`` in ``directory``; return its path.

    The archive holds one top directory, ``PACKAGE-SHORTOID/``, like ``git archive --prefix``.
    The full commit OID in the file name lets the installed distribution's ``direct_url.json``
    say which commit it was built from.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{package}-{commit.id}.tar"
    with tarfile.open(path, "w") as archive:
        repo.write_archive(commit.id, archive, prefix=f"{package}-{str(commit.id)[:12]}/")
    return path


def scm_version(repo: pygit2.Repository, commit: pygit2.Commit) -> str:
    """Return the version setuptools-scm's default scheme would give ``commit``.

    On a tag ``X.Y.Z``: ``X.Y.Z``. Past it by N commits: ``X.Y.(Z+1).devN+gOID`` (after a
    pre-release or dev tag: ``X.Y.Z.devN+gOID``). Without a version tag: ``0.1.dev0+gOID``.
    Only tags in the fetched history count.
    """
    short = str(commit.id)[:9]
    try:
        described = repo.describe(
            commit, describe_strategy=DescribeStrategy.TAGS, pattern="*[0-9]*",
            always_use_long_format=True,
        )  # fmt: skip
    except (KeyError, pygit2.GitError):
        return f"0.1.dev0+g{short}"
    match = _DESCRIBED.match(described)
    try:
        version = Version(match["tag"]) if match else None
    except InvalidVersion:
        version = None
    if match is None or version is None:
        return f"0.1.dev0+g{short}"
    distance = int(match["distance"])
    if distance == 0:
        return str(version)
    if version.is_prerelease:
        return f"{version.base_version}.dev{distance}+g{short}"
    release = (*version.release[:-1], version.release[-1] + 1)
    return f"{'.'.join(map(str, release))}.dev{distance}+g{short}"


def install_environment(package: str, version: str) -> dict[str, str]:
    """Return the environment variables that make setuptools-scm use ``version`` for ``package``.

    They are harmless for build backends that do not read them.
    """
    suffix = re.sub(r"[-_.]+", "_", package).upper()
    return {f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{suffix}": version}
