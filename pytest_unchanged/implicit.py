"""Implicit inputs of an item that come from what pytest and Python loaded for it.

* The ``conftest.py`` files pytest considers for the item's directory: pytest's own rule
  (``PytestPluginManager._getconftestmodules``) looks at ``DIR/conftest.py`` for the item's
  directory and every directory above it, up to the filesystem root, leaving out the strict
  ancestors of ``confcutdir`` (``_is_in_confcutdir``). Those that exist are inputs, those that do
  not are inputs with the absent value, so creating one changes the key. The conftest modules
  pytest actually registered for the directory (their ``__file__``) are added too.
* The files defining a Python test: the file of the test function's code object, of each
  function it wraps (``__wrapped__``, as :func:`inspect.unwrap` follows it, ``functools.partial``
  and bound methods' ``__func__``), and, for a method, of the class and each class in its MRO
  (a base class in ``tests/contract.py`` whose test methods the class inherits), and of every
  fixture function the test requests (a fixture in a module loaded with ``pytest_plugins``).
  Items that are not :class:`pytest.Function` (doctests, custom items) keep their own file.
* The ``__init__.py`` of the test's directory and each directory above it in the repository
  (:func:`package_inits`).
* The plugin modules pytest registered (:func:`plugin_files`): inputs of every item.

Files outside the repository are left to the caller to judge (see :class:`.inputs.Resolver`).
pytest's private attributes read here, each guarded (an error gives nothing, never a traceback):
``config.pluginmanager._confcutdir`` and ``_getconftestmodules``, ``item._fixtureinfo``
(``name2fixturedefs``, each ``FixtureDef.func``); all exist from pytest 8.0 to 9.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

__all__ = [
    "ConftestFinder",
    "basedir",
    "confcutdir",
    "defining_files",
    "loaded_conftests",
    "package_inits",
    "plugin_files",
]

MAX_WRAPPERS = 100
"""How many ``__wrapped__``/``func`` links are followed (:func:`inspect.unwrap` stops at
``sys.getrecursionlimit()``; a cycle must end somewhere)."""


class ConftestFinder:
    """The ``conftest.py`` paths pytest looks at for a directory, memoised per directory.

    ``confcutdir`` is pytest's (``config.pluginmanager._confcutdir``: ``--confcutdir``, else
    the configuration file's directory, else the rootdir); ``loaded`` returns the files of the
    conftest modules pytest registered for a directory (empty when unknown).
    """

    def __init__(
        self,
        confcutdir: Path | None,
        loaded: Callable[[Path], Iterable[Path]] | None = None,
    ) -> None:
        self.confcutdir = confcutdir
        self.loaded = loaded
        self._memo: dict[Path, tuple[Path, ...]] = {}

    def candidates(self, directory: Path) -> tuple[Path, ...]:
        """Return the absolute ``conftest.py`` paths for ``directory``, existing or not, top
        first, plus the loaded conftest files pytest reports for it."""
        cached = self._memo.get(directory)
        if cached is None:
            cut = self.confcutdir
            found = {
                parent / "conftest.py": None
                for parent in reversed((directory, *directory.parents))
                if cut is None or parent not in cut.parents
            }
            if self.loaded is not None:
                found.update(dict.fromkeys(self.loaded(directory)))
            cached = self._memo[directory] = tuple(found)
        return cached


def loaded_conftests(config: pytest.Config) -> Callable[[Path], Iterable[Path]]:
    """Return a function giving the files of the conftest modules pytest registered for a
    directory, read from ``config.pluginmanager._getconftestmodules`` (pytest's memo: the
    modules were loaded when the directory was collected). Any error gives an empty result:
    the rule in :class:`ConftestFinder` still lists every place pytest looks."""
    manager: Any = config.pluginmanager

    def loaded(directory: Path) -> list[Path]:
        try:
            try:
                modules = manager._getconftestmodules(directory)
            except TypeError:  # older signature: (path, importmode, rootpath)
                modules = manager._getconftestmodules(
                    directory, config.getoption("importmode"), config.rootpath
                )
            return [Path(m.__file__) for m in modules if getattr(m, "__file__", None)]
        except Exception:
            return []

    return loaded


def confcutdir(config: pytest.Config) -> Path | None:
    """pytest's ``confcutdir`` for this session (``None``: no cut, every parent counts)."""
    value = getattr(config.pluginmanager, "_confcutdir", None)
    if isinstance(value, Path):
        return value
    option = config.getoption("confcutdir", None)
    if option:
        return Path(os.path.abspath(option))
    return config.inipath.parent if config.inipath is not None else config.rootpath


Memo = dict[tuple[int, int, int], tuple[object, tuple[str, ...]]]


