"""The tree of a records ref: environments once, records in shards by nodeid.

A ref ``refs/pytest-unchanged/records/SOURCE`` (format version 2) points at a commit whose
tree holds:

* ``environments.jsonl``: an exchange file (:mod:`pytest_unchanged.exchange`) of bodies only,
  the facets of every environment the records were made in, each stored once;
* ``shards/XX.jsonl``: an exchange file of the records of the nodeids whose shard is ``XX``:
  the low 8 bits of the CRC-32 of the UTF-8 file part of the nodeid (before the first
  ``::``), as two lowercase hex digits (256 shards). The tests of one file share a shard, so a
  change that touches the tests of a few files rewrites a few shards; every key of a nodeid
  lands in the same shard, so pruning per nodeid stays within one.
  Empty shards are left out. The records do not ship their ``inputs_id`` (see the exchange
  module on what is checked without it).

A shard whose records did not change keeps its blob, so its OID: a fetch reads only the shards
whose OIDs differ from the ones the store merged last (the caller passes them), and git sends
only the new blobs. A version-1 ref (one blob ``records.jsonl``) is read whole and converted;
a push rewrites it as version 2 in one commit (the ref moves atomically, nothing half-written).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pygit2

from .columns import Columns, from_rows, parse_shard, parse_values
from .exchange import (
    FORMAT_NAME,
    FORMAT_VERSION,
    RecordSet,
    Row,
    SharingError,
    dump_lines,
    parse_lines,
)

__all__ = ["ENVIRONMENTS", "SHARDS", "V1_BLOB", "RefRecords", "read_ref", "shard_of", "write_tree"]

REF_PREFIX = "refs/pytest-unchanged/records/"
ENVIRONMENTS = "environments.jsonl"
SHARDS = "shards"
V1_BLOB = "records.jsonl"
HEADER = f'{{"format":"{FORMAT_NAME}","version":{FORMAT_VERSION}}}'  # as the writer spells it


def shard_of(nodeid: str) -> str:
    """The shard of ``nodeid``: two hex digits, the low 8 bits of the CRC-32 of the UTF-8 of
    its file part (up to the first ``::``)."""
    return f"{zlib.crc32(nodeid.split('::', 1)[0].encode('utf-8', 'surrogatepass')) & 0xFF:02x}"


@dataclass
class RefRecords:
    """What :func:`read_ref` read: the records of the shards read (:class:`Columns` of the
    ref's source), the environment bodies, the OID of every shard of the ref (``{}`` for a
    version-1 ref), and the format version."""

    columns: Columns
    bodies: dict[str, str] = field(default_factory=dict)
    shards: dict[str, str] = field(default_factory=dict)
    version: int = 2

    @property
    def rows(self) -> list[Row]:
        """The records as rows (one tuple each: for a push's merge, not for a large fetch)."""
        return list(self.columns.rows())


def _text(repository: pygit2.Repository, oid: pygit2.Oid, name: str) -> str:
    try:
        found = repository[oid]
    except (KeyError, ValueError):  # a gitlink (mode 160000) names a commit not in this repository
        raise SharingError(f"{name} is not an object of this ref (a submodule link?)") from None
    if not isinstance(found, pygit2.Blob):
        raise SharingError(f"{name} is a {found.type_str}, not a blob of records")
    # Decoded from the blob's buffer: Blob.data would inflate the object a second time.
    return str(memoryview(found), "utf-8", "replace")


def _columns(rows: list[Row], source: str) -> Columns:
    found = from_rows(rows)
    return found[0] if found else Columns(source)


def read_ref(
    repository: pygit2.Repository,
    commit: pygit2.Oid,
    source: str,
    known: Mapping[str, str] | None = None,
) -> RefRecords:
    """Read and validate the records of ``source`` in the tree of ``commit``, leaving out the
    shards whose OID is the one ``known`` gives for them. Raises
    :class:`~pytest_unchanged.exchange.SharingError` when the tree is not a records tree and
    :class:`~pytest_unchanged.exchange.ExchangeFormatError` naming the blob and line of the
    first bad record.

    A shard in the writer's shape is read by :func:`~.columns.parse_shard` (whole-column
    checks); any other, and any shard it declines, by the reference reader
    (:func:`~.exchange.parse_lines`), which refuses what is not valid."""
    known = known or {}
    name = f"{REF_PREFIX}{source}"
    try:  # a ref anyone can push: a blob, a tree or a tag of one is refused, not a traceback
        tree = repository[commit].peel(pygit2.Commit).tree
    except (pygit2.GitError, KeyError, ValueError) as error:
        raise SharingError(f"{name} ({commit}) is not a commit of records: {error}") from None
    found = RefRecords(Columns(source))
    if ENVIRONMENTS not in tree:
        if V1_BLOB not in tree:
            raise SharingError(
                f"{name} ({commit}) holds neither {ENVIRONMENTS} nor {V1_BLOB}: not a records "
                "ref, or one written by a newer pytest-unchanged (upgrade to read it)"
            )
        found.version = 1
        text = _text(repository, tree[V1_BLOB].id, f"{name}:{V1_BLOB}")
        rows, found.bodies = parse_lines(
            parse_values(text, parse=False)[0], name=f"{name}:{V1_BLOB}", source=source
        )
        found.columns = _columns(rows, source)
        return found
    rows, found.bodies = parse_lines(
        parse_values(_text(repository, tree[ENVIRONMENTS].id, f"{name}:{ENVIRONMENTS}"))[0],
        name=f"{name}:{ENVIRONMENTS}",
    )
    if rows:
        raise SharingError(f"{name}:{ENVIRONMENTS} holds records; it should hold bodies only")
    if SHARDS not in tree:
        return found
    shards = tree[SHARDS]
    if not isinstance(shards, pygit2.Tree):
        raise SharingError(f"{name}:{SHARDS} is not a tree")
    parts: list[Columns] = []
    for entry in shards:
        oid, shard = str(entry.id), str(entry.name)
        found.shards[shard] = oid
        if known.get(shard) == oid:
            continue
        path = f"{name}:{SHARDS}/{shard}"
        lines, values = parse_values(_text(repository, entry.id, path))
        columns = None
        if values is not None and lines[0] == HEADER:  # values: at least the header's line
            columns = parse_shard(values, source)
        if columns is None:
            rows, _ = parse_lines(lines, name=path, source=source)
            columns = _columns(rows, source)
        stem = shard.removesuffix(".jsonl")
        if any(shard_of(file) != stem for file in {n.split("::", 1)[0] for n in columns.nodeids}):
            raise SharingError(f"{path} holds a nodeid of another shard")
        parts.append(columns)
    found.columns = Columns.concat(source, parts)
    return found


def write_tree(
    repository: pygit2.Repository, records: RecordSet, environments: Iterable[str]
) -> tuple[pygit2.Oid, int]:
    """Write the blobs and tree of ``records`` (bodies: only those of ``environments`` are
    kept); return the tree's OID and the size in bytes of its blobs."""
    shards: dict[str, list[Row]] = {}
    of: dict[str, str] = {}
    for row in records.rows.values():
        shard = of.get(row[1])
        if shard is None:
            shard = of[row[1]] = shard_of(row[1])
        shards.setdefault(shard, []).append(row)
    wanted = set(environments)
    bodies = {i: text for i, text in records.bodies.items() if i in wanted}
    size = 0

    def blob(lines: Iterable[str]) -> pygit2.Oid:
        nonlocal size
        data = "".join(lines).encode()
        size += len(data)
        return repository.create_blob(data)

    builder = repository.TreeBuilder()
    builder.insert(
        ENVIRONMENTS, blob(dump_lines([], bodies, inputs=False)), pygit2.GIT_FILEMODE_BLOB
    )
    if shards:
        inner = repository.TreeBuilder()
        for shard in sorted(shards):
            oid = blob(dump_lines(shards[shard], {}, inputs=False))
            inner.insert(f"{shard}.jsonl", oid, pygit2.GIT_FILEMODE_BLOB)
        builder.insert(SHARDS, inner.write(), pygit2.GIT_FILEMODE_TREE)
    return builder.write(), size
