"""The files Python really loaded code from, seen through an audit hook (PEP 578).

``sys.modules`` says what is imported *now*: an import inside ``with
mock.patch.dict(sys.modules):`` is gone from it when the block ends, and a module imported
before a window opened is not new in it. The interpreter's audit events say what was loaded:

* ``exec`` with a code object: a module's code run by the import system (source, cached
  bytecode, a zip archive: ``deps.zip/helper.py``), by :mod:`runpy`, ``exec_module`` or
  pytest's assertion rewriting; its ``co_filename`` is the file;
* ``import`` with a file name: an extension module loaded;
* ``open`` of a ``.pyc`` file: bytecode read (``__pycache__`` entries are mapped back to their
  source with :func:`importlib.util.source_from_cache`, pytest's rewritten ones by name; a
  sourceless ``.pyc`` is itself);
* a child process started (``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.spawn*``,
  ``os.posix_spawn*``, ``os.fork``, ``os.forkpty``): what it loads is not seen from here
  (``python -m pkg``, a console script), so it is recorded as :data:`CHILD`.

An audit hook cannot be removed, so one is installed per process, the first time a
:class:`Recorder` starts; it returns at once while no recorder is active (one truth test per
event). It never raises: whatever goes wrong in it is ignored (the audited operation goes on).
Recorders are held weakly: one whose session ended without stopping it stops recording when
it is garbage collected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Iterable
from importlib.machinery import BYTECODE_SUFFIXES
from importlib.util import source_from_cache
from types import CodeType
from typing import Any

__all__ = [
    "CHILD",
    "Mark",
    "Recorder",
    "added_since",
    "module_files",
    "modules_mark",
    "real_file",
]

CHILD = "\0a child process"
"""Recorded in place of a file when a child process starts (no file name holds a NUL)."""
_CHILD_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
     "os.forkpty"}
)  # fmt: skip

_RECORDERS: weakref.WeakSet[Recorder] = weakref.WeakSet()
_INSTALLED = False
_BYTECODE = tuple(BYTECODE_SUFFIXES)


class Recorder:
    """The files code was loaded from while it is started, in order (``files``); an index
    into ``files`` marks a point in time (:meth:`mark`)."""

    def __init__(self) -> None:
        self.files: list[str] = []

    def start(self) -> None:
        """Start recording (installing the process's audit hook on first use)."""
        global _INSTALLED
        if not _INSTALLED:
            sys.addaudithook(_hook)
            _INSTALLED = True
        _RECORDERS.add(self)

    def stop(self) -> None:
        """Stop recording; what was recorded stays in ``files``."""
        _RECORDERS.discard(self)

    def mark(self) -> int:
        """The point in time now: files recorded later have this index or a higher one."""
        return len(self.files)

    def since(self, mark: int, until: int | None = None) -> list[str]:
        """The files recorded from ``mark`` (to ``until``, default now)."""
        return self.files[mark:until]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _RECORDERS:
        return
    try:
        if event == "exec":
            code = args[0]
            if not isinstance(code, CodeType):
                return
            file = code.co_filename
        elif event == "import":
            file = args[1]
        elif event == "open":
            file = args[0]
            if not isinstance(file, str) or not file.endswith(_BYTECODE):
                return
        elif event in _CHILD_EVENTS:
            for recorder in list(_RECORDERS):
                recorder.files.append(CHILD)
            return
        else:
            return
        if isinstance(file, str) and file and not (file[0] == "<" and file[-1] == ">"):
            for recorder in list(_RECORDERS):
                recorder.files.append(file)
    except Exception:
        pass  # never break what is being audited


def real_file(file: str) -> str | None:
    """The absolute path of the file a recorded name stands for: a ``__pycache__`` bytecode
    file's source, the archive of a module in a zip archive (``deps.zip/helper.py``, which
    :mod:`zipimport` names below the archive), else the file itself; ``None`` when no such
    file exists (code compiled from a string under a made-up name)."""
    path = os.path.abspath(file)
    cache, name = os.path.split(path)
    if path.endswith(_BYTECODE) and os.path.basename(cache) == "__pycache__":
        # Python's own tag (helper.cpython-311.pyc), or pytest's rewritten modules
        # (conftest.cpython-311-pytest-8.0.0.pyc): the source beside the __pycache__.
        source = os.path.join(os.path.dirname(cache), name.partition(".")[0] + ".py")
        with contextlib.suppress(ValueError):
            source = source_from_cache(path)
        return source if os.path.isfile(source) else None
    if os.path.isfile(path):
        return path
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if os.path.isfile(parent):
            return path  # a member of an archive: its path names the archive and the member
        if os.path.isdir(parent):
            return None
        parent = os.path.dirname(parent)
    return None


Mark = tuple[str | None, object, int]
"""The last entry of ``sys.modules`` and its module, and the recorder's index."""


def modules_mark() -> tuple[str | None, object]:
    """Where ``sys.modules`` stands: its last entry and module (a dict keeps insertion order,
    so modules imported later come after it)."""
    last = next(reversed(sys.modules), None)
    return (last, None if last is None else sys.modules.get(last))


def added_since(mark: Mark) -> list[str]:
    """The names added to ``sys.modules`` since ``mark``: walked back from the end to the
    entry that was last, the same module object (a module removed and imported again moves to
    the end). When that entry is gone, every name is returned: more to check, never less."""
    last, module, _ = mark
    found: list[str] = []
    for name in reversed(sys.modules):
        if name == last and sys.modules.get(name) is module:
            return found
        found.append(name)
    return found


def module_files(names: Iterable[str]) -> list[str]:
    """The files (``__file__``) of the modules ``names`` in ``sys.modules``."""
    found = []
    for name in names:
        filename = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(filename, str):
            found.append(filename)
    return found
