"""Where the store lives: ``d/unchanged/store.sqlite3`` in pytest's cache directory.

pytest keeps its cache under the ``cache_dir`` ini option of its configuration file, relative to
the rootdir. In a session, :func:`store_path` asks pytest's cache; the ``records`` commands run
outside pytest, so :func:`find_store` finds the configuration file pytest would use (the
nearest directory holding one) and reads its ``cache_dir`` the way pytest does. Both make a
missing cache directory as pytest makes it (:func:`make_cache_dir`).
"""

from __future__ import annotations

import configparser
import os
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:  # the records commands import this module: importing pytest took 0.1 s
    import pytest

__all__ = ["CONFIG_FILES", "find_store", "make_cache_dir", "store_path"]

CONFIG_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)
"""pytest's configuration files, in the order it looks for them in each directory (pytest.toml
and .pytest.toml since pytest 9)."""


def find_store(start: Path) -> Path:
    """Return the store path of the project containing ``start``: under the ``cache_dir`` (ini
    option; default ``.pytest_cache``, relative to the rootdir, ``~`` and ``$VARS`` expanded
    as pytest does) of the nearest directory holding a pytest configuration file (pytest's
    rootdir in the common case), else the worktree root's ``.pytest_cache``. A configuration
    file counts as pytest's does: ``pytest.toml``, ``.pytest.toml`` (its ``[pytest]`` table),
    ``pytest.ini`` and ``.pytest.ini`` always, ``pyproject.toml``
    with a ``[tool.pytest.ini_options]`` or ``[tool.pytest]`` table, ``tox.ini`` with a
    ``[pytest]`` section, ``setup.cfg`` with a ``[tool:pytest]`` section."""
    start = start.resolve()
    names = CONFIG_FILES if _reads_pytest_toml() else CONFIG_FILES[2:]
    for directory in (start, *start.parents):
        for name in names:
            if (directory / name).is_file():
                found, cache_dir = _cache_dir(directory / name)
                if found:
                    path = Path(os.path.expanduser(os.path.expandvars(cache_dir)))
                    return directory / path / "d" / "unchanged" / "store.sqlite3"
    found_repository = pygit2.discover_repository(str(start))
    root = Path(pygit2.Repository(found_repository).workdir) if found_repository else start
    return root / ".pytest_cache" / "d" / "unchanged" / "store.sqlite3"


def _reads_pytest_toml() -> bool:
    """Whether the installed pytest reads ``pytest.toml`` (pytest 9 and newer)."""
    try:
        return Version(metadata.version("pytest")).major >= 9
    except (metadata.PackageNotFoundError, InvalidVersion):
        return True


def _cache_dir(path: Path) -> tuple[bool, str]:
    """Whether ``path`` is a pytest configuration file, and its ``cache_dir``."""
    default = ".pytest_cache"
    try:
        if path.name in ("pytest.toml", ".pytest.toml"):  # always pytest's, even if empty
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("pytest", {})
            value = table.get("cache_dir", default) if isinstance(table, dict) else default
            return True, str(value)
        if path.name == "pyproject.toml":
            tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            pytest = tool.get("pytest") if isinstance(tool, dict) else None
            if not isinstance(pytest, dict):
                return False, default
            options = pytest.get("ini_options", pytest)
            value = options.get("cache_dir", default) if isinstance(options, dict) else default
            return True, str(value)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error):
        return False, default
    section = {"tox.ini": "pytest", "setup.cfg": "tool:pytest"}.get(path.name, "pytest")
    if not parser.has_section(section):
        return path.name in ("pytest.ini", ".pytest.ini"), default
    return True, parser.get(section, "cache_dir", fallback=default)


def store_path(config: pytest.Config) -> Path:
    """Return the store's path in pytest's cache directory, made if it can be.

    When the directory cannot be made (a read-only checkout) the path is still returned, where
    pytest's cache puts it (``cache_dir`` relative to the rootdir); opening the store there then
    gives a :class:`StoreUnavailableWarning` and every test runs.
    """
    # pytest's own rule for ``cache_dir`` (``resolve_from_str``): ``~`` and ``$VARS`` expand.
    cache_dir = config.rootpath / os.path.expanduser(
        os.path.expandvars(str(config.getini("cache_dir")))
    )
    try:
        # pytest 8.0's ``Cache.mkdir`` makes the cache directory without its ``.gitignore``
        # (pytest 8.1 and newer add it): the store would then be an untracked file in the
        # worktree and change ``.``, the default input, on every run.
        make_cache_dir(cache_dir)
        return Path(config.cache.mkdir("unchanged")) / "store.sqlite3"
    except OSError:
        return cache_dir / "d" / "unchanged" / "store.sqlite3"


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