def defining_files(item: pytest.Item, memo: Memo) -> tuple[str, ...]:
    """Return the files (absolute, as Python recorded them) that define the test ``item``:
    its function and what it wraps, its class and the MRO, and every fixture function it
    requests (directly or through other fixtures: ``item._fixtureinfo.name2fixturedefs``, each
    definition of an overridden fixture included).

    ``memo`` keeps the answer per test function, parent node and fixture closure (the items of a
    parametrized function share them). Raises nothing: an object whose file cannot be found
    adds nothing (the item's own file is an input anyway).
    """
    if not isinstance(item, pytest.Function):
        return ()
    try:
        obj = item.obj
    except Exception:
        return ()
    function = getattr(obj, "__func__", obj)
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    # The parent decides the class (item.cls walks the tree: asked only on a miss).
    ident = (id(function), id(item.parent), id(fixtureinfo))
    cached = memo.get(ident)
    if cached is None or cached[0] is not function:
        found = dict.fromkeys(_files_of(function, item.cls))
        for fixturedefs in _fixturedefs(fixtureinfo):
            for fixturedef in fixturedefs:
                found.update(dict.fromkeys(_files_of(getattr(fixturedef, "func", None), None)))
        cached = memo[ident] = (function, tuple(found))
    return cached[1]


def _fixturedefs(fixtureinfo: object) -> list[Sequence[object]]:
    try:
        mapping = getattr(fixtureinfo, "name2fixturedefs", None) or {}
        return [defs for defs in mapping.values() if isinstance(defs, Sequence)]
    except Exception:
        return []


def _files_of(function: object, cls: type | None) -> tuple[str, ...]:
    found: dict[str, None] = {}
    current: object = function
    for _ in range(MAX_WRAPPERS):
        code = getattr(current, "__code__", None)
        filename = getattr(code, "co_filename", None)
        if isinstance(filename, str):
            found[filename] = None
        following = getattr(current, "__wrapped__", None)
        if following is None and isinstance(current, functools.partial):
            following = current.func
        following = getattr(following, "__func__", following)
        if following is None or following is current:
            break
        current = following
    for klass in cls.__mro__ if cls is not None else ():
        try:
            filename = inspect.getfile(klass)
        except (TypeError, OSError):
            continue  # a built-in class (object, Exception...)
        found[filename] = None
    return tuple(f for f in found if os.path.isabs(f))


def plugin_files(config: pytest.Config) -> list[Path]:
    """Return the absolute files of the plugin modules registered with ``config``'s plugin
    manager (not conftests), of the modules defining registered plugin objects' classes, and
    of the ``__init__.py`` of each package above them, sorted. Raises nothing: a plugin whose
    file cannot be found adds nothing.

    A plugin's hooks run for every test, so each plugin module inside the repository is an
    input of every item however it was loaded (``-p NAME``, ``PYTEST_PLUGINS``,
    ``pytest_plugins = [...]``, a ``pytest11`` entry point of a distribution installed from
    this worktree): read from what pytest loaded (``config.pluginmanager.get_plugins()``),
    never from a list of names. Importing ``pkg.plugin`` also ran ``pkg/__init__.py`` (read
    from :data:`sys.modules`). Conftests are inputs of the items below them only. Files
    outside the repository are environment facets (see :mod:`.outside`).
    """
    found: set[Path] = set()
    try:
        plugins = list(config.pluginmanager.get_plugins())
    except Exception:
        return []
    for plugin in plugins:
        module = plugin if isinstance(plugin, ModuleType) else _defining_module(plugin)
        if module is None:
            continue
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not os.path.isabs(file):
            continue
        if Path(file).name == "conftest.py":
            continue  # an input of the items below it, with the packages above it
        found.add(Path(file))
        found.update(_parent_files(module))
    return sorted(found)


def _defining_module(plugin: object) -> ModuleType | None:
    name = getattr(type(plugin), "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def _parent_files(module: ModuleType) -> list[Path]:
    """The files of the packages above ``module`` (``a`` and ``a.b`` for ``a.b.c``)."""
    name = getattr(module, "__name__", "")
    found = []
    parts = name.split(".") if isinstance(name, str) else []
    for depth in range(1, len(parts)):
        parent = sys.modules.get(".".join(parts[:depth]))
        file = getattr(parent, "__file__", None)
        if isinstance(file, str) and os.path.isabs(file):
            found.append(Path(file))
    return found


def package_inits(directory: str) -> list[str]:
    """Return ``__init__.py`` in ``directory`` (relative to the top of the repository, ``""``
    for the top) and in every directory above it up to the top, existing or not.

    Importing a test module inside a package runs the ``__init__.py`` of every package above
    it (pytest's ``prepend``/``append`` modes import it under its dotted name, ``importlib``
    from pytest 8.1 does too): each is an input. One that does not exist is an input with the
    absent value, so creating it (which changes the module's name and what runs when it is
    imported) changes the key. Directories above the repository are not listed.
    """
    found = []
    parts = [part for part in directory.split("/") if part]
    for depth in range(len(parts), -1, -1):
        found.append("/".join([*parts[:depth], "__init__.py"]))
    return found


def basedir(path: Path) -> Path:
    """The directory pytest's ``prepend`` and ``append`` import modes put on ``sys.path`` for
    the module at ``path``: the first directory above it that is not a package."""
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory
