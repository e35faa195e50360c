"""The report as markdown (an issue body, ``$GITHUB_STEP_SUMMARY``) or as JSON (for scripts).

Markdown links commits and the verified..tip comparison when the upstream URL is a GitHub or
GitLab one (``https://``, ``ssh://`` or ``git@host:`` forms). Commit subjects are escaped, so
``#123`` and ``@name`` in an upstream's subjects do not link to the project's own issues or
mention anyone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pygit2

from .report import Report, commit_date, commit_subject, summary_line

__all__ = ["forge_links", "format_json", "format_markdown", "report_data"]

_FORGE = re.compile(
    r"^(?:https?://(?:[^@/]+@)?|ssh://(?:[^@/]+@)?|[^@/:]+@)"
    r"(?P<host>github\.com|gitlab\.com)[/:](?P<path>[^\s]+?)(?:\.git)?/?$"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#@!~&])")


class ForgeLinks:
    """URLs of commits and comparisons on a GitHub or GitLab repository."""

    def __init__(self, base: str, separator: str) -> None:
        self.base, self.separator = base, separator

    def commit(self, oid: str) -> str:
        """The web page of commit ``oid``."""
        return f"{self.base}{self.separator}/commit/{oid}"

    def compare(self, old: str, new: str) -> str:
        """The web page comparing ``old`` with ``new``."""
        return f"{self.base}{self.separator}/compare/{old}...{new}"


def forge_links(url: str) -> ForgeLinks | None:
    """Return the link maker of ``url`` when it is a GitHub or GitLab repository, else None."""
    match = _FORGE.match(url.strip())
    if match is None:
        return None
    base = f"https://{match['host']}/{match['path']}"
    return ForgeLinks(base, "" if match["host"] == "github.com" else "/-")


def report_data(report: Report) -> dict[str, Any]:
    """Return the report as JSON-ready data (the ``--format json`` schema, see the README)."""
    comparison = report.comparison
    upstream, state = comparison.upstream, comparison.state
    return {
        "ref": upstream.ref,
        "status": comparison.status,
        "summary": summary_line(comparison),
        "tip": _commit(comparison.commit),
        "verified": state.verified.commit if state.verified else None,
        "verified_at": state.verified.at if state.verified else None,
        "failing": state.failing.commit if state.failing else None,
        "paths": [
            {
                "path": change.path,
                "label": change.label,
                "verified": change.old,
                "tip": change.new,
                "recorded": change.recorded,
                "moved": change.moved,
                "removed_by": str(change.removed_by.id) if change.removed_by else None,
                "commits": [_commit(c) for c in change.commits],
            }
            for change in report.paths
        ],
        "context": {path: [_commit(c) for c in cs] for path, cs in report.context.items()},
        "notes": report.notes,
        "diff": report.diff,
    }


def format_json(name: str, url: str, status: int, reports: list[Report]) -> str:
    """Return the JSON document of the reports of upstream ``name``, ending in a newline."""
    document = {
        "upstream": name,
        "url": url,
        "exit_status": status,
        "refs": [report_data(report) for report in reports],
    }
    return json.dumps(document, indent=2) + "\n"


def format_markdown(report: Report) -> str:
    """Return the report as a markdown section, ending in a newline."""
    comparison = report.comparison
    config, ref = comparison.upstream.config, comparison.upstream.ref
    links = forge_links(config.url)
    tip, verified = comparison.commit, comparison.verified
    title = f"### Upstream `{config.name}`: `{ref}` at {_link(links, str(tip.id))}"
    lines = [title, "", _escape(summary_line(comparison)), ""]
    if links is not None and verified is not None and comparison.moved:
        lines += [f"[Compare]({links.compare(verified.commit, str(tip.id))})", ""]
    lines += ["| watched path | verified | tip |", "| --- | --- | --- |"]
    for change in report.paths:
        old = f"`{change.old[:10]}`" if change.old else ("absent" if change.recorded else "—")
        new = f"`{change.new[:10]}`" if change.new else "absent"
        if change.removed_by is not None:
            new = f"removed by {_link(links, str(change.removed_by.id))}"
        if verified is not None and not change.moved:
            new = "unchanged"
        lines.append(f"| `{change.label}` | {old} | {new} |")
    for change in report.paths:
        if change.commits:
            lines += ["", f"**`{change.label}`**, first-parent commits since the verified one:"]
            lines += [_item(links, c) for c in change.commits]
    if any(report.context.values()):
        lines += ["", "**Context**, commits that touched no watched path:"]
        for path, commits in report.context.items():
            lines += [f"{_item(links, c)} (not watched; under `{path}`)" for c in commits]
    if report.notes:
        lines += [""] + [f"> Note: {_escape(note)}" for note in report.notes]
    if report.diff:
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", report.diff)), default=0))
        lines += ["", "<details><summary>Patch of the watched paths</summary>", ""]
        lines += [f"{fence}diff", report.diff.rstrip("\n"), fence, "", "</details>"]
    return "\n".join(lines) + "\n"


def _commit(commit: pygit2.Commit) -> dict[str, str]:
    return {
        "commit": str(commit.id),
        "date": commit_date(commit),
        "subject": commit_subject(commit),
    }


def _link(links: ForgeLinks | None, oid: str) -> str:
    return f"[`{oid[:7]}`]({links.commit(oid)})" if links else f"`{oid[:7]}`"


def _item(links: ForgeLinks | None, commit: pygit2.Commit) -> str:
    subject = _escape(commit_subject(commit))
    return f"- {_link(links, str(commit.id))} {commit_date(commit)} {subject}"


def _escape(text: str) -> str:
    """Escape markdown: also ``@``, ``#`` (no mention, no issue link) and ``&`` (no HTML entity
    such as ``&#64;`` turning back into one)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
