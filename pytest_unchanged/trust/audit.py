"""``--unchanged-audit``: the repository files a test reads or imports that its inputs miss.

While an item's setup, call and teardown run, an audit hook (:func:`sys.addaudithook`, the
``open`` and ``import`` events) notes the files opened for reading and the modules imported.
Audit hooks cannot be removed, so one hook is installed per process, on first use, and it does
nothing but append to two lists, and only while an item runs.

A module imported before the item runs (at collection, by the test module or by an earlier test
module) raises no ``import`` event while the item runs. So each item is also charged with:

* what was observed while its test module was collected (first imports, files read at import);
* the static import closure (:mod:`.imports`) of its test module and ``conftest.py`` files,
  which does not depend on the order modules were imported in.

Files under ``.git``, the cache dir, ``__pycache__``, virtualenvs and paths git ignores are left
out. The findings of an item travel in ``report.unchanged["audit"]`` (teardown report) to the
controller, which groups tests with the same findings and prints a ``depends_on(...)`` line.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Collection, Generator, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from .. import recording, selection
from ..imports import ImportGraph, load_parsed, save_parsed, search_roots
from ..reporting import plural
from ..worktree import Worktree
from .explain import inactive_message, payload

__all__ = ["AuditPlugin", "Recorder", "covered", "register"]

PAYLOAD_KEY = "audit"
SHOWN = 5
"""Tests named per group of identical findings (all of them with ``-v``)."""
VENV_NAMES = frozenset({".venv", "venv", ".tox", ".nox", "site-packages", "dist-packages"})


class Recorder:
    """What the audit hook saw: ``open`` event arguments and names of imported modules."""

    __slots__ = ("imported", "opened")

    def __init__(self) -> None:
        self.opened: list[tuple[Any, ...]] = []
        self.imported: list[str] = []


_RECORDER: Recorder | None = None
_INSTALLED = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audited event of the process, for the rest of its life: keep it cheap.
    recorder = _RECORDER
    if recorder is None:
        return
    if event == "open":
        recorder.opened.append(args)
    elif event == "import":
        recorder.imported.append(args[0])


def _record(recorder: Recorder | None) -> None:
    global _RECORDER, _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
    _RECORDER = recorder


def register(config: pytest.Config) -> None:
    """Register :class:`AuditPlugin` when ``--unchanged-audit`` is given.

    Raises :class:`pytest.UsageError` when pytest-unchanged is not active.
    """
    if not config.getoption("unchanged_audit"):
        return
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is None:
        raise pytest.UsageError(inactive_message("--unchanged-audit"))
    config.pluginmanager.register(AuditPlugin(core), "unchanged-audit")


def _reads(args: tuple[Any, ...]) -> str | None:
    """The path an ``open`` event reads, or ``None`` (a file descriptor, write-only)."""
    path, mode, flags = (*args, None, None, None)[:3]
    if isinstance(path, int) or path is None:
        return None
    if isinstance(mode, str):
        if "r" not in mode and "+" not in mode:
            return None
    elif isinstance(flags, int) and flags & os.O_ACCMODE == os.O_WRONLY:
        return None
    try:
        return os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None


def _source_of(path: str) -> str:
    """The source file of a ``__pycache__/NAME.TAG.pyc`` path; any other path unchanged."""
    directory, _, name = path.rpartition(os.sep)
    if not name.endswith(".pyc") or not directory.endswith(os.sep + "__pycache__"):
        return path
    return os.path.join(os.path.dirname(directory), name.split(".", 1)[0] + ".py")


def covered(path: str, inputs: Collection[str]) -> bool:
    """Whether the repository path ``path`` is one of ``inputs`` or below one of them.

    ``inputs`` holds repository paths (``"."`` for the whole worktree); pass a set.
    """
    if path in inputs or "." in inputs or "" in inputs:
        return True
    parts = path.split("/")
    return any("/".join(parts[:depth]) in inputs for depth in range(1, len(parts)))


class AuditPlugin:
    """Records during each item, and reports uncovered files on the controller."""

    def __init__(self, core: selection.UnchangedPlugin) -> None:
        self.core = core
        self.rootdir = core.config.rootpath
        self.cache_dir = core.store_path.parents[2]
        self.parsed_path = core.store_path.with_name("imports.json")
        self.known: frozenset[str] = frozenset()
        self.recorder: Recorder | None = None
        self.at_collection: dict[Path, Recorder] = {}
        self.graph: ImportGraph | None = None
        self._static: dict[Path, list[str]] = {}
        self._by_module: dict[Path, dict[str, str]] = {}
        self._inputs: dict[str, frozenset[str]] = {}
        self._relative: dict[str, str] = {}
        self._files: dict[str, str | None] = {}
        self._skipped_dirs: dict[str, bool] = {}
        # Controller side: per nodeid, the (path, how) pairs its inputs do not cover.
        self.findings: dict[str, list[tuple[str, str]]] = {}
        self.audited = 0

    @property
    def worktree(self) -> Worktree:
        return self.core.context.worktree

    # -- observing -------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        if not isinstance(collector, pytest.Module):
            return (yield)
        recorder = self.at_collection.setdefault(collector.path, Recorder())
        _record(recorder)
        try:
            return (yield)
        finally:
            _record(None)

    def _observe(self, item: pytest.Item) -> Generator[None, None, None]:
        if self.recorder is None:
            self.recorder = Recorder()
        _record(self.recorder)
        try:
            yield
        finally:
            _record(None)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        self.recorder = None
        return (yield from self._observe(item))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._observe(item))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        return (yield from self._observe(item))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "teardown":
            state = item.stash.get(selection.ITEM_KEY, None)
            if state is not None and state.key is not None and self.recorder is not None:
                inputs = self._inputs.get(state.inputs.inputs_id)
                if inputs is None:
                    inputs = frozenset(path for path, _, _ in state.inputs.manifest)
                    self._inputs[state.inputs.inputs_id] = inputs
                payload(report)[PAYLOAD_KEY] = self.uncovered(item, inputs)
            self.recorder = None
        return report

    # -- judging ---------------------------------------------------------------------------

    def uncovered(self, item: pytest.Item, inputs: Collection[str]) -> list[tuple[str, str]]:
        """Return ``(path relative to the rootdir, how it was seen)`` for each repository file
        the item read or imported that ``inputs`` (a set of repository paths) do not cover."""
        seen = dict(self._module_seen(Path(item.path)))
        if self.recorder is not None:
            for rel, how in self._seen(self.recorder, "").items():
                if not seen.get(rel, "").startswith("imported"):
                    seen[rel] = how
        return sorted(
            (self._from_rootdir(rel), how) for rel, how in seen.items() if not covered(rel, inputs)
        )

    def _module_seen(self, module: Path) -> dict[str, str]:
        """What the items of ``module`` are charged with before they run (memoised)."""
        cached = self._by_module.get(module)
        if cached is None:
            recorder = self.at_collection.get(module)
            cached = {} if recorder is None else self._seen(recorder, " at collection")
            for rel in self._static_closure(module):
                cached.setdefault(rel, "imported")
            self._by_module[module] = cached
        return cached

    def _seen(self, recorder: Recorder, when: str) -> dict[str, str]:
        seen: dict[str, str] = {}
        for name in recorder.imported:
            file = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(file, str):
                self._note(seen, file, "imported" + when)
        for args in recorder.opened:
            path = _reads(args)
            if path is None:
                continue
            # importlib.import_module() raises no import event: its module shows as the
            # source it reads, or as the cached bytecode it loads instead.
            path = _source_of(path)
            self._note(seen, path, ("imported" if path.endswith(".py") else "read") + when)
        return seen

    def _note(self, seen: dict[str, str], path: str, how: str) -> None:
        rel = self._repository_file(path)
        if rel is not None and not seen.get(rel, "").startswith("imported"):
            seen[rel] = how

    def _repository_file(self, path: str) -> str | None:
        """The repository path of the file at ``path``, or ``None`` when it is left out."""
        if path in self._files:
            return self._files[path]
        rel: str | None = None
        try:
            if os.path.isfile(path) and not Path(path).is_relative_to(self.cache_dir):
                rel = self.worktree.relpath(path)
        except (ValueError, OSError):
            rel = None
        if rel is not None and self._left_out(rel):
            rel = None
        self._files[path] = rel
        return rel

    def _left_out(self, rel: str) -> bool:
        parts = rel.split("/")
        if parts[0] in (".git", ".pytest_cache") or "__pycache__" in parts:
            return True
        if VENV_NAMES.intersection(parts[:-1]):
            return True
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in self._skipped_dirs:
                self._skipped_dirs[directory] = (
                    self.worktree.root / directory / "pyvenv.cfg"
                ).is_file()
            if self._skipped_dirs[directory]:
                return True
        return bool(self.worktree.repository.path_is_ignored(rel))

    def _static_closure(self, module: Path) -> list[str]:
        cached = self._static.get(module)
        if cached is None:
            if self.graph is None:
                roots = search_roots(self.worktree, self.rootdir)
                self.graph = ImportGraph(self.worktree, roots, load_parsed(self.parsed_path))
                self.known = frozenset(self.graph.parsed)
            start = []
            for candidate in (module, *_conftests(module, self.rootdir)):
                try:
                    start.append(self.worktree.relpath(candidate))
                except ValueError:
                    continue
            found = self.graph.closure(start)
            cached = self._static[module] = [r for r in found if not self._left_out(r)]
        return cached

    def _from_rootdir(self, rel: str) -> str:
        cached = self._relative.get(rel)
        if cached is None:
            cached = Path(os.path.relpath(self.worktree.root / rel, self.rootdir)).as_posix()
            self._relative[rel] = cached
        return cached

    def pytest_sessionfinish(self) -> None:
        # Keep what this session looked up: files edited since drop out of the cache.
        graph = self.graph
        if graph is not None and graph.used.symmetric_difference(self.known):
            save_parsed(self.parsed_path, {oid: graph.parsed[oid] for oid in graph.used})

    # -- reporting -------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.core.is_worker or report.when != "teardown":
            return
        found = getattr(report, recording.REPORT_ATTR, {}).get(PAYLOAD_KEY)
        if isinstance(found, list):
            self.audited += 1
            if found:
                self.findings[report.nodeid] = [(str(p), str(h)) for p, h in found]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.core.is_worker:
            return
        write = terminalreporter.write_line
        # A short section title: the counts go on their own line, so nothing is clipped.
        terminalreporter.section("unchanged-audit", sep="-")
        write(
            f"{len(self.findings)} of {self.audited} audited {plural(self.audited, 'test')} "
            "read files their inputs do not cover"
        )
        groups: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
        for nodeid, files in self.findings.items():
            groups[tuple(files)].append(nodeid)
        verbose = terminalreporter.config.getoption("verbose") > 0
        for group, nodeids in sorted(groups.items(), key=lambda g: (g[1][0], g[0])):
            shown = nodeids if verbose else nodeids[:SHOWN]
            more = len(nodeids) - len(shown)
            write(", ".join(shown) + (f" and {more} more" if more else "") + ":")
            for path, how in group:
                write(f"    {path} ({how})")
            write(f"    cover with: {depends_on_line(covering(p for p, _ in group))}")
        if self.audited and not self.findings:
            write("every file the tests read or imported is covered by their inputs")


def covering(paths: Iterable[str], *, per_directory: int = 3) -> list[str]:
    """Return a short list of ``depends_on`` arguments that covers every path in ``paths``.

    A directory (not the rootdir itself) holding ``per_directory`` or more of the paths, directly
    or below, is named instead of them (``src/click/``: a directory input is its whole subtree,
    so it covers more than was read, which can only make a test run more often); the deepest
    such directory is named, and what lies inside another named one is left out. Other paths
    are named one by one. The result is sorted.
    """
    files = sorted(set(paths))
    counts: dict[str, int] = defaultdict(int)
    for path in files:
        for parent in PurePosixPath(path).parents:
            if parent.parts and ".." not in parent.parts:
                counts[parent.as_posix()] += 1
    chosen: set[str] = set()
    for path in files:
        parents = [p.as_posix() for p in PurePosixPath(path).parents if p.as_posix() in counts]
        wide = [p for p in parents if counts[p] >= per_directory]  # deepest first
        chosen.add(wide[0] + "/" if wide else path)
    directories = [c for c in chosen if c.endswith("/")]
    return sorted(c for c in chosen if not any(c != d and c.startswith(d) for d in directories))


def depends_on_line(paths: Iterable[str]) -> str:
    """Return the ``@pytest.mark.depends_on(...)`` line naming ``paths``."""
    return "@pytest.mark.depends_on(" + ", ".join(f'"{p}"' for p in paths) + ")"


def _conftests(module: Path, rootdir: Path) -> list[Path]:
    found = []
    directory = module.parent
    while True:
        if (directory / "conftest.py").is_file():
            found.append(directory / "conftest.py")
        if directory == rootdir or not directory.is_relative_to(rootdir):
            return found
        directory = directory.parent
