"""The ``upstream`` command group: ``check NAME`` and ``record NAME``.

``check`` exits 0 when no watched path moved since the verified commit (of every followed
ref), 1 when something moved or nothing was verified yet (with a report), 3 when the watched
paths are where the tests last failed and nothing new moved; ``record`` writes the state.
Errors are raised as :class:`~pytest_unchanged.upstream.config.UpstreamError` and turned into
exit status 2 by :func:`pytest_unchanged.__main__.main`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import pygit2

from .config import (
    UpstreamConfig,
    UpstreamError,
    cache_path,
    find_pyproject,
    load_upstream_config,
)
from .fetch import Comparison, compare, damaged_cache, fetch_refs, resolve_commit
from .formats import format_json, format_markdown
from .report import build_report, describe_commit, format_text
from .state import read_state, write_state

EXIT_UNCHANGED = 0
EXIT_CHANGED = 1
EXIT_KNOWN_FAILING = 3

UPSTREAM_HELP = """\
Watch paths of an upstream repository configured in [tool.pytest-unchanged.upstream.NAME].

  check NAME    exit 0: no watched path moved since the verified commit;
                exit 1: something moved, or nothing was verified yet (with a report);
                exit 3: still failing where the tests last failed, nothing new moved
  record NAME   mark the fetched tip (or --commit SHA) as verified (or --failing)

Any error exits with status 2 and a one-paragraph message; the state file is then untouched.
"""


def add_upstream_commands(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``upstream check`` and ``upstream record`` to the command groups ``groups``."""
    upstream = groups.add_parser(
        "upstream", help="Watch paths of an upstream repository", description=UPSTREAM_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    actions = upstream.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="Report the watched paths that moved since the verified commit"
    )
    check.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text",
        help="Write the report as text (default), markdown (an issue body) or JSON",
    )  # fmt: skip
    check.add_argument(
        "--diff", action="store_true", help="Add the patch of the moved paths (verified..tip)"
    )
    check.set_defaults(handler=check_command)
    record = actions.add_parser("record", help="Mark the fetched tip (or --commit) as verified")
    record.add_argument("--commit", metavar="SHA", help="Record this commit instead of the tip")
    record.add_argument(
        "--failing", action="store_true",
        help="Record the commit as failing (the verified one is kept): check then exits 3",
    )  # fmt: skip
    record.set_defaults(handler=record_command)
    for action in (check, record):
        action.add_argument(
            "name", metavar="NAME", help="The table [tool.pytest-unchanged.upstream.NAME]"
        )
        action.add_argument(
            "--ref", metavar="REF", help="Only this ref of the table's `refs` (default: all)"
        )
        action.add_argument(
            "--pyproject", type=Path, metavar="PATH",
            help="The pyproject.toml to read (default: the nearest one from the current directory)",
        )  # fmt: skip
        action.add_argument(
            "--cache-dir", type=Path, metavar="DIR",
            help="Where fetched upstreams are kept (default: $PYTEST_UNCHANGED_CACHE_DIR, "
            "else $XDG_CACHE_HOME/pytest-unchanged/upstream)",
        )  # fmt: skip


def _load(args: argparse.Namespace) -> UpstreamConfig:
    pyproject = args.pyproject or find_pyproject(Path.cwd())
    return only_ref(load_upstream_config(pyproject, args.name), args.ref)


def only_ref(config: UpstreamConfig, ref: str | None) -> UpstreamConfig:
    """Return ``config`` following only ``ref`` (all its refs when None).

    Raises :class:`UpstreamError` when ``ref`` is not one of the table's refs.
    """
    if ref is None:
        return config
    if ref not in config.refs:
        raise UpstreamError(
            f"{config.table} does not follow the ref {ref!r}; it follows "
            f"{', '.join(config.refs)}. Pass one of them, or add it to `refs`."
        )
    return dataclasses.replace(config, refs=(ref,))


def exit_status(comparisons: list[Comparison]) -> int:
    """1 when a ref moved or was never verified, else 3 when one is known failing, else 0."""
    statuses = {comparison.status for comparison in comparisons}
    if statuses & {"moved", "unverified"}:
        return EXIT_CHANGED
    return EXIT_KNOWN_FAILING if "known-failing" in statuses else EXIT_UNCHANGED


def _with_config(
    args: argparse.Namespace, command: Callable[[argparse.Namespace, UpstreamConfig], int]
) -> int:
    """Load the upstream named by ``args`` and run ``command`` with it; return its status.

    Raises :class:`UpstreamError` for a bad configuration, and when the fetch cache cannot be
    read (a :class:`pygit2.GitError` from a damaged cache becomes one naming the cache).
    """
    config = _load(args)
    try:
        return command(args, config)
    except pygit2.GitError as exc:
        raise damaged_cache(cache_path(config, args.cache_dir), exc) from None


def check_command(args: argparse.Namespace) -> int:
    """``upstream check NAME``: print the report of each ref; return :func:`exit_status`.

    Raises :class:`UpstreamError`, also when the fetch cache cannot be read (damaged).
    """
    return _with_config(args, _check)


def _check(args: argparse.Namespace, config: UpstreamConfig) -> int:
    states = {ref: read_state(config.state_file, config.name, ref) for ref in config.refs}
    upstreams = fetch_refs(config, args.cache_dir)
    comparisons = [compare(upstream, states[upstream.ref]) for upstream in upstreams]
    status = exit_status(comparisons)
    reports = [build_report(comparison, args.diff) for comparison in comparisons]
    if args.format == "json":
        sys.stdout.write(format_json(config.name, config.url, status, reports))
    elif args.format == "markdown":
        sys.stdout.write("\n".join(format_markdown(report) for report in reports))
    else:
        sys.stdout.write("\n".join(format_text(report) for report in reports))
    return status


def record_command(args: argparse.Namespace) -> int:
    """``upstream record NAME [--ref REF] [--commit SHA] [--failing]``: write the state.

    Raises :class:`UpstreamError`, also when the fetch cache cannot be read (damaged).
    """
    return _with_config(args, _record)


def _record(args: argparse.Namespace, config: UpstreamConfig) -> int:
    if args.commit is not None and len(config.refs) > 1:
        raise UpstreamError(
            f"{config.table} follows several refs ({', '.join(config.refs)}): say which one "
            "--commit belongs to with --ref."
        )
    states = {ref: read_state(config.state_file, config.name, ref) for ref in config.refs}
    recorded, lines = [], []
    for upstream in fetch_refs(config, args.cache_dir):  # Every ref checked before any write.
        commit = upstream.tip if args.commit is None else resolve_commit(upstream, args.commit)
        comparison = compare(upstream, states[upstream.ref], commit)
        recorded.append(comparison.as_failing() if args.failing else comparison.as_verified())
        what = "as failing " if args.failing else ""
        lines.append(
            f"upstream {config.name} {upstream.ref}: recorded {describe_commit(commit)} "
            f"{what}in {config.state_file}"
        )
    write_state(config.state_file, config.name, config.url, *recorded)
    print("\n".join(lines))
    return EXIT_UNCHANGED
