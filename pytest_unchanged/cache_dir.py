"""pytest's cache directory, made as pytest makes it, without importing pytest.

The ``records`` commands (:mod:`pytest_unchanged.records_cli`) make it when the store is
missing; importing pytest for that took a tenth of a second of every command.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_cache_dir"]


def make_cache_dir(cache: Path) -> None:
    """Make pytest's cache directory ``cache`` when it is missing, as pytest makes it: with a
    ``.gitignore`` of ``*`` (so the store is no untracked file in the worktree, which would
    change ``.``, the default input, on every write), ``CACHEDIR.TAG`` and ``README.md``.

    Raises :class:`OSError` when the directory or a file in it cannot be written.
    """
    if cache.is_dir():
        return
    cache.mkdir(parents=True)
    (cache / ".gitignore").write_text("# Created by pytest automatically.\n*\n")
    (cache / "CACHEDIR.TAG").write_text(
        "Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by pytest.\n"
        "# For information about cache directory tags, see:\n"
        "#\thttps://bford.info/cachedir/spec.html\n"
    )
    (cache / "README.md").write_text(
        "# pytest cache directory #\n\nThis directory contains data from the pytest's cache "
        "plugin (made here by pytest-unchanged).\n\n**Do not** commit this to "
        "version control.\n"
    )
