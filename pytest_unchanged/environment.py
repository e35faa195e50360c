"""Environment facets: what, besides its input paths, goes into every key.

The Python implementation and version, the platform, the installed distributions (canonical
name and version, read with :mod:`importlib.metadata`), how the interpreter runs (``sys.flags``,
``sys.warnoptions``, ``-X`` options) and the ``PYTHON*``/``PYTEST_*`` environment variables set
(:func:`interpreter_facets`), environment variables named in the ini option ``unchanged_env``,
the salt, the key schema version, and the session's settings (:mod:`.settings`).
"""

from __future__ import annotations

import importlib.metadata
import json
import locale
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from email.parser import HeaderParser

from .keys import SCHEMA_VERSION, Facets, canonical_json, canonical_name
from .settings import ENVIRONMENT_PREFIXES, NOT_ENVIRONMENT_FACETS, command_line_facets

__all__ = [
    "command_line_facets",
    "environment_facets",
    "facets_body",
    "installed_distributions",
    "interpreter_facets",
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
    :mod:`importlib.metadata`), the :func:`interpreter_facets`, each environment variable named
    in ``env_names``
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
        **interpreter_facets(os.environ),
    }
    ignored = {canonical_name(name) for name in ignore_distributions}
    for name, version in installed_distributions():
        if name in ignored:
            continue
        facets.setdefault(f"dist:{name}", version)  # the first on sys.path is the one imported
    for name in env_names:
        facets[f"env:{name}"] = os.environ.get(name)
    for mapping in extra:
        facets.update(mapping)
    return facets


def interpreter_facets(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Return the facets of how this interpreter runs, read from what Python actually used.

    * ``python:flag:<name>`` → the value of every field of :data:`sys.flags` (``dev_mode``,
      ``optimize``, ``safe_path``, ``hash_randomization``...): ``-X dev`` and
      ``PYTHONDEVMODE=1`` alike;
    * ``python:warnoptions`` → JSON of :data:`sys.warnoptions` (``-W`` given to Python and
      ``PYTHONWARNINGS``), and ``python:xoptions`` → JSON of the ``-X`` options;
    * ``python:encoding`` → the locale's preferred encoding (what :func:`open` uses without
      one) and the file system encoding;
    * ``env:<NAME>`` → the value of each variable of ``environ`` named ``PYTHON*`` or
      ``PYTEST_*`` (``PYTHONPATH``, ``PYTHONHASHSEED``, ``PYTEST_PLUGINS``,
      ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``...), except :data:`NOT_ENVIRONMENT_FACETS`. A test's
      subprocesses see them even where this interpreter ignored them (``-E``).
    """
    facets: dict[str, str | None] = {}
    flags = sys.flags
    for name in getattr(type(flags), "__match_args__", ()):
        facets[f"python:flag:{name}"] = str(getattr(flags, name))
    facets["python:warnoptions"] = json.dumps(list(sys.warnoptions))
    # open() without an encoding, and file names: both follow the locale (LANG, LC_ALL...).
    facets["python:encoding"] = (
        f"{locale.getpreferredencoding(False)} {sys.getfilesystemencoding()}"
    )
    xoptions = getattr(sys, "_xoptions", {})
    facets["python:xoptions"] = json.dumps(dict(xoptions), sort_keys=True, default=str)
    for name in sorted(environ):
        if name.startswith(ENVIRONMENT_PREFIXES) and name not in NOT_ENVIRONMENT_FACETS:
            facets[f"env:{name}"] = environ[name]
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
        found.append((canonical_name(str(name)), str(version) + _direct_url_suffix(dist)))
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


def facets_body(facets: Facets) -> str:
    """Return the canonical JSON text of ``facets``."""
    return canonical_json(dict(facets))
