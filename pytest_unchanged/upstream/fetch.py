"""Fetch a watched upstream with pygit2 and compare its watched paths with the verified state.

The upstream is fetched into a bare repository in a cache outside the user's repository
(:func:`~pytest_unchanged.upstream_config.cache_path`), reused between runs. The configured
ref is resolved to a commit, the tree or blob OID of each watched path is read at that commit,
and :func:`compare` says which paths moved since the verified commit. :func:`write_commit_archive`
makes an installable archive of exactly one commit; projects that take their version from git
tags (setuptools-scm, hatch-vcs) cannot find it in an archive, so :func:`scm_version` computes
it from the fetched tags and :func:`install_environment` passes it to the build. Nothing here
writes to the user's repository; the verified state is written only by the callers, on success.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygit2
from packaging.version import InvalidVersion, Version
from pygit2.enums import DescribeStrategy

from .config import UpstreamConfig, UpstreamError, cache_path
from .state import VerifiedUpstream

__all__ = [
    "Comparison",
    "FetchProgress",
    "Upstream",
    "compare",
    "fetch_upstream",
    "install_environment",
    "path_oids",
    "resolve_commit",
    "scm_version",
    "write_commit_archive",
]

# `git describe --tags --long` output: TAG-DISTANCE-gOID.
_DESCRIBED = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g(?P<oid>[0-9a-f]+)$")


@dataclass(frozen=True)
class Upstream:
    """A fetched upstream: its cache repository and the commit its ref resolved to."""

    config: UpstreamConfig
    repo: pygit2.Repository
    tip: pygit2.Commit


@dataclass(frozen=True)
class Comparison:
    """The watched paths of an upstream commit, compared with the verified state.

    ``current`` maps each watched path to its hex OID at ``commit``; ``moved`` lists the
    watched paths whose OID differs from ``verified`` (or that ``verified`` does not hold).
    """

    upstream: Upstream
    commit: pygit2.Commit
    current: dict[str, str]
    verified: VerifiedUpstream | None
    moved: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when a watched path moved or nothing was verified yet."""
        return self.verified is None or bool(self.moved)

    def as_verified(self) -> VerifiedUpstream:
        """Return the state that records ``commit`` as verified now."""
        config = self.upstream.config
        return VerifiedUpstream.now(config.url, config.ref, str(self.commit.id), self.current)


class FetchProgress(pygit2.RemoteCallbacks):
    """Remote callbacks that write a progress line while a large fetch runs.

    Nothing is written during the first ``delay`` seconds, so small fetches stay silent; on a
    terminal the line is redrawn in place, elsewhere a new line is written every ``interval``.
    """

    def __init__(
        self, label: str, write: Callable[[str], None] | None = None, delay: float = 2.0
    ) -> None:
        super().__init__()
        self.label = label
        self.tty = write is None and sys.stderr.isatty()
        self.write = write or (lambda text: print(text, file=sys.stderr, end="", flush=True))
        self.start = time.monotonic()
        self.delay = delay
        self.interval = 0.5 if self.tty else 10.0
        self.last = self.start + delay - self.interval
        self.shown = False

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        """Called by libgit2 as objects arrive; writes a line now and then."""
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        received, total = stats.received_objects, max(stats.total_objects, 1)
        line = (
            f"fetching {self.label}: {received}/{total} objects ({100 * received // total}%), "
            f"{stats.received_bytes / 2**20:.1f} MiB, {stats.indexed_deltas}/"
            f"{stats.total_deltas} deltas, {now - self.start:.0f}s"
        )
        self.write(f"\r{line}" if self.tty else f"{line}\n")
        self.shown = True

    def finish(self) -> None:
        """End the progress line, if one was written."""
        if self.shown:
            elapsed = time.monotonic() - self.start
            end_of_line = "\n" if self.tty else ""
            self.write(f"{end_of_line}fetched {self.label} in {elapsed:.0f}s\n")


