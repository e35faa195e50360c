"""``--unchanged-verify``: run every item, and report each one that would have been skipped but
did not pass now (a *false skip*: a failure ``--unchanged`` would have hidden).

Where items are collected (an xdist worker, or the only process), the items that have a record
under their current key are the ones ``--unchanged`` would skip; skipping and the fast path are
turned off so that they run. A failing report of such an item carries the record and the item's
inputs in ``report.unchanged["verify"]``; the controller lists them at the end and makes the exit
status non-zero. Passing items are recorded as in any run; a failing one loses its record.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .. import recording, selection
from ..records import utc_text
from ..reporting import plural
from ..store import Record
from ..worktree import ABSENT
from .explain import NAMED, inactive_message, payload

__all__ = ["VerifyPlugin", "register"]

PAYLOAD_KEY = "verify"


def register(config: pytest.Config) -> None:
    """Register :class:`VerifyPlugin` when ``--unchanged-verify`` is given.

    It turns skipping off, so ``--unchanged --unchanged-verify`` runs everything too. Raises
    :class:`pytest.UsageError` when pytest-unchanged is not active.
    """
    if not config.getoption("unchanged_verify"):
        return
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is None:
        raise pytest.UsageError(inactive_message("--unchanged-verify"))
    core.skip = False
    core.fast_path = False
    config.pluginmanager.register(VerifyPlugin(core), "unchanged-verify")


def _when(passed_at: float) -> str:
    return utc_text(passed_at)


class VerifyPlugin:
    """Finds would-be-skipped items where they are collected; lists false skips at the end."""

    def __init__(self, core: selection.UnchangedPlugin) -> None:
        self.core = core
        self.would_skip: dict[str, Record] = {}
        self.collected = 0
        # Controller side: nodeid -> the first failing payload, and the phases that failed.
        self.false_skips: dict[str, dict[str, Any]] = {}
        self.failed_phases: dict[str, list[str]] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)
        if not session.items:
            return
        records = self.core.context.records(item.nodeid for item in session.items)
        for item in session.items:
            state = item.stash.get(selection.ITEM_KEY, None)
            if state is None or state.key is None:
                continue
            record = records.get(item.nodeid, {}).get(state.key)
            if record is not None:
                self.would_skip[item.nodeid] = record

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str | None:
        if self.core.is_worker:
            return None
        if not self.collected:
            return "unchanged-verify: running every test, including those --unchanged would skip"
        return (
            f"unchanged-verify: {len(self.would_skip)} of {self.collected} "
            f"{plural(self.collected, 'test')} would be skipped as unchanged; running them all"
        )

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        record = self.would_skip.get(item.nodeid)
        if record is not None and report.failed:
            state = item.stash[selection.ITEM_KEY]
            payload(report)[PAYLOAD_KEY] = {
                "passed_at": record.passed_at,
                "head": record.head,
                "inputs": [p for p, _, oid in state.inputs.manifest if oid != ABSENT.oid],
            }
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.core.is_worker:
            return
        found = getattr(report, recording.REPORT_ATTR, {}).get(PAYLOAD_KEY)
        if isinstance(found, dict):
            self.false_skips.setdefault(report.nodeid, found)
            self.failed_phases.setdefault(report.nodeid, []).append(report.when or "?")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.false_skips and not self.core.is_worker and session.exitstatus in ok:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.core.is_worker:
            return
        count = len(self.false_skips)
        write = terminalreporter.write_line
        if not count:
            terminalreporter.section("unchanged-verify: no false skips", sep="-")
            write("every test that --unchanged would have skipped passed")
            return
        title = f"unchanged-verify: {count} false {plural(count, 'skip')}"
        terminalreporter.section(title, sep="=", red=True)
        for nodeid, found in self.false_skips.items():
            head = str(found.get("head") or "no commit")[:10]
            phases = ", ".join(self.failed_phases[nodeid])
            write(
                f"{nodeid}: --unchanged would have skipped it (passed at "
                f"{_when(float(found['passed_at']))}, HEAD {head}), but it failed now ({phases})"
            )
            inputs = list(found.get("inputs", []))
            shown = ", ".join(inputs[:NAMED])
            more = f" and {len(inputs) - NAMED} more" if len(inputs) > NAMED else ""
            write(f"    its inputs: {shown}{more}")
        write(
            "These tests failed although their inputs are the same as when they passed: they "
            "read something their inputs do not cover. Find it with --unchanged-audit, then "
            "declare it with depends_on(...) or mark the test always_run."
        )
