"""The session plugin: keys at collection, skip or deselect, report payloads, the store write.

:class:`UnchangedPlugin` is registered by :func:`pytest_unchanged.plugin.pytest_configure` as
``unchanged-session``, kept in ``config.stash[PLUGIN_KEY]``; each item's state (inputs, key) is
in ``item.stash[ITEM_KEY]``. The trust plugins (:mod:`pytest_unchanged.trust`) read both.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .clashes import omit, reveal_clash
from .derive import Derivation
from .fastpath import MarkNames, Member, analysable, observed_marks, predictable, summarize
from .inputs import InputError, ItemInputs
from .keys import item_key
from .recording import REPORT_ATTR, Recorder, head_commit
from .reporting import (
    bad_marks_message,
    collected_whole,
    collection_line,
    issue_warning,
    plural,
    skip_reason,
    store_warning,
)
from .session import Context, explicit_paths, partial_files
from .settings import command_line_facets, plugin_facets
from .store_location import store_path
from .summaries import ModuleSummary, UnchangedModule, module_file
from .warning_types import UnkeyableInputWarning, UnknownPathWarning

__all__ = ["ITEM_KEY", "MODES", "PLUGIN_KEY", "ItemState", "UnchangedPlugin", "setting"]

PLUGIN_KEY = pytest.StashKey["UnchangedPlugin"]()
ITEM_KEY = pytest.StashKey["ItemState"]()
MODES = ("skip", "deselect")


def setting(config: pytest.Config, name: str) -> Any:
    """Return option ``name`` from the command line, else the ini option of the same name."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


class ItemState:
    """The key of one item, or the reason it always runs; kept in ``item.stash``."""

    __slots__ = ("duration", "inputs", "key", "saved")

    def __init__(self, inputs: ItemInputs, key: str | None) -> None:
        self.inputs = inputs
        self.key = key
        self.saved: float | None = None  # recorded seconds, when skipped as unchanged
        self.duration = 0.0  # seconds of the phases run so far


