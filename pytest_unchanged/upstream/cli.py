"""The ``upstream`` command group: ``check NAME`` and ``record NAME``.

``check`` exits 0 when no watched path moved since the verified commit, 1 when something moved
or nothing was verified yet (with a report); ``record`` writes the verified state. Errors are
raised as :class:`~pytest_unchanged.upstream.config.UpstreamError` and turned into exit status 2
by :func:`pytest_unchanged.__main__.main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import UpstreamConfig, find_pyproject, load_upstream_config
from .fetch import compare, fetch_upstream, resolve_commit
from .report import describe_commit, format_report
from .state import read_verified, write_verified

EXIT_UNCHANGED = 0
EXIT_CHANGED = 1

UPSTREAM_HELP = """\
Watch paths of an upstream repository configured in [tool.pytest-unchanged.upstream.NAME].

  check NAME    exit 0: no watched path moved since the verified commit;
                exit 1: something moved, or nothing was verified yet (with a report)
  record NAME   mark the fetched tip (or --commit SHA) as verified

Any error exits with status 2 and a one-paragraph message; the verified state is then untouched.
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
    check.set_defaults(handler=check_command)
    record = actions.add_parser("record", help="Mark the fetched tip (or --commit) as verified")
    record.add_argument("--commit", metavar="SHA", help="Record this commit instead of the tip")
    record.set_defaults(handler=record_command)
    for action in (check, record):
        action.add_argument(
            "name", metavar="NAME", help="The table [tool.pytest-unchanged.upstream.NAME]"
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
    return load_upstream_config(pyproject, args.name)


def check_command(args: argparse.Namespace) -> int:
    """``upstream check NAME``: print the report; 0 when nothing moved, else 1."""
    config = _load(args)
    verified = read_verified(config.state_file, config.name)
    comparison = compare(fetch_upstream(config, args.cache_dir), verified)
    sys.stdout.write(format_report(comparison))
    return EXIT_CHANGED if comparison.changed else EXIT_UNCHANGED


def record_command(args: argparse.Namespace) -> int:
    """``upstream record NAME [--commit SHA]``: write the verified state; 0 on success."""
    config = _load(args)
    read_verified(config.state_file, config.name)  # A corrupt file is an error, not replaced.
    upstream = fetch_upstream(config, args.cache_dir)
    commit = resolve_commit(upstream, args.commit) if args.commit else upstream.tip
    write_verified(config.state_file, config.name, compare(upstream, None, commit).as_verified())
    print(f"upstream {config.name}: recorded {describe_commit(commit)} in {config.state_file}")
    return EXIT_UNCHANGED
