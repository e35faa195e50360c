"""Which upstream commits touched the watched paths, and the report that names them.

The commits are found the way ``git log --first-parent VERIFIED..TIP -- PATH`` finds them:
walk the first-parent history from the tip down to the verified commit and compare each
commit's tree or blob OID of the path with its first parent's. libgit2 has no path-filtered
log, so the comparison is done here, one tree lookup per commit and path.

:func:`build_report` gathers everything a maintainer needs to judge a move (the moved paths,
the commits that touched them, commits under the wider ``context`` paths that touched none,
notes, optionally the patch of :func:`watched_patch`); :func:`format_text` writes it for a
terminal, and :mod:`.formats` as markdown or JSON.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from .fetch import Comparison

__all__ = [
    "History",
    "PathChange",
    "Report",
    "build_report",
    "describe_commit",
    "format_report",
    "format_text",
    "summary_line",
    "touching_commits",
    "watched_patch",
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
    if lookup_commit(repo, since) is None:
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


def lookup_commit(repo: pygit2.Repository, oid: str) -> pygit2.Commit | None:
    """Return the commit ``oid`` (full hex) of ``repo``; None when it holds no such commit (a
    tree or blob OID, an OID of another hash length, a missing object)."""
    try:
        found = repo.get(oid)
    except (ValueError, pygit2.GitError):
        return None
    return found if isinstance(found, pygit2.Commit) else None


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
    return f"{commit.short_id} {commit_date(commit)} {commit_subject(commit)}"


def commit_date(commit: pygit2.Commit) -> str:
    """Return the author date of ``commit`` as ``YYYY-MM-DD`` in the author's time zone."""
    author = commit.author
    when = datetime.fromtimestamp(author.time, timezone(timedelta(minutes=author.offset)))
    return f"{when:%Y-%m-%d}"


def commit_subject(commit: pygit2.Commit) -> str:
    """Return the subject of ``commit``: its first paragraph on one line, like git's ``%s``.

    Control and format characters (ESC, BEL, bidi overrides: Unicode categories ``Cc``,
    ``Cf``) are shown as ``\\xNN``/``\\uNNNN`` escapes, so an upstream message cannot drive
    the terminal or hide text in the report.
    """
    paragraph = commit.message.strip().split("\n\n", 1)[0]
    return visible(" ".join(line.strip() for line in paragraph.splitlines()))


def visible(text: str) -> str:
    """Return ``text`` with its control and format characters escaped like ``repr`` does."""
    return "".join(
        ascii(char)[1:-1] if unicodedata.category(char) in ("Cc", "Cf") else char for char in text
    )


@dataclass
class PathChange:
    """One watched path in a report: its OIDs (None: absent) and the commits that touched it.

    ``recorded`` is False when the verified state does not hold the path (newly watched).
    ``removed_by`` is the commit that removed it, when it is absent at the tip.
    """

    path: str
    label: str
    old: str | None
    new: str | None
    recorded: bool
    moved: bool
    commits: list[pygit2.Commit] = field(default_factory=list)
    removed_by: pygit2.Commit | None = None


@dataclass
class Report:
    """Everything one ref's report shows. ``context`` maps each context path to the commits
    that touched it but no watched path; ``diff`` is the patch of the moved paths from the
    verified commit to the tip (None when not asked for or not possible)."""

    comparison: Comparison
    paths: list[PathChange]
    context: dict[str, list[pygit2.Commit]]
    notes: list[str]
    diff: str | None


def build_report(comparison: Comparison, with_diff: bool = False) -> Report:
    """Gather the report of ``comparison``; with ``with_diff``, the patch of the moved paths.

    The first-parent history between the verified commit and the tip is walked only when a
    watched path moved.
    """
    commit, verified, moved = comparison.commit, comparison.verified, comparison.moved
    config, repo = comparison.upstream.config, comparison.upstream.repo
    notes = [comparison.url_note] if comparison.url_note else []
    old_commit = lookup_commit(repo, verified.commit) if verified else None
    changes, context, diff = [], {}, None
    history = History(touched={})
    if verified is not None and moved:
        history = touching_commits(repo, commit, verified.commit, moved)
        if history.note:
            notes.append(history.note)
        watched = {c.id for commits in history.touched.values() for c in commits}
        if config.context:
            wider = touching_commits(repo, commit, verified.commit, config.context)
            context = {p: [c for c in cs if c.id not in watched] for p, cs in wider.touched.items()}
        if with_diff and isinstance(old_commit, pygit2.Commit):
            diff = watched_patch(repo, old_commit, commit, moved)
        elif with_diff:
            notes.append("the patch cannot be shown: the verified commit is not in the cache")
    for path in config.paths:
        old = verified.paths.get(path) if verified else None
        new = comparison.current[path]
        change = PathChange(
            path, _label(commit, old_commit, path), old, new,
            recorded=verified is not None and path in verified.paths, moved=path in moved,
            commits=history.touched.get(path, []),
        )  # fmt: skip
        if new is None and change.commits:
            change.removed_by = change.commits[0]  # Newest first: the last change removed it.
        changes.append(change)
    return Report(comparison, changes, context, notes, diff)


