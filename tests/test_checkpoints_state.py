"""The checkpoint state file: corrupt files, modes, atomic writes, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import os
import stat
from pathlib import Path

import pytest

from pytest_unchanged import Checkpoints, CorruptCheckpointsError
from pytest_unchanged.checkpoints import CheckpointError

from .test_checkpoints import make_repo, write


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with ``app.py`` committed, the current directory."""
    path = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    monkeypatch.chdir(path)
    return path


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        '{"schema": 1, "checkpoints": {"default": {"/x": {"paths": {"/x": "100644 nothex"}}}}}',
        '{"schema": 2, "checkpoints": {}}',
        '{"schema": 1, "checkpoints": []}',
        b"\xff\xfe",
    ],
)
def test_corrupt_state_is_an_error_naming_the_file_and_is_kept(
    tmp_path: Path, repo: Path, content: str | bytes
) -> None:
    state = tmp_path / "state.json"
    write(state, content)
    store = Checkpoints(state)
    with pytest.raises(CorruptCheckpointsError, match=str(state)):
        store.changed("app.py")
    with pytest.raises(CorruptCheckpointsError, match=str(state)):
        store.checkpoint("app.py")  # not reset, not overwritten
    assert state.read_bytes() == (content.encode() if isinstance(content, str) else content)


def test_own_state_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path: Path) -> None:
    write(tmp_path / "plain.txt", "x\n")
    old_umask = os.umask(0o027)
    try:
        Checkpoints(tmp_path / "new" / "state.json").checkpoint(tmp_path / "plain.txt")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new" / "state.json").stat().st_mode) == 0o640
    existing = tmp_path / "existing.json"
    Checkpoints(existing).checkpoint(tmp_path / "plain.txt")
    existing.chmod(0o604)
    Checkpoints(existing).checkpoint(tmp_path / "plain.txt", name="again")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert sorted(os.listdir(tmp_path)) == [
        "existing.json",
        "existing.json.lock",
        "new",
        "plain.txt",
    ]


def _checkpoint_many(
    state: str, paths: list[str], start: multiprocessing.synchronize.Barrier
) -> None:
    start.wait()
    store = Checkpoints(state)
    for path in paths:
        store.checkpoint(path)


def test_concurrent_checkpoints_of_different_paths_lose_nothing(repo: Path, tmp_path: Path) -> None:
    processes, per_process = 6, 12
    names = [[f"f{p}-{i}.txt" for i in range(per_process)] for p in range(processes)]
    for group in names:
        for name in group:
            write(repo / "many" / name, name)
    state = str(tmp_path / "state.json")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    workers = [
        context.Process(
            target=_checkpoint_many, args=(state, [str(repo / "many" / n) for n in group], start)
        )
        for group in names
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * processes
    recorded = json.loads(Path(state).read_text())["checkpoints"]["default"]
    assert len(recorded) == processes * per_process
    assert Checkpoints(state).same(*(repo / "many" / n for group in names for n in group))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    Checkpoints(state).checkpoint("app.py")
    before = state.read_bytes()
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)

    def refuse(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(
        CheckpointError, match=f"Cannot write the checkpoint file {state}: No space"
    ):
        Checkpoints(state).checkpoint("app.py", name="other")
    assert synced  # the temporary file was flushed to disk before the rename
    assert state.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "state.json", "state.json.lock"]
