"""Issue 10, classes 4-8 (and issue 11's unhashable files): what an item's inputs are.

Each test records a pass, then changes something the test reads without touching what the old
rules watched: the test must run again (and fail, so it visibly ran) instead of being skipped.
Edits change a file's size, so Python's bytecode cache (keyed on mtime and size) cannot hide them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, git

WARN = ("-W", "always::pytest.PytestWarning")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--unchanged", "-p", "no:randomly", *args)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- 4. `.` is the whole worktree; every conftest pytest looks at ---------------------------------


READS_DATA = """
import pytest
from pathlib import Path

DATA = Path(__file__).resolve().parents[{up}] / "data" / "value.txt"

def test_unmarked():
    assert DATA.read_text() == "1\\n"

@pytest.mark.depends_on(".")
def test_marked_dot():
    assert DATA.read_text() == "1\\n"

@pytest.mark.depends_on("local.txt")
def test_relative_to_rootdir():
    assert (Path(__file__).parent.parent / "local.txt").read_text() == "1\\n"
"""


def test_dot_is_the_whole_worktree_below_a_monorepo_ini(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "data" / "value.txt", "1\n")
    write(repo / "py" / "pytest.ini", "[pytest]\n")
    write(repo / "py" / "local.txt", "1\n")
    write(repo / "py" / "tests" / "test_data.py", READS_DATA.format(up=2))
    commit(repo)
    monkeypatch.chdir(repo / "py")
    run(pytester).assert_outcomes(passed=3)
    assert_unchanged(run(pytester), 3)
    # Outside the rootdir (py/), inside the repository: `.` covers it.
    write(repo / "data" / "value.txt", "22\n")
    run(pytester).assert_outcomes(failed=2, skipped=1)
    # Other relative paths are read from the rootdir: py/local.txt.
    write(repo / "data" / "value.txt", "1\n")
    write(repo / "py" / "local.txt", "22\n")
    run(pytester).assert_outcomes(passed=2, failed=1)


def test_dot_is_the_whole_worktree_from_a_subdirectory_without_ini(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "data" / "value.txt", "1\n")
    write(repo / "tests" / "test_data.py", READS_DATA.format(up=1).split("@pytest")[0])
    commit(repo)
    monkeypatch.chdir(repo / "tests")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {repo / 'tests'}"])
    assert_unchanged(run(pytester), 1)
    write(repo / "data" / "value.txt", "22\n")
    run(pytester).assert_outcomes(failed=1)


CONFTEST_USER = """
import pytest

@pytest.mark.depends_on("tests/own.txt")
def test_uses_fixture(value):
    assert value == 1
"""


def test_a_conftest_above_the_rootdir_is_an_input(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "conftest.py", "import pytest\n\n@pytest.fixture\ndef value():\n    return 1\n")
    write(repo / "py" / "pytest.ini", "[pytest]\n")
    write(repo / "py" / "tests" / "own.txt", "x\n")
    write(repo / "py" / "tests" / "test_fixture.py", CONFTEST_USER)
    commit(repo)
    monkeypatch.chdir(repo / "py")
    cut = ("--confcutdir", str(repo))
    run(pytester, *cut).assert_outcomes(passed=1)
    assert_unchanged(run(pytester, *cut), 1)
    write(repo / "conftest.py", "import pytest\n\n@pytest.fixture\ndef value():\n    return 22\n")
    run(pytester, *cut).assert_outcomes(failed=1)


def test_a_new_conftest_where_pytest_looks_is_an_input(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "py" / "pytest.ini", "[pytest]\n")
    write(repo / "py" / "tests" / "own.txt", "x\n")
    write(
        repo / "py" / "tests" / "test_plain.py",
        '@__import__("pytest").mark.depends_on("tests/own.txt")\ndef test_plain():\n    pass\n',
    )
    commit(repo)
    monkeypatch.chdir(repo / "py")
    cut = ("--confcutdir", str(repo))
    run(pytester, *cut).assert_outcomes(passed=1)
    assert_unchanged(run(pytester, *cut), 1)
    write(
        repo / "conftest.py",
        "import pytest\n\n@pytest.fixture(autouse=True)\ndef broken():\n    raise RuntimeError\n",
    )
    run(pytester, *cut).assert_outcomes(errors=1)


# -- 5. the files that define the test -------------------------------------------------------------

CONTRACT = """
class Contract:
    def test_value(self):
        assert self.make() == {expected}
