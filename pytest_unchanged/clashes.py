"""Module name clashes the fast path must not hide.

Under pytest's ``prepend`` and ``append`` import modes a test module is imported under the name
its place gives it (``test_x`` for ``a/test_x.py`` outside any package), and a second module
with the same name is a collection error ("import file mismatch"): pytest finds the first in
:data:`sys.modules`. A module the fast path leaves unimported is not in :data:`sys.modules`, so
the second would import without error, and the run would end differently than without the fast
path. Both orders are kept as the slow path has them:

* :func:`omit`: a module whose name another file already holds in :data:`sys.modules` is
  collected (pytest reports the mismatch, as it would);
* :func:`reveal_clash`: before pytest collects a test module whose name a module left
  unimported holds, that module is imported (with pytest's own ``import_path``), so pytest
  finds it in :data:`sys.modules` and reports the mismatch as the slow path does.

Under ``importlib`` mode names are unique and nothing is done. pytest's private functions used
here (``_pytest.pathlib``: ``resolve_pkg_root_and_module_name`` from 8.1,
``resolve_package_path``, ``import_path``, ``fnmatch_ex``) are each guarded.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

from .fastpath import mirror_import_path

__all__ = ["module_name", "omit", "reveal_clash"]

_LEFT_OUT = pytest.StashKey[dict[str, Path]]()
"""Module name → file of each test module the fast path left unimported this session."""


def module_name(config: pytest.Config, path: Path) -> str | None:
    """Return the name pytest's ``prepend``/``append`` import modes import ``path`` under, or
    ``None`` under ``importlib`` mode or when it cannot be worked out."""
    if str(config.getoption("importmode", "prepend")) not in ("prepend", "append"):
        return None
    try:
        from _pytest import pathlib as pytest_pathlib

        resolve = getattr(pytest_pathlib, "resolve_pkg_root_and_module_name", None)
        if resolve is not None:
            namespace = bool(config.getini("consider_namespace_packages"))
            try:
                return str(resolve(path, consider_namespace_packages=namespace)[1])
            except pytest_pathlib.CouldNotResolvePathError:  # not in a package: as pytest does
                return path.stem
        package = pytest_pathlib.resolve_package_path(path)  # pytest 8.0
        if package is None:
            return path.stem
        names = list(path.with_suffix("").relative_to(package.parent).parts)
        if names[-1] == "__init__":
            names.pop()
        return ".".join(names)
    except Exception:
        return None


def _holder(name: str) -> str | None:
    """The file of the module :data:`sys.modules` holds under ``name``, if any."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) else None


def _same(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.abspath(first) == os.path.abspath(second)


def omit(config: pytest.Config, path: Path) -> bool:
    """Prepare to leave the test module at ``path`` unimported: return ``False`` (collect it)
    when another file holds its name in :data:`sys.modules`, else mirror its ``sys.path``
    entry (:func:`.fastpath.mirror_import_path`), remember its name and return ``True``."""
    name = module_name(config, path)
    if name is not None:
        holder = _holder(name)
        if holder is not None and not _same(holder, path):
            return False
        config.stash.setdefault(_LEFT_OUT, {})[name] = path
    mirror_import_path(config, path)
    return True


def reveal_clash(config: pytest.Config, path: Path) -> bool | None:
    """Before pytest collects ``path``: when it is a test module (``python_files``) whose name
    a module left unimported holds, import that module as pytest would have, so the clash is
    reported as without the fast path. Returns ``None`` (for ``pytest_ignore_collect``);
    raises nothing (an import that fails leaves :data:`sys.modules` as the slow path would)."""
    left_out = config.stash.get(_LEFT_OUT, None)
    if not left_out or path.suffix != ".py":
        return None
    name = module_name(config, path)
    other = None if name is None else left_out.get(name)
    if name is None or other is None or _same(other, path) or _holder(name) is not None:
        return None
    try:
        from _pytest.pathlib import fnmatch_ex, import_path

        patterns = [*config.getini("python_files"), "__init__.py"]
        if not any(fnmatch_ex(pattern, path) for pattern in patterns):
            return None
        options: dict[str, object] = {"mode": config.getoption("importmode", "prepend")}
        if "consider_namespace_packages" in inspect.signature(import_path).parameters:
            options["consider_namespace_packages"] = config.getini("consider_namespace_packages")
        import_path(other, root=config.rootpath, **options)  # type: ignore[arg-type]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # a module-level skip is an OutcomeException
        pass
    return None
