"""The ``upstream-tip`` nox session, run for real: nox, a virtualenv, pip, pytest.

One test walks the whole story, because every step needs a real virtualenv (the slow part):
nothing verified → test and record; an unwatched move → skip; a breaking watched move with the
same version string → the new commit is really installed, fails, the state stays; a fix →
test (with posargs) and record; ``--no-install`` on the reused virtualenv → no stale record.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_unchanged.upstream.config import CACHE_DIR_ENV

from .helpers import Upstream, git, write_project

NOXFILE = """\
import nox
from pytest_unchanged.nox_session import upstream_tip

@nox.session(name="upstream-tip", default=False)
def upstream_tip_session(session: nox.Session) -> None:
    upstream_tip(session, "upstreampkg")
"""

CONSUMER_TESTS = """\
import pytest
import upstreampkg

def test_answer():
    assert upstreampkg.answer() == 42

def test_other():
    pass

@pytest.mark.live
def test_live():
    raise AssertionError("pytest_args deselect the live tests")
"""

CONSUMER_PYPROJECT = """\
[build-system]
requires = ["flit_core>=3.4,<4"]
build-backend = "flit_core.buildapi"

[tool.pytest.ini_options]
markers = ["live: needs the network"]
"""


def make_consumer(directory: Path, upstream: Upstream) -> Path:
    """A project that leans on ``upstreampkg``, with the three-line noxfile."""
    pyproject = write_project(
        directory, url=upstream.url, paths=["upstreampkg/core.py"],
        install=[".", "pytest"], pytest_args=["-m", "not live"],
    )  # fmt: skip
    text = pyproject.read_text().replace(
        '[project]\nname = "consumer"\nversion = "0"\n',
        '[project]\nname = "consumer"\nversion = "0"\ndescription = "Uses upstreampkg"\n',
    )
    pyproject.write_text(CONSUMER_PYPROJECT + text)
    (directory / "consumer.py").write_text('"""The consumer."""\n')
    (directory / "tests").mkdir()
    (directory / "tests" / "test_consumer.py").write_text(CONSUMER_TESTS)
    (directory / "noxfile.py").write_text(NOXFILE)
    return directory


def nox(project: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the session with nox in ``project``; return the process, output in ``stdout``."""
    command = [
        sys.executable, "-m", "nox", "--nocolor", "--default-venv-backend", "venv",
        "--envdir", str(project.parent / "envs"), "-s", "upstream-tip", *args,
    ]  # fmt: skip
    environment = {**os.environ, CACHE_DIR_ENV: str(cache)}
    environment.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, check=False,
        stdin=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip


def ref_state(project: Path) -> dict[str, object]:
    state = json.loads((project / ".pytest-unchanged-upstream.json").read_text())
    entry: dict[str, object] = state["upstreams"]["upstreampkg"]["refs"]["main"]
    return entry


def verified_commit(project: Path) -> str:
    commit = ref_state(project)["commit"]
    assert isinstance(commit, str)
    return commit


class _AnyTime:
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}Z", other) is not None
        )


