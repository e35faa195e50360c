"""pytest-unchanged: skip tests whose declared inputs have not changed, by git object ID.

The public API: the warning classes, :class:`Worktree` for the OIDs of worktree paths,
:class:`Store` for the pass records, and checkpoints for deploy scripts (:func:`checkpoint`,
:func:`same`, :func:`changed`, :class:`Checkpoints`, :class:`NotCheckpointed`). The pytest
plugin itself is ``pytest_unchanged.plugin`` (entry point ``unchanged``; disable it with
``-p no:unchanged``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_MODULE_OF = {
    "ABSENT": "worktree",
    "CheckpointError": "checkpoints",
    "Checkpoints": "checkpoints",
    "ConflictingPluginWarning": "warning_types",
    "CorruptCheckpointsError": "checkpoints",
    "CorruptStoreError": "store",
    "CorruptStoreWarning": "warning_types",
    "Entry": "worktree",
    "NotARepositoryError": "worktree",
    "NotCheckpointed": "checkpoints",
    "PytestUnchangedWarning": "warning_types",
    "Record": "store",
    "Store": "store",
    "StoreBusyError": "store",
    "StoreError": "store",
    "StoreUnavailableWarning": "warning_types",
    "UnkeyableInputWarning": "warning_types",
    "UnknownPathWarning": "warning_types",
    "Worktree": "worktree",
    "changed": "checkpoints",
    "checkpoint": "checkpoints",
    "same": "checkpoints",
}
"""Where each public name lives: imported on first use (PEP 562), so the command lines that
need only part of the package (``pytest-unchanged upstream ...``) do not pay for the rest."""


def __getattr__(name: str) -> object:
    """Import the public ``name`` from its module on first access.

    Raises :class:`AttributeError` for a name the package does not export.
    """
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
