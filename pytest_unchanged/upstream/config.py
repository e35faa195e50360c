"""Configuration of watched upstreams: ``[tool.pytest-unchanged.upstream.NAME]`` tables.

Each table of a project's ``pyproject.toml`` names one upstream repository, the ref to follow,
the paths to watch, and how to install and test a commit of it. This module reads and checks
those tables and says where the fetch cache of an upstream lives; it does no git work.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

__all__ = [
    "DEFAULT_STATE_FILE",
    "UpstreamConfig",
    "UpstreamError",
    "cache_path",
    "find_pyproject",
    "load_upstream_config",
]

#: Name of the verified-state file in the project root when a table sets no ``state``.
DEFAULT_STATE_FILE = ".pytest-unchanged-upstream.json"

CACHE_DIR_ENV = "PYTEST_UNCHANGED_CACHE_DIR"

_STRING_KEYS = ("url", "ref", "package", "state")
_LIST_KEYS = ("paths", "install", "pytest_args", "refs", "context")
_REQUIRED_KEYS = ("url", "paths")

#: A distribution name as PEP 508 defines it (compared case-insensitively).
_DISTRIBUTION_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


class UpstreamError(Exception):
    """A watched upstream cannot be checked, recorded or tested.

    The message is one paragraph saying what was wrong and what to do about it; the command
    line prints it without a traceback and exits with status 2. Whatever raised it, the
    verified state has not been modified.
    """


@dataclass(frozen=True)
class UpstreamConfig:
    """One ``[tool.pytest-unchanged.upstream.NAME]`` table, checked and completed with defaults.

    ``refs`` are the branches or tags followed (``ref``, or the ``refs`` list; at least one);
    ``paths`` and ``context`` are relative POSIX paths inside the upstream repository without
    a trailing slash; ``state_file`` is absolute; ``package`` is a canonical distribution name.
    """

    name: str
    url: str
    refs: tuple[str, ...]
    paths: tuple[str, ...]
    install: tuple[str, ...]
    package: str
    pytest_args: tuple[str, ...]
    state_file: Path
    pyproject: Path
    context: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The first (for most tables the only) ref followed."""
        return self.refs[0]

    @property
    def table(self) -> str:
        """The TOML table header of this upstream, for messages."""
        return f"[tool.pytest-unchanged.upstream.{self.name}]"


def find_pyproject(start: Path) -> Path:
    """Return the nearest ``pyproject.toml`` in ``start`` or one of its parents.

    Raises :class:`UpstreamError` when there is none.
    """
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    raise UpstreamError(
        f"No pyproject.toml found in {start} or any of its parents. Run the command from the "
        "project that configures [tool.pytest-unchanged.upstream.NAME], or pass --pyproject."
    )


