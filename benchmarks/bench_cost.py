"""Measure what pytest-unchanged costs a project that does not use ``--unchanged``, and its store.

Usage: ``python benchmarks/bench_cost.py PROJECT_DIR [--rounds 7] [--runs 3] [-- PYTEST_ARGS]``
with the Python of a virtualenv where the project's test dependencies and pytest-unchanged are
installed. Nothing in ``PROJECT_DIR`` is changed but its ``.pytest_cache`` (the store is
deleted before the store runs).

1. Collection: ``pytest --collect-only -q`` with the plugin loaded but ``--unchanged`` off,
   against the same without the plugin (``-p no:unchanged``), alternating, ``--rounds`` times
   each after one warm-up of each; prints both medians of CPU time and their ratio (goal:
   <= 1.10). ``--baseline PYTHON`` adds, in the same rounds, the plugin under another
   virtualenv's Python (another version of the plugin, for a before/after figure).
   ``--pycache-prefix DIR`` lets Python cache bytecode (and pytest its rewritten test
   modules) in ``DIR``, as on a machine where ``PYTHONDONTWRITEBYTECODE`` is not set: without
   it every run compiles every module it imports, the plugin's included.
2. Store: the store is deleted, then ``pytest --unchanged -q`` runs ``--runs`` times with
   nothing changed; prints the store's bytes on disk per collected item (each collected item,
   deselected ones included, is one (test, key) the store knows after the runs; goal: <= 120)
   and per record, and the CPU time of each run (the last ones are the reruns).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

GOAL_RATIO = 1.10
GOAL_BYTES = 120


ENV = dict(os.environ)


def run(project: Path, args: list[str], python: str = sys.executable) -> tuple[float, str]:
    """Run pytest in ``project``; return its CPU time (user + system, in seconds: the machine
    may be shared, and wall time then measures the neighbours) and its last output line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [python, "-m", "pytest", *args], cwd=project, capture_output=True, text=True, env=ENV
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if result.returncode not in (0, 5):
        sys.exit(f"pytest {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return elapsed, lines[-1] if lines else ""


def collected(line: str) -> int:
    """The number of items pytest collected (deselected ones included) from its summary line."""
    found = re.search(r"(\d+)/(\d+) tests? collected", line) or re.search(
        r"(\d+) tests? collected", line
    )
    if found is None:
        sys.exit(f"no collection count in {line!r}")
    return int(found.groups()[-1])


def store_counts(path: Path) -> tuple[int, int]:
    """The number of local records in the store at ``path``, and its format."""
    db = sqlite3.connect(path)
    try:
        found = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()[0]
        table = "passes" if int(found) >= 5 else "records"  # 5: records is a view
        records = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()
    return int(records), int(found)


def report(times: dict[str, list[float]]) -> None:
    """Print the median and least CPU time of each variant and their ratios to the first (no
    plugin): on a shared machine the neighbours only add time, so the least is the steadier."""
    for name, values in times.items():
        print(
            f"  collect-only, {name:<24} median {statistics.median(values):7.3f}s CPU, least "
            f"{min(values):7.3f}s  {[round(v, 2) for v in values]}"
        )
    (base, *loaded), (least, *fewest) = (
        [statistics.median(t) for t in times.values()],
        [min(t) for t in times.values()],
    )
    for name, median, lowest in zip(list(times)[1:], loaded, fewest, strict=True):
        ratio = median / base
        verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
        print(
            f"  ratio {name}/without: {ratio:.3f} (goal <= {GOAL_RATIO}) {verdict}; "
            f"least/least {lowest / least:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-store", action="store_true", help="only measure collection")
    parser.add_argument("--skip-collect", action="store_true", help="only measure the store")
    parser.add_argument("--baseline", metavar="PYTHON", help="also time the plugin under PYTHON")
    parser.add_argument("--pycache-prefix", metavar="DIR", type=Path, help="cache bytecode in DIR")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to every pytest run")
    options = parser.parse_args()
    project: Path = options.project.resolve()
    extra: list[str] = options.pytest_args
    store = project / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"

    if options.pycache_prefix is not None:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = str(options.pycache_prefix.resolve())
    off = ["--collect-only", "-q", "-p", "no:unchanged", *extra]
    on = ["--collect-only", "-q", *extra]
    variants = {
        "without plugin": (sys.executable, off),
        "plugin, --unchanged off": (sys.executable, on),
    }
    if options.baseline:
        variants["baseline plugin"] = (options.baseline, on)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for python, args in variants.values():
        _, line = run(project, args, python)  # a warm-up of each
    items = collected(line)
    for _ in range(0 if options.skip_collect else options.rounds):
        for name, (python, args) in variants.items():
            times[name].append(run(project, args, python)[0])
    bytecode = "not written" if "PYTHONDONTWRITEBYTECODE" in ENV else "cached"
    print(f"{project.name}: {items:,} items collected ({line}); bytecode {bytecode}")
    if not options.skip_collect:
        report(times)
    if options.skip_store:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        store.with_name(store.name + suffix).unlink(missing_ok=True)
    walls = [
        run(project, ["--unchanged", "-q", "-p", "no:randomly", *extra])
        for _ in range(options.runs)
    ]
    size = store.stat().st_size
    records, found = store_counts(store)
    per_item = size / items
    verdict = "ok" if per_item <= GOAL_BYTES else "OVER"
    print(
        f"  store (format {found}) after {options.runs} --unchanged runs: {size:,} bytes, "
        f"{records:,} records, {items:,} items"
    )
    print(
        f"  bytes per (test, key): {per_item:.1f} (goal <= {GOAL_BYTES}) {verdict}; "
        f"per record {size / max(records, 1):.1f}"
    )
    for number, (wall, last) in enumerate(walls, 1):
        print(f"  --unchanged run {number}: {wall:.3f}s CPU  {last}")


if __name__ == "__main__":
    main()
