"""unchanged_default = imports follows a submodule reached through its package's module object.

Importing ``pkg.sub`` anywhere makes ``sub`` an attribute of ``pkg``: a test module that only
imports ``pkg`` can use ``pkg.sub`` once another test module imported it, which pytest's
collection of the whole suite always does first. Neither the test's static closure nor the
record-time check (nothing new is loaded while the test runs) sees it, so an edit of
``pkg/sub.py`` skipped the test although it now fails (adversarial review of issue 10,
round 4). Each case records a pass of both test modules, edits the submodule, and expects the
test to run and fail with the fast path on and off, from copies of the same store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_unchanged
from .test_soundness_imports import imports_repo, recorded_then_edited, run

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

__all__ = ["imports_repo"]  # the fixture, used by name

IMPORTER = "import pkg.sub\n\ndef test_importer():\n    assert pkg.sub.X >= 1\n"

READERS = {
    "attribute": "import pkg\n\ndef test_reader():\n    assert pkg.sub.X == 1\n",
    "alias_handed_on": (
        "import pkg as p\n\ndef read(module):\n    return module.sub.X\n\n"
        "def test_reader():\n    assert read(p) == 1\n"
    ),
    "getattr_string": ("import pkg\n\ndef test_reader():\n    assert getattr(pkg, 'sub').X == 1\n"),
    "package_global": "import pkg\n\ndef test_reader():\n    assert pkg.read() == 1\n",
    "star_import": "from pkg import *\n\ndef test_reader():\n    assert sub.X == 1\n",
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_submodule_another_module_imported_is_followed_through_its_package(
    pytester: pytest.Pytester, imports_repo: Path, reader: str
) -> None:
    init = "def read():\n    return sub.X\n" if reader == "package_global" else ""
    files = {
        "pkg/__init__.py": init,
        "pkg/sub.py": "X = 1\n",
        "test_a_importer.py": IMPORTER,
        "test_b_reader.py": READERS[reader],
    }
    for result in recorded_then_edited(pytester, files, {"pkg/sub.py": "X = 2\n"}, passed=2):
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["FAILED test_b_reader.py::test_reader*"])


def test_a_submodule_of_a_namespace_package_is_followed_through_it(
    pytester: pytest.Pytester, imports_repo: Path
) -> None:
    files = {
        "ns/sub.py": "X = 1\n",
        "test_a_importer.py": IMPORTER.replace("pkg", "ns"),
        "test_b_reader.py": READERS["attribute"].replace("pkg", "ns"),
    }
    for result in recorded_then_edited(pytester, files, {"ns/sub.py": "X = 2\n"}, passed=2):
        result.assert_outcomes(passed=1, failed=1)


def test_a_submodule_whose_name_the_code_never_uses_keeps_the_test_unchanged(
    pytester: pytest.Pytester, imports_repo: Path
) -> None:
    """The rule follows names the code uses, not every submodule of an imported package."""
    files = {
        "pkg/__init__.py": "",
        "pkg/sub.py": "X = 1\n",
        "pkg/other.py": "Y = 1\n",
        "test_a_importer.py": IMPORTER,
        "test_b_reader.py": READERS["attribute"],
        "test_c_other.py": "import pkg.other\n\ndef test_other():\n    assert pkg.other.Y\n",
    }
    results = recorded_then_edited(pytester, files, {"pkg/other.py": "Y = 2\n"}, passed=3)
    for result in results:
        assert result.parseoutcomes()["passed"] == 1, result.stdout.str()
        result.stdout.fnmatch_lines(["unchanged: 2 unchanged tests not run*"])
    assert_unchanged(run(pytester), 3)
