"""Symlink targets: what a symlink among an item's inputs makes the test read.

git stores a symlink as its link text (mode ``120000``), so a directory's tree OID, or a
declared symlink's blob OID, does not change when the file the link points to is edited. The
targets of such links inside the repository are inputs too; a link out of the repository
cannot be keyed (the test runs every time, with an ``UnkeyableInputWarning``).
"""

from __future__ import annotations

import bisect
import glob
import os
from pathlib import Path

from .worktree import Worktree

__all__ = ["LinkTargets"]


class LinkTargets:
    """The symlink targets behind worktree paths, memoised per path for one session."""

    def __init__(self, worktree: Worktree) -> None:
        self.worktree = worktree
        self._memo: dict[str, tuple[list[str], list[str]]] = {}
        self._single: dict[str, tuple[list[str], str | None]] = {}

    def targets(self, rel: str) -> tuple[list[str], list[str]]:
        """Return the targets inside the repository that ``rel`` leads to (relative to the top)
        and the reasons it cannot be keyed (a link out of the repository).

        ``rel`` leads to a target when it is a symlink or lies below a symlinked directory, and,
        when it is a directory, through every symlink inside it whose target lies outside it
        (a target inside it is covered by the directory's tree OID already).

        Raises :class:`pygit2.GitError` or :class:`OSError` when ``rel`` cannot be hashed.
        """
        cached = self._memo.get(rel)
        if cached is None:
            found: list[str] = []
            outside: list[str] = []
            for link in [rel, *self._links_below(rel)]:
                targets, reason = self._target(link)
                found.extend(t for t in targets if link == rel or not _is_below(t, rel))
                if reason:
                    outside.append(reason)
            cached = self._memo[rel] = (found, outside)
        return cached

    def through_link(self, rel: str) -> bool:
        """Whether ``rel`` exists on disk only through a symlinked directory above it (git
        sees nothing below a symlink, so its entry is absent): it counts as its target."""
        full = os.path.join(self.worktree.root, rel)
        plain = os.path.join(os.path.realpath(self.worktree.root), rel)
        return os.path.exists(full) and os.path.realpath(full) != plain

    def _links_below(self, rel: str) -> list[str]:
        links = self.worktree.links
        if not links or not self.worktree.entry(rel).is_tree:
            return []
        if not rel:
            return links
        start = bisect.bisect_left(links, rel + "/")
        end = bisect.bisect_left(links, rel + "0")  # "0" sorts right after "/"
        return links[start:end]

    def _target(self, rel: str) -> tuple[list[str], str | None]:
        cached = self._single.get(rel)
        if cached is None:
            cached = ([], None)
            if rel:
                full = os.path.join(self.worktree.root, rel)
                real = os.path.realpath(full)
                if real != full and os.path.lexists(full):
                    try:
                        target = self.worktree.relpath(real)
                    except ValueError:
                        reason = f"symlink {rel} points outside the repository (to {real})"
                        cached = ([], reason)
                    else:
                        if target.split("/", 1)[0] != ".git":
                            cached = ([target], None)
            self._single[rel] = cached
        return cached


def _is_below(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or inside it (both relative to the top)."""
    return not directory or path == directory or path.startswith(directory + "/")


def system_path(rootdir: Path, path: str) -> str:
    """Return the absolute, normalised form of ``path`` (relative to ``rootdir``) as the system
    resolves it: a ``..`` after a symlinked directory leaves the link's target, not the link
    (``os.path.normpath`` alone would drop both: adversarial review of issue 10, round 4,
    finding 08), so the part up to the last ``..`` is resolved on disk.

    Raises :class:`ValueError` for a ``..`` after a glob pattern (not supported).
    """
    parts = Path(path).parts
    if ".." not in parts:
        return os.path.normpath(rootdir / path)
    last = len(parts) - parts[::-1].index("..")
    if glob.has_magic(os.path.join(*parts[:last])):
        raise ValueError("'..' after a glob pattern is not supported")
    head = os.path.realpath(rootdir.joinpath(*parts[:last]))
    return os.path.normpath(os.path.join(head, *parts[last:]))
