"""The records ref's format 2: shards by nodeid, incremental fetch, a version-1 ref converted,
pruning on a push with nothing new, forgetting fetched records, the store under cache_dir."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from pytest_unchanged.keys import canonical_json, digest, item_key
from pytest_unchanged.ref_tree import shard_of

from .conftest import TESTS, commit, git
from .sharing_helpers import fill_store, make_origin, records_cli, ref_records

REF = "refs/pytest-unchanged/records/"


def push(work: Path, origin: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return records_cli(work, "push", str(origin), "--as", "ci", "--store", str(store))


def stored(cwd: Path, store: Path) -> list[dict[str, object]]:
    shown = records_cli(cwd, "show", "--json", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    rows: list[dict[str, object]] = json.loads(shown.stdout)
    return rows


def test_a_fetch_reads_only_the_shards_that_changed(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    nodeids = [f"tests/t{n}.py::test_{n}" for n in range(40)]
    fill_store(tmp_path / "a.sqlite3", nodeids)
    assert push(work, origin, tmp_path / "a.sqlite3").returncode == 0
    shards = {shard_of(n) for n in nodeids}
    listing = git(origin, "ls-tree", "-r", "--name-only", f"{REF}ci").splitlines()
    assert listing == ["environments.jsonl", *sorted(f"shards/{s}.jsonl" for s in shards)]
    mine = tmp_path / "b.sqlite3"
    first = records_cli(work, "fetch", str(origin), "--from", "ci", "--store", str(mine))
    assert first.returncode == 0, first.stderr
    n = len(shards)
    assert f"ci: 40 record(s) read from {n} of {n} shard(s)" in first.stdout
    # Another machine pushes a pass of one more test: one shard changes, one is read.
    fill_store(tmp_path / "c.sqlite3", ["tests/t_new.py::test_new"])
    assert push(work, origin, tmp_path / "c.sqlite3").returncode == 0
    n = len(shards | {shard_of("tests/t_new.py::test_new")})
    again = records_cli(work, "fetch", str(origin), "--from", "ci", "--store", str(mine))
    assert again.returncode == 0, again.stderr
    neighbours = sum(shard_of(n) == shard_of("tests/t_new.py::test_new") for n in nodeids)
    assert f"ci: {neighbours + 1} record(s) read from 1 of {n} shard(s)" in again.stdout
    assert "fetched from" in again.stdout and ": 1 new record(s)" in again.stdout
    assert len(stored(work, mine)) == 41


def write_v1_ref(origin: Path, source: str, nodeids: list[str]) -> None:
    """A ref as pytest-unchanged wrote it before format 2: one blob, records.jsonl."""
    env = {"python": "old"}
    env_id, manifest = digest(env), [["src/a.py", "100644", "a" * 40]]
    inputs_id = digest(manifest)
    lines = ['{"format": "pytest-unchanged-records", "version": 1}']
    lines += [json.dumps(["b", i, t]) for i, t in sorted({env_id: canonical_json(env)}.items())]
    for nodeid in nodeids:
        key = item_key(nodeid, inputs_id, env_id)
        lines.append(
            json.dumps(["r", source, nodeid, key, inputs_id, env_id, 0.5, time.time(), None])
        )
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=origin, input="\n".join(lines) + "\n",
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tree = subprocess.run(
        ["git", "mktree"], cwd=origin, input=f"100644 blob {blob}\trecords.jsonl\n",
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    made = git(origin, "commit-tree", tree, "-m", "old records")
    git(origin, "update-ref", f"{REF}{source}", made)


def test_a_version_1_ref_is_read_and_a_push_converts_it(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    write_v1_ref(origin, "ci", ["t.py::test_old1", "t.py::test_old2"])
    mine = tmp_path / "mine.sqlite3"
    fetched = records_cli(work, "fetch", str(origin), "--from", "ci", "--store", str(mine))
    assert fetched.returncode == 0, fetched.stderr
    assert "ci: 2 record(s) read\n" in fetched.stdout
    assert {r["source"] for r in stored(work, mine)} == {"ci"}
    fill_store(tmp_path / "new.sqlite3", ["t.py::test_new"])
    pushed = push(work, origin, tmp_path / "new.sqlite3")
    assert pushed.returncode == 0, pushed.stderr
    assert "records.jsonl" not in git(origin, "ls-tree", "--name-only", f"{REF}ci")
    assert sorted(str(v[2]) for v in ref_records(origin, f"{REF}ci")) == [
        "t.py::test_new", "t.py::test_old1", "t.py::test_old2",
    ]  # fmt: skip


def test_a_bad_shard_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    fill_store(tmp_path / "a.sqlite3", [f"t.py::test_{n}" for n in range(5)])
    assert push(work, origin, tmp_path / "a.sqlite3").returncode == 0
    # Rewrite one shard with a key that is not hex SHA-256.
    path = git(origin, "ls-tree", "-r", "--name-only", f"{REF}ci").splitlines()[1]
    lines = git(origin, "show", f"{REF}ci:{path}").splitlines()
    value = json.loads(lines[3])
    value[3][0][0] = "X" * 64
    lines[3] = json.dumps(value)
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=origin, input="\n".join(lines) + "\n",
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    git(origin, "read-tree", f"{REF}ci")
    git(origin, "update-index", "--cacheinfo", f"100644,{blob},{path}")
    made = git(origin, "commit-tree", git(origin, "write-tree"), "-m", "bad")
    git(origin, "update-ref", f"{REF}ci", made)
    mine = tmp_path / "mine.sqlite3"
    refused = records_cli(work, "fetch", str(origin), "--from", "ci", "--store", str(mine))
    assert refused.returncode == 2
    assert f"{REF}ci:{path}, line 4: a key of" in refused.stderr, refused.stderr
    assert stored(work, mine) == []


def test_a_push_with_nothing_new_still_prunes_the_ref(tmp_path: Path) -> None:
    """The push mark remembers the oldest pass in the ref: once it is due for pruning, a push
    with no new local record reads, prunes and pushes the ref again."""
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    store = tmp_path / "store.sqlite3"
    start = time.time()
    fill_store(store, ["t.py::test_a", "t.py::test_b"], age=86400 - 30)
    args = ("push", str(origin), "--as", "ci", "--store", str(store), "--max-age-days", "1")
    assert records_cli(work, *args).returncode == 0
    assert len(ref_records(origin, f"{REF}ci")) == 2
    time.sleep(max(0.0, start + 31 - time.time()))  # both records are now older than a day
    again = records_cli(work, *args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("pushed 0 record(s)"), again.stdout
    assert ref_records(origin, f"{REF}ci") == []


def test_forgotten_fetched_records_come_back_on_the_next_fetch(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    fill_store(tmp_path / "a.sqlite3", ["t.py::test_a", "t.py::test_b"])
    assert push(work, origin, tmp_path / "a.sqlite3").returncode == 0
    mine = tmp_path / "mine.sqlite3"
    fetch = ("fetch", str(origin), "--from", "ci", "--store", str(mine))
    assert records_cli(work, *fetch).returncode == 0
    forgot = records_cli(work, "forget", "t.py::test_a", "--store", str(mine))
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.splitlines() == [
        "forgot 1 record(s)",
        "1 of them came from ci: the next fetch of that source brings back what its ref still "
        "holds (forget them on the machines that push it, or stop trusting the source)",
    ]
    assert [r["nodeid"] for r in stored(work, mine)] == ["t.py::test_b"]
    assert records_cli(work, *fetch).returncode == 0
    assert [r["nodeid"] for r in stored(work, mine)] == ["t.py::test_a", "t.py::test_b"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("tox.ini", "[pytest]\ncache_dir = build/cache\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\ncache_dir = "build/cache"\n'),
        ("setup.cfg", "[tool:pytest]\ncache_dir = build/cache\n"),
        pytest.param(
            "pytest.toml",
            '[pytest]\ncache_dir = "build/cache"\n',
            marks=pytest.mark.skipif(
                pytest.version_tuple < (9,), reason="pytest reads pytest.toml from 9 on"
            ),
        ),
    ],
)
def test_records_finds_the_store_under_a_custom_cache_dir(
    repo: Path, pytester: pytest.Pytester, name: str, text: str
) -> None:
    pytester.makepyfile(test_project=TESTS)
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("A = 1\n")
    (repo / "src" / "b.py").write_text("B = 1\n")
    (repo / name).write_text(text)
    commit(repo)
    pytester.runpytest_subprocess("--unchanged").assert_outcomes(passed=3)
    assert (repo / "build" / "cache" / "d" / "unchanged" / "store.sqlite3").is_file()
    sub = repo / "src"  # found from a subdirectory too
    shown = records_cli(sub, "show")
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == 3


def odd_ref(origin: Path, entries: list[str]) -> None:
    """Point ``{REF}ci`` of ``origin`` at a commit whose tree holds ``entries``
    (``--cacheinfo`` triples; ``{blob}`` is an empty version-2 records blob)."""
    header = '{"format":"pytest-unchanged-records","version":2}\n["e",[]]\n["h",[]]\n'
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=origin, input=header,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    git(origin, "read-tree", "--empty")
    for cacheinfo in entries:
        git(origin, "update-index", "--add", "--cacheinfo", cacheinfo.replace("{blob}", blob))
    made = git(origin, "commit-tree", git(origin, "write-tree"), "-m", "odd")
    git(origin, "update-ref", f"{REF}ci", made)


def test_a_ref_whose_shard_is_not_a_blob_is_a_clear_error(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    odd_ref(origin, ["100644,{blob},environments.jsonl", "100644,{blob},shards/00.jsonl/x"])
    fetched = records_cli(
        work, "fetch", str(origin), "--from", "ci", "--store", str(tmp_path / "s")
    )
    assert fetched.returncode == 2
    assert f"{REF}ci:shards/00.jsonl is a tree, not a blob of records" in fetched.stderr
    assert "Traceback" not in fetched.stderr


@pytest.mark.parametrize("entry", ["environments.jsonl", "shards/00.jsonl"])
def test_a_ref_holding_a_submodule_link_is_a_clear_error(tmp_path: Path, entry: str) -> None:
    """A gitlink (mode 160000) names a commit the ref's repository does not hold: exit 2 and
    one line, not a KeyError traceback (adversarial review of issue 10, round 2)."""
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    environments = [] if entry == "environments.jsonl" else ["100644,{blob},environments.jsonl"]
    odd_ref(origin, [*environments, f"160000,{'1' * 40},{entry}"])
    fetched = records_cli(
        work, "fetch", str(origin), "--from", "ci", "--store", str(tmp_path / "s")
    )
    assert fetched.returncode == 2, fetched.stderr
    assert f"{REF}ci:{entry} is not an object of this ref" in fetched.stderr
    assert "Traceback" not in fetched.stderr


@pytest.mark.parametrize("target", ["blob", "tree", "tag", "deep"])
@pytest.mark.parametrize("command", ["fetch", "push"])
def test_a_ref_that_is_not_a_commit_of_records_is_a_clear_error(
    tmp_path: Path, target: str, command: str
) -> None:
    # Anyone who can push the ref controls what it points at (adversarial review round 3).
    origin = make_origin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    if target == "deep":  # a JSON line nested deeper than the decoder's recursion limit
        odd_ref(origin, ["100644,{blob},environments.jsonl"])
        deep = '{"format":"pytest-unchanged-records","version":2}\n' + "[" * 100_000 + "]" * 100_000
        blob = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=origin, input=deep,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        git(origin, "read-tree", "--empty")
        git(origin, "update-index", "--add", "--cacheinfo", f"100644,{blob},environments.jsonl")
        made = git(origin, "commit-tree", git(origin, "write-tree"), "-m", "deep")
    else:
        odd_ref(origin, ["100644,{blob},environments.jsonl"])
        made = {
            "blob": f"{REF}ci:environments.jsonl",
            "tree": f"{REF}ci^{{tree}}",
            "tag": f"{REF}ci:environments.jsonl",
        }[target]
        made = git(origin, "rev-parse", made)
        if target == "tag":
            git(origin, "tag", "-a", "-m", "t", "t", made)
            made = git(origin, "rev-parse", "refs/tags/t")
    git(origin, "update-ref", f"{REF}ci", made)
    store = str(tmp_path / "s")
    flags = ["--from", "ci"] if command == "fetch" else ["--as", "ci"]
    done = records_cli(work, command, str(origin), *flags, "--store", store)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("pytest-unchanged: error: "), done.stderr
