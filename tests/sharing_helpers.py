"""Helpers of the sharing tests: the ``records`` command line in a subprocess, clones of a bare
origin, and stores filled through the store API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pytest_unchanged.keys import canonical_json, digest, item_key
from pytest_unchanged.store import Record, Store

from .conftest import git

TESTS = """
import json
import os
import pytest

@pytest.mark.depends_on("src/a.py")
def test_a():
    assert os.environ.get("FAIL_A") != "1"

@pytest.mark.depends_on("src/b.py")
def test_b():
    pass

def test_unmarked():
    pass
"""
INI = "[pytest]\nunchanged_trusted_sources = pr main\n"
IGNORED = ".pytest_cache/\n__pycache__/\n/stdout\n/stderr\n/runpytest-*\n"


def records_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pytest_unchanged records ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", "records", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_pytest(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``cwd`` in a subprocess (a CI job's ``pytest`` step)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def make_origin(tmp_path: Path) -> Path:
    """A bare repository ``origin.git`` whose ``main`` holds the test project."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "src").mkdir()
    (seed / "src" / "a.py").write_text("A = 1\n")
    (seed / "src" / "b.py").write_text("B = 1\n")
    (seed / "test_project.py").write_text(TESTS)
    (seed / "pytest.ini").write_text(INI)
    (seed / ".gitignore").write_text(IGNORED)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "initial")
    git(seed, "push", "-q", str(origin), "main")
    return origin


def clone(origin: Path, path: Path, branch: str = "main") -> Path:
    """Clone ``origin`` into ``path`` (an empty or missing directory) and return it."""
    git(path.parent, "clone", "-q", "-b", branch, str(origin), str(path))
    return path


def fill_store(
    path: Path, nodeids: list[str], *, keys: int = 1, head: str | None = None, age: float = 0.0
) -> int:
    """Write ``keys`` local records of each nodeid, passed about ``age`` seconds ago, into the
    store at ``path``; return the number of records."""
    env = {"python": "synthetic"}
    env_id = digest(env)
    bodies = {env_id: canonical_json(env)}
    passes = []
    now = time.time()
    for n, nodeid in enumerate(nodeids):
        for k in range(keys):
            manifest = [[f"src/{nodeid}", "100644", f"{k:040x}"]]
            inputs_id = digest(manifest)
            bodies[inputs_id] = canonical_json(manifest)
            key = item_key(nodeid, inputs_id, env_id)
            passes.append(Record(nodeid, key, inputs_id, env_id, 0.5, now - age - n - k, head))
    store = Store(path)
    try:
        store.update(passes, [], bodies, max_keys=max(keys, 8), max_age=86400 * 60)
    finally:
        store.close()
    return len(passes)


def ref_records(origin: Path, ref: str) -> list[list[object]]:
    """The records of ``ref`` in the bare ``origin`` (format 2: every ``shards/*.jsonl``), read
    with the git CLI, each as ``["r", source, nodeid, key, env_id, duration, passed_at, head]``."""
    found: list[list[object]] = []
    for path in git(origin, "ls-tree", "-r", "--name-only", ref).splitlines():
        if not path.startswith("shards/"):
            continue
        values = [json.loads(line) for line in git(origin, "show", f"{ref}:{path}").splitlines()]
        assert values[0] == {"format": "pytest-unchanged-records", "version": 2}
        envs, heads = values[1][1], values[2][1]
        for _, source, nodeid, entries in (v for v in values[1:] if v[0] == "t"):
            for key, env, duration, passed_at, head in entries:
                head_id = None if head is None else heads[head]
                found.append(["r", source, nodeid, key, envs[env], duration, passed_at, head_id])
    return found
