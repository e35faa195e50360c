"""Progress lines while an upstream is fetched: the remote's own messages and the transfer.

A fetch has two phases. First the remote (a server, or libgit2's local transport for a path
URL) counts and compresses the objects to send, and says so through the *sideband*
("Counting objects: 45% (1234/2742)"); for Django this takes minutes. Then the objects arrive
and libgit2 reports the *transfer* (objects received, bytes, deltas indexed). Both are shown.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

import pygit2

__all__ = ["FetchProgress"]


class FetchProgress(pygit2.RemoteCallbacks):
    """Remote callbacks that write progress lines while a fetch runs.

    ``write`` receives text ending in a newline (or, on a terminal, starting with a carriage
    return); default: standard error. Nothing is written during the first ``delay`` seconds,
    so quick fetches stay silent, except :meth:`start_cold`, called before a first fetch, which
    writes at once. After that, a line is written when the phase changes (counting,
    compressing, receiving) and at most every ``interval`` seconds otherwise (0.5 s on a
    terminal, where the line is redrawn in place, 10 s elsewhere).
    """

    def __init__(
        self, label: str, write: Callable[[str], None] | None = None, delay: float = 1.0
    ) -> None:
        super().__init__()
        self.label = label
        self.tty = write is None and sys.stderr.isatty()
        self.write = write or (lambda text: print(text, file=sys.stderr, end="", flush=True))
        self.start = time.monotonic()
        self.delay = delay
        self.interval = 0.5 if self.tty else 10.0
        self.last = float("-inf")
        self.phase = ""
        self.pending = ""  # The remote's message not yet ended by a carriage return.
        self.shown = False

    def start_cold(self, url: str, refs: str) -> None:
        """Say at once that a first fetch (the whole history of ``refs``) begins."""
        self.start = time.monotonic()
        self.delay = 0.0
        self.write(f"fetching {self.label} from {url} (first fetch: the whole history of {refs})\n")
        self.shown = True

    def sideband_progress(self, string: str) -> None:
        """Called by libgit2 with the remote's messages ("Counting objects: ...")."""
        *complete, self.pending = re.split(r"[\r\n]", self.pending + string)
        messages = [part.strip() for part in complete if part.strip()]
        if messages:
            self._maybe_show(messages[-1], f"remote: {messages[-1]}")

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        """Called by libgit2 as objects arrive."""
        received, total = stats.received_objects, max(stats.total_objects, 1)
        phase = "Receiving" if received < total else "Resolving deltas"
        self._maybe_show(
            phase,
            f"{received}/{total} objects ({100 * received // total}%), "
            f"{stats.received_bytes / 2**20:.1f} MiB, "
            f"{stats.indexed_deltas}/{stats.total_deltas} deltas",
        )

    def finish(self) -> None:
        """End the progress output, if any was written."""
        if self.shown:
            elapsed = time.monotonic() - self.start
            end_of_line = "\n" if self.tty else ""
            self.write(f"{end_of_line}fetched {self.label} in {elapsed:.1f}s\n")

    def _maybe_show(self, message: str, text: str) -> None:
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        phase = re.sub(r"[^A-Za-z ].*", "", message).strip()  # "Counting objects"
        if phase == self.phase and now - self.last < self.interval:
            return
        self.phase = phase
        self._show(f"fetching {self.label}: {text}, {now - self.start:.0f}s")

    def _show(self, line: str) -> None:
        self.last = time.monotonic()
        if self.tty:
            self.write(f"\r\x1b[K{line}")
        else:
            self.write(f"{line}\n")
        self.shown = True
