"""Environment facets: what, besides its input paths, goes into every key.

The Python implementation and version, the platform, the installed distributions (canonical
name and version, read with :mod:`importlib.metadata`), environment variables named in the ini
option ``unchanged_env``, the salt, the key schema version, and pytest's own command-line
settings that change how a test is collected or ends.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from email.parser import HeaderParser

import pytest
from packaging.utils import canonicalize_name

from .keys import SCHEMA_VERSION, Facets, canonical_json

__all__ = [
    "command_line_facets",
    "environment_facets",
    "facets_body",
    "installed_distributions",
]


def environment_facets(
    env_names: Iterable[str],
    salt: str,
    extra: Iterable[Mapping[str, str | None]] = (),
    ignore_distributions: Iterable[str] = (),
) -> dict[str, str | None]:
    """Return the environment facets that go into every key.

    Facets: the key schema version, the Python implementation and version, the platform, every
    installed distribution (``dist:<canonical name>`` → version, read with
    :mod:`importlib.metadata`), each environment variable named in ``env_names``
    (``env:<NAME>`` → value, ``None`` when unset), the ``salt``, and the ``extra`` mappings
    (from the ``pytest_unchanged_environment`` hook), later ones winning. Distributions named in
    ``ignore_distributions`` (ini ``unchanged_ignore_distributions``; names compared canonicalized,
    PEP 503) are left out, so a developer's venv with extra tools can share records with CI.
    """
    facets: dict[str, str | None] = {
        "schema": str(SCHEMA_VERSION),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{sys.platform} {platform.machine()}",
        "salt": salt,
    }
    ignored = {canonicalize_name(name) for name in ignore_distributions}
    for name, version in installed_distributions():
        if name in ignored:
            continue
        facets.setdefault(f"dist:{name}", version)  # the first on sys.path is the one imported
    for name in env_names:
        facets[f"env:{name}"] = os.environ.get(name)
    for mapping in extra:
        facets.update(mapping)
    return facets


def installed_distributions() -> list[tuple[str, str]]:
    """Return ``(canonical name, version)`` of every distribution on ``sys.path``, in order.

    Distributions are found with :mod:`importlib.metadata`; only the header block of their core
    metadata is parsed (the description, which may fill the message body, is skipped), which is
    several times faster than ``Distribution.metadata`` on a large environment. When a PEP 610
    ``direct_url.json`` names a VCS commit or an archive hash, it is appended to the version, so
    reinstalling another commit with the same version string still changes the facet.
    """
    parser = HeaderParser()
    found: list[tuple[str, str]] = []
    for dist in importlib.metadata.distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        headers = parser.parsestr(text.split("\n\n", 1)[0])
        name, version = headers["Name"], headers["Version"]
        if not name or not version:
            continue
        found.append((canonicalize_name(str(name)), str(version) + _direct_url_suffix(dist)))
    return found


def _direct_url_suffix(dist: importlib.metadata.Distribution) -> str:
    text = dist.read_text("direct_url.json")
    if not text:
        return ""
    try:
        info = json.loads(text)
        commit = info.get("vcs_info", {}).get("commit_id")
        archive = info.get("archive_info", {}).get("hash")
    except (ValueError, AttributeError):
        return ""
    return f" @ {commit}" if commit else f" @ {archive}" if archive else ""


# pytest's own command-line settings that change what is collected or how a test ends (a
# warning turned into an error by -W, say). Their defaults are left out of the key.
OUTCOME_OPTIONS = (
    ("pythonwarnings", "-W"),
    ("override_ini", "-o"),
    ("plugins", "-p"),
    ("noconftest", "--noconftest"),
    ("confcutdir", "--confcutdir"),
    ("importmode", "--import-mode"),
    ("doctestmodules", "--doctest-modules"),
    ("doctestglob", "--doctest-glob"),
)


def command_line_facets(config: pytest.Config) -> dict[str, str | None]:
    """Return the environment facets of the session's command line: the values of
    :data:`OUTCOME_OPTIONS` given (also through ``PYTEST_ADDOPTS``), and ``PYTEST_PLUGINS``.

    This plugin's own ``-o unchanged_*`` overrides and ``-p`` about it are left out: they do
    not change how a test ends. Other plugins' options are not read; make them part of the key
    with ``unchanged_salt`` or the ``pytest_unchanged_environment`` hook.
    """
    facets: dict[str, str | None] = {}
    for dest, flag in OUTCOME_OPTIONS:
        value = config.getoption(dest, None)
        if dest == "plugins" and value:
            value = [v for v in value if _loadable(config, str(v))]
        if isinstance(value, list):
            value = [v for v in value if "unchanged" not in str(v)] or None
        if value in (None, False, "prepend"):
            continue
        facets[f"option:{flag}"] = json.dumps(value, default=str)
    plugins = os.environ.get("PYTEST_PLUGINS")
    if plugins:
        facets["env:PYTEST_PLUGINS"] = plugins
    return facets


def _loadable(config: pytest.Config, plugin: str) -> bool:
    """Whether ``-p plugin`` changes anything: ``-p no:name`` blocking a plugin that is not
    there (a builtin one or a ``pytest11`` entry point) does not."""
    if not plugin.startswith("no:"):
        return True
    name = plugin[3:]
    if name in _pytest_builtin_plugins():
        return True
    return any(ep.name == name for ep in importlib.metadata.entry_points(group="pytest11"))


def _pytest_builtin_plugins() -> frozenset[str]:
    from _pytest.config import builtin_plugins

    return frozenset(builtin_plugins)


def facets_body(facets: Facets) -> str:
    """Return the canonical JSON text of ``facets``."""
    return canonical_json(dict(facets))
