"""Fetch a watched upstream with pygit2 and compare its watched paths with the state file.

The upstream is fetched into a bare repository in a cache outside the user's repository
(:mod:`.cache`), reused between runs; every configured ref comes in one fetch. Each ref is
resolved to a commit, the tree or blob OID of each watched path is read at that commit, and
:func:`compare` says which paths moved since the verified commit, and whether the tip is one
the tests are already known to fail against. Nothing here writes outside the cache; the state
file is written only by the callers.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Literal

import pygit2

from .cache import cache_lock, check_cache_location, open_cache, remove_cache
from .config import UpstreamConfig, UpstreamError, cache_path
from .progress import FetchProgress
from .state import CommitPaths, RefState, utc_now

__all__ = [
    "Comparison",
    "FetchProgress",
    "Status",
    "Upstream",
    "compare",
    "damaged_cache",
    "fetch_refs",
    "fetch_upstream",
    "path_oids",
    "resolve_commit",
]

#: unverified: nothing verified yet; unchanged: the watched paths are as verified; moved: one
#: moved since (to OIDs not known to fail); known-failing: they are where the tests last failed.
Status = Literal["unverified", "unchanged", "moved", "known-failing"]


@dataclass(frozen=True)
class Upstream:
    """A fetched ref of an upstream: the cache repository, the ref, and the commit it is at."""

    config: UpstreamConfig
    repo: pygit2.Repository
    ref: str
    tip: pygit2.Commit


@dataclass(frozen=True)
class Comparison:
    """The watched paths of an upstream commit, compared with the state of its ref.

    ``current`` maps each watched path to its hex OID at ``commit`` (None: removed there);
    ``moved`` lists the watched paths whose OID differs from the verified one (or that the
    verified state does not hold).
    """

    upstream: Upstream
    commit: pygit2.Commit
    current: dict[str, str | None]
    state: RefState
    moved: tuple[str, ...]

    @property
    def verified(self) -> CommitPaths | None:
        """The last verified commit of the ref and its OIDs, if any."""
        return self.state.verified

    @property
    def status(self) -> Status:
        """Where the watched paths stand: see :data:`Status`."""
        failing = self.state.failing
        if self.verified is not None and not self.moved:
            return "unchanged"
        if failing is not None and failing.paths == self.current:
            return "known-failing"
        return "unverified" if self.verified is None else "moved"

    @property
    def changed(self) -> bool:
        """True when the tests should run: a watched path moved, or nothing was verified yet."""
        return self.status in ("unverified", "moved")

    @property
    def url_note(self) -> str | None:
        """A sentence when the state was verified against another URL than the configured one."""
        stored, url = self.state.url, self.upstream.config.url
        if not stored or stored == url:
            return None
        return (
            f"the state was verified against {stored}, the table now says {url}; OIDs are "
            "compared all the same (equal OIDs mean equal content)"
        )

    def as_verified(self) -> RefState:
        """Return the state of the ref that records ``commit`` as verified now."""
        verified = CommitPaths(str(self.commit.id), dict(self.current), utc_now())
        return RefState(url=self.upstream.config.url, ref=self.upstream.ref, verified=verified)

    def as_failing(self) -> RefState:
        """Return the state that keeps the verified commit and records ``commit`` as failing."""
        failing = CommitPaths(str(self.commit.id), dict(self.current), utc_now())
        return RefState(self.upstream.config.url, self.upstream.ref, self.verified, failing)


def fetch_refs(
    config: UpstreamConfig,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: FetchProgress | None = None,
) -> list[Upstream]:
    """Fetch every configured ref of ``config``'s upstream into its cache, in one fetch.

    Returns one :class:`Upstream` per ref, in the configured order. A ref may be a branch, a
    tag or a full ref name; branches and tags are force-updated (a force-push or a moved tag is
    followed). Raises :class:`UpstreamError` when the URL cannot be reached or a ref does not
    exist there or is not a commit; a cache made by this call is then removed again.
    """
    path = cache_path(config, cache_dir)
    callbacks = progress or FetchProgress(config.name)
    check_cache_location(path)  # Before the lock file is made beside it.
    with cache_lock(path):
        for _ in range(2):
            repo, created = open_cache(config, path)
            try:
                names = _fetch(config, repo, created, callbacks)
            except UpstreamError:
                if created:
                    remove_cache(path)  # A bad URL or ref leaves no empty cache behind.
                raise
            try:
                return [Upstream(config, repo, r, _tip(config, repo, r, n)) for r, n in names]
            except UpstreamError:
                if created:
                    remove_cache(path)  # A ref of a tree or blob leaves no cache behind either.
                raise
            except pygit2.GitError as exc:
                if created:
                    raise damaged_cache(path, exc) from None
                remove_cache(path)  # Objects lost (a pack deleted or cut short): fetch anew.
    raise AssertionError("unreachable")  # pragma: no cover


def damaged_cache(path: os.PathLike[str] | str, exc: Exception) -> UpstreamError:
    """The error for a fetch cache whose objects cannot be read (lost, cut short)."""
    return UpstreamError(
        f"The fetch cache {path} is damaged: {exc}. Delete the cache directory {path} and "
        "run again (the next run fetches the upstream anew)."
    )


def fetch_upstream(
    config: UpstreamConfig,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: FetchProgress | None = None,
) -> Upstream:
    """Fetch ``config``'s upstream (:func:`fetch_refs`); return its first configured ref."""
    return fetch_refs(config, cache_dir, progress)[0]


