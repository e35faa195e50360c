"""Push and fetch over a real smart-HTTP git server on 127.0.0.1 with basic auth."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import git
from .git_http import GitHttpServer
from .sharing_helpers import clone, fill_store, make_origin, records_cli, ref_records, run_pytest

TOKEN = "s3cret-token"
REF = "refs/pytest-unchanged/records/"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHttpServer]:
    make_origin(tmp_path)
    running = GitHttpServer(tmp_path, "x-access-token", TOKEN).start()
    try:
        yield running
    finally:
        running.stop()


def test_push_and_fetch_with_a_token(server: GitHttpServer, tmp_path: Path) -> None:
    pr = clone(tmp_path / "origin.git", tmp_path / "pr")
    assert "3 passed" in run_pytest(pr).stdout
    url = f"{server.url}/origin.git"
    pushed = records_cli(
        pr, "push", url, "--as", "pr", "--token-env", "TOKEN", env={"TOKEN": TOKEN}
    )
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.startswith("pushed 3 record(s)")
    assert git(tmp_path / "origin.git", "rev-parse", f"{REF}pr")
    assert ("POST", "/origin.git/git-receive-pack", 200) in server.requests
    main = clone(tmp_path / "origin.git", tmp_path / "main")
    fetched = records_cli(
        main, "fetch", url, "--from", "pr", "--token-env", "TOKEN", env={"TOKEN": TOKEN}
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "pr: 3 record(s)" in fetched.stdout


def test_a_wrong_token_is_exit_2_with_one_paragraph(server: GitHttpServer, tmp_path: Path) -> None:
    pr = clone(tmp_path / "origin.git", tmp_path / "pr")
    assert "3 passed" in run_pytest(pr).stdout
    store = pr / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"
    before = store.read_bytes()
    shown = records_cli(pr, "show").stdout
    url = f"{server.url}/origin.git"
    pushed = records_cli(pr, "push", url, "--as", "pr", "--token-env", "TOKEN", env={"TOKEN": "no"})
    assert pushed.returncode == 2
    message = pushed.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("pytest-unchanged: error: ")
    assert "refused the credentials (check the token in $TOKEN" in message
    missing = records_cli(pr, "push", url, "--as", "pr")
    assert missing.returncode == 2
    assert "pass --token-env NAME" in missing.stderr
    assert store.read_bytes() == before and records_cli(pr, "show").stdout == shown
    assert (
        subprocess.run(
            ["git", "rev-parse", "--verify", "-q", f"{REF}pr"], cwd=tmp_path / "origin.git"
        ).returncode
        != 0
    )


PUSHER = """
import sys, time
from pytest_unchanged.__main__ import main
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start together
sys.exit(main(["records", "push", sys.argv[1], "--as", "shard", "--store", sys.argv[2],
               "--token-env", "TOKEN"]))
"""


def test_concurrent_pushers_over_http_lose_no_record(server: GitHttpServer, tmp_path: Path) -> None:
    """Over receive-pack the lease is the server's: no lock file, the race is retried."""
    processes = []
    start = str(time.time() + 4)
    for shard in range(8):
        repo = tmp_path / f"shard{shard}"
        repo.mkdir()
        git(repo, "init", "-q")
        store = tmp_path / f"shard{shard}.sqlite3"
        fill_store(store, [f"t{shard}.py::test_{n}" for n in range(10)])
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", PUSHER, f"{server.url}/origin.git", str(store), start],
                cwd=repo,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**__import__("os").environ, "TOKEN": TOKEN},
            )
        )
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        print(out)
    assert len(ref_records(tmp_path / "origin.git", f"{REF}shard")) == 80