"""

IMPLEMENTATION = """
import pytest
from contract import Contract
from shared import test_shared

@pytest.mark.depends_on("tests/own.txt")
class TestImpl(Contract):
    def make(self):
        return 1

pytestmark = pytest.mark.depends_on("tests/own.txt")
"""


@pytest.fixture
def defined_elsewhere(repo: Path) -> Path:
    write(repo / "tests" / "own.txt", "x\n")
    write(repo / "tests" / "contract.py", CONTRACT.format(expected=1))
    write(repo / "tests" / "shared.py", "def test_shared():\n    assert 1 == 1\n")
    write(repo / "tests" / "test_impl.py", IMPLEMENTATION)
    commit(repo)
    return repo


def test_an_inherited_test_method_and_an_imported_test_function_are_inputs(
    defined_elsewhere: Path, pytester: pytest.Pytester
) -> None:
    repo = defined_elsewhere
    run(pytester).assert_outcomes(passed=2)
    assert_unchanged(run(pytester), 2)
    write(repo / "tests" / "contract.py", CONTRACT.format(expected=22))
    run(pytester).assert_outcomes(failed=1, skipped=1)
    write(repo / "tests" / "shared.py", "def test_shared():\n    assert 1 == 22\n")
    run(pytester).assert_outcomes(failed=2)


def test_the_fast_path_sees_the_base_class_file(
    defined_elsewhere: Path, pytester: pytest.Pytester
) -> None:
    repo = defined_elsewhere
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--unchanged")
    result.stdout.fnmatch_lines(["unchanged: 2 unchanged (2 not collected, *"])
    write(repo / "tests" / "contract.py", CONTRACT.format(expected=22))
    result = pytester.runpytest_subprocess("--unchanged")
    result.assert_outcomes(failed=1, skipped=1)


def test_a_decorated_test_keeps_the_files_of_its_wrappers(
    repo: Path, pytester: pytest.Pytester
) -> None:
    write(repo / "tests" / "own.txt", "x\n")
    write(
        repo / "tests" / "deco.py",
        "import functools\n\ndef check(f):\n    @functools.wraps(f)\n"
        "    def wrapper(*a, **k):\n        assert True\n        return f(*a, **k)\n"
        "    return wrapper\n",
    )
    write(
        repo / "tests" / "test_deco.py",
        "import pytest\nfrom deco import check\n\n"
        '@pytest.mark.depends_on("tests/own.txt")\n@check\ndef test_it():\n    pass\n',
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    text = (repo / "tests" / "deco.py").read_text().replace("assert True", "assert False")
    write(repo / "tests" / "deco.py", text)
    run(pytester).assert_outcomes(failed=1)


def test_a_fixture_from_a_plugin_module_is_an_input(repo: Path, pytester: pytest.Pytester) -> None:
    write(repo / "tests" / "own.txt", "x\n")
    write(repo / "conftest.py", 'pytest_plugins = ["myfixtures"]\n')
    write(repo / "myfixtures.py", "import pytest\n\n@pytest.fixture\ndef value():\n    return 1\n")
    write(repo / "tests" / "test_fixture.py", CONFTEST_USER)
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "myfixtures.py", "import pytest\n\n@pytest.fixture\ndef value():\n    return 22\n")
    run(pytester).assert_outcomes(failed=1)


# -- 6. extension hooks add to the default ---------------------------------------------------------


def test_hook_paths_add_to_the_default_of_an_unmarked_test(
    repo: Path, pytester: pytest.Pytester
) -> None:
    write(repo / "src" / "a.py", "A = 1\n")
    write(repo / "data.txt", "1\n")
    write(
        repo / "conftest.py",
        'def pytest_unchanged_item_inputs(item):\n    return ["src/a.py"]\n',
    )
    write(
        repo / "test_data.py",
        "from pathlib import Path\n\ndef test_data():\n"
        '    assert (Path(__file__).parent / "data.txt").read_text() == "1\\n"\n',
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "data.txt", "22\n")
    run(pytester).assert_outcomes(failed=1)


# -- 7. imports resolve as Python resolves them ----------------------------------------------------


def test_imports_take_the_package_over_the_module_of_the_same_name(
    repo: Path, pytester: pytest.Pytester
) -> None:
    write(repo / "pkg" / "__init__.py", "")
    write(repo / "pkg" / "util.py", "VALUE = 0\n")
    write(repo / "pkg" / "util" / "__init__.py", "VALUE = 1\n")
    write(
        repo / "test_util.py",
        "from pkg import util\n\ndef test_util():\n    assert util.VALUE == 1\n",
    )
    write(repo / "pytest.ini", "[pytest]\nunchanged_default = imports\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "pkg" / "util" / "__init__.py", "VALUE = 22\n")
    run(pytester).assert_outcomes(failed=1)


# -- 8. content git hides or a link points to ------------------------------------------------------

LINK_READER = """
import pytest
from pathlib import Path

