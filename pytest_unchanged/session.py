"""Per-session state, built once: worktree status, ``HEAD``, environment, resolver, store.

Everything here is read at most once per pytest session (per xdist worker), so per-item work
during collection is a dictionary lookup plus one small digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .collection import collection_closure
from .environment import environment_facets
from .fastpath import mark_selector, unchanged_module
from .implicit import ConftestFinder, confcutdir, loaded_conftests, plugin_files
from .inputs import Resolver
from .keys import canonical_json, digest
from .outside import outside_code
from .shared import trusted_records
from .store import CorruptStoreError, Record, Store, StoreError
from .summaries import StoredModule, UnchangedModule
from .worktree import Worktree

if TYPE_CHECKING:
    import pytest

__all__ = [
    "COLLECTION_OPTIONS",
    "Context",
    "configuration_facets",
    "explicit_paths",
    "partial_files",
    "registered_conftests",
]

COLLECTION_OPTIONS = (
    "inifilename",
    "rootdir",
    "confcutdir",
    "noconftest",
    "importmode",
    "plugins",
    "pyargs",
    "ignore",
    "ignore_glob",
    "keepduplicates",
    "collect_in_virtualenv",
    "doctestmodules",
    "doctestglob",
    "pythonwarnings",
)
"""pytest's options (``dest`` names) that decide which files are collected, how they are
imported, which items they hold or how a test ends: part of a module summary's scope even when
the environment facets leave them out. Options a pytest version lacks are read as ``None``.
``-o`` overrides are read through the ini values they change."""

REPORTING_INI = frozenset(
    {
        "unchanged",
        "unchanged_explain",
        "unchanged_fast_path",
        "unchanged_max_age_days",
        "unchanged_max_keys",
        "unchanged_mode",
    }
)
"""This plugin's ini options that only turn skipping on, choose how it is reported or how long
records are kept: they never change an input, a key or what is collected, so a summary written
with ``unchanged_fast_path = false`` (or by a run without ``--unchanged``) still counts."""


@dataclass
class Context:
    """What one session knows about the repository, the environment and the store.

    ``warn`` is called with the :class:`~pytest_unchanged.store.StoreError` when the store
    cannot be read; ``discard_corrupt`` says whether this process may replace a damaged store
    (only the process that writes).
    """

    worktree: Worktree
    resolver: Resolver
    env_id: str
    env_body: str
    store_path: Path
    warn: Callable[[Exception], None]
    discard_corrupt: bool
    explicit: frozenset[Path] = frozenset()
    mark_expression: str | None = None
    config_id: str = ""
    registered_conftests: Callable[[], Iterable[Path]] = tuple
    trusted_sources: tuple[str, ...] = ()
    _store: Store | None = None
    _store_failed: bool = False
    _candidates: dict[str, list[StoredModule]] | None = field(default=None, repr=False)
    _selects: Callable[[frozenset[str]], bool] | None = field(default=None, repr=False)
    _scopes: dict[Path, str] = field(default_factory=dict, repr=False)
    _records: dict[str, dict[str, Record]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        rootdir: Path,
        *,
        config_file: Path | None,
        global_inputs: Iterable[str],
        default: Iterable[str],
        env_names: Iterable[str],
        salt: str,
        extra_facets: Iterable[Mapping[str, str | None]],
        store_path: Path,
        warn: Callable[[Exception], None],
        discard_corrupt: bool,
        explicit: Iterable[Path] = (),
        mark_expression: str | None = None,
        pytest_config: pytest.Config | None = None,
        import_path: Iterable[str] | None = None,
        trusted_sources: Iterable[str] = (),
        ignore_distributions: Iterable[str] = (),
    ) -> Context:
        """Read status and ``HEAD`` once, compute the environment facets, and return a context.

        ``pytest_config`` is the session's configuration: module summaries are valid only under
        the same one (see :func:`configuration_facets` and :meth:`scope`); ``import_path`` is
        ``sys.path`` as the session began (see :class:`~pytest_unchanged.inputs.Resolver`).

        Raises :class:`~pytest_unchanged.worktree.NotARepositoryError` outside a worktree.
        """
        worktree = Worktree.discover(rootdir, tolerant=True)
        outside = outside_code(worktree.root, ignored := tuple(ignore_distributions), import_path)
        facets = environment_facets(env_names, salt, [outside.facets, *extra_facets], ignored)
        resolver = Resolver(
            worktree,
            rootdir,
            config_file=config_file,
            global_inputs=tuple(global_inputs),
            default=tuple(default),
            import_path=None if import_path is None else tuple(import_path),
            plugin_files=() if pytest_config is None else plugin_files(pytest_config),
            problem="; ".join(outside.problems) or None,
        )
        if pytest_config is not None:
            # The conftests pytest looks at and loaded: the same for the fast path (before a
            # module is collected) and for keys at collection, both memoised per directory.
            resolver.conftests = ConftestFinder(
                confcutdir(pytest_config), loaded_conftests(pytest_config)
            )
        return cls(
            worktree=worktree,
            resolver=resolver,
            env_id=digest(facets),
            env_body=canonical_json(facets),
            store_path=store_path,
            warn=warn,
            discard_corrupt=discard_corrupt,
            explicit=frozenset(explicit),
            mark_expression=mark_expression,
            config_id=digest(
                None if pytest_config is None else configuration_facets(pytest_config)
            ),
            registered_conftests=(
                tuple if pytest_config is None else lambda: registered_conftests(pytest_config)
            ),
            trusted_sources=tuple(trusted_sources),
        )

    @property
    def store(self) -> Store | None:
        """The store, opened once; ``None`` when it cannot be read (after a warning)."""
        if self._store is None and not self._store_failed:
            self._store = self._open()
            self._store_failed = self._store is None
        return self._store

    def _open(self) -> Store | None:
        try:
            return Store(self.store_path)
        except StoreError as error:
            self.warn(error)
            if not isinstance(error, CorruptStoreError) or not self.discard_corrupt:
                return None
        Store.discard(self.store_path)
        try:
            return Store(self.store_path)
        except StoreError as error:
            self.warn(error)
            return None

    def records(self, nodeids: Iterable[str]) -> dict[str, dict[str, Record]]:
        """Return the stored records of ``nodeids``; none when the store cannot be read.

        Each nodeid is read from the store at most once per session (selection and
        ``--unchanged-explain`` ask for the same items). Records fetched from other sources are
        added under keys with no local record, only from ``trusted_sources`` (see
        :mod:`pytest_unchanged.shared`).
        """
        wanted = list(dict.fromkeys(nodeids))
        missing = [nodeid for nodeid in wanted if nodeid not in self._records]
        store = self.store
        if missing and store is not None:
            try:
                found = store.records(missing)
                shared = trusted_records(store, missing, self.trusted_sources)
            except StoreError as error:
                self.warn(error)
                found, shared = {}, {}
            for nodeid, by_key in shared.items():
                found[nodeid] = {**by_key, **found.get(nodeid, {})}
            for nodeid in missing:
                self._records[nodeid] = found.get(nodeid, {})
        return {n: self._records[n] for n in wanted if self._records.get(n)}

    def unchanged_module(self, file: str, path: Path) -> UnchangedModule | None:
        """Return the test module ``file`` (the file part of its nodeids; ``path`` is absolute)
        as unchanged when it need not be imported at all: each of its items is unchanged or
        would be deselected by ``mark_expression`` (pytest's ``-m``). ``None``: collect it.

        Call it when pytest is about to collect ``path``: the conftest files of its directory
        are loaded then, and they are part of its :meth:`scope`.
        """
        if path in self.explicit:
            return None  # named on the command line: always collected
        if self._candidates is None:
            self._candidates = {}
            store = self.store
            if store is not None:
                try:
                    self._candidates = store.module_candidates(self.env_id)
                except StoreError as error:
                    self.warn(error)
            self._selects = mark_selector(self.mark_expression)
        stored = self._candidates.get(file)
        if not stored or self._selects is None:
            return None
        return unchanged_module(
            self.resolver, path, stored, self.scope(file), self._selects, self.describe
        )

    def scope(self, file: str) -> str:
        """Return the identity of the configuration the test module ``file`` (relative to the
        rootdir) is collected under: the configuration's (``config_id``), the ``conftest.py``
        files pytest loaded for its directory and the directories above (path and blob OID),
        and the static import closure of both (:func:`.collection.collection_closure`).
        A module summary stands for the module only under the same scope.
        """
        module = self.resolver.rootdir / file
        found = self._scopes.get(module)
        if found is None:
            loaded = [c for c in self.registered_conftests() if module.is_relative_to(c.parent)]
            conftests = [[str(conftest), self.describe(str(conftest))] for conftest in loaded]
            closure = collection_closure(self.resolver, module, loaded)
            found = self._scopes[module] = digest([self.config_id, sorted(conftests), closure])
        return found

    def conftest_files(self) -> list[str]:
        """Return the absolute paths of every ``conftest.py`` pytest has loaded so far.

        A module summary keeps those its writer had loaded (hooks such as
        ``pytest_collection_modifyitems`` in any of them may add marks to any item), and
        stands for the module only while none of them changed (see :meth:`describe`).
        """
        return sorted(str(conftest) for conftest in self.registered_conftests())

    def describe(self, path: str) -> str:
        """Return the content identity of the file at the absolute ``path``: its mode and blob
        OID in the worktree (``absent`` values when deleted), or the SHA-256 of a file
        outside the repository."""
        try:
            rel = self.worktree.relpath(path)
        except ValueError:
            return _file_digest(Path(path))
        return self.worktree.entry(rel).describe()

    def close(self) -> None:
        """Close the store connection, if one was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None


def explicit_paths(args: Iterable[str], invocation_dir: Path) -> list[Path]:
    """Return the files named on the command line (``path`` or ``path::name`` arguments).

    A module named explicitly is always collected, so its items are always reported.
    """
    return [path for path, _ in _named(args, invocation_dir) if path.is_file()]


def partial_files(args: Iterable[str], invocation_dir: Path, rootdir: Path) -> frozenset[str]:
    """Return the files (relative to ``rootdir``, as in nodeids) that ``path::name`` arguments
    name: only part of such a module is collected."""
    found = set()
    for path, partial in _named(args, invocation_dir):
        if partial and path.is_relative_to(rootdir):
            found.add(path.relative_to(rootdir).as_posix())
    return frozenset(found)


def _named(args: Iterable[str], invocation_dir: Path) -> Iterator[tuple[Path, bool]]:
    """The absolute paths that command-line arguments name, and whether with ``::name``."""
    for arg in args:
        part, sep, _ = arg.partition("::")
        if part and not part.startswith("-"):
            yield Path(os.path.abspath(invocation_dir / part)), bool(sep)


def _file_digest(path: Path) -> str:
    """The SHA-256 of the file at ``path``; ``"absent"`` when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "absent"


def configuration_facets(config: pytest.Config) -> dict[str, object]:
    """Return what identifies the configuration a session collects under, for the fast path:
    a module summary written under another configuration never stands for a module.

    The rootdir; the paths collected (``config.args``, absolute: they decide which
    ``conftest.py`` files are loaded); the config file pytest uses this run
    (``config.inipath``: found, or given with ``-c``) with the SHA-256 of its content; the
    value of every ini option pytest's parser knows (core, plugins, this plugin's
    ``unchanged_*``) as ``config.getini`` resolves it this run (``-o`` included), so
    ``testpaths``, ``python_files``, ``python_classes``, ``python_functions``,
    ``filterwarnings``, ``unchanged_inputs`` and ``unchanged_default`` all count (not
    :data:`REPORTING_INI`); :data:`COLLECTION_OPTIONS`; and the plugins registered (module
    names; the installed distributions' versions are environment facets). ``conftest.py``
    files are per module: see :meth:`Context.scope`.
    """
    inipath = config.inipath
    ini: dict[str, str] = {}
    # Parser._inidict holds every registered ini option (pytest 8.0 to 9 at least); should
    # it go, the unchanged_* options and pytest's collection options are still read.
    names = getattr(getattr(config, "_parser", None), "_inidict", None) or _KNOWN_INI
    for name in sorted(set(names) - REPORTING_INI):
        try:
            ini[name] = json.dumps(config.getini(name), default=str, sort_keys=True)
        except Exception as error:  # a plugin's ini option that cannot be read: its error
            ini[name] = f"error: {error!r}"
    plugins = config.pluginmanager
    invocation = config.invocation_params.dir
    return {
        "rootdir": str(config.rootpath),
        # Which conftest.py files a session loads depends on what it collects; their hooks
        # may mark any item.
        "args": [os.path.abspath(invocation / arg) for arg in config.args],
        "inifile": None if inipath is None else [str(inipath), _file_digest(inipath)],
        "ini": ini,
        "options": {
            dest: json.dumps(config.getoption(dest, None), default=str)
            for dest in COLLECTION_OPTIONS
        },
        "plugins": sorted(
            name
            for name, plugin in plugins.list_name_plugin()
            if isinstance(plugin, ModuleType) and not _is_conftest(plugin)
        ),
    }


_KNOWN_INI = (
    "unchanged",
    "unchanged_default",
    "unchanged_env",
    "unchanged_explain",
    "unchanged_fast_path",
    "unchanged_inputs",
    "unchanged_max_age_days",
    "unchanged_max_keys",
    "unchanged_mode",
    "unchanged_salt",
    "testpaths",
    "python_files",
    "python_classes",
    "python_functions",
    "norecursedirs",
    "filterwarnings",
    "pythonpath",
    "addopts",
)


def registered_conftests(config: pytest.Config) -> list[Path]:
    """Return the files of the ``conftest.py`` modules pytest has loaded so far."""
    return [
        Path(str(plugin.__file__))
        for plugin in config.pluginmanager.get_plugins()
        if isinstance(plugin, ModuleType) and _is_conftest(plugin)
    ]


def _is_conftest(module: ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    return bool(file) and Path(str(file)).name == "conftest.py"
