"""Per-session state, built once: worktree status, ``HEAD``, environment, resolver, store.

Everything here is read at most once per pytest session (per xdist worker), so per-item work
during collection is a dictionary lookup plus one small digest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .environment import environment_facets
from .fastpath import mark_selector, unchanged_modules
from .inputs import Resolver
from .keys import canonical_json, digest
from .shared import trusted_records
from .store import CorruptStoreError, Record, Store, StoreError
from .summaries import UnchangedModule
from .worktree import Worktree

__all__ = ["Context", "explicit_paths", "partial_files"]


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
    trusted_sources: tuple[str, ...] = ()
    _store: Store | None = None
    _store_failed: bool = False
    _modules: dict[str, UnchangedModule] | None = field(default=None, repr=False)
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
        trusted_sources: Iterable[str] = (),
        ignore_distributions: Iterable[str] = (),
    ) -> Context:
        """Read status and ``HEAD`` once, compute the environment facets, and return a context.

        Raises :class:`~pytest_unchanged.worktree.NotARepositoryError` outside a worktree.
        """
        worktree = Worktree.discover(rootdir)
        facets = environment_facets(env_names, salt, extra_facets, ignore_distributions)
        resolver = Resolver(
            worktree,
            rootdir,
            config_file=config_file,
            global_inputs=tuple(global_inputs),
            default=tuple(default),
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

    @property
    def unchanged_modules(self) -> dict[str, UnchangedModule]:
        """Test modules (file part of their nodeids) that need not be imported at all: each of
        their items is unchanged or would be deselected by ``mark_expression`` (pytest's ``-m``)."""
        if self._modules is None:
            self._modules = {}
            store = self.store
            if store is not None:
                try:
                    candidates = store.module_candidates(self.env_id)
                except StoreError as error:
                    self.warn(error)
                    candidates = {}
                self._modules = unchanged_modules(
                    self.resolver, candidates, mark_selector(self.mark_expression)
                )
        return self._modules

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
