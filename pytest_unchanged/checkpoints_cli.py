"""The ``checkpoint`` and ``changed`` commands, for shell deploy scripts.

``checkpoint PATH...`` records the git OIDs of the paths; ``changed PATH...`` exits 0 when any
of them changed since, 1 when none did, so ``if pytest-unchanged changed requirements/; then
pip install -r requirements/base.txt; fi`` reads naturally. Errors (a path never checkpointed, a
corrupt state file, an unreadable path) are raised as
:class:`~pytest_unchanged.checkpoints.CheckpointError` and turned into exit status 2 by
:func:`pytest_unchanged.__main__.main`.
"""

from __future__ import annotations

import argparse
import glob as globmod
import os
import sys
from pathlib import Path

from .checkpoints import DEFAULT_NAME, Change, Checkpoints, checkpoint, compare, state_file_of
from .gitobjects import ABSENT, MODE_BLOB, MODE_TREE, Entry

__all__ = ["add_checkpoint_commands"]

EXIT_CHANGED = 0
EXIT_UNCHANGED = 1

CHECKPOINT_HELP = """\
Record the git OIDs of PATHs (files, directories, globs) under a checkpoint name.

Inside a git worktree a file is its blob OID as `git hash-object` prints it and a directory its
tree OID as `git add -A` would write it (untracked files count, ignored ones do not); outside
git, plain OIDs (no filters). A missing path is recorded as absent: creating it is a change.
The state file defaults to .git/pytest-unchanged/checkpoints.json (the worktree's git
directory), else $XDG_STATE_HOME/pytest-unchanged/checkpoints.json.
"""

CHANGED_HELP = """\
Exit 0 when any PATH changed since it was checkpointed, 1 when none did, 2 on error (a PATH
never checkpointed under --name, a corrupt state file, an unreadable path):

  pytest-unchanged checkpoint requirements/ --name before-pull
  git pull
  if pytest-unchanged changed requirements/ --name before-pull; then
      pip install -r requirements/base.txt
  fi
"""


def add_checkpoint_commands(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``checkpoint`` and ``changed`` commands to the command groups ``groups``."""
    record = groups.add_parser(
        "checkpoint", help="Record the git OIDs of paths under a checkpoint name",
        description=CHECKPOINT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    record.set_defaults(handler=checkpoint_command)
    compare = groups.add_parser(
        "changed", help="Exit 0 when a path changed since its checkpoint, 1 when not",
        description=CHANGED_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    compare.set_defaults(handler=changed_command)
    for command in (record, compare):
        command.add_argument(
            "paths", nargs="+", metavar="PATH", help="A file, a directory or a quoted glob"
        )
        command.add_argument(
            "--name", default=DEFAULT_NAME, metavar="N",
            help=f"The checkpoint name, for scripts that keep several (default: {DEFAULT_NAME})",
        )  # fmt: skip
        command.add_argument(
            "--state", type=Path, metavar="FILE",
            help="The JSON state file (default: pytest-unchanged/checkpoints.json in the "
            "repository's git directory, else in $XDG_STATE_HOME)",
        )  # fmt: skip
        command.add_argument(
            "-v", "--verbose", action="store_true", help="Print the OIDs of every path"
        )


def checkpoint_command(args: argparse.Namespace) -> int:
    """``checkpoint PATH... [--name N] [--state FILE] [--verbose]``: record; 0 on success."""
    paths: list[str] = args.paths
    if args.state is not None:
        recorded = Checkpoints(args.state).checkpoint(*paths, name=args.name)
    else:
        recorded = checkpoint(*paths, name=args.name)
    for path in paths:
        if globmod.has_magic(path):
            if not globmod.glob(path, recursive=True):
                print(
                    f"pytest-unchanged: note: {path} matches nothing; a path matching it later "
                    "will count as a change",
                    file=sys.stderr,
                )
        elif not os.path.lexists(path):
            print(
                f"pytest-unchanged: note: {path} does not exist; it is recorded as absent, so "
                "creating it will count as a change",
                file=sys.stderr,
            )
    if args.verbose:
        for path, entry in recorded.items():
            print(f"{_shown(path)}: {_describe(entry)}")
        states = {args.state} if args.state else {state_file_of(path) for path in paths}
        for state in sorted(states):
            print(f"checkpoint {args.name!r} written to {state}")
    return 0


def changed_command(args: argparse.Namespace) -> int:
    """``changed PATH... [--name N] [--state FILE] [--verbose]``: 0 changed, 1 unchanged."""
    paths: list[str] = args.paths
    if args.state is not None:
        changes = Checkpoints(args.state).compare(*paths, name=args.name)
    else:
        changes = compare(*paths, name=args.name)
    if args.verbose:
        for change in changes:
            print(_report_line(change))
    return EXIT_CHANGED if any(change.changed for change in changes) else EXIT_UNCHANGED


def _report_line(change: Change) -> str:
    if change.changed:
        return f"{_shown(change.path)}: {_describe(change.old)} → {_describe(change.new)}"
    return f"{_shown(change.path)}: {_describe(change.new)} (unchanged)"


def _describe(entry: Entry) -> str:
    """The OID of ``entry`` as printed: ``absent``, the hex OID, and the mode when unusual."""
    if entry == ABSENT:
        return "absent"
    if entry.mode in (MODE_BLOB, MODE_TREE):
        return entry.describe()
    return f"{entry.describe()} ({entry.mode})"


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