def _fetch(
    config: UpstreamConfig, repo: pygit2.Repository, cold: bool, callbacks: FetchProgress
) -> list[tuple[str, str]]:
    """Fetch the refs; return (configured ref, full ref name) pairs."""
    remote = repo.remotes["origin"]
    try:
        advertised = {h.name: str(h.oid) for h in remote.list_heads(callbacks=callbacks) if h.name}
    except pygit2.GitError as exc:
        local = "://" not in config.url and ":" not in config.url.split("/", 1)[0]
        # libgit2 says "unsupported URL protocol" for a local path that does not exist.
        why = "no such directory" if local and not os.path.isdir(config.url) else str(exc)
        raise UpstreamError(
            f"Cannot reach the upstream {config.name!r} at {config.url}: {why}. Check the `url` "
            f"of {config.table} in {config.pyproject} and your network."
        ) from None
    heads = set(advertised)
    names = [(ref, _full_name(config, ref, heads)) for ref in config.refs]
    if cold:
        callbacks.start_cold(config.url, ", ".join(config.refs))
    try:
        remote.fetch([f"+{name}:{name}" for _, name in names], callbacks=callbacks)
        tags = _moved_tags(repo, advertised)
        if tags:
            remote.fetch([f"+{name}:{name}" for name in tags], callbacks=callbacks)
    except pygit2.GitError as exc:
        raise UpstreamError(
            f"Fetching {', '.join(config.refs)} of the upstream {config.name!r} from "
            f"{config.url} failed: {exc}. Run again; if it keeps failing, delete the cache "
            f"directory {repo.path.rstrip('/')} and run again."
        ) from None
    finally:
        callbacks.finish()
    return names


def _moved_tags(repo: pygit2.Repository, advertised: dict[str, str]) -> list[str]:
    """Make the cache's tags follow the upstream's; return the tags still to fetch.

    The cache keeps exactly the upstream tags whose commit is in the fetched history (what a
    clone of the followed refs has): a tag deleted upstream, or moved to a commit outside that
    history, is deleted here; a tag new or moved (``git tag -f``) to a fetched commit is
    returned, to be fetched with a forced refspec (``remote.origin.tagopt`` is ``--no-tags``,
    so explicit refspecs update tags and libgit2 adds none of its own).
    """
    wanted: list[str] = []
    for name in list(repo.references):
        if name.startswith("refs/tags/") and name not in advertised:
            repo.references.delete(name)  # Deleted upstream.
    for name, oid in advertised.items():
        if not name.startswith("refs/tags/") or name.endswith("^{}"):
            continue
        peeled = advertised.get(name + "^{}", oid)
        local = repo.references.get(name)
        if repo.get(peeled) is None:
            if local is not None:
                repo.references.delete(name)  # Moved out of the fetched history.
        elif local is None or str(local.target) != oid:
            wanted.append(name)
    return wanted


def _full_name(config: UpstreamConfig, ref: str, heads: set[str]) -> str:
    candidates = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    if all(name in heads for name in candidates) and len(candidates) == 2:
        raise UpstreamError(
            f"The upstream {config.name!r} at {config.url} has both a branch and a tag named "
            f"{ref!r}, so which one is followed could change without a word. Write "
            f"'refs/heads/{ref}' or 'refs/tags/{ref}' in the `ref` or `refs` of {config.table}."
        )
    name = next((name for name in candidates if name in heads), None)
    if name is not None:
        return name
    short = sorted(
        n.removeprefix("refs/heads/").removeprefix("refs/tags/")
        for n in heads
        if n.startswith(("refs/heads/", "refs/tags/")) and not n.endswith("^{}")
    )
    close = difflib.get_close_matches(ref, short, n=4, cutoff=0.6)
    usual: list[str] = [n for n in ("main", "master") if n in short and n not in close]
    hint = ", ".join(close + usual)
    raise UpstreamError(
        f"The upstream {config.name!r} at {config.url} has no branch or tag {ref!r}"
        + (f" (the closest names there: {hint})" if hint else "")
        + f". Fix the `ref` or `refs` of {config.table}."
    )


def _tip(config: UpstreamConfig, repo: pygit2.Repository, ref: str, name: str) -> pygit2.Commit:
    target = repo.references[name].peel()
    if not isinstance(target, pygit2.Commit):
        raise UpstreamError(
            f"{name} of the upstream {config.name!r} points to a {target.type_str}, not a "
            f"commit. Set the `ref` of {config.table} to a branch or a tag of a commit."
        )
    return target