def load_upstream_config(pyproject: Path, name: str) -> UpstreamConfig:
    """Read and check the table of upstream ``name`` in the file ``pyproject``.

    Raises :class:`UpstreamError` when the file cannot be read or parsed, when no such table
    exists (the message lists the configured names), or when a key is missing, unknown or of
    the wrong type (the message names the key).
    """
    pyproject = pyproject.resolve()
    try:
        with pyproject.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        raise UpstreamError(f"Cannot read {pyproject}: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        why = f"it is not UTF-8 ({exc.reason})" if isinstance(exc, UnicodeDecodeError) else exc
        raise UpstreamError(f"{pyproject} is not valid TOML: {why}. Fix the file.") from None
    tool = document.get("tool", {}).get("pytest-unchanged", {})
    upstreams = tool.get("upstream", {}) if isinstance(tool, dict) else {}
    if not isinstance(upstreams, dict) or not isinstance(upstreams.get(name), dict):
        configured = ", ".join(sorted(upstreams)) if isinstance(upstreams, dict) else ""
        raise UpstreamError(
            f"No upstream named {name!r} in {pyproject}: "
            + (f"the configured upstreams are {configured}. " if configured else "none is. ")
            + f"Add a [tool.pytest-unchanged.upstream.{name}] table with at least `url` and "
            "`paths`, or use one of the configured names."
        )
    return _parse_table(name, upstreams[name], pyproject)


def _parse_table(name: str, table: dict[str, Any], pyproject: Path) -> UpstreamConfig:
    where = f"[tool.pytest-unchanged.upstream.{name}] in {pyproject}"
    unknown = sorted(set(table) - set(_STRING_KEYS) - set(_LIST_KEYS))
    if unknown:
        known = ", ".join(sorted((*_STRING_KEYS, *_LIST_KEYS)))
        raise UpstreamError(
            f"{where}: unknown key {unknown[0]!r}. The known keys are {known}; "
            "fix the spelling or remove the key."
        )
    for key in _REQUIRED_KEYS:
        if key not in table:
            raise UpstreamError(f"{where}: the key {key!r} is missing. Add it to the table.")
    for key in _STRING_KEYS:
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise UpstreamError(
                f"{where}: {key!r} must be a non-empty string, not {table[key]!r}. Fix the value."
            )
    for key in _LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise UpstreamError(
                f"{where}: {key!r} must be a list of strings, not {value!r}. Fix the value."
            )
    if not table["paths"]:
        raise UpstreamError(f"{where}: 'paths' is empty. List at least one upstream path.")
    if "ref" in table and "refs" in table:
        raise UpstreamError(
            f"{where}: both 'ref' and 'refs' are set. Keep one: `refs` lists every ref to follow."
        )
    refs = tuple(table.get("refs", [table.get("ref", "main")]))
    if not refs or len(set(refs)) != len(refs) or not all(ref.strip() for ref in refs):
        raise UpstreamError(
            f"{where}: 'refs' must list distinct, non-empty branch or tag names, not {refs!r}. "
            "Fix the value."
        )
    package = table.get("package", name)
    if not _DISTRIBUTION_NAME.fullmatch(package):
        raise UpstreamError(
            f"{where}: 'package' {package!r} is not a distribution name (letters, digits, and "
            "'.', '-', '_' inside, as PEP 508 says)"
            + ("" if "package" in table else "; the table name is used when it is not set")
            + ". Set `package` to the name pip installs the upstream as."
        )
    project_root = pyproject.parent
    state = Path(table.get("state", DEFAULT_STATE_FILE))
    return UpstreamConfig(
        name=name,
        url=table["url"],
        refs=refs,
        paths=tuple(_normalize_path(path, where, "paths") for path in table["paths"]),
        context=tuple(_normalize_path(path, where, "context") for path in table.get("context", [])),
        install=tuple(table.get("install", ["."])),
        package=canonicalize_name(package),
        pytest_args=tuple(table.get("pytest_args", [])),
        state_file=state if state.is_absolute() else project_root / state,
        pyproject=pyproject,
    )


def _normalize_path(path: str, where: str, key: str) -> str:
    """Return ``path`` as a relative POSIX path without a trailing slash."""
    pure = PurePosixPath(path.strip())
    control = any(ord(char) < 32 or ord(char) == 127 for char in path)
    if control or pure.is_absolute() or ".." in pure.parts or str(pure) in ("", "."):
        raise UpstreamError(
            f"{where}: {key!r} entry {path!r} is not a path inside the upstream repository. "
            "Write it relative to the repository root, like 'src/package/module.py' or "
            "'src/package/'."
        )
    return str(pure)


def cache_path(config: UpstreamConfig, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory of the fetch cache (a bare repository) of ``config``'s upstream.

    The base directory is ``cache_dir`` when given, else ``$PYTEST_UNCHANGED_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/pytest-unchanged/upstream``, else ``~/.cache/pytest-unchanged/upstream``;
    inside it each upstream has ``NAME-HASH``, where HASH is a short digest of the URL.
    """
    base = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        home_cache = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
        root = home_cache / "pytest-unchanged" / "upstream"
    digest = hashlib.sha256(config.url.encode()).hexdigest()[:12]
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", config.name)
    return root.resolve() / f"{safe_name}-{digest}"