ANY_TIME = _AnyTime()


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_upstream_tip_session(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "upstream")
    project = make_consumer(tmp_path / "consumer", upstream)
    cache = tmp_path / "cache"

    result = nox(project, cache)
    assert result.returncode == 0, output(result)
    assert "nothing verified yet" in result.stderr
    assert f"Testing against upstreampkg {upstream.initial[:7]}" in result.stderr
    assert "2 passed, 1 deselected" in result.stdout
    assert verified_commit(project) == upstream.initial

    upstream.commit({"docs/index.txt": "Unwatched.\n"}, "Unwatched change")
    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 0, output(result)
    assert "Session upstream-tip skipped: upstream upstreampkg" in result.stderr
    assert f"no watched path moved since the verified commit {upstream.initial[:10]}" in (
        result.stderr
    )
    assert "passed" not in result.stdout

    broken = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 41\n"}, "Break the answer"
    )
    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 1, output(result)
    assert "1 failed, 1 passed, 1 deselected" in result.stdout  # Same "1.0": still reinstalled.
    old_core = upstream.rev_parse(f"{upstream.initial}:upstreampkg/core.py")
    new_core = upstream.rev_parse(f"{broken}:upstreampkg/core.py")
    assert f"  upstreampkg/core.py: {old_core[:10]} -> {new_core[:10]}\n" in result.stdout
    assert f"    {broken[:7]} 2024-01-03 Break the answer" in result.stdout
    assert (
        f"The tests failed against upstreampkg commit {broken}; .pytest-unchanged-upstream.json "
        f"still holds the verified commit: {upstream.initial[:10]}"
    ) in result.stderr
    assert "Session upstream-tip failed" in result.stderr
    assert "diff --git a/upstreampkg/core.py b/upstreampkg/core.py" in result.stdout
    assert "-    return 42\n+    return 41\n" in result.stdout
    assert verified_commit(project) == upstream.initial
    assert ref_state(project)["failing"] == {
        "commit": broken, "failed_at": ANY_TIME, "paths": {"upstreampkg/core.py": new_core},
    }  # fmt: skip

    upstream.commit({"docs/index.txt": "Still unwatched.\n"}, "Unwatched again")
    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 0, output(result)  # Known failing, nothing new: no alert.
    assert "Session upstream-tip skipped: upstream upstreampkg" in result.stderr
    assert f"still failing at {broken[:10]}" in result.stderr
    assert "nothing new moved" in result.stderr
    assert "passed" not in result.stdout

    fixed = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 6 * 7\n"}, "Fix the answer"
    )
    result = nox(project, cache, "--reuse-venv", "yes", "--", "-k", "answer")
    assert result.returncode == 0, output(result)
    assert f"Testing against upstreampkg {fixed[:7]}" in result.stderr
    assert "1 passed, 2 deselected" in result.stdout
    assert verified_commit(project) == fixed
    assert "failing" not in ref_state(project)

    touched = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 42\n"}, "Touch it again"
    )
    result = nox(project, cache, "--reuse-venv", "yes", "--no-install")
    assert result.returncode == 1, output(result)
    assert f"is not built from upstreampkg-{touched}" in result.stderr
    assert "were installs skipped by --no-install or -R?" in result.stderr
    assert "passed" not in result.stdout
    assert verified_commit(project) == fixed


DJANGO_LIKE_SETUP = """\
import datetime
import os
import subprocess

from setuptools import setup


def git_changeset():
    # Like django/utils/version.py: the timestamp of HEAD in the source directory.
    here = os.path.dirname(os.path.abspath(__file__))
    log = subprocess.run(
        ["git", "log", "--pretty=format:%ct", "--quiet", "-1", "HEAD"],
        capture_output=True, cwd=here, text=True,
    )
    try:
        stamp = datetime.datetime.fromtimestamp(int(log.stdout), tz=datetime.timezone.utc)
    except ValueError:
        return None
    return stamp.strftime("%Y%m%d%H%M%S")


changeset = git_changeset()
setup(
    name="upstreampkg",
    version="5.2" + (f".dev{changeset}" if changeset else ""),
    packages=["upstreampkg", "upstreampkg.storage"],
)
"""

VERSION_TEST = """\
import importlib.metadata

def test_version():
    print("VERSION=" + importlib.metadata.version("upstreampkg"))
"""


