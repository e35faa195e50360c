"""Under ``unchanged_default = imports``: check the static import closure against what runs.

The static closure (:mod:`.imports`) is an inference; this plugin checks it where it matters,
when a pass is recorded. It notes the worktree files code was loaded from (the interpreter's
audit events, :mod:`.import_audit`, so also an import inside ``mock.patch.dict(sys.modules)``;
and the modules new in ``sys.modules``, each one's ``__file__``) while each collector is
collected (the test module itself, its package, its directory's ``conftest.py``) and while each
item runs (setup, call, teardown). What was loaded outside these windows (while pytest loaded
its plugins and initial conftests, from ``pytest_load_initial_conftests`` on; whatever
``sys.modules`` held when collection began; between collection and the first test) cannot be
told apart by item: each such worktree file that is not in the static closure of the conftests
and plugin modules pytest loaded is charged to every item. An item whose inputs came from
``imports`` and that imported a worktree file its inputs do not cover does not keep its pass
under that key: the pass is recorded under the key the item would have with the whole worktree
(``.``) in place of ``imports``, every other record of the item is forgotten, and the terminal
summary names the files. A later run skips the item while that key holds, that is while nothing
in the worktree changed. A failure of such an item forgets all its records, the whole-worktree
one included. So does an item that started a child process while collected or run (round 4,
finding 02: ``python -m pkg`` in a subprocess): what the child loads is not seen.

A worktree file so charged (loaded where no static closure predicted it) is *dynamically
reached* (entry points, ``pickle``, ``getattr(importlib, ...)``): code may reach it by a string
again, from ``sys.modules``, where no window sees it. So from then on in the process (each
pytest-xdist worker is one) every item whose inputs do not cover it is charged with it too. A
module first imported statically, later reached by a string from ``sys.modules`` by an item
whose closure lacks it, is not caught: hence the static rule "when in doubt, the whole
worktree". Registered only when ``imports`` is in ``unchanged_default`` or ``unchanged_inputs``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import selection
from .collection_watch import plugins_closure
from .import_audit import CHILD, Recorder, added_since, module_files, modules_mark, real_file
from .import_audit import Mark as _Mark
from .inputs import IMPORTS, ItemInputs, Resolver
from .keys import item_key
from .recording import REPORT_ATTR

__all__ = ["ImportWatch", "register", "watch_early"]

PAYLOAD_KEY = "imports_outside"
"""In a teardown report's payload: the worktree files the item imported outside its inputs."""
FORGET_KEY = "imports_forget"
"""In a teardown report's payload: forget every record of the item."""
WHOLE = "."
CHILD_NOTE = "(a child process: what it loads is not seen)"
RECORDER_KEY = pytest.StashKey[Recorder]()


def _wanted(config: pytest.Config) -> bool:
    return IMPORTS in [*config.getini("unchanged_default"), *config.getini("unchanged_inputs")]


def _recorder(config: pytest.Config) -> Recorder:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is None:
        recorder = config.stash[RECORDER_KEY] = Recorder()
        recorder.start()
        config.add_cleanup(recorder.stop)
    return recorder


def watch_early(config: pytest.Config) -> None:
    """From ``pytest_load_initial_conftests`` (before pytest imports the first conftest):
    start recording what code is loaded, when ``imports`` is in ``unchanged_default`` or
    ``unchanged_inputs``. Raises nothing: an ini value that cannot be read records nothing yet
    (what ``sys.modules`` holds when collection begins still counts)."""
    try:
        if _wanted(config):
            _recorder(config)
    except Exception:
        pass


def register(config: pytest.Config) -> None:
    """Register :class:`ImportWatch` when pytest-unchanged is active and ``imports`` is in
    ``unchanged_default`` or ``unchanged_inputs``; else stop recording."""
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is not None and _wanted(config):
        watch = ImportWatch(core, _recorder(config))
        config.pluginmanager.register(watch, "unchanged-import-watch")
    elif RECORDER_KEY in config.stash:
        config.stash[RECORDER_KEY].stop()


