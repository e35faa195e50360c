"""Where a top-level module name that no import root holds is found: outside the worktree
(the standard library, an installed distribution, one of pytest's own plugins), through an
import hook into the worktree (an editable install's finder), or nowhere (see :mod:`.imports`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Literal

from .import_refs import PLUGIN
from .worktree import Worktree

__all__ = ["INSTALLED", "NOWHERE", "Found", "Outside"]

Found = tuple[Path | None, list[Path]]
"""One place a name was found: its file (``None``: a namespace portion) and its ``__path__``."""

INSTALLED: Literal["installed"] = "installed"
NOWHERE: Literal["nowhere"] = "nowhere"

_META_PATH = tuple(sys.meta_path)
"""The import hooks installed when the plugin was loaded (an editable install's finder, say),
taken once, so every resolution in every session of this environment sees the same ones."""
_SKIPPED_FINDERS = frozenset(
    {"PathFinder", "BuiltinImporter", "FrozenImporter", "AssertionRewritingHook"}
)


class Outside:
    """Looks top-level names up outside the import roots, once per name.

    ``worktree`` says what is inside the repository; ``entries`` are the ``sys.path`` entries
    that are not import roots (site-packages, the standard library's directories, ignored
    directories), searched with :class:`importlib.machinery.PathFinder`.
    """

    def __init__(self, worktree: Worktree, entries: Sequence[str]) -> None:
        self.worktree = worktree
        self.entries = list(entries)
        self._memo: dict[tuple[str, bool], Found | Literal["installed", "nowhere"]] = {}

    def find(self, name: str, kind: str) -> Found | Literal["installed", "nowhere"]:
        """Return :data:`INSTALLED` when ``name`` is found outside the worktree, where an import
        hook finds it inside the worktree, or :data:`NOWHERE`. ``kind`` is the import's kind
        (a ``pytest_plugins`` entry may name one of pytest's own plugins)."""
        key = (name, kind == PLUGIN)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._find(name, kind == PLUGIN)
        return found

    def _find(self, name: str, plugin: bool) -> Found | Literal["installed", "nowhere"]:
        if name in sys.stdlib_module_names or name in sys.builtin_module_names:
            return INSTALLED
        if plugin and name in _builtin_plugins():
            return INSTALLED
        if PathFinder.find_spec(name, self.entries) is not None:
            return INSTALLED
        for finder in _META_PATH:
            if type(finder).__name__ in _SKIPPED_FINDERS:
                continue
            find_spec = getattr(finder, "find_spec", None)
            try:
                spec = None if find_spec is None else find_spec(name, None)
            except Exception:
                continue
            if spec is None:
                continue
            origin = Path(spec.origin) if spec.origin and spec.has_location else None
            below = [Path(p) for p in spec.submodule_search_locations or ()]
            inside = [p for p in [*([origin] if origin else []), *below] if self._inside(p)]
            return (origin, below) if inside else INSTALLED
        return NOWHERE

    def _inside(self, path: Path) -> bool:
        try:
            self.worktree.relpath(path)
        except ValueError:
            return False
        return True


def _builtin_plugins() -> frozenset[str]:
    """The ``pytest_plugins`` names pytest maps to its own modules (``pytester``...)."""
    try:
        from _pytest.config import builtin_plugins
    except ImportError:  # pragma: no cover - pytest always has it
        return frozenset({"pytester"})
    return frozenset(builtin_plugins)
