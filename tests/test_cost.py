"""What the plugin costs a session that does not use ``--unchanged`` (issue 11, Cost)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from pytest_unchanged.keys import canonical_name

from .conftest import commit

NAMES = [
    "Django",
    "oslo.concurrency",
    "pytest_unchanged",
    "A__b--c..d",
    "-x-",
    "_a_",
    "Foo.Bar_baz-QUX",
    "a.-_b",
    "ÄÖÜ.x",
    "İstanbul",
    "",
]


@pytest.mark.parametrize("name", NAMES)
def test_canonical_names_are_packagings(name: str) -> None:
    assert canonical_name(name) == canonicalize_name(name)


def test_a_plain_session_imports_only_what_it_uses(pytester: pytest.Pytester, repo: Path) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(
                name for name in sys.modules
                if name.startswith(("packaging", "doctest", "pytest_unchanged"))
            )
            print("\\nLOADED", " ".join(loaded))
        """
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    commit(repo)
    result = pytester.runpytest_subprocess("-s", "-p", "no:doctest")
    result.assert_outcomes(passed=1)
    line = next(line for line in result.outlines if line.startswith("LOADED"))
    loaded = set(line.split()[1:])
    assert "pytest_unchanged.selection" in loaded  # the plugin is active
    unused = {
        "packaging.utils",
        "doctest",
        "pytest_unchanged.trust.verify",
        "pytest_unchanged.trust.explain",
        "pytest_unchanged.trust.audit",
        "pytest_unchanged.import_watch",
        "pytest_unchanged.shared",
    }
    assert loaded.isdisjoint(unused), loaded & unused