def fetch_upstream(
    config: UpstreamConfig,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: FetchProgress | None = None,
) -> Upstream:
    """Fetch the configured ref of ``config``'s upstream into its cache; resolve it to a commit.

    ``ref`` may be a branch, a tag or a full ref name. Tags pointing into the fetched history
    come along (they name versions of archives). Raises :class:`UpstreamError` when the URL
    cannot be reached or the ref does not exist there.
    """
    repo = _open_cache(config, cache_path(config, cache_dir))
    remote = repo.remotes["origin"]
    callbacks = progress or FetchProgress(config.name)
    try:
        heads = {head.name for head in remote.list_heads(callbacks=callbacks) if head.name}
    except pygit2.GitError as exc:
        raise UpstreamError(
            f"Cannot reach the upstream {config.name!r} at {config.url}: {exc}. Check the `url` "
            f"of {config.table} in {config.pyproject} and your network."
        ) from None
    candidates = [config.ref] if config.ref.startswith("refs/") else [
        f"refs/heads/{config.ref}", f"refs/tags/{config.ref}",
    ]  # fmt: skip
    ref = next((name for name in candidates if name in heads), None)
    if ref is None:
        branches = sorted(n.removeprefix("refs/heads/") for n in heads if n.startswith("refs/h"))
        raise UpstreamError(
            f"The upstream {config.name!r} at {config.url} has no branch or tag {config.ref!r}"
            + (f" (its branches include {', '.join(branches[:8])})" if branches else "")
            + f". Fix the `ref` of {config.table}."
        )
    try:
        remote.fetch([f"+{ref}:{ref}"], callbacks=callbacks)
    except pygit2.GitError as exc:
        raise UpstreamError(
            f"Fetching {ref} of the upstream {config.name!r} from {config.url} failed: {exc}. "
            "Run again; if it keeps failing, delete the cache directory "
            f"{repo.path.rstrip('/')} and run again."
        ) from None
    finally:
        callbacks.finish()
    target = repo.references[ref].peel()
    if not isinstance(target, pygit2.Commit):
        raise UpstreamError(
            f"{ref} of the upstream {config.name!r} points to a {target.type_str}, not a commit. "
            f"Set the `ref` of {config.table} to a branch or a tag of a commit."
        )
    return Upstream(config=config, repo=repo, tip=target)


def _open_cache(config: UpstreamConfig, path: Path) -> pygit2.Repository:
    """Open the bare cache repository at ``path``, creating it when missing or unusable."""
    try:
        repo = pygit2.Repository(str(path))
    except pygit2.GitError:
        if path.exists():
            shutil.rmtree(path)  # Not a repository: a cache interrupted while being created.
        try:
            repo = pygit2.init_repository(str(path), bare=True)
        except pygit2.GitError as exc:
            raise UpstreamError(
                f"Cannot create the fetch cache {path}: {exc}. Pass --cache-dir or set "
                "PYTEST_UNCHANGED_CACHE_DIR to a writable directory."
            ) from None
    if "origin" not in repo.remotes.names():
        repo.remotes.create("origin", config.url)
    elif repo.remotes["origin"].url != config.url:
        repo.remotes.set_url("origin", config.url)
    return repo


def resolve_commit(upstream: Upstream, revision: str) -> pygit2.Commit:
    """Return the commit ``revision`` (a full or abbreviated OID) of a fetched upstream.

    Raises :class:`UpstreamError` when the fetched history holds no such commit.
    """
    try:
        commit = upstream.repo.revparse_single(revision).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        config = upstream.config
        raise UpstreamError(
            f"The commit {revision!r} is not in the fetched history of {config.ref} of the "
            f"upstream {config.name!r} ({config.url}). Give a commit of that history, or "
            "leave out --commit to record the fetched tip."
        ) from None
    assert isinstance(commit, pygit2.Commit)
    return commit


def path_oids(upstream: Upstream, commit: pygit2.Commit) -> dict[str, str]:
    """Return the hex OID of the tree or blob of each watched path at ``commit``.

    Raises :class:`UpstreamError` naming the first watched path missing at that commit.
    """
    config, tree, oids = upstream.config, commit.tree, {}
    for path in config.paths:
        try:
            oids[path] = str(tree[path].id)
        except KeyError:
            raise UpstreamError(
                f"The watched path {path!r} does not exist at commit {commit.short_id} "
                f"({config.ref} of the upstream {config.name!r}, {config.url}). It was removed "
                f"or renamed upstream, or it is misspelt: fix `paths` in {config.table}."
            ) from None
    return oids


def compare(
    upstream: Upstream, verified: VerifiedUpstream | None, commit: pygit2.Commit | None = None
) -> Comparison:
    """Compare the watched paths at ``commit`` (default: the fetched tip) with ``verified``.

    Raises :class:`UpstreamError` when a watched path is missing at that commit.
    """
    commit = commit or upstream.tip
    current = path_oids(upstream, commit)
    moved = (
        ()
        if verified is None
        else tuple(path for path, oid in current.items() if verified.paths.get(path) != oid)
    )
    return Comparison(upstream, commit, current, verified, moved)


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
