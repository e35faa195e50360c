"""No pass is kept while ``sys.path`` holds an entry the environment facets never digested.

The environment facets digest every ``sys.path`` entry outside the repository as the session
began (:mod:`.search_path`), before pytest loads the conftests it finds while collecting (those
of directories below the rootdir that no argument names) and before any fixture or hook runs.
Such code can add a directory outside the repository (a shared library checkout, a vendored
SDK) and tests import from it, yet no key holds its content: an edit there would not make the
tests run (adversarial review of issue 10, round 4, finding 03).

So this plugin compares ``sys.path`` with the entries the facets took, when collection ends
and when each test has run. An added entry that is outside the repository (or ignored by git
inside it), not below an entry already digested, and holds something importable (see
:func:`.search_path.search_path_facets`) is *late*: from then on no test is skipped and no pass
is recorded in the process, and an :class:`.UnkeyableInputWarning` names the entry and the
cure (put the directory on ``sys.path`` from the start: pytest's ``pythonpath`` ini option, or
``PYTHONPATH``). An entry added by a test module as it is imported counts the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from . import selection
from .reporting import issue_warning
from .search_path import search_path_facets
from .warning_types import UnkeyableInputWarning

__all__ = ["PathWatch", "register"]


def register(config: pytest.Config) -> None:
    """Register :class:`PathWatch` when pytest-unchanged is active."""
    core = config.stash.get(selection.PLUGIN_KEY, None)
    if core is not None:
        config.pluginmanager.register(PathWatch(core), "unchanged-path-watch")


class PathWatch:
    """The plugin: ``sys.path`` against the entries the environment facets digested."""

    def __init__(self, core: selection.UnchangedPlugin) -> None:
        self.core = core
        self.late = False
        self._checked: list[str] = list(core.import_path)
        self._session: pytest.Session | None = None
        self.roots: set[str] = set()
        """The directories of the collected test modules: pytest's import modes put one on
        ``sys.path`` for a module outside the repository (its items always run)."""

    def _check(self) -> bool:
        """Whether ``sys.path`` holds a late entry (warning once when one first appears)."""
        if self.late or sys.path == self._checked:
            return self.late
        self._checked = list(sys.path)
        began = set(self.core.import_path)
        added = [e for e in sys.path if isinstance(e, str) and e not in began]
        if added and self._session is not None and not self.roots:
            for path in {item.path for item in self._session.items}:
                self.roots.update(map(str, path.parents))
        added = [e for e in added if e not in self.roots]
        try:
            top = self.core.context.worktree.root
            covered = []
            for entry in began:
                real = Path(os.path.realpath(entry or os.getcwd()))
                if not real.is_relative_to(top):
                    covered.append(real)
            facets, problems = search_path_facets(added, top, covered)
        except Exception as error:  # never break a run: the entries could not be judged
            facets, problems = {}, [f"cannot read sys.path: {error}"]
        if facets or problems:
            self.late = True
            self.core.summaries.clear()  # no module summary stands on these keys either
            names = ", ".join(repr(e) for e in added)
            issue_warning(
                self.core.config,
                UnkeyableInputWarning(
                    f"sys.path gained {names} after the session began (a conftest, a fixture or "
                    "a test module added it): what is imported from there is in no key, so no "
                    "test is skipped and no pass is recorded in this run. Put the directory on "
                    "sys.path from the start (pytest's `pythonpath` ini option, or PYTHONPATH)."
                ),
            )
        return self.late

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Before the session plugin selects: with a late entry, every item runs."""
        self._session = session
        if self._check():
            for item in session.items:
                state = item.stash.get(selection.ITEM_KEY, None)
                if state is not None:
                    state.key = None
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """After every other wrapper (the import watch may give the item a key): with a late
        entry, the item's pass is not recorded."""
        report = yield
        if report.when == "teardown" and self._check():
            state = item.stash.get(selection.ITEM_KEY, None)
            if state is not None:
                state.key = None
        return report
