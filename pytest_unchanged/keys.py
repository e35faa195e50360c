"""Canonical serialisation and digests: the key a pass is recorded under.

A key is a SHA-256 over the canonical JSON of ``[schema, nodeid, inputs digest, environment
digest]``; the inputs digest covers the sorted ``(path, mode, OID)`` triples of the item's
inputs, the environment digest covers the environment facets. The same inputs give the same
key on any machine and any branch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = [
    "SCHEMA_VERSION",
    "Facets",
    "Manifest",
    "canonical_json",
    "canonical_name",
    "digest",
    "encode",
    "item_key",
    "utf8",
]

SCHEMA_VERSION = 3
"""Bumped whenever the meaning of a key changes; old records then never match again.

2: the key is a SHA-256 over NUL-joined text, no longer over a JSON list.
3: settings are facets by rule (every option not at its default but a short allowlist, each
``-o``, the plugins loaded, the working directory, ``sys.flags``, ``sys.warnoptions``, the
locale's encoding, ``PYTHON*``/``PYTEST_*`` variables), and a pass needs a call phase that ran
(see :mod:`pytest_unchanged.settings`)."""

Manifest: TypeAlias = Sequence[tuple[str, str, str]]
"""The sorted ``(path, mode, OID)`` triples of an item's inputs."""
Facets: TypeAlias = Mapping[str, str | None]
"""Environment facet name to value (``None`` for an unset environment variable)."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical_json(value: object) -> str:
    """Return the canonical JSON text of ``value``: sorted keys, no spaces, UTF-8 kept.

    A lone surrogate (a byte that was not UTF-8 in an environment variable, an ``-o`` value or
    a file name, decoded with ``surrogateescape`` by Python, PEP 383) is written as its JSON
    escape ``\\udcXX``: the text is then valid Unicode, which UTF-8 encodes and SQLite stores,
    and :func:`json.loads` gives the value back. Other text is unchanged.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def encode(text: str) -> bytes:
    """Return ``text`` as UTF-8 bytes, lone surrogates included (``surrogatepass``).

    Keyed text may hold values the system gave as bytes that are not UTF-8 (a ``PYTHON*``
    variable, an ``-o`` value, a directory name): Python decodes them with ``surrogateescape``
    (PEP 383), and a strict encode would raise :class:`UnicodeEncodeError`. ``surrogatepass``
    never raises and stays one-to-one (valid UTF-8 never holds an encoded surrogate), so such a
    value keys the same on every run. Never raises.
    """
    return text.encode("utf-8", "surrogatepass")


def digest(value: object) -> str:
    """Return the hex SHA-256 of :func:`canonical_json` of ``value`` (64 characters), encoded
    with :func:`encode`."""
    return hashlib.sha256(encode(canonical_json(value))).hexdigest()


def item_key(nodeid: str, inputs_id: str, env_id: str) -> str:
    """Return the key of test item ``nodeid`` given the digests of its inputs and environment.

    The key is the hex SHA-256 of ``schema NUL nodeid NUL inputs digest NUL environment
    digest`` (UTF-8, see :func:`encode`): canonical, since a nodeid holds no NUL and the
    digests are fixed-size hex.
    """
    text = f"{SCHEMA_VERSION}\0{nodeid}\0{inputs_id}\0{env_id}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # encode()


def utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 text (no lone surrogate: a file name that is not UTF-8 decodes
    to one). Records of such nodeids are never shared: SQLite and git blobs hold UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NAME_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """Return the normalized form of a distribution name (PEP 503: runs of ``-``, ``_`` and
    ``.`` become one ``-``, then lower case), as :func:`packaging.utils.canonicalize_name`
    gives it, without importing :mod:`packaging` in every session. Never raises."""
    return _NAME_SEPARATORS.sub("-", name).lower()
