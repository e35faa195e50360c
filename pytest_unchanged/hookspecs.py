"""Hook specifications other plugins implement to extend pytest-unchanged.

They are registered in ``pytest_addhooks`` (see pytest's "Declaring new hooks" docs), so a
``conftest.py`` or plugin implements them like any pytest hook, by name.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["pytest_unchanged_environment", "pytest_unchanged_item_inputs", "register"]


def register(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add these hookspecs to ``pluginmanager`` unless they are there already.

    Both entry points (``unchanged`` and ``unchanged_hookspecs``) call it; pluggy raises
    :class:`ValueError` when one spec is added twice.
    """
    caller = getattr(pluginmanager.hook, "pytest_unchanged_item_inputs", None)
    if caller is None or not caller.has_spec():
        pluginmanager.add_hookspecs(sys.modules[__name__])


@pytest.hookspec
def pytest_unchanged_item_inputs(item: pytest.Item) -> Sequence[str] | None:
    """Return extra inputs of ``item``: paths or glob patterns relative to the rootdir.

    They are read exactly like the arguments of ``@pytest.mark.depends_on`` and added to the
    item's declared inputs (an item with no mark still keeps its default inputs). Return
    ``None`` or an empty sequence to add nothing. Every implementation is called; the results
    are concatenated.
    """


@pytest.hookspec
def pytest_unchanged_environment(config: pytest.Config) -> Mapping[str, str | None] | None:
    """Return extra environment facets: a mapping of facet name to value.

    The facets go into every item's key, so a change of any value makes every test run again
    (for example a database server's version). Called once per session; later
    implementations win on a name clash. ``None`` values mean "not set".
    """
