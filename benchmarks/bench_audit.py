"""The overhead of ``--unchanged-audit``: a generated suite timed with and without it.

Usage: ``python benchmarks/bench_audit.py [--modules 100] [--tests 20] [--rounds 5]``

The suite lives in a temporary git repository: ``--modules`` test modules of ``--tests`` tests
each; every test imports a helper at module level, opens and reads a data file, imports a module
inside the function and computes a little. The two commands (plain ``pytest`` and
``pytest --unchanged-audit``) run in fresh processes, interleaved ``--rounds`` times; the medians
of their wall and CPU times and the ratios are printed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_MODULE = """\
import json

import pytest

from pkg import helper{index}


{tests}
"""

TEST_FUNCTION = """\
@pytest.mark.depends_on("pkg/helper{index}.py")
def test_{index}_{number}():
    from pkg import shared
    with open("data/{index}.json") as file:
        data = json.load(file)
    assert helper{index}.total(data["values"]) == shared.expected({number})
"""


def generate(root: Path, modules: int, tests: int) -> None:
    """Write the suite into ``root`` and commit it."""
    (root / "pkg").mkdir()
    (root / "data").mkdir()
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "shared.py").write_text("def expected(n):\n    return 4950\n")
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    (root / ".gitignore").write_text(".pytest_cache/\n__pycache__/\n")
    for index in range(modules):
        helper = root / "pkg" / f"helper{index}.py"
        helper.write_text("def total(values):\n    return sum(values)\n")
        (root / "data" / f"{index}.json").write_text(f'{{"values": {list(range(100))}}}')
        body = "\n\n".join(TEST_FUNCTION.format(index=index, number=n) for n in range(tests))
        (root / "tests" / f"test_m{index}.py").write_text(
            TEST_MODULE.format(index=index, tests=body)
        )
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "suite"]):
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *command],
            cwd=root,
            check=True,
        )


def timed(root: Path, extra: list[str]) -> tuple[float, float]:
    """Run the suite once in a fresh process; return its wall and CPU (user + system) seconds.

    CPU time is the steadier figure on a shared machine.
    """
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([*command, *extra], cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"pytest {' '.join(extra)} failed:\n{result.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    """Generate the suite, time both commands interleaved, print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
        root = Path(directory)
        generate(root, args.modules, args.tests)
        timed(root, [])  # warm up: bytecode caches, the store
        plain: list[tuple[float, float]] = []
        audit: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            plain.append(timed(root, []))
            audit.append(timed(root, ["--unchanged-audit"]))
        count = args.modules * args.tests
        print(f"{count} tests in {args.modules} modules, {args.rounds} interleaved rounds")
        for index, kind in enumerate(("wall", "cpu")):
            plain_times = [t[index] for t in plain]
            audit_times = [t[index] for t in audit]
            plain_median = statistics.median(plain_times)
            audit_median = statistics.median(audit_times)
            print(f"{kind}: plain pytest             median {plain_median:.2f}s", _all(plain_times))
            print(f"{kind}: pytest --unchanged-audit median {audit_median:.2f}s", _all(audit_times))
            print(f"{kind}: ratio {audit_median / plain_median:.2f}x")


def _all(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


if __name__ == "__main__":
    main()
