"""Benchmark pytest-unchanged on a generated suite, with every variant measured side by side.

The suite: ``--modules`` test modules (default 100) of ``--tests`` trivial tests each (default
50, so 5,000 tests), each module depending on its own source file. The variants run interleaved,
``--rounds`` times (default 5), and the script prints the median seconds of each and the ratios
the project's goals are stated in:

* first ``--unchanged`` run (recording, empty store) / plain ``pytest`` (plugin off)  <= 1.10
* rerun with nothing changed / ``pytest --collect-only``                               <= 0.50
* rerun after a one-line edit of one source file / plain ``pytest``                    <= 0.25

When pytest-testmon is installed, its first run and no-change rerun are measured on the same
suite. ``--big-repo`` also times session setup in a repository of 100,000 files with one dirty
file against ``Repository.status()`` alone (goal: 2x at most).

Run it with ``python benchmarks/bench_suite.py`` or ``nox -s bench``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GOALS = {
    "first --unchanged / plain": 1.10,
    "no change / collect-only": 0.50,
    "one edit / plain": 0.25,
}


def git(cwd: Path, *args: str) -> None:
    """Run git quietly in ``cwd`` with a fixed identity."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    subprocess.run(["git", *args], cwd=cwd, check=True, env=env, capture_output=True)


def make_suite(root: Path, modules: int, tests: int, imports: bool = False) -> None:
    """Write the generated suite into a new git repository at ``root``; with ``imports``, the
    tests are unmarked and import their source module (``unchanged_default = imports``)."""
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    ini = "unchanged_default = imports\npythonpath = src\n" if imports else ""
    (root / "pytest.ini").write_text(f"[pytest]\ntestpaths = tests\n{ini}")
    (root / ".gitignore").write_text(".pytest_cache/\n__pycache__/\n.testmondata*\n")
    for i in range(modules):
        (root / "src" / f"mod_{i}.py").write_text(f"VALUE = {i}\n")
        body = "\n\n".join(f"def test_{j}():\n    assert {j} == {j}" for j in range(tests))
        header = (
            f"import mod_{i}\n"
            if imports
            else f'import pytest\n\npytestmark = pytest.mark.depends_on("src/mod_{i}.py")\n'
        )
        (root / "tests" / f"test_mod_{i}.py").write_text(f"{header}\n{body}\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "suite")


def pytest_run(root: Path, *args: str) -> float:
    """Run pytest in ``root`` and return its wall time in seconds; fail loudly on errors."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=root,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 5):
        sys.exit(f"pytest {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return elapsed


def clear_store(root: Path) -> None:
    """Forget every record (and testmon's data)."""
    shutil.rmtree(root / ".pytest_cache", ignore_errors=True)
    for data in root.glob(".testmondata*"):
        data.unlink()


def variants(root: Path, counter: list[int]) -> dict[str, Callable[[], float]]:
    """The measured commands; each leaves the store as the next one expects."""

    def first() -> float:
        clear_store(root)
        return pytest_run(root, "--unchanged")

    def one_edit() -> float:
        counter[0] += 1
        (root / "src" / "mod_0.py").write_text(f"VALUE = 0  # edit {counter[0]}\n")
        return pytest_run(root, "--unchanged")

    found: dict[str, Callable[[], float]] = {
        "plain": lambda: pytest_run(root, "-p", "no:unchanged"),
        "collect-only": lambda: pytest_run(root, "--collect-only", "-p", "no:unchanged"),
        "first --unchanged": first,
        "no change": lambda: pytest_run(root, "--unchanged"),
        "one edit": one_edit,
    }
    if importlib.util.find_spec("testmon") is not None:

        def testmon_first() -> float:
            clear_store(root)
            return pytest_run(root, "--testmon", "-p", "no:unchanged")

        found["testmon first"] = testmon_first
        found["testmon no change"] = lambda: pytest_run(root, "--testmon", "-p", "no:unchanged")
    return found


def measure(root: Path, rounds: int) -> dict[str, float]:
    """Run every variant ``rounds`` times, interleaved, and return the median seconds."""
    counter = [0]
    runs = variants(root, counter)
    pytest_run(root, "--unchanged")  # warm caches and bytecode
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(values) for name, values in times.items()}


def big_repo_setup(path: Path, files: int, rounds: int) -> tuple[float, float]:
    """Median seconds of ``Repository.status()`` alone and of the plugin's session setup."""
    import pygit2

    from pytest_unchanged.session import Context

    if not (path / ".git").exists():
        for i in range(files):
            directory = path / f"d{i // 1000}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"f{i}.txt").write_text(f"{i}\n")
        git(path, "init", "-q")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "big")
    (path / "d0" / "f0.txt").write_text("dirty\n")
    status_times, setup_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        pygit2.Repository(str(path)).status(untracked_files="all", ignored=False)
        status_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        context = Context.build(
            path,
            config_file=None,
            global_inputs=(),
            default=(".",),
            env_names=(),
            salt="",
            extra_facets=(),
            store_path=path / ".pytest_cache" / "store.sqlite3",
            warn=print,
            discard_corrupt=True,
        )
        context.resolver.worktree.entry("")
        context.unchanged_module("test_x.py", path / "test_x.py")  # reads the summaries
        context.close()
        setup_times.append(time.perf_counter() - start)
    return statistics.median(status_times), statistics.median(setup_times)


def main() -> int:
    """Parse arguments, run the benchmark, print medians and ratios; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-repo", action="store_true", help="also time a 100,000-file repo")
    parser.add_argument(
        "--imports", action="store_true", help="unmarked tests, unchanged_default = imports"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated files here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="unchanged-bench-"))
    suite = workdir / f"suite-{args.modules}x{args.tests}"
    if suite.exists():
        shutil.rmtree(suite)
    make_suite(suite, args.modules, args.tests, args.imports)
    print(f"suite: {args.modules} modules x {args.tests} tests in {suite}, {args.rounds} rounds")
    medians = measure(suite, args.rounds)
    for name, seconds in medians.items():
        print(f"  {name:<20} {seconds:8.3f} s (median)")
    ratios = {
        "first --unchanged / plain": medians["first --unchanged"] / medians["plain"],
        "no change / collect-only": medians["no change"] / medians["collect-only"],
        "one edit / plain": medians["one edit"] / medians["plain"],
    }
    if "testmon first" in medians:
        ratios["testmon first / plain"] = medians["testmon first"] / medians["plain"]
        ratios["testmon no change / collect-only"] = (
            medians["testmon no change"] / medians["collect-only"]
        )
    failed = False
    for name, ratio in ratios.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else (" ok" if ratio <= goal else f" MISSED (goal {goal})")
        failed = failed or (goal is not None and ratio > goal)
        print(f"  {name:<34} {ratio:6.3f}x{verdict}")
    if args.big_repo:
        status, setup = big_repo_setup(workdir / "big-repo", 100_000, args.rounds)
        print(
            f"  100,000 files, one dirty: status() {status:.3f} s, session setup {setup:.3f} s,"
            f" ratio {setup / status:.2f}x (goal 2.00)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