@dataclass(eq=False)
class ImportWatch:
    """The plugin: observation windows, the check at teardown, the whole-worktree keys."""

    core: selection.UnchangedPlugin
    recorder: Recorder
    collected: dict[str, frozenset[str]] = field(default_factory=dict)
    """Files code was first loaded from while a collector was collected, by its nodeid."""
    collectors: dict[str, Path | None] = field(default_factory=dict)
    """The file of each test module in ``collected`` (``None``: another collector)."""
    outside: dict[str, list[str]] = field(default_factory=dict)
    """Controller side: the files each item imported outside its inputs, by nodeid."""
    between: set[str] = field(default_factory=set)
    """Files code was loaded from outside every window (see the module's docstring)."""
    dynamic: set[str] = field(default_factory=set)
    """Worktree paths dynamically reached (see the module's docstring)."""
    _before: _Mark | None = None
    _depth: int = 0
    _gap: int = 0
    _swept: bool = False
    _explained: frozenset[str] | None = None
    _unexplained: tuple[int, frozenset[str]] = (-1, frozenset())
    _charged: set[str] = field(default_factory=set)
    _failed: set[str] = field(default_factory=set)
    _covers: dict[str, frozenset[str]] = field(default_factory=dict)
    _files: dict[str, str | None] = field(default_factory=dict)
    _wide: Resolver | None = None

    def _open(self) -> _Mark:
        """Open a window; what was loaded since the last one closed goes to ``between``."""
        if self._depth == 0:
            self.between.update(self.recorder.since(self._gap))
            if not self._swept:  # loaded before recording began (or before this plugin)
                self._swept = True
                self.between.update(module_files(list(sys.modules)))
        self._depth += 1
        return (*modules_mark(), self.recorder.mark())

    def _close(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._gap = self.recorder.mark()

    def _loaded(self, mark: _Mark) -> set[str]:
        """The files code was loaded from since ``mark``."""
        return {*module_files(added_since(mark)), *self.recorder.since(mark[2])}

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        before = self._open()
        try:
            return (yield)
        finally:
            # pytest collects the nodes leading to its arguments inside the session's
            # collection: what an inner collector imported is charged to it alone.
            self._close()
            found = self._loaded(before) - self._charged
            self._charged.update(found)
            if found:
                self.collected[collector.nodeid] = frozenset(found)
                module = isinstance(collector, pytest.Module)
                self.collectors[collector.nodeid] = collector.path if module else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        state = item.stash.get(selection.ITEM_KEY, None)
        watched = state is not None and state.saved is None and self._narrow(state) is not None
        before = self._open()
        self._before = before if watched else None
        try:
            return (yield)
        finally:
            self._before = None
            if state is not None and not watched and state.saved is None:
                self._unchecked(item, before)
            self._close()

    def _unchecked(self, item: pytest.Item, before: _Mark) -> None:
        """An item not checked (its inputs are declared, or hold the whole worktree): the
        worktree files it loaded outside its file's static closure are dynamically reached."""
        resolver = self.core.context.resolver
        try:
            own = resolver.worktree.relpath(item.path)
            known = {own, *resolver.import_closure([own])}
        except Exception:
            known = set()
        found = map(self._relative, self._loaded(before))
        self.dynamic.update(p for p in found if p is not None and p not in known)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        state = item.stash.get(selection.ITEM_KEY, None)
        if state is None or state.key is None or state.saved is not None:
            return report
        if report.failed and IMPORTS in state.inputs.specs:
            self._failed.add(item.nodeid)
        if report.when != "teardown":
            return report
        if item.nodeid in self._failed:
            self._failed.discard(item.nodeid)
            _payload(report)[FORGET_KEY] = True
        covered = self._narrow(state)
        if covered is None or self._before is None:
            return report
        imported = self._loaded(self._before)
        for node in item.listchain():
            imported.update(self.collected.get(node.nodeid, ()))
        relative = {self._relative(filename) for filename in imported}
        relative.update(self._unexplained_files(), self.dynamic)
        outside = sorted(p for p in relative if p is not None and not _covers(covered, p))
        self.dynamic.update(outside)
        if CHILD in imported:  # what a child process loads is not seen: the whole worktree
            outside.append(CHILD_NOTE)
        if outside:
            wide = self.wide_inputs(item, state.inputs)
            key = item_key(item.nodeid, wide.inputs_id, self.core.env_id)
            state.inputs, state.key = wide, None if wide.unkeyable else key
            _payload(report).update({PAYLOAD_KEY: outside, FORGET_KEY: True})
        return report

    def _narrow(self, state: selection.ItemState) -> frozenset[str] | None:
        """The paths of an item's inputs when they came from ``imports`` and do not hold the
        whole worktree; ``None`` otherwise (nothing to check)."""
        inputs = state.inputs
        if state.key is None or IMPORTS not in inputs.specs:
            return None
        covered = self._covers.get(inputs.inputs_id)
        if covered is None:
            covered = self._covers[inputs.inputs_id] = frozenset(p for p, _, _ in inputs.manifest)
        return None if WHOLE in covered else covered

    def _unexplained_files(self) -> frozenset[str]:
        """The worktree files loaded outside every window that the static closure of the
        conftests and plugin modules pytest loaded does not hold: charged to every item."""
        size, found = self._unexplained
        if size != len(self.between):
            if self._explained is None:
                self._explained = plugins_closure(self.core)
            loaded = {self._relative(filename) for filename in self.between}
            found = frozenset(p for p in loaded if p is not None and p not in self._explained)
            self._unexplained = (len(self.between), found)
        return found

    def _relative(self, filename: str) -> str | None:
        """The worktree path (relative, POSIX) of a file code was loaded from (a bytecode
        file's source, see :func:`.import_audit.real_file`), when it is one git sees: not
        outside the repository, not ignored, not in an installed distribution (a virtualenv
        inside the repository)."""
        if filename in self._files:
            return self._files[filename]
        worktree = self.core.context.worktree
        rel: str | None = None
        try:
            real = real_file(filename) or (filename if os.path.isabs(filename) else None)
            if real is None:
                raise ValueError(filename)
            rel = worktree.relpath(real)
            parts = rel.split("/")
            if (
                not rel
                or "site-packages" in parts
                or "dist-packages" in parts
                or worktree.repository.path_is_ignored(rel)
            ):
                rel = None
        except ValueError:
            rel = None
        except Exception:
            pass  # a path pygit2 cannot check: counted, so the item is checked against it
        self._files[filename] = rel
        return rel

    def wide_inputs(self, item: pytest.Item, inputs: ItemInputs) -> ItemInputs:
        """The inputs ``item`` would have with the whole worktree in place of ``imports``."""
        core = self.core.context.resolver
        if self._wide is None:
            self._wide = Resolver(
                core.worktree,
                core.rootdir,
                config_file=core.config_file,
                global_inputs=(),
                default=(WHOLE,),
                conftests=core.conftests,
                import_path=core.import_path,
            )
        specs = [WHOLE if spec == IMPORTS else spec for spec in inputs.specs]
        return self._wide.module_inputs(item.path, specs, (), core.defining(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Before the session plugin selects: an item whose narrow key has no record but whose
        whole-worktree key has one takes that key (it passed with this very worktree)."""
        self._predicted()
        items = [i for i in session.items if self._has_narrow(i)]
        for item in items:  # a file collected where an item's inputs do not predict it
            covered = self._narrow(item.stash[selection.ITEM_KEY]) or frozenset()
            for files in map(self.collected.get, (n.nodeid for n in item.listchain())):
                paths = map(self._relative, files or ())
                self.dynamic.update(p for p in paths if p and not _covers(covered, p))
        if items:
            records = self.core.context.records(item.nodeid for item in items)
            for item in items:
                own = records.get(item.nodeid)
                state = item.stash[selection.ITEM_KEY]
                if not own or state.key in own:
                    continue
                wide = self.wide_inputs(item, state.inputs)
                key = item_key(item.nodeid, wide.inputs_id, self.core.env_id)
                if not wide.unkeyable and key in own:
                    state.inputs, state.key = wide, key
        return (yield)

    def _predicted(self) -> None:
        """Each file loaded while a collector was collected that its static closure does not
        hold (a test module's, else the conftests' and plugins') is dynamically reached,
        whatever the inputs of its items (round 4, finding 04: a marked module's)."""
        resolver = self.core.context.resolver
        plugins: frozenset[str] | None = None
        for nodeid, files in self.collected.items():
            path = self.collectors.get(nodeid)
            try:
                if path is not None:
                    own = resolver.worktree.relpath(path)
                    known = frozenset([own, *resolver.import_closure([own])])
                else:
                    known = plugins = plugins_closure(self.core) if plugins is None else plugins
            except Exception:
                known = frozenset()
            found = map(self._relative, files)
            self.dynamic.update(p for p in found if p is not None and p not in known)

    def _has_narrow(self, item: pytest.Item) -> bool:
        state = item.stash.get(selection.ITEM_KEY, None)
        return state is not None and self._narrow(state) is not None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.core.is_worker or report.when != "teardown":
            return
        payload = getattr(report, REPORT_ATTR, None)
        if not isinstance(payload, dict):
            return
        if payload.get(FORGET_KEY):
            self.core.recorder.forget.add(report.nodeid)
        outside = payload.get(PAYLOAD_KEY)
        if isinstance(outside, list):
            self.outside[report.nodeid] = [str(path) for path in outside]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.core.is_worker:
            return
        if selection.setting(self.core.config, "unchanged_explain") and self.core.states:
            # Keys were computed in this process (not under pytest-xdist): say why a closure
            # fell back to the whole worktree.
            doubts = self.core.context.resolver.import_doubts
            for file, doubt in sorted(doubts.items()):
                terminalreporter.write_line(
                    f"unchanged: {file} depends on the whole worktree (imports in doubt: {doubt})"
                )
        if not self.outside:
            return
        count = len(self.outside)
        terminalreporter.write_line(
            f"unchanged: {count} {'test' if count == 1 else 'tests'} imported worktree modules "
            "their inferred imports miss, or may reach them from sys.modules after they were "
            "reached dynamically (loaded where no static closure predicted them); recorded "
            "against the whole worktree:"
        )
        for nodeid, paths in sorted(self.outside.items()):
            terminalreporter.write_line(f"    {nodeid}: {', '.join(paths)}")


def _covers(covered: frozenset[str], path: str) -> bool:
    """Whether ``path`` is one of the inputs ``covered`` or lies in a directory among them."""
    if path in covered:
        return True
    parts = path.split("/")
    return any("/".join(parts[:i]) in covered for i in range(1, len(parts)))


def _payload(report: pytest.TestReport) -> dict[str, Any]:
    found = getattr(report, REPORT_ATTR, None)
    if not isinstance(found, dict):
        found = {}
        setattr(report, REPORT_ATTR, found)
    return found
