"""The ``upstream-tip`` nox session, run for real: nox, a virtualenv, pip, pytest.

One test walks the whole story, because every step needs a real virtualenv (the slow part):
nothing verified → test and record; an unwatched move → skip; a breaking watched move with the
same version string → the new commit is really installed, fails, the state stays; a fix →
test (with posargs) and record; ``--no-install`` on the reused virtualenv → no stale record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_unchanged.upstream.config import CACHE_DIR_ENV

from .upstream_helpers import Upstream, write_project

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


def verified_commit(project: Path) -> str:
    state = json.loads((project / ".pytest-unchanged-upstream.json").read_text())
    commit: str = state["upstreams"]["upstreampkg"]["commit"]
    return commit


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
    assert not list((tmp_path / "envs" / "upstream-tip" / "tmp").glob("*.tar"))

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
    assert verified_commit(project) == upstream.initial

    fixed = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 6 * 7\n"}, "Fix the answer"
    )
    result = nox(project, cache, "--reuse-venv", "yes", "--", "-k", "answer")
    assert result.returncode == 0, output(result)
    assert f"Testing against upstreampkg {fixed[:7]}" in result.stderr
    assert "1 passed, 2 deselected" in result.stdout
    assert verified_commit(project) == fixed

    touched = upstream.commit(
        {"upstreampkg/core.py": "def answer() -> int:\n    return 42\n"}, "Touch it again"
    )
    result = nox(project, cache, "--reuse-venv", "yes", "--no-install")
    assert result.returncode == 1, output(result)
    assert f"is not built from upstreampkg-{touched}.tar" in result.stderr
    assert "were installs skipped by --no-install?" in result.stderr
    assert "passed" not in result.stdout
    assert verified_commit(project) == fixed