def summary_line(comparison: Comparison) -> str:
    """Return one line saying whether watched paths moved, naming the commits compared."""
    commit, verified, failing = comparison.commit, comparison.verified, comparison.state.failing
    config = comparison.upstream.config
    where = f"upstream {config.name} ({config.url}, {comparison.upstream.ref} at {commit.short_id})"
    status = comparison.status
    if status == "known-failing" and failing is not None:
        since = f"the verified commit {verified.commit[:10]}" if verified else "nothing verified"
        return (
            f"{where}: still failing at {failing.commit[:10]} (found {failing.at}), nothing "
            f"new moved; {since}"
        )
    if verified is None:
        return f"{where}: nothing verified yet"
    if not comparison.moved:
        return f"{where}: no watched path moved since the verified commit {verified.commit[:10]}"
    return (
        f"{where}: {len(comparison.moved)} of {len(config.paths)} watched paths moved since "
        f"the verified commit {verified.commit[:10]}"
    )


def format_report(comparison: Comparison, with_diff: bool = False) -> str:
    """Return the text report of ``comparison`` (:func:`format_text` of :func:`build_report`)."""
    return format_text(build_report(comparison, with_diff))


def format_text(report: Report) -> str:
    """Return the human-readable report, several lines, ending in a newline.

    It starts with :func:`summary_line` and the tip commit, then lists each watched path: its
    OID when nothing was verified yet; else, for each moved path, old OID -> new OID (or
    "removed by COMMIT") and the commits that touched it since the verified commit
    (``SHORT-OID DATE SUBJECT``, newest first), and for the others that they are unchanged.
    Then the context commits, notes, and the patch when there is one.
    """
    comparison = report.comparison
    lines = [summary_line(comparison), f"  tip: {describe_commit(comparison.commit)}"]
    for change in report.paths:
        new = change.new[:10] if change.new else "absent"
        if comparison.verified is None:
            lines.append(f"  {change.label}: {new}")
            continue
        if not change.moved:
            lines.append(f"  {change.label}: unchanged ({new})")
            continue
        old = change.old[:10] if change.old else "absent"
        if change.removed_by is not None:
            new = f"removed by {change.removed_by.short_id}"
        lines.append(f"  {change.label}: {old if change.recorded else 'not recorded'} -> {new}")
        lines += [f"    {describe_commit(c)}" for c in change.commits]
        if not change.commits and not report.notes:
            lines.append("    (no commit of the first-parent history touched it)")
    if any(report.context.values()):
        lines.append("  context: commits that touched no watched path")
        for path, commits in report.context.items():
            lines += [f"      {describe_commit(c)} (not watched; under {path})" for c in commits]
    lines += [f"  note: {note}" for note in report.notes]
    text = "\n".join(lines) + "\n"
    if report.diff:
        text += "\n" + report.diff
    return text


def _label(commit: pygit2.Commit, old: object, path: str) -> str:
    """Return ``path`` with a trailing slash when it is a tree (at ``commit``, else ``old``)."""
    for where in (commit, old):
        if isinstance(where, pygit2.Commit):
            try:
                return f"{path}/" if isinstance(where.tree[path], pygit2.Tree) else path
            except KeyError:
                continue
    return path


def watched_patch(
    repo: pygit2.Repository, old: pygit2.Commit, new: pygit2.Commit, paths: tuple[str, ...]
) -> str:
    """Return the unified diff (``git diff OLD NEW -- PATHS``) of ``paths`` from ``old`` to ``new``.

    ``paths`` are watched paths (files or directories, no trailing slash); the text is empty
    when none of them changed, and ends in a newline otherwise. Binary files are named, not
    shown.
    """
    diff = repo.diff(old, new, context_lines=3)
    assert isinstance(diff, pygit2.Diff)
    chunks: list[str] = []
    for index, delta in enumerate(diff.deltas):
        names = (delta.old_file.path, delta.new_file.path)
        if not any(_under(name, path) for name in names for path in paths):
            continue
        patch = diff[index]
        if patch is None:
            continue
        text = patch.text or ""
        chunks.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(chunks)


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + "/")
