"""What collecting a test module reads beyond its items' inputs: its static import closure.

Collecting a module imports it, and with it every module it imports; the items pytest then
finds, and the files their functions, classes and fixtures come from, depend on those modules
(a base class or a fixture re-exported through another module, a test function or ``Test*``
class brought in by ``from helpers import *``, a fixture a star import overrides). The slow
path sees all of that by importing; a module summary records only the result (its items and
their defining files). So a summary stands only while the static import closure of the module
and of the ``conftest.py`` files loaded for it has the same files with the same content:
:func:`collection_closure` is that identity, part of the module's scope
(:meth:`pytest_unchanged.session.Context.scope`), computed alike when a summary is written and
when the fast path checks it. Found by the adversarial review of issue 10 (re-exports and star
imports changed which files define a test while no stored file changed).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from pathlib import Path

from .inputs import Resolver
from .keys import digest

__all__ = ["collection_closure"]


def collection_closure(resolver: Resolver, module: Path, conftests: Iterable[Path]) -> str:
    """Return the digest of the static import closure of the test ``module`` and of the
    ``conftests`` loaded for it (absolute paths): every repository file in it, with its mode
    and OID as :meth:`pytest_unchanged.worktree.Worktree.entry` gives them.

    When the closure is in doubt (a computed import, ``sys.path`` changed; see
    :meth:`pytest_unchanged.imports.ImportGraph.doubt`) it is the whole worktree, so any
    change makes the module collected. A name found nowhere (``try: import ujson``) is no
    doubt here: the closure is derived again at every check, so the module it would resolve to
    joins the closure, and changes the digest, as soon as it exists. A module outside the
    repository gives ``""`` (its items cannot be keyed anyway). Raises nothing: an error
    hashing a file gives a digest no summary can have (it holds a random nonce), so the module
    is collected.
    """
    try:
        own = resolver.worktree.relpath(module)
    except ValueError:
        return ""
    start = [own]
    for conftest in conftests:
        with contextlib.suppress(ValueError):
            start.append(resolver.worktree.relpath(conftest))
    doubts = resolver.import_doubts
    noted = doubts.get(own)
    try:
        found = resolver.import_closure(start, own, nowhere=False)
        manifest = [
            (rel, entry.mode, entry.oid)
            for rel in sorted({*start, *found})
            for entry in (resolver.worktree.entry(rel),)
        ]
    except Exception as error:  # never break collection: collect the module instead
        return digest(["error", repr(error), secrets.token_hex(16)])
    finally:
        # The doubt of a collection closure is not the item's own (explain reports that one).
        if noted is None:
            doubts.pop(own, None)
        else:
            doubts[own] = noted
    return digest(manifest)
