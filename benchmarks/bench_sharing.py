"""Sharing records: export, import, push and fetch of a large store through a local bare remote.

Usage: ``python benchmarks/bench_sharing.py [--tests 62000] [--keys 8] [--project DIR]``

Without ``--project``, a store of ``--tests`` nodeids with ``--keys`` records each is written
through the store API (synthetic manifests of one input each, one environment per key) in a
temporary directory. With ``--project DIR``, a copy of the store a real run left in ``DIR``
(``.pytest_cache/d/unchanged/store.sqlite3``, or ``--store PATH``) is used instead. The script
then times, each in a fresh process (``python -m pytest_unchanged records ...``): ``export``,
``import`` into an empty store, a first ``push`` to a bare repository, a second ``push`` with
nothing new, ``fetch`` (fetch + validate + merge) into an empty store, and an incremental
``fetch`` after another machine pushed passes of the tests of 1% of the test files; and prints
the size of the ref's blobs and of the bare repository on disk (after ``git gc``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from pytest_unchanged.keys import canonical_json, digest, item_key
from pytest_unchanged.passes import Names
from pytest_unchanged.store import Record, Store


def fill(path: Path, tests: int, keys: int) -> int:
    """Write ``tests`` x ``keys`` local records into a new store at ``path``."""
    envs = [{"python": "bench", "platform": "bench", "salt": str(k)} for k in range(keys)]
    bodies = {digest(env): canonical_json(env) for env in envs}
    env_ids = list(bodies)
    passes = []
    now = time.time()
    for n in range(tests):
        nodeid = f"tests/test_mod{n // 100}.py::test_{n}[param-{n % 7}]"
        for k in range(keys):
            env_id = env_ids[k]
            manifest = [[f"src/pkg/mod{n // 100}.py", "100644", f"{n * keys + k:040x}"]]
            inputs_id = digest(manifest)
            bodies[inputs_id] = canonical_json(manifest)
            key = item_key(nodeid, inputs_id, env_id)
            passes.append(Record(nodeid, key, inputs_id, env_id, 0.01, now - k * 3600, "ab" * 20))
    store = Store(path)
    try:
        store.update(passes, [], bodies, max_keys=keys, max_age=86400 * 60)
    finally:
        store.close()
    return len(passes)


def fill_nodeids(path: Path, nodeids: list[str]) -> None:
    """Write one new local record of each of ``nodeids`` into a new store at ``path``."""
    env = {"python": "bench", "platform": "other machine"}
    env_id, manifest = digest(env), [["src/new.py", "100644", "1" * 40]]
    inputs_id = digest(manifest)
    bodies = {env_id: canonical_json(env), inputs_id: canonical_json(manifest)}
    passes = [
        Record(n, item_key(n, inputs_id, env_id), inputs_id, env_id, 0.01, time.time(), None)
        for n in nodeids
    ]
    store = Store(path)
    try:
        store.update(passes, [], bodies, max_keys=8, max_age=86400 * 60)
    finally:
        store.close()


def timed(cwd: Path, *args: str) -> float:
    """Run ``pytest-unchanged records ARGS`` in ``cwd``; print its wall and CPU (user + system)
    times, and return the CPU time in seconds (on a busy machine the wall time says little)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest_unchanged", "records", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if result.returncode:
        raise SystemExit(f"records {' '.join(args)} failed:\n{result.stderr}")
    what = " ".join(a for a in args[:2] if not a.startswith("/"))
    print(f"  {what:<14} wall {elapsed:7.2f} s  cpu {cpu:6.2f} s  {result.stdout.strip()[:70]}")
    return cpu


def main() -> None:
    """Build the store, run the commands, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=62000)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--project", type=Path, help="Use the store of a real run in DIR")
    parser.add_argument("--store", type=Path, help="With --project: the store's path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
        subprocess.run(["git", "init", "-q", "--bare", str(root / "origin.git")], check=True)
        subprocess.run(["git", "init", "-q", str(root / "work")], check=True, env=env)
        work, origin = root / "work", str(root / "origin.git")
        store = root / "store.sqlite3"
        start = time.perf_counter()
        if args.project:
            found = args.store or args.project / ".pytest_cache/d/unchanged/store.sqlite3"
            copy = sqlite3.connect(store)
            with closing(sqlite3.connect(found)) as original:
                original.backup(copy)
            copy.close()
            with closing(sqlite3.connect(store)) as db:
                Names(db).register()
                count = db.execute("SELECT count(*) FROM records").fetchone()[0]
                tests = db.execute("SELECT count(DISTINCT nodeid) FROM records").fetchone()[0]
            what = f"a real run's store ({found}): {count:,} records of {tests:,} tests"
        else:
            count = fill(store, args.tests, args.keys)
            what = f"{args.tests:,} tests x {args.keys} keys"
        size = store.stat().st_size
        print(f"store: {what}, {size:,} bytes")
        print(f"  (prepared in {time.perf_counter() - start:.1f} s)")
        exported = root / "records.jsonl"
        timed(work, "export", str(exported), "--store", str(store))
        print(f"  export file: {exported.stat().st_size:,} bytes")
        timed(work, "import", str(exported), "--store", str(root / "imported.sqlite3"))
        timed(work, "push", origin, "--as", "bench", "--store", str(store))
        timed(work, "push", origin, "--as", "bench", "--store", str(store))
        fetched = str(root / "fetched.sqlite3")
        timed(work, "fetch", origin, "--from", "bench", "--store", fetched)
        print(f"  fetched store: {Path(fetched).stat().st_size:,} bytes")
        # Another machine pushes new passes of the tests of 1% of the test files (a change to
        # a few modules); the next fetch reads only the shards they landed in.
        other = root / "other.sqlite3"
        with closing(sqlite3.connect(store)) as db:
            Names(db).register()  # the records view names each row through it
            nodeids = [n for (n,) in db.execute("SELECT DISTINCT nodeid FROM records")]
        files = set(sorted({n.split("::")[0] for n in nodeids})[::100])
        fill_nodeids(other, [n for n in nodeids if n.split("::")[0] in files])
        timed(work, "push", origin, "--as", "bench", "--store", str(other))
        timed(work, "fetch", origin, "--from", "bench", "--store", fetched)
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-l", "refs/pytest-unchanged/records/bench"],
            cwd=origin, capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        blobs = sum(int(line.split()[3]) for line in listing)
        subprocess.run(["git", "gc", "-q", "--prune=now"], cwd=origin, check=True)
        on_disk = sum(p.stat().st_size for p in Path(origin).rglob("*") if p.is_file())
        print(f"ref: {len(listing)} blobs, {blobs:,} bytes; bare repository after gc {on_disk:,}")


if __name__ == "__main__":
    main()