class UnchangedPlugin:
    """Per-session state: keys at collection, skips, outcomes, and the store write at the end."""

    def __init__(self, config: pytest.Config, *, skip: bool, mode: str) -> None:
        self.config = config
        self.skip = skip
        self.mode = mode
        self.is_worker = hasattr(config, "workerinput")
        self.store_path = store_path(config)
        self.env_id = self.env_body = ""
        self.head: str | None = None
        self.unchanged: list[pytest.Item] = []
        self.to_run = 0
        self.sent_bodies: set[str] = set()
        self.recorder = Recorder()  # used by the process that writes (not xdist workers)
        # The plugins loaded, taken when the session is configured (see plugin_facets).
        self.plugin_facets = plugin_facets(config.pluginmanager)
        # The fast path: modules left unimported, module summaries to store.
        self._context: Context | None = None
        self.import_path = list(sys.path)  # inferred imports: before any test module imported
        self.fast_path = (
            skip
            and bool(config.getini("unchanged_fast_path"))
            and not bool(config.getoption("unchanged_verify", False))
            and analysable(config.getoption("keyword", ""), config.getoption("markexpr", ""))
            and predictable(config)
        )
        self.preview = bool(config.getoption("collectonly", False))
        self.not_collected: dict[str, UnchangedModule] = {}
        self.remote_not_collected: tuple[int, float, int] = (0, 0.0, 0)
        self.remote_deselected: tuple[int, float] = (0, 0.0)  # xdist workers, deselect mode
        self.summaries: dict[str, ModuleSummary] = {}
        self.states: dict[str, ItemState] = {}  # by nodeid, for the reports
        self._failed_files: frozenset[str] | None = None
        self._store_warnings: set[str] = set()
        self.usage_error = False  # a bad mark: no status lines for a run that never ran

    # -- collection ------------------------------------------------------------------------

    @property
    def context(self) -> Context:
        """The per-session state, built on first use: status, ``HEAD``, environment, store."""
        if self._context is None:
            config = self.config
            self._context = Context.build(
                config.rootpath,
                config_file=config.inipath,
                global_inputs=config.getini("unchanged_inputs"),
                default=config.getini("unchanged_default"),
                env_names=config.getini("unchanged_env"),
                salt=str(setting(config, "unchanged_salt")),
                extra_facets=[
                    command_line_facets(config),
                    self.plugin_facets,
                    *(m for m in config.hook.pytest_unchanged_environment(config=config) if m),
                ],
                store_path=self.store_path,
                warn=self._warn_store,
                discard_corrupt=not self.is_worker,
                explicit=explicit_paths(config.args, config.invocation_params.dir),
                mark_expression=config.getoption("markexpr", None) or None,
                pytest_config=config,
                import_path=self.import_path,
                trusted_sources=setting(config, "unchanged_trusted_sources"),
                ignore_distributions=config.getini("unchanged_ignore_distributions"),
            )
            self.env_id = self._context.env_id
            self.env_body = self._context.env_body
            self.head = self._context.worktree.head_commit
        return self._context

    @pytest.hookimpl(tryfirst=True)
    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """The fast path: leave a test module unimported when all its items are unchanged."""
        if not self.fast_path or collection_path.suffix != ".py":
            return None
        if not collection_path.is_relative_to(config.rootpath):
            return reveal_clash(config, collection_path)
        file = collection_path.relative_to(config.rootpath).as_posix()
        module = self.context.unchanged_module(file, collection_path)
        if module is None or file in self._last_failed_files():
            return reveal_clash(config, collection_path)  # last failed: collected, reported
        if not collected_whole(config, collection_path, file) or not omit(config, collection_path):
            return reveal_clash(config, collection_path)  # pytest decides; a name clash
        self.not_collected[file] = module
        return True

    def _last_failed_files(self) -> frozenset[str]:
        if self._failed_files is None:
            lastfailed = self.config.cache.get("cache/lastfailed", {})
            self._failed_files = frozenset(
                module_file(nodeid) for nodeid in lastfailed if isinstance(nodeid, str)
            )
        return self._failed_files

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None]:
        """Compute the key of every collected item, deselected ones included (a module summary
        needs all items of its module), once the other implementations have added their marks.

        The mark names of each item are taken before and after the other implementations ran,
        so the module summary knows which names pytest's ``-m`` deselection may have seen.
        """
        collected = list(items)
        before = MarkNames()
        marks = [before.of(item) for item in collected]
        result = yield
        # Items sharing a nodeid (--keep-duplicates): no key, they always run, no module summary.
        nodeids = [item.nodeid for item in collected]  # a property pytest 9 computes each time
        counts = Counter(nodeids)
        twice = {nodeid for nodeid, count in counts.items() if count > 1}
        unique = [u for u in zip(collected, nodeids, marks, strict=True) if u[1] not in twice]
        if unique:
            after = MarkNames()
            self._compute_keys(
                config,
                [(item, nodeid) for item, nodeid, _ in unique],
                [observed_marks(names, after.of(item)) for item, _, names in unique],
            )
        for nodeid in twice:
            self.summaries.pop(module_file(nodeid), None)
        return result

    def _compute_keys(
        self,
        config: pytest.Config,
        items: list[tuple[pytest.Item, str]],
        marks: list[frozenset[str] | None],
    ) -> None:
        context = self.context
        hook = config.hook.pytest_unchanged_item_inputs
        errors: dict[str, list[str]] = {}  # one line per bad mark, not per item
        members: list[Member] = []
        derive = Derivation(context.resolver, hook, bool(hook.get_hookimpls())).of
        states, env_id, add = self.states, self.env_id, members.append  # per item: locals
        for (item, nodeid), names in zip(items, marks, strict=True):
            try:
                inputs, signature = derive(item)
            except InputError as error:
                errors.setdefault(str(error), []).append(nodeid)
                continue
            key = None if inputs.unkeyable else item_key(nodeid, inputs.inputs_id, env_id)
            item.stash[ITEM_KEY] = states[nodeid] = ItemState(inputs, key)
            add((nodeid, key, signature, inputs.inputs_id, names))
        if errors:
            self.usage_error = True
            raise pytest.UsageError(bad_marks_message(errors))
        # Summaries of every module (wholly deselected ones too: their marks let -m deselect them
        # unimported), but not of one collected in part (path::name, --lf): it would miss items.
        # Nor while an item-inputs hook is implemented: its answers may come from any file, in
        # no summary's scope (adversarial review of issue 10, round 4, finding 07).
        if config.getoption("lf", False) or hook.get_hookimpls():
            self.summaries = {}
            return
        partial = partial_files(config.args, config.invocation_params.dir, config.rootpath)
        summaries = summarize(members, context.scope, context.conftest_files(), context.describe)
        self.summaries = {f: m for f, m in summaries.items() if f not in partial}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Skip or deselect unchanged items, once every other plugin has selected its items."""
        if self.skip and session.items and not self.usage_error:
            self._select(session.config, session.items)

    def _select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        records = self.context.records(item.nodeid for item in items)
        keep: list[pytest.Item] = []
        for item in items:
            state = item.stash.get(ITEM_KEY, None)
            record = None if state is None else records.get(item.nodeid, {}).get(state.key or "")
            if state is None or record is None:
                keep.append(item)
                continue
            self.unchanged.append(item)
            state.saved = record.duration
            if self.mode == "skip" and not self.preview:
                keep.append(item)
                item.add_marker(pytest.mark.skip(reason=skip_reason(record)))
        self.to_run = len(items) - len(self.unchanged)
        # Under --collect-only the listing is a preview of what would run.
        if (self.mode == "deselect" or self.preview) and self.unchanged:
            config.hook.pytest_deselected(items=self.unchanged)
            items[:] = keep

    def _warn_store(self, error: Exception) -> None:
        if str(error) not in self._store_warnings:  # trouble at collection and at the end: once
            self._store_warnings.add(str(error))
            issue_warning(self.config, store_warning(error))

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str | None:
        if not self.skip or self.usage_error:
            return None
        verb = "deselected" if self.mode == "deselect" else "skipped"
        uncollected, _, deselected = self._not_collected()
        return collection_line(
            len(self.unchanged),
            f"would be {verb}" if self.preview else verb,
            uncollected,
            deselected,
            self.to_run,
        )

    # -- running ---------------------------------------------------------------------------

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        state = item.stash.get(ITEM_KEY, None)
        for reason in state.inputs.warnings if state is not None and self.skip else ():
            message = f"{item.nodeid} runs every time: {reason}"  # never raised (finding 12)
            issue_warning(self.config, UnkeyableInputWarning(message))
        for path in state.inputs.missing if state is not None else ():
            # Issued while the item runs, so `-W error` turns it into this test's error.
            item.warn(
                UnknownPathWarning(
                    f"depends_on path {path!r} matches nothing in the worktree (a typo?); "
                    f"{item.nodeid} runs every time until it exists"
                )
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Attach this plugin's payload to the reports the recorder acts on, then (in the
        process that writes) record them. Under pytest-xdist the payload is attached on the
        worker, before pytest-xdist sends the report to the controller."""
        state = self.states.get(report.nodeid)
        if state is not None and state.key is not None:
            state.duration += report.duration
            # Only the reports the recorder acts on carry a payload: the teardown (a pass is
            # complete), a failure (its record goes), an unchanged skip (its time was saved).
            if (
                report.when == "teardown"
                or report.failed
                or (report.skipped and state.saved is not None)
            ):
                self._attach(report, state)
        elif state is not None and report.failed:
            # A known keyless item (a mistyped path): its failure forgets none of its records.
            payload = getattr(report, REPORT_ATTR, None) or {}
            setattr(report, REPORT_ATTR, {**payload, "key": None})
        if not self.is_worker:
            self.recorder.observe(report)

    def _attach(self, report: pytest.TestReport, state: ItemState) -> None:
        payload: dict[str, Any] = getattr(report, REPORT_ATTR, None) or {}
        payload["key"] = state.key
        if report.when == "teardown":
            payload["inputs_id"] = state.inputs.inputs_id
            payload["env_id"] = self.env_id
            payload["duration"] = state.duration  # setup + call + teardown, in seconds
            bodies = {}
            for body_id, body in (
                (state.inputs.inputs_id, state.inputs.body),
                (self.env_id, self.env_body),
            ):
                if body_id not in self.sent_bodies:
                    self.sent_bodies.add(body_id)
                    bodies[body_id] = body
            payload["bodies"] = bodies
        if state.saved is not None and report.skipped:
            payload["saved"] = state.saved
        setattr(report, REPORT_ATTR, payload)

    # -- end of session --------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist: every worker made the same fast-path decision; keep its counts, and the
        module summaries the first worker sends."""
        output = getattr(node, "workeroutput", {})
        count, saved, deselected = output.get("unchanged_not_collected", (0, 0.0, 0))
        self.remote_not_collected = max(
            self.remote_not_collected, (int(count), float(saved), int(deselected))
        )
        count, saved = output.get("unchanged_deselected", (0, 0.0))
        self.remote_deselected = max(self.remote_deselected, (int(count), float(saved)))
        for data in output.get("unchanged_summaries", ()):
            summary = ModuleSummary.from_wire(data)
            self.recorder.summaries[summary.file] = summary

    def _not_collected(self) -> tuple[int, float, int]:
        """Items not collected by the fast path: (unchanged, their seconds, -m deselected)."""
        local = (
            sum(m.count for m in self.not_collected.values()),
            sum(m.saved for m in self.not_collected.values()),
            sum(m.deselected for m in self.not_collected.values()),
        )
        return max(local, self.remote_not_collected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        uncollected, _, _ = self._not_collected()
        if self.is_worker:
            workeroutput = getattr(self.config, "workeroutput", {})
            workeroutput["unchanged_not_collected"] = self._not_collected()
            if self.mode == "deselect":  # skipped items report themselves; deselected do not
                workeroutput["unchanged_deselected"] = (len(self.unchanged), self._saved())
            # Every worker collected the same items (pytest-xdist checks it): one sends them.
            if self.config.workerinput.get("workerid") == "gw0":  # type: ignore[attr-defined]
                workeroutput["unchanged_summaries"] = [s.to_wire() for s in self.summaries.values()]
        if (
            self.skip
            and (self.unchanged or uncollected or self.remote_deselected[0])
            and not self.to_run
            and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
        ):
            session.exitstatus = pytest.ExitCode.OK
        if self._context is not None:
            self._context.close()
        if self.is_worker:
            return
        self.recorder.env_id = self.recorder.env_id or self.env_id
        self.recorder.write(
            self.store_path,
            head=self.head or head_commit(self.config.rootpath),
            summaries=self.summaries.values(),
            max_keys=int(self.config.getini("unchanged_max_keys")),
            max_age=float(self.config.getini("unchanged_max_age_days")) * 86400,
            warn=self._warn_store,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.skip or self.is_worker or self.preview or self.usage_error:
            return  # under --collect-only the collection line said it all
        uncollected, uncollected_saved, _ = self._not_collected()
        recorder = self.recorder
        remote, remote_saved = self.remote_deselected
        count = (recorder.skipped_unchanged or len(self.unchanged) or remote) + uncollected
        saved = uncollected_saved + (recorder.saved_seconds or self._saved() or remote_saved)
        if count:
            terminalreporter.write_line(
                f"unchanged: {count:,} unchanged {plural(count, 'test')} not run, "
                f"{saved:.2f}s saved (their recorded durations)"
            )

    def _saved(self) -> float:  # the recorded seconds of the unchanged items collected here
        return sum(item.stash[ITEM_KEY].saved or 0.0 for item in self.unchanged)
