"""The command line: ``python -m pytest_unchanged`` (or ``pytest-unchanged``).

Subcommands::

    upstream check NAME   exit 0: no watched path moved since the verified commit;
                          exit 1: something moved, or nothing was verified yet (with a report);
                          exit 3: still failing where the tests last failed, nothing new moved
    upstream record NAME  mark the fetched tip (or --commit SHA) as verified (or --failing)
    checkpoint PATH...    record the git OIDs of paths under a checkpoint name (--name N)
    changed PATH...       exit 0: a path changed since its checkpoint; exit 1: none did
    records ...           show, stats, forget, export, import, push, fetch (see records --help)

Any error exits with status 2 and a one-paragraph message, without a traceback; the verified
state is then untouched. Each command group is a function that adds its subparsers, so new
groups are added beside :func:`add_upstream_commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .checkpoints_cli import add_checkpoint_commands
from .checkpoints_state import CheckpointError
from .exchange import SharingError
from .records import StoreError
from .records_cli import add_records_commands
from .upstream.cli import add_upstream_commands
from .upstream.config import UpstreamError

__all__ = ["main"]

EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Usage errors exit through argparse with status 2; an :class:`UpstreamError`, a
    :class:`CheckpointError`, a :class:`SharingError` or a :class:`StoreError` is printed to
    stderr and gives status 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (UpstreamError, CheckpointError, SharingError, StoreError) as exc:
        print(f"pytest-unchanged: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("pytest-unchanged: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command group added."""
    parser = argparse.ArgumentParser(
        prog="pytest-unchanged", description="Commands of pytest-unchanged outside pytest."
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    add_upstream_commands(groups)
    add_checkpoint_commands(groups)
    add_records_commands(groups)
    return parser


if __name__ == "__main__":
    sys.exit(main())
