"""``--unchanged-explain``: one reason for every item that runs, grouped in the terminal report.

The reason is decided where the item is collected (the xdist worker, or the only process),
carried to the controller in the report payload (``report.unchanged["explain"]``, on the setup
report), and grouped and counted there in ``pytest_terminal_summary``. Reasons, first match wins:

* ``always-run marker``, or another reason the item cannot have a key;
* ``failed last time``: the last run with exactly these inputs and environment failed;
* ``skipped/xfailed last time``: no record, and a skip, skipif or xfail mark (such outcomes
  are never recorded);
* ``no record yet``: it never passed (or its records were pruned);
* ``environment changed: django 5.1.4 → 5.2``: facets that differ from those of its newest pass;
* ``input src/a.py changed (1a2b3c4 → 5d6e7f8)``, ``appeared``, ``deleted``, ``no longer an
  input`` (still in the worktree, no longer declared): the inputs that differ from the manifest
  of its newest pass, every one named up to :data:`NAMED`;
* ``unchanged``: it has a record, and runs because skipping is off.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

import pytest

from .. import recording, selection
from ..inputs import ItemInputs
from ..keys import Facets
from ..reporting import plural
from ..store import Record, StoreError
from ..worktree import ABSENT

__all__ = ["ExplainPlugin", "environment_changes", "input_changes", "reason_for", "register"]

PAYLOAD_KEY = "explain"
NAMED = 5
"""How many changed inputs or facets a reason names before it says "and N more"."""
NO_RECORD = "no record yet"
SKIPPED_LAST_TIME = "skipped/xfailed last time"
SKIP_MARKS = ("skip", "skipif", "xfail")
FAILED_LAST_TIME = "failed last time"
ALWAYS_RUN = "always-run marker"
SHORT = 7
WHOLE_WORKTREE = ". (the whole worktree)"


def register(config: pytest.Config) -> None:
    """Register :class:`ExplainPlugin` when ``--unchanged-explain`` (or its ini option) is on.

    Raises :class:`pytest.UsageError` when it is on but pytest-unchanged is not active.
    """
    if not selection.setting(config, "unchanged_explain"):
        return
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is None:
        raise pytest.UsageError(inactive_message("--unchanged-explain"))
    config.pluginmanager.register(ExplainPlugin(core), "unchanged-explain")


def inactive_message(option: str) -> str:
    """Return the usage error for ``option`` given when pytest-unchanged is not active."""
    return (
        f"{option} needs pytest-unchanged to be active: run pytest inside a git worktree, "
        "with the cacheprovider plugin enabled"
    )


def short(oid: str) -> str:
    """Return the abbreviated form of a hex OID, as ``git log --oneline`` shows it."""
    return oid[:SHORT]


def _named(changes: Sequence[str]) -> str:
    shown = ", ".join(changes[:NAMED])
    rest = len(changes) - NAMED
    return shown + (f" and {rest} more" if rest > 0 else "")


def input_changes(
    old: Iterable[Sequence[str]],
    new: Iterable[Sequence[str]],
    exists: Callable[[str], bool] = lambda path: False,
) -> list[tuple[str, str]]:
    """Return ``(path, what happened)`` for each input that differs between two manifests.

    ``old`` and ``new`` hold ``(path, mode, OID)`` triples; what happened is ``"appeared"``,
    ``"deleted"``, ``"no longer an input"`` (gone from ``new`` though ``exists(path)`` says it
    is still in the worktree: the configuration changed), ``"changed (1a2b3c4 → 5d6e7f8)"`` or
    a mode change. An input recorded as absent counts as not there. Sorted by path.
    """
    before = {p: (m, o) for p, m, o in old if o != ABSENT.oid}
    after = {p: (m, o) for p, m, o in new if o != ABSENT.oid}
    changes: list[tuple[str, str]] = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was == now:
            continue
        if was is None:
            changes.append((path, "appeared"))
        elif now is None:
            changes.append((path, "no longer an input" if exists(path) else "deleted"))
        elif was[1] != now[1]:
            changes.append((path, f"changed ({short(was[1])} → {short(now[1])})"))
        else:
            changes.append((path, f"mode changed ({was[0]} → {now[0]})"))
    return [(WHOLE_WORKTREE if path == "." else path, what) for path, what in changes]


def environment_changes(old: Facets, new: Facets) -> list[str]:
    """Return a phrase for each environment facet that differs between ``old`` and ``new``.

    Distributions read ``django 5.1.4 → 5.2`` (or ``installed``/``uninstalled``), the Python
    version ``Python 3.11.7 → 3.12.1``, environment variables are named but their values are
    not shown (they may be secrets), the salt is ``the salt``.
    """
    changes = []
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        if name.startswith("dist:"):
            dist = name[5:]
            if name not in old:
                changes.append(f"{dist} {now} installed")
            elif name not in new:
                changes.append(f"{dist} {was} uninstalled")
            else:
                changes.append(f"{dist} {was} → {now}")
        elif name.startswith("env:"):
            changes.append(f"environment variable {name[4:]}")
        elif name == "salt":
            changes.append("the salt")
        elif name == "python":
            changes.append(f"Python {was} → {now}")
        elif name == "schema":
            changes.append(f"key schema {was} → {now}")
        else:
            changes.append(f"{name} {was} → {now}")
    return changes


def reason_for(
    inputs: ItemInputs,
    key: str | None,
    records: Mapping[str, Record],
    failed: Mapping[str, float],
    environment: Facets,
    body: Callable[[str], str | None],
    *,
    runs_anyway: str,
    skip_marked: bool = False,
    exists: Callable[[str], bool] = lambda path: False,
) -> str:
    """Return why an item with these ``inputs`` and ``key`` runs.

    ``records`` and ``failed`` are its stored passes and failures by key, ``environment`` the
    facets of this session, ``body`` looks up a stored manifest or facets JSON by digest, and
    ``runs_anyway`` says why an item with a record under ``key`` still runs. ``skip_marked``:
    the item has a skip, skipif or xfail mark; ``exists`` says whether a worktree path exists.
    """
    if inputs.unkeyable is not None or key is None:
        if inputs.unkeyable == "marked always_run":
            return ALWAYS_RUN
        return f"always runs: {inputs.unkeyable}"
    if key in records:
        return f"unchanged, {runs_anyway}"
    if key in failed:
        return FAILED_LAST_TIME
    if not records:
        return SKIPPED_LAST_TIME if skip_marked else NO_RECORD
    newest = max(records.values(), key=lambda r: r.passed_at)
    old_env = body(newest.env_id)
    if old_env is not None:
        env = environment_changes(json.loads(old_env), environment)
        if env:
            return "environment changed: " + _named(env)
    old_manifest = body(newest.inputs_id)
    if old_manifest is None:
        return "inputs changed since it last passed (that manifest is no longer stored)"
    changes = input_changes(json.loads(old_manifest), inputs.manifest, exists)
    if len(changes) == 1:
        return f"input {changes[0][0]} {changes[0][1]}"
    if changes:
        return "inputs changed: " + _named([f"{p} {what}" for p, what in changes])
    return "key changed since it last passed"


class ExplainPlugin:
    """Decides the reasons where items are collected; groups them where reports arrive."""

    def __init__(self, core: selection.UnchangedPlugin) -> None:
        self.core = core
        self.reasons: dict[str, str] = {}
        self.groups: dict[str, list[str]] = defaultdict(list)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if session.items:
            self.reasons = self.decide(session.items)

    def decide(self, items: Sequence[pytest.Item]) -> dict[str, str]:
        """Return the reason of every item in ``items`` that runs, by nodeid."""
        context = self.core.context
        nodeids = [item.nodeid for item in items]
        records = context.records(nodeids)
        failures: dict[str, dict[str, float]] = {}
        bodies: dict[str, str | None] = {}
        store = context.store
        if store is not None:
            # An unreadable store was already warned about when the records were read.
            with contextlib.suppress(StoreError):
                failures = store.failures(nodeids)

        def body(body_id: str) -> str | None:
            if body_id not in bodies:
                bodies[body_id] = None if store is None else store.body(body_id)
            return bodies[body_id]

        environment = json.loads(context.env_body)
        runs_anyway = "runs because --unchanged is off"
        if self.core.config.getoption("unchanged_verify"):
            runs_anyway = "run by --unchanged-verify"
        root = context.worktree.root
        reasons = {}
        for item in items:
            state = item.stash.get(selection.ITEM_KEY, None)
            if state is None:
                continue
            own = records.get(item.nodeid, {})
            if self.core.skip and state.key is not None and state.key in own:
                continue  # skipped as unchanged: it does not run
            reasons[item.nodeid] = reason_for(
                state.inputs,
                state.key,
                own,
                failures.get(item.nodeid, {}),
                environment,
                body,
                runs_anyway=runs_anyway,
                skip_marked=any(any(item.iter_markers(name)) for name in SKIP_MARKS),
                exists=lambda path: os.path.lexists(root / path),
            )
        return reasons

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        reason = self.reasons.get(item.nodeid)
        if reason is not None and report.when == "setup":
            payload(report)[PAYLOAD_KEY] = reason
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.core.is_worker or report.when != "setup":
            return
        reason = getattr(report, recording.REPORT_ATTR, {}).get(PAYLOAD_KEY)
        if isinstance(reason, str):
            self.groups[reason].append(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.core.is_worker:
            return
        total = sum(len(nodeids) for nodeids in self.groups.values())
        terminalreporter.section(f"unchanged: why {total} {plural(total, 'test')} ran", sep="-")
        if not total:
            terminalreporter.write_line("no tests ran")
        verbose = terminalreporter.config.getoption("verbose") >= 0
        for reason, nodeids in sorted(self.groups.items(), key=lambda g: (-len(g[1]), g[0])):
            count = f"{len(nodeids)} {plural(len(nodeids), 'test')}"
            terminalreporter.write_line(f"{reason}: {count}")
            for nodeid in nodeids if verbose else ():
                terminalreporter.write_line(f"    {nodeid}")


def payload(report: pytest.TestReport) -> dict[str, Any]:
    """Return the ``report.unchanged`` payload dict of ``report``, attaching one if needed."""
    found = getattr(report, recording.REPORT_ATTR, None)
    if not isinstance(found, dict):
        found = {}
        setattr(report, recording.REPORT_ATTR, found)
    return found
