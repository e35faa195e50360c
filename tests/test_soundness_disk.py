"""Issue 10, class 8: content that git hides. A key follows what a reader of the disk sees.

Each test builds a real repository where git's view (its filters, its settings, its index
flags, its lack of empty directories, a submodule's gitlink) says "unchanged" while the bytes,
modes or listings a test reads have changed, and checks that the tests reading them run. Each
failed (a false skip) before the worktree hashed such paths from disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import commit, git

BYTES_TEST = """
from pathlib import Path

import pytest

@pytest.mark.depends_on("data/x.txt")
def test_marked():
    assert Path("data/x.txt").read_bytes() == b"a\\nb\\n"

def test_unmarked():
    assert Path("data/x.txt").read_bytes() == b"a\\nb\\n"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--unchanged", "-p", "no:randomly", *args)


def assert_unchanged(result: pytest.RunResult, count: int) -> None:
    """Every test was unchanged: skipped one by one or left uncollected by the fast path."""
    result.stdout.fnmatch_lines([f"unchanged: {count} unchanged*"])
    outcomes = result.parseoutcomes()
    assert not {"passed", "failed", "errors"} & set(outcomes), outcomes
    assert result.ret == pytest.ExitCode.OK


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


FILTERS = {
    "text-auto": (".gitattributes", "* text=auto\n"),
    "eol-lf-in-subdirectory": ("data/.gitattributes", "*.txt eol=lf\n"),
    "info-attributes": (".git/info/attributes", "*.txt text\n"),
    "autocrlf-input": ("", "input"),
}


@pytest.mark.parametrize("fast_path", ["true", "false"])
@pytest.mark.parametrize("setup", FILTERS)
def test_a_crlf_rewrite_git_normalises_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester, setup: str, fast_path: str
) -> None:
    # git's clean filter turns the CRLF file into the LF blob it stores: status says clean.
    where, text = FILTERS[setup]
    if where:
        write(repo / where, text)
    else:
        git(repo, "config", "core.autocrlf", text)
    write(repo / "data/x.txt", "a\nb\n")
    pytester.makepyfile(test_a=BYTES_TEST)
    commit(repo)
    option = ("-o", f"unchanged_fast_path={fast_path}")
    run(pytester, *option).assert_outcomes(passed=2)
    assert_unchanged(run(pytester, *option), 2)
    write(repo / "data/x.txt", b"a\r\nb\r\n")
    assert git(repo, "diff", "--stat") == ""
    run(pytester, *option).assert_outcomes(failed=2)
    write(repo / "data/x.txt", b"a\nb\n")  # as committed again: git's OIDs, the records hit
    assert_unchanged(run(pytester, *option), 2)


NO_CR_TEST = """
from pathlib import Path

def test_no_cr():
    assert b"\\r" not in Path("data/x.txt").read_bytes()
"""


@pytest.mark.parametrize("setup", FILTERS)
def test_a_crlf_rewrite_staged_into_a_clean_index_makes_the_test_run(
    repo: Path, pytester: pytest.Pytester, setup: str
) -> None:
    # `git add` of the CRLF file stores the same LF blob and the file's new stat data: status
    # itself is clean, so the file must be read whenever a filter may apply to it.
    where, text = FILTERS[setup]
    if where:
        write(repo / where, text)
    else:
        git(repo, "config", "core.autocrlf", text)
    write(repo / "data/x.txt", "a\nb\n")
    pytester.makepyfile(test_a=NO_CR_TEST)
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    write(repo / "data/x.txt", b"a\r\nb\r\n")
    git(repo, "add", "data/x.txt")
    assert git(repo, "status", "--porcelain") == ""
    run(pytester).assert_outcomes(failed=1)


DIRECTORY_TEST = """
import os
import pytest

@pytest.mark.depends_on("data/")
def test_marked():
    assert sorted(os.listdir("data")) == ["x.txt"]

def test_unmarked():
    assert not os.path.exists("out")
"""


def test_an_empty_directory_is_part_of_its_directory(repo: Path, pytester: pytest.Pytester) -> None:
    write(repo / "data/x.txt", "x\n")
    pytester.makepyfile(test_a=DIRECTORY_TEST)
    commit(repo)
    run(pytester).assert_outcomes(passed=2)
    (repo / "data/sub").mkdir()
    (repo / "out/deeper").mkdir(parents=True)
    assert git(repo, "status", "--porcelain") == ""
    run(pytester).assert_outcomes(failed=2)
    (repo / "data/sub").rmdir()
    (repo / "out/deeper").rmdir()
    (repo / "out").rmdir()
    (repo / "__pycache__" / "empty").mkdir(parents=True, exist_ok=True)  # ignored: no matter
    assert_unchanged(run(pytester), 2)


def test_an_empty_directory_that_goes_away_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_a="import os\n\ndef test_cache_dir():\n    assert not os.path.isdir('cache')\n"
    )
    commit(repo)
    (repo / "cache").mkdir()
    run(pytester).assert_outcomes(failed=1)
    (repo / "cache").rmdir()
    run(pytester).assert_outcomes(passed=1)
    (repo / "cache").mkdir()
    run(pytester).assert_outcomes(failed=1)