def test_version_from_git_names_the_upstream_commit_and_an_emptied_venv_is_said(
    tmp_path: Path,
) -> None:
    """A Django-like ``setup.py`` asks git for HEAD's time: it must get the upstream commit's,
    never the project's (nox's temporary folder is inside the project's worktree)."""
    upstream = Upstream(tmp_path / "upstream")
    setuptools_build = (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    upstream.commit({"pyproject.toml": setuptools_build, "setup.py": DJANGO_LIKE_SETUP}, "Setup")
    project = make_consumer(tmp_path / "consumer", upstream)
    (project / "tests" / "test_consumer.py").write_text(VERSION_TEST)
    text = (project / "pyproject.toml").read_text().replace('["-m", "not live"]', '["-s"]')
    (project / "pyproject.toml").write_text(text)
    host_date = {"GIT_AUTHOR_DATE": "2030-01-01T00:00:00+00:00"}
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(
        project,
        "commit",
        "-q",
        "-m",
        "Host",
        env={**host_date, "GIT_COMMITTER_DATE": "2030-01-01T00:00:00+00:00"},
    )
    cache = tmp_path / "cache"
    record = subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", "upstream", "record", "upstreampkg"],
        cwd=project, env={**os.environ, CACHE_DIR_ENV: str(cache)}, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert record.returncode == 0, record.stderr

    result = nox(project, cache)  # Skipped: nox leaves an empty virtualenv behind.
    assert result.returncode == 0, output(result)
    assert "Session upstream-tip skipped" in result.stderr
    moved = upstream.commit({"upstreampkg/core.py": "def answer() -> int:\n    return 7\n"}, "Move")
    result = nox(project, cache, "-R")
    assert result.returncode == 1, output(result)
    assert f"is not built from upstreampkg-{moved} (it comes from (not installed))" in (
        result.stderr
    )
    assert "Traceback" not in output(result)
    assert "PackageNotFoundError" not in output(result)

    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 0, output(result)
    assert "VERSION=5.2.dev20240103120000" in result.stdout  # The upstream commit's time.
    assert verified_commit(project) == moved
    assert git(project, "status", "--porcelain") == "?? .pytest-unchanged-upstream.json"


PARAMETRIZED_NOXFILE = """\
import nox
from pytest_unchanged.nox_session import upstream_refs, upstream_tip

@nox.session(name="upstream-tip", default=False)
@nox.parametrize("ref", upstream_refs("upstreampkg"))
def upstream_tip_session(session: nox.Session, ref: str) -> None:
    upstream_tip(session, "upstreampkg", ref=ref)
"""


def test_parametrized_session_tests_each_moved_ref(tmp_path: Path) -> None:
    upstream = Upstream(tmp_path / "upstream")
    git(upstream.path, "branch", "stable/1.x")
    project = make_consumer(tmp_path / "consumer", upstream)
    text = (project / "pyproject.toml").read_text()
    text = text.replace(
        'paths = ["upstreampkg/core.py"]',
        'refs = ["main", "stable/1.x"]\n' + 'paths = ["upstreampkg/core.py"]',
    )
    (project / "pyproject.toml").write_text(text)
    (project / "noxfile.py").write_text(PARAMETRIZED_NOXFILE)
    cache = tmp_path / "cache"
    record = subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", "upstream", "record", "upstreampkg"],
        cwd=project, env={**os.environ, CACHE_DIR_ENV: str(cache)}, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert record.returncode == 0, record.stderr
    git(upstream.path, "checkout", "-q", "stable/1.x")
    backport = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 40 + 2\n"}, "Backport"
    )
    git(upstream.path, "checkout", "-q", "main")

    result = nox(project, cache)
    assert result.returncode == 0, output(result)
    assert "Session upstream-tip(ref='main') skipped: upstream upstreampkg" in result.stderr
    assert f"Testing against upstreampkg {backport[:7]}" in result.stderr
    assert "Session upstream-tip(ref='stable/1.x') was successful" in result.stderr
    assert "2 passed, 1 deselected" in result.stdout
    state = json.loads((project / ".pytest-unchanged-upstream.json").read_text())
    refs = state["upstreams"]["upstreampkg"]["refs"]
    assert (refs["main"]["commit"], refs["stable/1.x"]["commit"]) == (upstream.initial, backport)


def test_only_failed_tests_are_recorded_as_failing(tmp_path: Path) -> None:
    """A usage error, no test collected or run, or a failed install record nothing; a
    collection error (an import the upstream broke) is a failure."""
    upstream = Upstream(tmp_path / "upstream")
    project = make_consumer(tmp_path / "consumer", upstream)
    cache = tmp_path / "cache"
    state_file = project / ".pytest-unchanged-upstream.json"
    for args, message in [
        (("--", "--typo-option"), "pytest was given a bad command line (exit 4"),
        (("--", "-k", "no_such_test"), "pytest collected no tests (exit 5)"),
        (("--", "--co"), "pytest ran no test (--co"),
    ]:
        result = nox(project, cache, "--reuse-venv", "yes", *args)
        assert result.returncode == 1, output(result)
        assert message in result.stderr, output(result)
        assert "it is recorded neither as verified nor as failing" in result.stderr
        assert not state_file.exists()
    pyproject = project / "pyproject.toml"
    good = pyproject.read_text()
    pyproject.write_text(good.replace('install = [".", "pytest"]', 'install = ["./nowhere"]'))
    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 1, output(result)
    assert "the tests did not run, so nothing is recorded" in result.stderr, output(result)
    assert not state_file.exists()
    pyproject.write_text(good)
    (project / "tests" / "test_consumer.py").write_text("from upstreampkg import gone\n")
    result = nox(project, cache, "--reuse-venv", "yes")
    assert result.returncode == 1, output(result)
    assert "Interrupted: 1 error during collection" in result.stdout
    assert ref_state(project)["failing"]["commit"] == upstream.initial  # type: ignore[index]
