"""The controller side of recording: reports in, records out, one store transaction at the end.

Only the main process writes (under pytest-xdist, the controller): workers compute keys while
they collect and attach them to their reports as a JSON-serialisable payload (``report.unchanged``),
which the controller turns into :class:`~pytest_unchanged.store.Record` objects here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pygit2
import pytest

from .store import CorruptStoreError, Record, Store, StoreError
from .summaries import ModuleSummary

__all__ = ["REPORT_ATTR", "Recorder", "head_commit"]

REPORT_ATTR = "unchanged"
"""Name of the report attribute holding this plugin's payload (a dict, or absent)."""


class Recorder:
    """Collects passes, failures, manifests and module summaries from the reports of a session.

    A pass is an item whose setup, call and teardown all passed, not skipped, xfailed or xpassed
    (pytest's ``wasxfail``), and whose call phase this recorder saw: a passed ``call`` report
    for that nodeid, in this session, between its setup and its teardown. Runs that never call
    the test (``--setup-only``, ``--setup-plan``, a plugin whose ``pytest_runtest_protocol``
    reports setup and teardown only) have no such report, so they record nothing, whatever
    option or plugin caused it (DESIGN.md, "Soundness rules"). Any failed phase removes the
    record of that ``(nodeid, key)``.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}
        self.passes: list[Record] = []
        # A failed teardown per process (xdist worker), until the next item's setup says which
        # scopes it tore down (see _torn_down).
        self._failed_teardown: dict[int, str] = {}
        self.failures: list[tuple[str, str]] = []
        self.forget: set[str] = set()
        self.summaries: dict[str, ModuleSummary] = {}
        self.env_id = ""
        self.skipped_unchanged = 0
        self.saved_seconds = 0.0
        self._failed: dict[str, bool] = {}
        self._called: set[str] = set()  # nodeids whose call phase passed, until their teardown

    def observe(self, report: pytest.TestReport) -> None:
        """Take one report (every phase of every item, in order) into account."""
        when = report.when
        nodeid = report.nodeid
        xfail = hasattr(report, "wasxfail")
        if when == "setup":
            self._called.discard(nodeid)  # a new run of the item: only its own call counts
            failed = self._failed_teardown.pop(id(getattr(report, "node", None)), None)
            if failed is not None:
                self._drop_passes(_torn_down(failed, nodeid))
        if when != "teardown" and report.passed and not xfail:
            if when == "call":
                self._called.add(nodeid)
            return  # a phase that passed: the teardown says whether the item completed
        if not report.passed or xfail:
            self._failed[nodeid] = True
            if when == "teardown" and report.failed:
                # pytest charges a class-, module-, package- or session-scoped fixture's
                # teardown error to the last item of its scope, not to the items that used it.
                self._failed_teardown[id(getattr(report, "node", None))] = nodeid
        completed = False
        if when == "teardown":
            called = nodeid in self._called
            self._called.discard(nodeid)
            completed = not self._failed.pop(nodeid, False) and called
        payload: Any = getattr(report, REPORT_ATTR, None)
        if not isinstance(payload, dict) or "key" not in payload:
            if report.failed:
                # A failure whose key is not known (pytest-xdist reports a crashed worker's item
                # this way): no record of this nodeid, under any key, may survive it.
                self.forget.add(nodeid)
            return
        if payload["key"] is None:
            return  # an item with no key (see UnchangedPlugin): nothing to record or forget
        if "saved" in payload:
            self.skipped_unchanged += 1
            self.saved_seconds += float(payload["saved"])
        self.bodies.update(payload.get("bodies", {}))
        self.env_id = self.env_id or str(payload.get("env_id", ""))
        if report.failed:
            self.failures.append((nodeid, payload["key"]))
        if completed:
            self.passes.append(
                Record(
                    nodeid=nodeid,
                    key=payload["key"],
                    inputs_id=payload["inputs_id"],
                    env_id=payload["env_id"],
                    duration=float(payload.get("duration", 0.0)),
                    passed_at=time.time(),
                    head=None,
                )
            )

    def _drop_passes(self, scope: str) -> None:
        """Forget the passes seen so far of the items under ``scope`` (see :func:`_torn_down`)."""
        if scope:
            prefix = scope if scope.endswith("/") else f"{scope}::"
            self.passes = [r for r in self.passes if not r.nodeid.startswith(prefix)]

    def write(
        self,
        store_path: Path,
        *,
        head: str | None,
        summaries: Iterable[ModuleSummary],
        max_keys: int,
        max_age: float,
        warn: Callable[[Exception], None],
    ) -> None:
        """Write what was observed into the store at ``store_path`` in one transaction.

        ``head`` is the hex ``HEAD`` commit put into every record; ``summaries`` are module
        summaries collected in this process (the ones received from workers are added).
        ``max_age`` is in seconds. An unreadable store is reported with ``warn``, moved aside
        and replaced, and the session's results written to the new one; a store that is locked
        too long or cannot be written is reported with ``warn`` and left as it was. Nothing
        raises.
        """
        modules: Mapping[str, ModuleSummary] = {
            **{s.file: s for s in summaries},
            **self.summaries,
        }
        if self._failed_teardown:
            self.passes = []  # the last teardown of a process failed: its session scope too
        if not (self.passes or self.failures or self.forget or modules):
            return
        passes = [
            Record(r.nodeid, r.key, r.inputs_id, r.env_id, r.duration, r.passed_at, head)
            for r in self.passes
        ]
        for attempt in (1, 2):
            try:
                store = Store(store_path)
                try:
                    store.update(
                        passes,
                        self.failures,
                        self.bodies,
                        max_keys=max_keys,
                        max_age=max_age,
                        modules=modules.values() if self.env_id else (),
                        env_id=self.env_id,
                        forget=self.forget,
                    )
                finally:
                    store.close()
            except CorruptStoreError as error:
                warn(error)
                if attempt == 1:
                    Store.discard(store_path)  # and write this session's results to a new one
                    continue
            except StoreError as error:
                warn(error)
            return


def _scopes(nodeid: str) -> list[str]:
    """The nodeid prefixes of the collectors above an item: directories (ending in ``/``), the
    module, then each class (``tests/`` , ``tests/test_a.py``, ``tests/test_a.py::TestC``)."""
    file, _, rest = nodeid.partition("::")
    parts = file.split("/")
    scopes = ["/".join(parts[:i]) + "/" for i in range(1, len(parts))] + [file]
    for name in rest.split("::")[:-1]:
        scopes.append(f"{scopes[-1]}::{name}")
    return scopes


def _torn_down(failed: str, following: str) -> str:
    """The widest scope pytest tore down after item ``failed`` because item ``following`` comes
    next (``""``: only ``failed``'s own function scope). Its fixtures' teardown errors were
    charged to ``failed``."""
    kept = set(_scopes(following))
    return next((scope for scope in _scopes(failed) if scope not in kept), "")


def head_commit(rootdir: Path) -> str | None:
    """Return the hex ``HEAD`` commit of the repository containing ``rootdir``, if any."""
    found = pygit2.discover_repository(os.fspath(rootdir))
    if found is None:
        return None
    repository = pygit2.Repository(found)
    if repository.head_is_unborn:
        return None
    return str(repository.head.peel(pygit2.Commit).id)