@pytest.mark.depends_on("link.txt")
def test_link():
    assert (Path(__file__).parent / "link.txt").read_text() == "1\\n"
"""


def test_a_declared_symlink_counts_its_target(repo: Path, pytester: pytest.Pytester) -> None:
    write(repo / "data" / "real.txt", "1\n")
    os.symlink("data/real.txt", repo / "link.txt")
    write(repo / "test_link.py", LINK_READER)
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "data" / "real.txt", "22\n")
    run(pytester).assert_outcomes(failed=1)


def test_a_symlink_inside_a_declared_directory_counts_its_target(
    repo: Path, pytester: pytest.Pytester
) -> None:
    write(repo / "shared" / "config.txt", "1\n")
    write(repo / "data" / "plain.txt", "x\n")
    os.symlink("../shared/config.txt", repo / "data" / "config.txt")
    write(
        repo / "test_dir.py",
        "import pytest\nfrom pathlib import Path\n\n"
        '@pytest.mark.depends_on("data/")\ndef test_dir():\n'
        '    assert (Path(__file__).parent / "data/config.txt").read_text() == "1\\n"\n',
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "shared" / "config.txt", "22\n")
    run(pytester).assert_outcomes(failed=1)


def test_a_symlink_out_of_the_worktree_makes_unmarked_tests_run(
    repo: Path, pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "real.txt"
    outside.write_text("1\n")
    write(repo / "data" / "plain.txt", "x\n")
    os.symlink(outside, repo / "data" / "link.txt")
    write(repo / "test_plain.py", "def test_plain():\n    pass\n")
    commit(repo)
    for _ in range(2):
        result = run(pytester, *WARN)
        result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*UnkeyableInputWarning*symlink data/link.txt points outside*"])
    # Round 4, finding 12: under -W error the test still passes (it only cannot be skipped).
    run(pytester, "-W", "error").assert_outcomes(passed=1, warnings=1)


def test_a_symlinked_test_module_counts_its_target(repo: Path, pytester: pytest.Pytester) -> None:
    write(repo / "own.txt", "x\n")
    write(
        repo / "shared" / "real_tests.py",
        'import pytest\n\npytestmark = pytest.mark.depends_on("own.txt")\n\n'
        "def test_body():\n    assert 1 == 1\n",
    )
    os.symlink("shared/real_tests.py", repo / "test_linked.py")
    commit(repo)
    run(pytester, "test_linked.py").assert_outcomes(passed=1)
    assert_unchanged(run(pytester, "test_linked.py"), 1)
    text = (repo / "shared" / "real_tests.py").read_text().replace("1 == 1", "1 == 22")
    write(repo / "shared" / "real_tests.py", text)
    run(pytester, "test_linked.py").assert_outcomes(failed=1)


def test_a_symlink_out_of_the_repository_always_runs_with_a_warning(
    repo: Path, pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "real.txt"
    outside.write_text("1\n")
    os.symlink(outside, repo / "link.txt")
    write(repo / "test_link.py", LINK_READER)
    commit(repo)
    run(pytester, *WARN).assert_outcomes(passed=1, warnings=1)
    result = run(pytester, *WARN)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*UnkeyableInputWarning*symlink link.txt points outside*"])


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_files_git_status_hides_are_hashed_from_disk(
    repo: Path, pytester: pytest.Pytester, flag: str
) -> None:
    write(repo / "data.txt", "1\n")
    write(
        repo / "test_data.py",
        "import pytest\nfrom pathlib import Path\n\n"
        '@pytest.mark.depends_on("data.txt")\ndef test_data():\n'
        '    assert (Path(__file__).parent / "data.txt").read_text() == "1\\n"\n',
    )
    commit(repo)
    git(repo, "update-index", flag, "data.txt")
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "data.txt", "22\n")
    assert git(repo, "status", "--porcelain") == ""  # git hides the edit
    run(pytester).assert_outcomes(failed=1)


# -- issue 11: a worktree file pygit2 cannot hash --------------------------------------------------


def test_core_safecrlf_does_not_stop_a_file_being_keyed(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # Inputs are hashed as raw bytes, never through the CRLF filter core.safecrlf guards: a
    # mixed-EOL file git would refuse to stage is keyed like any other.
    write(repo / "src" / "a.py", "A = 1\n")
    write(
        repo / "test_mixed.py",
        "import pytest\n\n"
        '@pytest.mark.depends_on("src/a.py")\ndef test_fine():\n    pass\n\n'
        '@pytest.mark.depends_on("mixed.txt")\ndef test_mixed():\n    pass\n\n'
        "def test_unmarked():\n    pass\n",
    )
    commit(repo)
    git(repo, "config", "core.autocrlf", "true")
    git(repo, "config", "core.safecrlf", "true")
    (repo / "mixed.txt").write_bytes(b"one\r\ntwo\n")  # git add refuses: LF would become CRLF
    result = run(pytester, *WARN)
    result.assert_outcomes(passed=3, warnings=0)
    result = run(pytester, *WARN)
    result.assert_outcomes(warnings=0)
    result.stdout.fnmatch_lines(["unchanged: 3 unchanged*"])
    (repo / "mixed.txt").write_bytes(b"one\r\ntwo\r\n")
    result = run(pytester, *WARN)
    result.assert_outcomes(passed=2, skipped=1, warnings=0)
    assert "INTERNALERROR" not in result.stdout.str()


UNREADABLE = """
import pygit2

