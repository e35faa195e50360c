"""Warning classes of pytest-unchanged (after pytest-cov's ``PytestCovWarning``)."""

from __future__ import annotations

import pytest

__all__ = [
    "ConflictingPluginWarning",
    "CorruptStoreWarning",
    "PytestUnchangedWarning",
    "StoreUnavailableWarning",
    "UnkeyableInputWarning",
    "UnknownPathWarning",
]


class PytestUnchangedWarning(pytest.PytestWarning):
    """Base class of every warning this plugin issues; never issued itself.

    Filter them all with ``-W ignore::pytest_unchanged.PytestUnchangedWarning``.
    """


class UnknownPathWarning(PytestUnchangedWarning):
    """A ``depends_on`` path or pattern matches nothing in the worktree (the test runs)."""


class CorruptStoreWarning(PytestUnchangedWarning):
    """The pass store could not be read; every test runs and a new store is started."""


class ConflictingPluginWarning(PytestUnchangedWarning):
    """Another installed plugin defines a ``depends_on`` marker; pytest-unchanged stays off."""


class StoreUnavailableWarning(PytestUnchangedWarning):
    """The pass store is locked by another process too long, or SQLite cannot use it (a full
    disk, no permission); nothing is discarded, every test runs, and results may go unrecorded."""


class UnkeyableInputWarning(PytestUnchangedWarning):
    """An input of a test cannot be keyed: a symlink (or a conftest pytest loaded) outside the
    repository, a worktree file that cannot be read (no permission, a name not encodable),
    unreadable index flags. The test runs every time; the others are not affected. Also issued
    when git cannot open the repository at all (one another user owns): the plugin stays off."""
