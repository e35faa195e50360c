"""pytest-unchanged: skip tests whose declared inputs have not changed, by git object ID.

The public API: the warning classes, :class:`Worktree` for the OIDs of worktree paths,
:class:`Store` for the pass records, and checkpoints for deploy scripts (:func:`checkpoint`,
:func:`same`, :func:`changed`, :class:`Checkpoints`, :class:`NotCheckpointed`). The pytest
plugin itself is ``pytest_unchanged.plugin`` (entry point ``unchanged``; disable it with
``-p no:unchanged``).
"""

from __future__ import annotations

from .checkpoints import (
    CheckpointError,
    Checkpoints,
    CorruptCheckpointsError,
    NotCheckpointed,
    changed,
    checkpoint,
    same,
)
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
    "CheckpointError",
    "Checkpoints",
    "ConflictingPluginWarning",
    "CorruptCheckpointsError",
    "CorruptStoreError",
    "CorruptStoreWarning",
    "Entry",
    "NotARepositoryError",
    "NotCheckpointed",
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
    "changed",
    "checkpoint",
    "same",
]
