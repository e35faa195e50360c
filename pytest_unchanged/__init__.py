"""pytest-unchanged: skip tests whose declared inputs have not changed, by git object ID.

The public API: the warning classes, :class:`Worktree` for the OIDs of worktree paths, and
:class:`Store` for the pass records. The pytest plugin itself is ``pytest_unchanged.plugin``
(entry point ``unchanged``; disable it with ``-p no:unchanged``).
"""

from __future__ import annotations

from .store import CorruptStoreError, Record, Store, StoreBusyError, StoreError
from .warning_types import (
    ConflictingPluginWarning,
    CorruptStoreWarning,
    PytestUnchangedWarning,
    StoreUnavailableWarning,
    UnkeyableInputWarning,
    UnknownPathWarning,
)
from .worktree import ABSENT, Entry, NotARepositoryError, Worktree

__version__ = "0.1.0.dev0"

__all__ = [
    "ABSENT",
    "ConflictingPluginWarning",
    "CorruptStoreError",
    "CorruptStoreWarning",
    "Entry",
    "NotARepositoryError",
    "PytestUnchangedWarning",
    "Record",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoreUnavailableWarning",
    "UnkeyableInputWarning",
    "UnknownPathWarning",
    "Worktree",
    "__version__",
]
