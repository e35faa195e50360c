"""A second ``pytest11`` entry point that only registers the hookspecs of :mod:`.hookspecs`.

pytest checks every ``pytest_*`` function of a ``conftest.py`` against the known hookspecs after
collection (``PluginManager.check_pending``) and stops the run with an "unknown hook" error for
one that has no spec and is not marked ``optionalhook=True``. ``-p no:unchanged`` blocks the
``unchanged`` entry point (:mod:`pytest_unchanged.plugin`) and its ``pytest_addhooks``; this
one, named ``unchanged_hookspecs``, keeps the specs registered so a conftest implementing
``pytest_unchanged_item_inputs`` still runs with the plugin turned off. It adds nothing else.
"""

from __future__ import annotations

import pytest

from . import hookspecs

__all__ = ["pytest_addhooks"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    hookspecs.register(pluginmanager)
