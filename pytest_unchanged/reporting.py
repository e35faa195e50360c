"""What the session plugin tells the user: store warnings, skip reasons, the status lines.

Kept apart from :mod:`.selection` (which decides) so wording and counts change in one place.
A store warning never becomes an exception (see :func:`issue_warning`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from .records import CorruptStoreError, Record, utc_text
from .warning_types import CorruptStoreWarning, PytestUnchangedWarning, StoreUnavailableWarning

__all__ = [
    "bad_marks_message",
    "collected_whole",
    "collection_line",
    "issue_warning",
    "plural",
    "skip_reason",
    "store_warning",
]


def store_warning(error: Exception) -> PytestUnchangedWarning:
    """Return the warning for a store ``error``: damaged (moved aside) or unavailable."""
    if isinstance(error, CorruptStoreError):
        return CorruptStoreWarning(
            f"{error}; running every test and starting a new store (the old file is kept "
            "beside it as *.corrupt)"
        )
    return StoreUnavailableWarning(
        f"{error}; running every test, and this session's results may not be recorded"
    )


def issue_warning(config: pytest.Config, warning: PytestUnchangedWarning) -> None:
    """Issue ``warning`` through pytest's config-time warnings, never as an exception.

    A store warning is issued in the middle of recovery (a damaged store moved aside, a session
    written to a new store). Under ``-W error`` or ``filterwarnings = error`` pytest would raise
    it there and break the recovery and the run, so a warning the user's filters turn into an
    error is recorded as a warning instead (it shows in the warnings summary); ``ignore``
    filters still hide it.
    """
    try:
        config.issue_config_time_warning(warning, stacklevel=3)
    except PytestUnchangedWarning:
        message = warnings.WarningMessage(warning, type(warning), __file__, 0)
        config.hook.pytest_warning_recorded.call_historic(
            kwargs={"warning_message": message, "when": "config", "nodeid": "", "location": None}
        )


def skip_reason(record: Record) -> str:
    when = utc_text(record.passed_at)
    commit = record.head[:10] if record.head else "no commit yet"
    source = f", from source {record.source}" if record.source else ""
    return f"unchanged since it passed at {when} (HEAD {commit}{source})"


def plural(count: int, noun: str) -> str:
    """Return ``noun`` as it goes after ``count``: ``test`` for 1, ``tests`` otherwise."""
    return noun if count == 1 else f"{noun}s"


def bad_marks_message(errors: dict[str, list[str]]) -> str:
    """Return the usage error for bad ``depends_on`` marks: ``errors`` maps each message to the
    nodeids of the items it concerns (a mark on a parametrized test or a class concerns many),
    and each message is said once, naming its first item."""
    lines = []
    for message, nodeids in errors.items():
        more = len(nodeids) - 1
        where = nodeids[0] + (f" (and {more} more {plural(more, 'item')})" if more else "")
        lines.append(f"{where}: {message}")
    return f"bad depends_on {plural(len(lines), 'mark')}:\n  " + "\n  ".join(lines)


def collection_line(count: int, verb: str, uncollected: int, deselected: int, to_run: int) -> str:
    """Return the collection status line: ``count`` unchanged items collected and ``verb``
    (skipped, deselected...), ``uncollected`` left unimported by the fast path, ``deselected``
    of those deselected by ``-m``, and ``to_run``."""
    if not uncollected:
        line = f"unchanged: {count:,} unchanged ({verb}), {to_run:,} to run"
    else:
        line = (
            f"unchanged: {count + uncollected:,} unchanged ({uncollected:,} not collected, "
            f"{count:,} {verb}), {to_run:,} to run"
        )
    if deselected:
        line += f", {deselected:,} deselected by -m (not collected)"
    return line


def collected_whole(config: pytest.Config, path: Path, file: str) -> bool:
    """Whether the command line would collect all of test module ``file`` (at ``path``).

    It must lie under a path argument (pytest 8 offers every module of a directory to
    ``pytest_ignore_collect``, also those no argument names) and no ``--deselect`` prefix may
    name part of it; only such a module is left out and counted as "not collected". Arguments
    that are not paths (``--pyargs`` names) select everything.
    """
    roots = [
        Path(os.path.abspath(config.invocation_params.dir / arg.partition("::")[0]))
        for arg in config.args
    ]
    if (
        roots
        and all(root.exists() for root in roots)
        and not any(path == root or root in path.parents for root in roots)
    ):
        return False
    deselect = config.getoption("deselect", None) or []
    return not any(str(p).startswith(file) or file.startswith(str(p)) for p in deselect)
