"""Issue 10, second adversarial review: what Python searches and loads, not what it was told.

Every ``sys.path`` entry outside the repository (a directory a ``.pth`` file's ``import`` line
adds, ``PYTHONPATH``, a ``pythonpath`` root, a zip archive) and every one git ignores inside it
is a facet of what Python could import from it (:mod:`pytest_unchanged.search_path`). Under
``unchanged_default = imports``, a zip archive on ``pythonpath`` in the worktree is a doubt, and
the check at record time sees the code really loaded (audit events), also inside
``mock.patch.dict(sys.modules)`` and while conftests and plugins load. Each test records a
pass, changes what the test reads without touching what the old rules watched, and checks that
the test runs again (and fails, so it visibly ran); and that the common case still skips.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pygit2
import pytest

from .conftest import assert_unchanged, commit

pytestmark = pytest.mark.depends_on("pytest_unchanged/")

FAST_PATH = pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast", "slow"])
IMPORTS_INI = "[pytest]\nunchanged_default = imports\n"
USES_MOD = "import extmod\n\ndef test_value():\n    assert extmod.VALUE == 1\n"


def run(pytester: pytest.Pytester, *args: str, fast_path: str = "true") -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--unchanged", "-p", "no:randomly", "-o", f"unchanged_fast_path={fast_path}", *args
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_zip(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)


# -- sys.path entries outside the repository ------------------------------------------------


@FAST_PATH
def test_a_directory_a_pth_import_line_adds_is_a_facet(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    fast_path: str,
) -> None:
    """A ``.pth`` line ``import sys; sys.path.append(DIR)`` (finding 09): ``DIR`` is on
    ``sys.path`` when the session begins, so its modules count, whatever added it."""
    outside = tmp_path_factory.mktemp("outside")
    site, added = str(outside / "site"), str(outside / "pthdir")
    write(outside / "boot" / "sitecustomize.py", f"import site\nsite.addsitedir({site!r})\n")
    write(outside / "site" / "zz_exec.pth", f"import sys; sys.path.append({added!r})\n")
    write(outside / "pthdir" / "extmod.py", "VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(outside / "boot"))
    write(repo / "test_p.py", USES_MOD)
    commit(repo)
    run(pytester, fast_path=fast_path).assert_outcomes(passed=1)
    assert_unchanged(run(pytester, fast_path=fast_path), 1)
    write(outside / "pthdir" / "extmod.py", "VALUE = 2\n")
    run(pytester, fast_path=fast_path).assert_outcomes(failed=1)


@pytest.mark.parametrize("how", ["PYTHONPATH", "pythonpath", "zip", "ignored"])
def test_a_sys_path_entry_git_does_not_see_is_a_facet(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    how: str,
) -> None:
    """A directory on ``PYTHONPATH`` or on ``pythonpath`` outside the repository, a zip archive
    on ``PYTHONPATH``, a ``pythonpath`` directory the repository ignores: their modules count,
    in a subpackage too."""
    outside = tmp_path_factory.mktemp("outside")
    base = repo / "build" if how == "ignored" else outside / "lib"
    if how == "ignored":
        write(repo / ".gitignore", (repo / ".gitignore").read_text() + "build/\n")
    if how == "zip":
        monkeypatch.setenv("PYTHONPATH", str(outside / "lib.zip"))
    else:
        write(base / "extmod" / "__init__.py", "from extmod.sub import VALUE\n")
    if how == "PYTHONPATH":
        monkeypatch.setenv("PYTHONPATH", str(base))
    elif how in ("pythonpath", "ignored"):
        write(repo / "pytest.ini", f"[pytest]\npythonpath = {base}\n")

    def edit(text: str) -> None:
        if how == "zip":
            init = "from extmod.sub import VALUE\n"
            write_zip(outside / "lib.zip", {"extmod/__init__.py": init, "extmod/sub.py": text})
        else:
            write(base / "extmod" / "sub.py", text)

    edit("VALUE = 1\n")
    write(repo / "test_p.py", USES_MOD)
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    edit("VALUE = 2\n")
    result = run(pytester, "--unchanged-explain")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["environment changed: sys.path:1:* → *"])


def test_what_python_cannot_import_from_an_entry_adds_nothing(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No over-conservatism: an entry of scripts (a virtualenv's ``bin``) keys as no entry,
    and editing its files that no import can read keeps every test skipped."""
    outside = tmp_path_factory.mktemp("outside")
    bin_dir = outside / "bin"
    from pytest_unchanged.search_path import search_path_facets

    write(bin_dir / "tool", "#!/bin/sh\necho 1\n")
    write(bin_dir / ".hidden" / "x.py", "")  # a directory with a dot is never a package
    monkeypatch.setenv("PYTHONPATH", str(bin_dir))
    write(repo / "test_p.py", "def test_value():\n    pass\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    write(bin_dir / "tool", "#!/bin/sh\necho 2\n")
    write(bin_dir / ".hidden" / "x.py", "X = 2\n")
    write(bin_dir / "notes.txt", "more\n")
    assert_unchanged(run(pytester), 1)
    assert search_path_facets([str(bin_dir), str(outside / "missing")], repo, []) == ({}, [])


def test_covered_entries_are_not_digested_again(tmp_path: Path) -> None:
    """The repository, the standard library, and what another facet covers (site-packages, an
    editable install's source, given as ``covered``) add no ``sys.path`` facet; entries are
    named by position and last component, never by absolute path (records stay portable)."""
    from pytest_unchanged.search_path import search_path_facets

    top = tmp_path / "repository"
    write(top / "src" / "pkg.py", "")
    pygit2.init_repository(top)
    write(tmp_path / "editable" / "src" / "lib.py", "")
    write(tmp_path / "extra" / "mod.py", "")
    stdlib = os.path.dirname(os.__file__)
    entries = [str(top), str(top / "src"), stdlib, str(tmp_path / "editable" / "src")]
    entries.append(str(tmp_path / "extra"))
    facets, problems = search_path_facets(entries, top, [tmp_path / "editable"])
    assert (list(facets), problems) == (["sys.path:1:extra"], [])


def test_a_sys_path_entry_that_cannot_be_digested_makes_tests_run(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """An entry too large to digest (a 201 MiB archive, sparse) is a warning, and the test
    runs every time: never a traceback, never a skip."""
    big = tmp_path_factory.mktemp("outside") / "big.zip"
    with big.open("wb") as handle:
        handle.truncate(201 * 2**20)
    monkeypatch.setenv("PYTHONPATH", str(big))
    write(repo / "test_p.py", "def test_value():\n    pass\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    result = run(pytester, "-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*UnkeyableInputWarning*big.zip is larger than 200 MiB*"])


# -- unchanged_default = imports: a zip import root, imports the windows missed ---------------


def test_a_zip_import_root_in_the_worktree_is_a_doubt(
    repo: Path, pytester: pytest.Pytester
) -> None:
    """``pythonpath = deps.zip`` (finding 04): the archive's ``helper`` shadows the rootdir's
    ``helper.py``, which the static resolver would take: the closure is the whole worktree."""
    write(repo / "pytest.ini", IMPORTS_INI + "pythonpath = deps.zip\n")
    write_zip(repo / "deps.zip", {"helper.py": "VALUE = 1\n"})
    write(repo / "helper.py", "VALUE = 1\n")
    write(repo / "tests" / "conftest.py", CONFTEST_FIXTURE.format(load="import helper"))
    write(repo / "tests" / "test_h.py", "def test_h(value):\n    assert value == 1\n")
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write_zip(repo / "deps.zip", {"helper.py": "VALUE = 2\n"})
    for fast_path in ("true", "false"):
        result = run(pytester, "--unchanged-explain", fast_path=fast_path)
        result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "unchanged: tests/test_h.py depends on the whole worktree (imports in doubt: "
            "deps.zip: an import root that is a file*"
        ]
    )


CONFTEST_FIXTURE = """
import importlib
import pytest

{load}

@pytest.fixture
def value():
    return helper.VALUE
"""
HIDDEN = 'import pickle\nhelper = pickle.loads(b"cbuiltins\\n__import__\\n(Vhelper\\ntR.")'


@pytest.mark.parametrize("how", ["conftest", "-p"])
def test_an_import_while_conftests_and_plugins_load_is_seen(
    repo: Path, pytester: pytest.Pytester, how: str
) -> None:
    """An import the static closure misses, made while an initial conftest (or a ``-p``
    plugin) loads, before any collection window: the test records against the whole worktree."""
    write(repo / "pytest.ini", IMPORTS_INI)
    write(repo / "helper.py", "VALUE = 1\n")
    write(repo / "unrelated.py", "")
    args = ["-p", "localplug"] if how == "-p" else []
    plugin = CONFTEST_FIXTURE.format(load=HIDDEN)
    write(repo / ("localplug.py" if how == "-p" else "conftest.py"), plugin)
    write(repo / "tests" / "test_h.py", "def test_h(value):\n    assert value == 1\n")
    commit(repo)
    result = run(pytester, *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["    tests/test_h.py::test_h: helper.py"])
    assert_unchanged(run(pytester, *args), 1)
    write(repo / "helper.py", "VALUE = 2\n")
    for fast_path in ("true", "false"):
        run(pytester, *args, fast_path=fast_path).assert_outcomes(failed=1)


@pytest.mark.parametrize("pycache", ["ignored", "seen"])
def test_a_conftest_import_inside_its_closure_keeps_the_narrow_key(
    repo: Path, pytester: pytest.Pytester, pycache: str
) -> None:
    """No over-conservatism: a conftest importing a worktree module it names statically keeps
    its tests on their import closure: editing another file still skips them. Bytecode read
    from ``__pycache__`` (pytest's rewritten conftest too) stands for its source, also where
    git does not ignore ``__pycache__``."""
    if pycache == "seen":
        ignored = (repo / ".gitignore").read_text().replace("__pycache__/\n", "")
        write(repo / ".gitignore", ignored)
    write(repo / "pytest.ini", IMPORTS_INI)
    write(repo / "helper.py", "VALUE = 1\n")
    write(repo / "unrelated.py", "")
    write(repo / "conftest.py", CONFTEST_FIXTURE.format(load="import helper"))
    write(repo / "tests" / "test_h.py", "def test_h(value):\n    assert value == 1\n")
    commit(repo)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "recorded against the whole worktree" not in result.stdout.str()
    write(repo / "unrelated.py", "X = 1\n")
    assert_unchanged(run(pytester), 1)
    write(repo / "helper.py", "VALUE = 2\n")
    run(pytester).assert_outcomes(failed=1)


def test_an_import_inside_patch_dict_sys_modules_is_seen(
    repo: Path, pytester: pytest.Pytester
) -> None:
    """``with mock.patch.dict(sys.modules):`` removes what the test imported before the check
    looks at ``sys.modules`` (finding 04, variant): the audit hook saw the code load."""
    write(repo / "pytest.ini", IMPORTS_INI)
    write(repo / "helper.py", "VALUE = 1\n")
    write(repo / "unrelated.py", "")
    write(
        repo / "test_h.py",
        "import importlib\nimport sys\nfrom unittest import mock\n\n"
        "def test_h():\n    with mock.patch.dict(sys.modules):\n"
        "        "
        + HIDDEN.replace("\n", "\n        ")
        + "\n        value = helper.VALUE\n    assert value == 1\n",
    )
    commit(repo)
    run(pytester).assert_outcomes(passed=1)
    assert_unchanged(run(pytester), 1)
    write(repo / "helper.py", "VALUE = 2\n")
    for fast_path in ("true", "false"):
        run(pytester, fast_path=fast_path).assert_outcomes(failed=1)


@FAST_PATH
@pytest.mark.parametrize("where", ["suite/conftest.py", "fixture"])
def test_a_sys_path_entry_added_after_the_session_began_keeps_no_pass(
    repo: Path,
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    fast_path: str,
    where: str,
) -> None:
    """Round 4, finding 03: a conftest pytest loads while collecting (or a session fixture)
    puts a directory outside the repository on ``sys.path`` after the facets were taken."""
    lib = tmp_path_factory.mktemp("outside") / "lib"
    write(lib / "extmod.py", "VALUE = 1\n")
    add = f"import sys\nsys.path.insert(0, {str(lib)!r})\n"
    if where == "fixture":
        add = (
            "import sys\nimport pytest\n\n@pytest.fixture(autouse=True, scope='session')\n"
            f"def lib():\n    sys.path.insert(0, {str(lib)!r})\n"
        )
    # Imported when the test runs: the fixture has put the directory on sys.path by then.
    uses = "def test_value():\n    import extmod\n\n    assert extmod.VALUE == 1\n"
    write(repo / "suite" / "test_p.py", USES_MOD if where == "suite/conftest.py" else uses)
    write(repo / "suite" / "conftest.py", add)
    commit(repo)
    first = run(pytester, fast_path=fast_path)
    first.assert_outcomes(passed=1, warnings=1)
    first.stdout.fnmatch_lines(["*sys.path gained*no pass is recorded*pythonpath*"])
    write(lib / "extmod.py", "VALUE = 2\n")
    run(pytester, fast_path=fast_path).assert_outcomes(failed=1, warnings=1)
