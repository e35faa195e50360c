"""A module summary never stands on a static closure that a collection proved wrong.

A module summary stands for a test module while its static collection closure
(:func:`.collection.collection_closure`) is unchanged. Code can reach a worktree module by a
string the static reader cannot follow (``pickle``, ``importlib.metadata`` entry points, a
plugin registry): the module collected then depends on a file no summary scope holds, and the
fast path would leave it unimported after that file changed (adversarial review of issue 10,
round 3, finding 7). So this plugin notes the worktree modules new in ``sys.modules`` while each
test module is collected; one not in the static import closure of the module that loaded it is
*dynamically reached*, and no summary is written this session for a module whose closure lacks
a dynamically reached module (it is collected, as on the slow path, until a session writes its
summary with no such module). Each pytest-xdist worker decides for the modules it collected.
The same holds for the worktree modules loaded while pytest loaded its plugins and initial
conftests (what ``sys.modules`` holds as this plugin is registered) and while any other
collector (a directory, a package: where conftests load) was collected: those not in the static
closure of the conftests and plugin modules pytest loaded are dynamically reached (round 4,
finding 05: a conftest that parametrizes from a module it loads by a string). A module reached
only from ``sys.modules`` (first loaded by a static import elsewhere, or inside
``mock.patch.dict(sys.modules)``) is not seen here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterable
from pathlib import Path
from types import ModuleType

import pytest

from . import selection
from .summaries import module_file

__all__ = ["CollectionWatch", "plugins_closure", "register"]


def register(config: pytest.Config) -> None:
    """Register :class:`CollectionWatch` when pytest-unchanged is active."""
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is not None:
        config.pluginmanager.register(CollectionWatch(core), "unchanged-collection-watch")


class CollectionWatch:
    """The plugin: what each test module's collection loaded, checked against its closure."""

    def __init__(self, core: selection.UnchangedPlugin) -> None:
        self.core = core
        self.loaded: dict[str, tuple[str, frozenset[str]]] = {}
        """By module file (nodeid part): its worktree path and the worktree files its
        collection loaded."""
        self.elsewhere: set[str] = set(_files(sys.modules))
        """Files of modules loaded outside every test module's collection (plugins, initial
        conftests, the conftests directories and packages load)."""
        self._seen: set[str] = set()
        self._directories: dict[str, str | None] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        before = set(sys.modules)
        try:
            return (yield)
        finally:
            # Windows nest (a directory holds modules): each file goes to the innermost one.
            files = set(_files(set(sys.modules) - before)) - self._seen
            self._seen.update(files)
            if not isinstance(collector, pytest.Module):
                self.elsewhere.update(files)
            else:
                try:
                    own = self._relative(str(collector.path))
                    found = {self._relative(file) for file in files}
                    if own is not None:
                        paths = frozenset(path for path in found if path is not None)
                        self.loaded[module_file(collector.nodeid)] = (own, paths)
                except Exception:  # never break collection: no summary for this module
                    self.loaded[module_file(collector.nodeid)] = ("", frozenset({""}))

    def _relative(self, file: str) -> str | None:
        """The worktree path of ``file``, ``None`` when outside it or in a distribution."""
        directory, name = os.path.split(os.path.abspath(file))
        if directory not in self._directories:  # one look-up per directory (a resolve)
            try:
                rel = self.core.context.worktree.relpath(directory)
            except ValueError:
                rel = None
            parts = rel.split("/") if rel is not None else []
            if "site-packages" in parts or "dist-packages" in parts:
                rel = None
            self._directories[directory] = rel
        rel = self._directories[directory]
        if rel is None and os.path.islink(file):  # a link into the worktree from outside
            try:
                return self.core.context.worktree.relpath(os.path.realpath(file))
            except ValueError:
                return None
        return None if rel is None else f"{rel}/{name}" if rel else name

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Before summaries are kept: drop those whose closure lacks a dynamically reached
        module."""
        try:
            self._check()
        except Exception:  # never break a run: no summary at all
            self.core.summaries.clear()
        return (yield)

    def _check(self) -> None:
        resolver = self.core.context.resolver
        closures: dict[str, frozenset[str]] = {}

        def closure(own: str) -> frozenset[str]:
            """``own``, its packages' ``__init__.py`` and its static import closure."""
            if own not in closures:
                parts = own.split("/")
                packages = ["/".join([*parts[:i], "__init__.py"]) for i in range(1, len(parts))]
                closures[own] = frozenset([own, *packages, *resolver.import_closure([own])])
            return closures[own]

        dynamic: set[str] = set()
        for own, found in self.loaded.values():
            if found:
                dynamic.update(found - closure(own) if own else {""})
        elsewhere = {p for p in map(self._relative, self.elsewhere) if p is not None}
        if elsewhere:
            dynamic.update(elsewhere - plugins_closure(self.core))
        if not dynamic:
            return
        for file in list(self.core.summaries):
            own = self.loaded.get(file, ("", frozenset()))[0]
            if not own or not dynamic <= closure(own):
                del self.core.summaries[file]


def _files(names: Iterable[str]) -> list[str]:
    """The ``__file__`` of each module of ``sys.modules`` named in ``names``."""
    found = []
    for name in list(names):
        file = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(file, str):
            found.append(file)
    return found


def plugins_closure(core: selection.UnchangedPlugin) -> frozenset[str]:
    """The worktree paths of the conftests and plugin modules pytest registered, and their
    static import closure: what loading plugins and conftests is predicted to load."""
    resolver = core.context.resolver
    files = set(resolver.plugin_files)
    for plugin in core.config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None) if isinstance(plugin, ModuleType) else None
        if isinstance(file, str):
            files.add(Path(file))
    start = []
    for file in files:
        try:
            start.append(resolver.worktree.relpath(file))
        except ValueError:
            continue
    return frozenset([*start, *resolver.import_closure(start)])