def resolve_commit(upstream: Upstream, revision: str) -> pygit2.Commit:
    """Return the commit ``revision`` (an OID, abbreviated or full, or a revision like
    ``TAG`` or ``main~3``) of a fetched upstream, which must be the tip of the ref or one of
    its ancestors.

    Raises :class:`UpstreamError` when the fetched history holds no such commit, or when it is
    not in the history of the ref (a commit of another branch would be compared with the
    wrong history).
    """
    config, repo = upstream.config, upstream.repo
    commit: object = None
    spec = revision
    if spec == "HEAD" or spec.startswith(("HEAD~", "HEAD^")):
        spec = str(upstream.tip.id) + spec[4:]  # HEAD: the ref's tip, not the cache's HEAD.
    found: pygit2.Object | None = None
    if spec.strip() and not spec.startswith("-"):
        try:
            found = repo.revparse_single(spec)
            commit = found.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            commit = None
    if found is not None and not isinstance(commit, pygit2.Commit):
        raise UpstreamError(
            f"{revision!r} names a {found.type_str} of the upstream {config.name!r}, not a "
            "commit. Give a commit OID, a tag of a commit, or a revision like main~3."
        )
    if not isinstance(commit, pygit2.Commit):
        raise UpstreamError(
            f"The commit {revision!r} is not in the fetched history of {upstream.ref} of the "
            f"upstream {config.name!r} ({config.url}). Give a commit of that history, or "
            "leave out --commit to record the fetched tip."
        )
    tip = upstream.tip
    if commit.id != tip.id and not repo.descendant_of(tip.id, commit.id):
        raise UpstreamError(
            f"The commit {commit.short_id} ({revision!r}) is not in the history of "
            f"{upstream.ref} (at {tip.short_id}) of the upstream {config.name!r}: it belongs to "
            "another branch or to a rewritten history. Give a commit of that ref's history."
        )
    return commit


def path_oids(
    upstream: Upstream, commit: pygit2.Commit, known: frozenset[str] = frozenset()
) -> dict[str, str | None]:
    """Return the hex OID of the tree or blob of each watched path at ``commit``.

    A path missing at ``commit`` gives None when it is in ``known`` (it was recorded before:
    removed or renamed upstream, a move); otherwise :class:`UpstreamError` is raised naming
    it (a misspelt path). A path that is a symbolic link raises :class:`UpstreamError` too:
    its blob is the link's text, which does not change with what it points to.
    """
    config, tree = upstream.config, commit.tree
    oids: dict[str, str | None] = {}
    for path in config.paths:
        try:
            entry = tree[path]
            if isinstance(entry, pygit2.Blob) and entry.filemode == pygit2.enums.FileMode.LINK:
                raise UpstreamError(
                    f"The watched path {path!r} is a symbolic link at commit {commit.short_id} "
                    f"({upstream.ref} of the upstream {config.name!r}) to "
                    f"{entry.data.decode(errors='replace')!r}: its OID changes only when the "
                    f"link does, not what it points to. Watch the target instead in `paths` of "
                    f"{config.table}."
                )
            oids[path] = str(entry.id)
        except KeyError:
            if path not in known:
                raise UpstreamError(
                    f"The watched path {path!r} does not exist at commit {commit.short_id} "
                    f"({upstream.ref} of the upstream {config.name!r}, {config.url}), and no "
                    f"verified commit had it: it is misspelt, or was removed or renamed "
                    f"before. Fix `paths` in {config.table}."
                ) from None
            oids[path] = None
    return oids


def _check_recorded_commit(upstream: Upstream, oid: str) -> None:
    """Raise :class:`UpstreamError` when the state's ``oid`` cannot name a commit of the cache:
    an OID of another hash length, or the OID of a tree, blob or tag (a hand-edited state).
    A commit missing from the cache is fine (a rewritten history: the report says so)."""
    config, repo = upstream.config, upstream.repo
    kind: str | None
    try:
        found = repo.get(oid)
        kind = None if found is None else f"a {found.type_str}"
    except (ValueError, pygit2.GitError):
        kind = "an OID of another hash length"
    if kind is not None and kind != "a commit":
        raise UpstreamError(
            f"The verified-state file {config.state_file} cannot be used: the commit {oid[:12]} "
            f"recorded for {upstream.ref} of {config.name!r} is {kind}, not a commit of "
            f"{config.url}. Restore the file from version control, or delete its entry."
        )


def compare(upstream: Upstream, state: RefState, commit: pygit2.Commit | None = None) -> Comparison:
    """Compare the watched paths at ``commit`` (default: the fetched tip) with ``state``.

    Raises :class:`UpstreamError` when a watched path is missing at that commit and no
    verified or failing commit of ``state`` recorded it.
    """
    commit = commit or upstream.tip
    for record in (state.verified, state.failing):
        if record is not None:
            _check_recorded_commit(upstream, record.commit)
    known = {p for record in (state.verified, state.failing) if record for p in record.paths}
    current = path_oids(upstream, commit, frozenset(known))
    verified = state.verified
    moved = (
        ()
        if verified is None
        else tuple(
            path
            for path, oid in current.items()
            if path not in verified.paths or verified.paths[path] != oid
        )
    )
    return Comparison(upstream, commit, current, state, moved)
