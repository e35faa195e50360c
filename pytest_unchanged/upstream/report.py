"""Which upstream commits touched the watched paths, and the report that names them.

The commits are found the way ``git log --first-parent VERIFIED..TIP -- PATH`` finds them:
walk the first-parent history from the tip down to the verified commit and compare each
commit's tree or blob OID of the path with its first parent's. libgit2 has no path-filtered
log, so the comparison is done here, one tree lookup per commit and path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from .fetch import Comparison

__all__ = [
    "History",
    "describe_commit",
    "format_report",
    "summary_line",
    "touching_commits",
]


@dataclass
class History:
    """The commits that touched each watched path, newest first.

    ``note`` says why the list is incomplete or missing (a shallow fetch, a verified commit that
    is not in the fetched history); it is None when the history was walked in full.
    """

    touched: dict[str, list[pygit2.Commit]] = field(default_factory=dict)
    note: str | None = None


def touching_commits(
    repo: pygit2.Repository, tip: pygit2.Commit, since: str, paths: tuple[str, ...]
) -> History:
    """Return the commits between ``since`` (a hex OID, excluded) and ``tip`` touching ``paths``.

    Only the first-parent history of ``tip`` is walked, and everything reachable from ``since``
    is left out, as with ``git log --first-parent since..tip``. When ``since`` is not in the
    repository, or the walk meets a shallow boundary, the result says so in ``note`` instead
    of guessing.
    """
    history = History(touched={path: [] for path in paths})
    if repo.get(since) is None:
        history.note = (
            f"the verified commit {since[:10]} is not in the fetched history (a shallow fetch, "
            "or a history rewritten upstream), so the commits in between cannot be listed"
        )
        return history
    if not repo.descendant_of(tip.id, since) and str(tip.id) != since:
        history.note = (
            f"the verified commit {since[:10]} is not an ancestor of {tip.short_id} (a history "
            "rewritten upstream?); the commits listed are those since their common ancestor"
        )
    shallow = _shallow_roots(repo)
    walker = repo.walk(tip.id, SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    walker.hide(since)
    memo: dict[pygit2.Oid, tuple[str | None, ...]] = {}
    for commit in walker:
        if str(commit.id) in shallow:
            history.note = (
                f"the history before {commit.short_id} is not available (a shallow fetch); "
                "older commits that touched the paths cannot be listed"
            )
            break
        here = memo.pop(commit.id, None) or _oids_at(commit, paths)
        if commit.parents:
            parent = commit.parents[0]
            memo[parent.id] = before = _oids_at(parent, paths)
        else:
            before = (None,) * len(paths)
        for path, new, old in zip(paths, here, before, strict=True):
            if new != old:
                history.touched[path].append(commit)
    return history


def _oids_at(commit: pygit2.Commit, paths: tuple[str, ...]) -> tuple[str | None, ...]:
    tree = commit.tree
    oids: list[str | None] = []
    for path in paths:
        try:
            oids.append(str(tree[path].id))
        except KeyError:
            oids.append(None)
    return tuple(oids)


def _shallow_roots(repo: pygit2.Repository) -> set[str]:
    if not repo.is_shallow:
        return set()
    shallow_file = Path(repo.path) / "shallow"
    return set(shallow_file.read_text().split()) if shallow_file.exists() else set()


def describe_commit(commit: pygit2.Commit) -> str:
    """Return ``SHORT-OID DATE SUBJECT`` for ``commit``, with its author date, like git log."""
    author = commit.author
    when = datetime.fromtimestamp(author.time, timezone(timedelta(minutes=author.offset)))
    paragraph = commit.message.strip().split("\n\n", 1)[0]
    subject = " ".join(line.strip() for line in paragraph.splitlines())  # git's %s
    return f"{commit.short_id} {when:%Y-%m-%d} {subject}"


def summary_line(comparison: Comparison) -> str:
    """Return one line saying whether watched paths moved, naming the commits compared."""
    commit, verified = comparison.commit, comparison.verified
    config = comparison.upstream.config
    where = f"upstream {config.name} ({config.url}, {config.ref} at {commit.short_id})"
    if verified is None:
        return f"{where}: nothing verified yet"
    if not comparison.moved:
        return f"{where}: no watched path moved since the verified commit {verified.commit[:10]}"
    return (
        f"{where}: {len(comparison.moved)} of {len(config.paths)} watched paths moved since "
        f"the verified commit {verified.commit[:10]}"
    )


def format_report(comparison: Comparison) -> str:
    """Return the human-readable report of ``comparison``, several lines, ending in a newline.

    It starts with :func:`summary_line` and the tip commit, then lists each watched path: its
    OID when nothing was verified yet; else, for each moved path, old OID -> new OID and the
    commits that touched it since the verified commit (``SHORT-OID DATE SUBJECT``, newest
    first), and for the others that they are unchanged.
    """
    commit, verified, moved = comparison.commit, comparison.verified, comparison.moved
    paths = comparison.upstream.config.paths
    lines = [summary_line(comparison), f"  tip: {describe_commit(commit)}"]
    if verified is None:
        lines += [f"  {_label(commit, p)}: {comparison.current[p][:10]}" for p in paths]
        return "\n".join(lines) + "\n"
    history = touching_commits(comparison.upstream.repo, commit, verified.commit, moved)
    for path in paths:
        new = comparison.current[path][:10]
        if path not in moved:
            lines.append(f"  {_label(commit, path)}: unchanged ({new})")
            continue
        old = verified.paths[path][:10] if path in verified.paths else "not recorded"
        lines.append(f"  {_label(commit, path)}: {old} -> {new}")
        lines += [f"    {describe_commit(c)}" for c in history.touched[path]]
        if not history.touched[path] and history.note is None:
            lines.append("    (no commit of the first-parent history touched it)")
    if history.note:
        lines.append(f"  note: {history.note}")
    return "\n".join(lines) + "\n"


def _label(commit: pygit2.Commit, path: str) -> str:
    """Return ``path`` with a trailing slash when it is a tree at ``commit``."""
    return f"{path}/" if isinstance(commit.tree[path], pygit2.Tree) else path