EXECUTABLE_TEST = """
import os
import pytest

@pytest.mark.depends_on("run.sh")
def test_marked():
    assert not os.access("run.sh", os.X_OK)

def test_unmarked():
    assert not os.access("run.sh", os.X_OK)
"""


def test_chmod_under_core_filemode_false_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    git(repo, "config", "core.fileMode", "false")
    write(repo / "run.sh", "#!/bin/sh\necho hi\n")
    pytester.makepyfile(test_a=EXECUTABLE_TEST)
    commit(repo)
    run(pytester).assert_outcomes(passed=2)
    (repo / "run.sh").chmod(0o755)
    assert git(repo, "status", "--porcelain") == ""
    run(pytester).assert_outcomes(failed=2)


CONTENT_TEST = """
from pathlib import Path

import pytest

@pytest.mark.depends_on("data/x.txt")
def test_marked():
    assert Path("data/x.txt").read_text() == "value=1\\n"

def test_unmarked():
    assert Path("data/x.txt").read_text() == "value=1\\n"
"""


def test_a_same_size_edit_with_its_mtime_restored_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # `cp -p`, `tar`, `rsync -t`, `touch -r`: the size and mtime git compares are unchanged,
    # only the ctime tells, and core.trustctime=false tells git not to look at it.
    git(repo, "config", "core.trustctime", "false")
    data = repo / "data/x.txt"
    write(data, "value=1\n")
    pytester.makepyfile(test_a=CONTENT_TEST)
    past = data.stat().st_mtime_ns - 100 * 10**9  # well before the index: not racily clean
    os.utime(data, ns=(past, past))
    commit(repo)
    run(pytester).assert_outcomes(passed=2)
    write(data, "value=2\n")
    os.utime(data, ns=(past, past))
    assert git(repo, "status", "--porcelain") == ""
    run(pytester).assert_outcomes(failed=2)


SUBMODULE_TEST = """
from pathlib import Path

import pytest

def test_unmarked():
    assert Path("sub/v").read_text() == "1\\n"

@pytest.mark.depends_on("sub")
def test_marked():
    assert Path("sub/v").read_text() == "1\\n"
"""


@pytest.fixture
def superproject(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``repo`` with a submodule ``sub`` holding ``v`` (``1``), committed."""
    source = tmp_path_factory.mktemp("subsrc")
    git(source, "init", "-q")
    write(source / "v", "1\n")
    commit(source)
    git(repo, "submodule", "add", "-q", str(source), "sub")
    commit(repo)
    return repo


def test_a_deinitialised_submodule_makes_the_tests_run(
    superproject: Path, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_a=SUBMODULE_TEST)
    commit(superproject)
    run(pytester).assert_outcomes(passed=2)
    git(superproject, "submodule", "deinit", "-q", "-f", "sub")
    assert not any((superproject / "sub").iterdir())
    run(pytester).assert_outcomes(failed=2)
    git(superproject, "submodule", "update", "--init", "-q")
    assert_unchanged(run(pytester), 2)


@pytest.mark.parametrize("ignore", ["all", "dirty"])
def test_a_submodule_status_ignores_makes_the_tests_run(
    superproject: Path, pytester: pytest.Pytester, ignore: str
) -> None:
    # `ignore = all` hides a new checked-out commit from status, `ignore = dirty` an edit.
    git(superproject, "config", "-f", ".gitmodules", "submodule.sub.ignore", ignore)
    pytester.makepyfile(test_a=SUBMODULE_TEST)
    commit(superproject)
    run(pytester).assert_outcomes(passed=2)
    sub = superproject / "sub"
    write(sub / "v", "2\n")
    if ignore == "all":
        commit(sub)
    assert git(superproject, "status", "--porcelain") == ""
    run(pytester).assert_outcomes(failed=2)


SPARSE_TEST = """
from pathlib import Path

import pytest

@pytest.mark.depends_on("data/x")
def test_marked():
    assert Path("data/x").read_text() == "1\\n"

def test_unmarked():
    assert Path("data/x").read_text() == "1\\n"
"""


def test_a_sparse_checkout_that_removes_a_file_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    write(repo / "data/x", "1\n")
    write(repo / "tests/test_a.py", SPARSE_TEST)
    write(repo / "pytest.ini", "[pytest]\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=2)
    git(repo, "sparse-checkout", "set", "--no-cone", "/*", "!/data/")
    assert not (repo / "data").exists()
    result = run(pytester)
    # The declared path matches nothing: an UnknownPathWarning (an error under this suite's
    # filterwarnings) and the test runs; the unmarked one reads the missing file.
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*depends_on path 'data/x' matches nothing*"])


def test_an_edit_under_assume_unchanged_in_a_text_auto_repository_makes_the_tests_run(
    repo: Path, pytester: pytest.Pytester
) -> None:
    # Two of git's lenses at once: the index flag hides the edit, the filter its kind.
    write(repo / ".gitattributes", "* text=auto\n")
    write(repo / "data/x.txt", "a\nb\n")
    pytester.makepyfile(test_a=BYTES_TEST)
    commit(repo)
    run(pytester).assert_outcomes(passed=2)
    git(repo, "update-index", "--assume-unchanged", "data/x.txt")
    write(repo / "data/x.txt", "a\r\nb\r\n")
    run(pytester).assert_outcomes(failed=2)
