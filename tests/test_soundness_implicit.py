"""Issue 10, follow-up: inputs pytest and Python read that the key missed.

Package ``__init__.py`` files, plugin modules inside the repository however pytest loaded them
(and what they import), code outside the repository that no distribution version names (an
editable install elsewhere, loose files in site-packages), and a module name clash the fast path
must not hide. Each test records a pass, changes what the test reads without touching what the
old rules watched, and checks that the test runs again (and fails, so it visibly ran), with the
fast path on and off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import assert_unchanged, commit, git

FAST_PATH = pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast", "slow"])


def run(pytester: pytest.Pytester, fast_path: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--unchanged", "-p", "no:randomly", "-o", f"unchanged_fast_path={fast_path}", *args
    )


def run_subprocess(pytester: pytest.Pytester, fast_path: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--unchanged", "-p", "no:randomly", "-o", f"unchanged_fast_path={fast_path}", *args
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


MARKED = """
import os
import pytest

@pytest.mark.depends_on("data.txt")
def test_marked():
    assert os.environ.get("UNCHANGED_SOUND_FLAG") is None
"""

SETS_FLAG = "import os\nos.environ['UNCHANGED_SOUND_FLAG'] = '1'\n"


# -- package __init__.py files ------------------------------------------------------------------


@FAST_PATH
def test_a_package_init_above_a_marked_module_is_an_input(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fast_path: str
) -> None:
    monkeypatch.delenv("UNCHANGED_SOUND_FLAG", raising=False)
    write(repo / "data.txt", "x\n")
    write(repo / "pkgtests" / "__init__.py", "")
    write(repo / "pkgtests" / "sub" / "__init__.py", "")
    write(repo / "pkgtests" / "sub" / "test_a.py", MARKED)
    commit(repo)
    run(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run(pytester, fast_path), 1)
    # pytest imports pkgtests.sub.test_a: pkgtests/__init__.py runs first.
    write(repo / "pkgtests" / "__init__.py", SETS_FLAG)
    run(pytester, fast_path).assert_outcomes(failed=1)
    monkeypatch.delenv("UNCHANGED_SOUND_FLAG", raising=False)
    write(repo / "pkgtests" / "__init__.py", "")
    write(repo / "pkgtests" / "sub" / "__init__.py", SETS_FLAG + "# the innermost package\n")
    run(pytester, fast_path).assert_outcomes(failed=1)


@FAST_PATH
def test_a_new_package_init_above_a_marked_module_is_an_input(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fast_path: str
) -> None:
    monkeypatch.delenv("UNCHANGED_SOUND_FLAG", raising=False)
    write(repo / "data.txt", "x\n")
    write(repo / "suite" / "test_a.py", MARKED)
    commit(repo)
    run(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run(pytester, fast_path), 1)
    # suite/ becomes a package: pytest now imports suite.test_a, which runs suite/__init__.py.
    write(repo / "suite" / "__init__.py", SETS_FLAG)
    run(pytester, fast_path).assert_outcomes(failed=1)


# -- plugin modules inside the repository ----------------------------------------------------

PLUGIN_OK = "def pytest_runtest_setup(item):\n    pass\n"
PLUGIN_FAILS = "def pytest_runtest_setup(item):\n    raise RuntimeError('the plugin changed')\n"
MARKED_DATA = "import pytest\n\n@pytest.mark.depends_on('data.txt')\ndef test_marked():\n    pass\n"


@FAST_PATH
@pytest.mark.parametrize("how", ["-p", "PYTEST_PLUGINS", "pytest_plugins"])
def test_a_plugin_module_in_the_repository_is_an_input(
    repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fast_path: str, how: str
) -> None:
    write(repo / "data.txt", "x\n")
    write(repo / "plugs" / "__init__.py", "")
    write(repo / "plugs" / "localplug.py", PLUGIN_OK)
    write(repo / "tests" / "test_a.py", MARKED_DATA)
    args: list[str] = []
    if how == "-p":
        args = ["-p", "plugs.localplug"]
    elif how == "PYTEST_PLUGINS":
        monkeypatch.setenv("PYTEST_PLUGINS", "plugs.localplug")
    else:
        write(repo / "conftest.py", "pytest_plugins = ['plugs.localplug']\n")
    commit(repo)
    run_subprocess(pytester, fast_path, *args).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path, *args), 1)
    write(repo / "plugs" / "localplug.py", PLUGIN_FAILS)
    run_subprocess(pytester, fast_path, *args).assert_outcomes(errors=1)
    # Importing plugs.localplug runs plugs/__init__.py too.
    write(repo / "plugs" / "localplug.py", PLUGIN_OK + "# fixed\n")
    run_subprocess(pytester, fast_path, *args).assert_outcomes(passed=1)
    write(repo / "plugs" / "__init__.py", "raise RuntimeError('the package changed')\n")
    result = run_subprocess(pytester, fast_path, *args)
    assert result.ret != pytest.ExitCode.OK


@FAST_PATH
def test_a_module_a_plugin_imports_is_an_input(
    repo: Path, pytester: pytest.Pytester, fast_path: str
) -> None:
    write(repo / "data.txt", "x\n")
    write(repo / "helpers.py", "def check(item):\n    pass\n")
    write(
        repo / "localplug.py",
        "from helpers import check\n\ndef pytest_runtest_setup(item):\n    check(item)\n",
    )
    write(repo / "test_a.py", MARKED_DATA)
    commit(repo)
    run_subprocess(pytester, fast_path, "-p", "localplug").assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path, "-p", "localplug"), 1)
    write(repo / "helpers.py", "def check(item):\n    raise RuntimeError('helpers changed')\n")
    run_subprocess(pytester, fast_path, "-p", "localplug").assert_outcomes(errors=1)


# -- code outside the repository ------------------------------------------------------------


def fake_distribution(
    site: Path, name: str, files: list[str], direct_url: dict[str, object] | None = None
) -> None:
    """Write the metadata of distribution ``name`` into ``site`` (RECORD lists ``files``)."""
    info = site / f"{name}-1.0.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n")
    listed = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    if direct_url is not None:
        write(info / "direct_url.json", json.dumps(direct_url))
        listed.append(f"{info.name}/direct_url.json")
    write(info / "RECORD", "".join(f"{path},,\n" for path in listed))


USES_LIB = "import libx\n\ndef test_value():\n    assert libx.VALUE == 1\n"


@FAST_PATH
def test_an_editable_install_outside_the_repository_is_a_facet(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    fast_path: str,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    site = outside / "site"
    source = outside / "libx-project"
    write(source / "libx" / "__init__.py", "VALUE = 1\n")
    write(source / "pyproject.toml", "[project]\nname = 'libx'\n")
    fake_distribution(site, "libx", [], {"url": source.as_uri(), "dir_info": {"editable": True}})
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(source)]))
    write(repo / "test_lib.py", USES_LIB)
    commit(repo)
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path), 1)
    write(source / "libx" / "__init__.py", "VALUE = 2\n")
    run_subprocess(pytester, fast_path).assert_outcomes(failed=1)
    # A git worktree is digested with its status: a change that is not committed counts too.
    write(source / "libx" / "__init__.py", "VALUE = 1\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "lib"]):
        pytester.run("git", "-C", str(source), *args)
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path), 1)
    write(source / "libx" / "__init__.py", "VALUE = 3\n")
    run_subprocess(pytester, fast_path).assert_outcomes(failed=1)
    # unchanged_ignore_distributions leaves it out, as it leaves out the version.
    write(repo / "pytest.ini", "[pytest]\nunchanged_ignore_distributions = libx\n")
    write(source / "libx" / "__init__.py", "VALUE = 1\n")
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    write(source / "libx" / "__init__.py", "VALUE = 1  # an edit the facet no longer sees\n")
    assert_unchanged(run_subprocess(pytester, fast_path), 1)


@FAST_PATH
@pytest.mark.parametrize("link", ["symlink", "submodule"])
def test_an_editable_git_worktree_is_read_through_its_links_and_submodules(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    fast_path: str,
    link: str,
) -> None:
    # git keeps a symlinked directory as its link text and a submodule as its commit, but
    # Python imports through them (adversarial review round 3, finding 05).
    outside = tmp_path_factory.mktemp("outside")
    site, source, real = outside / "site", outside / "libx-project", outside / "real"
    write(real / "__init__.py", "VALUE = 1\n")
    write(source / "pyproject.toml", "[project]\nname = 'libx'\n")
    git(source, "init", "-q")
    if link == "symlink":
        (source / "libx").symlink_to(real, target_is_directory=True)
    else:
        git(real, "init", "-q")
        git(real, "add", "-A")
        git(real, "commit", "-q", "-m", "real")
        git(source, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(real), "libx")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "lib")
    fake_distribution(site, "libx", [], {"url": source.as_uri(), "dir_info": {"editable": True}})
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(source)]))
    write(repo / "test_lib.py", USES_LIB)
    commit(repo)
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path), 1)
    edited = real if link == "symlink" else source / "libx"
    write(edited / "__init__.py", "VALUE = 2\n")
    run_subprocess(pytester, fast_path).assert_outcomes(failed=1)


@FAST_PATH
def test_loose_files_in_site_packages_are_facets(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    fast_path: str,
) -> None:
    site = tmp_path_factory.mktemp("site")
    fake_distribution(site, "listed", ["listed.py"])
    write(site / "listed.py", "")
    write(site / "libx.py", "VALUE = 1\n")  # no RECORD lists it
    monkeypatch.setenv("PYTHONPATH", str(site))
    write(repo / "test_lib.py", USES_LIB)
    commit(repo)
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path), 1)
    write(site / "libx.py", "VALUE = 2\n")
    run_subprocess(pytester, fast_path).assert_outcomes(failed=1)
    # A loose package directory, too.
    (site / "libx.py").unlink()
    write(site / "libx" / "__init__.py", "VALUE = 1\n")
    run_subprocess(pytester, fast_path).assert_outcomes(passed=1)
    assert_unchanged(run_subprocess(pytester, fast_path), 1)
    write(site / "libx" / "__init__.py", "VALUE = 2\n")
    run_subprocess(pytester, fast_path).assert_outcomes(failed=1)


def test_an_editable_install_that_cannot_be_digested_makes_tests_run(
    repo: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    site = tmp_path_factory.mktemp("site")
    url: dict[str, object] = {"url": "https://example.com/libx", "dir_info": {"editable": True}}
    fake_distribution(site, "libx", [], url)
    write(site / "libx.py", "VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    write(repo / "test_lib.py", USES_LIB)
    commit(repo)
    run_subprocess(pytester, "true").assert_outcomes(passed=1)
    result = run_subprocess(pytester, "true", "-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*UnkeyableInputWarning*editable install of libx*"])


# -- a module name clash the fast path must not hide ------------------------------------------

CLASH_A = "import pytest\n\n@pytest.mark.depends_on('a/test_x.py')\ndef test_a():\n    pass\n"
CLASH_B = "def test_b():\n    pass\n"


@pytest.mark.parametrize("first", ["a", "b"])
def test_a_module_name_clash_is_reported_on_the_fast_path(
    repo: Path, pytester: pytest.Pytester, first: str
) -> None:
    # Two test_x.py outside any package: pytest imports both as `test_x`, and the second is
    # an "import file mismatch" collection error. The one with a summary may come first (a)
    # or second (b) in collection order.
    summarised, new = ("a", "b") if first == "a" else ("b", "a")
    write(repo / summarised / "test_x.py", CLASH_A.replace("a/", f"{summarised}/"))
    commit(repo)
    run_subprocess(pytester, "true").assert_outcomes(passed=1)
    write(repo / new / "test_x.py", CLASH_B)
    for fast_path in ("true", "false", "true"):
        result = run_subprocess(pytester, fast_path)
        assert result.ret == pytest.ExitCode.INTERRUPTED, (fast_path, result.stdout.str())
        result.stdout.fnmatch_lines(["ERROR b/test_x.py*"])  # the second in collection order


def test_a_symlinked_directory_in_code_outside_the_repository_is_followed(tmp_path: Path) -> None:
    """Python imports through a symlinked directory, so its files count (once, even in a loop);
    adversarial review of issue 10, round 2 (an editable install's linked subpackage)."""
    from pytest_unchanged.outside import directory_digest

    real = tmp_path / "real"
    write(real / "__init__.py", "X = 1\n")
    project = tmp_path / "project"
    write(project / "pkg" / "__init__.py", "")
    (project / "pkg" / "sub").symlink_to(real, target_is_directory=True)
    (project / "pkg" / "loop").symlink_to(project / "pkg", target_is_directory=True)
    top = tmp_path / "repository"
    before = directory_digest(project, top)
    (real / "__init__.py").write_text("X = 2\n")
    assert directory_digest(project, top) != before
