"""The patch of the watched paths between two upstream commits, made with pygit2.

libgit2 diffs whole trees; unchanged subtrees are skipped by OID, so the cost is in the paths
that changed. Only the deltas under a watched path are turned into patch text.
"""

from __future__ import annotations

import pygit2

__all__ = ["watched_patch"]


def watched_patch(
    repo: pygit2.Repository, old: pygit2.Commit, new: pygit2.Commit, paths: tuple[str, ...]
) -> str:
    """Return the unified diff (``git diff OLD NEW -- PATHS``) of ``paths`` from ``old`` to ``new``.

    ``paths`` are watched paths (files or directories, no trailing slash); the text is empty
    when none of them changed, and ends in a newline otherwise. Binary files are named, not
    shown.
    """
    diff = repo.diff(old, new, context_lines=3)
    assert isinstance(diff, pygit2.Diff)
    chunks: list[str] = []
    for index, delta in enumerate(diff.deltas):
        names = (delta.old_file.path, delta.new_file.path)
        if not any(_under(name, path) for name in names for path in paths):
            continue
        patch = diff[index]
        if patch is None:
            continue
        text = patch.text or ""
        chunks.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(chunks)


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + "/")