_hashfile = pygit2.hashfile


def _refuse(path, *args, **kwargs):
    # What an unreadable file (chmod 000, as a user other than root) gives pygit2.
    if str(path).endswith("secret.txt"):
        raise PermissionError(13, "Permission denied", str(path))
    return _hashfile(path, *args, **kwargs)


pygit2.hashfile = _refuse
"""


def test_an_unreadable_file_makes_only_its_tests_run(repo: Path, pytester: pytest.Pytester) -> None:
    write(repo / "src" / "a.py", "A = 1\n")
    write(repo / "conftest.py", UNREADABLE)
    write(
        repo / "test_secret.py",
        "import pytest\n\n"
        '@pytest.mark.depends_on("src/a.py")\ndef test_fine():\n    pass\n\n'
        "def test_unmarked():\n    pass\n",
    )
    commit(repo)
    write(repo / "secret.txt", "untracked, so hashed from disk\n")
    result = pytester.runpytest_subprocess(*WARN)
    result.assert_outcomes(passed=2, warnings=0)  # a plain run is not changed
    result = pytester.runpytest_subprocess("--unchanged", *WARN)
    result.assert_outcomes(passed=1, skipped=1, warnings=1)
    result.stdout.fnmatch_lines(["*UnkeyableInputWarning*Permission denied*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_declared_path_with_dotdot_after_a_symlinked_directory_counts_what_the_system_reads(
    repo: Path, pytester: pytest.Pytester
) -> None:
    """Round 4, finding 08: ``data/../x.txt`` with ``data -> sub/deep`` is ``sub/x.txt`` (the
    system resolves the link before the ``..``), not the top-level ``x.txt``."""
    write(repo / "sub" / "x.txt", "good\n")
    write(repo / "x.txt", "top\n")
    (repo / "sub" / "deep").mkdir()
    os.symlink("sub/deep", repo / "data")
    write(
        repo / "test_a.py",
        'import pathlib\nimport pytest\n\n@pytest.mark.depends_on("data/../x.txt")\n'
        'def test_a():\n    assert pathlib.Path("data/../x.txt").read_text() == "good\\n"\n',
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "sub" / "x.txt", "bad\n")
    run(pytester).assert_outcomes(failed=1)
    write(repo / "sub" / "x.txt", "good\n")  # as it passed: its record holds again
    assert_unchanged(run(pytester), 1)
    write(repo / "x.txt", "other\n")  # the top-level file is not what the test reads
    assert_unchanged(run(pytester), 1)


def test_hook_paths_read_from_a_manifest_are_asked_again_on_the_fast_path(
    repo: Path, pytester: pytest.Pytester
) -> None:
    """Round 4, finding 07: the hook's answer comes from ``inputs.txt``, in no summary's scope;
    the fast path must not stand on the answer it gave when the summary was written."""
    write(repo / "data" / "a.txt", "1\n")
    write(repo / "data" / "b.txt", "2\n")
    write(repo / "inputs.txt", "data/a.txt\n")
    write(
        repo / "conftest.py",
        "from pathlib import Path\n\ndef pytest_unchanged_item_inputs(item):\n"
        "    return (Path(__file__).parent / 'inputs.txt').read_text().split()\n",
    )
    write(
        repo / "test_x.py",
        "import pytest\nfrom pathlib import Path\n\n"
        '@pytest.mark.depends_on("test_x.py")\ndef test_data():\n'
        "    root = Path(__file__).parent\n"
        "    (name,) = (root / 'inputs.txt').read_text().split()\n"
        "    assert (root / name).read_text() == '1\\n'\n",
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "inputs.txt", "data/b.txt\n")
    run(pytester).assert_outcomes(failed=1)


@pytest.mark.parametrize("module", ["local_settings.py", "pkg/_version.py"])
def test_an_ignored_module_python_imports_is_part_of_the_whole_worktree(
    repo: Path, pytester: pytest.Pytester, module: str
) -> None:
    """Round 4, finding 09: ``.`` leaves out what git ignores, Python imports it anyway."""
    name = module.removesuffix(".py").replace("/", ".")
    write(repo / ".gitignore", (repo / ".gitignore").read_text() + f"{module}\nbuild/\n")
    write(repo / "pkg" / "__init__.py", "")
    write(repo / module, "VALUE = 1\n")
    write(repo / "build" / "lib" / "copy.py", "VALUE = 1\n")
    write(repo / "test_a.py", f"import {name}\n\ndef test_a():\n    assert {name}.VALUE == 1\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    write(repo / "build" / "lib" / "copy.py", "VALUE = 2\n")  # ignored, and no module
    assert_unchanged(run(pytester), 1)
    write(repo / module, "VALUE = 2\n")
    run(pytester).assert_outcomes(failed=1)
