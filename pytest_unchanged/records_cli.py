"""The ``records`` command group: show, stats, forget, export, import, push, fetch.

Every command opens the store of the project (``--store``, default
``d/unchanged/store.sqlite3`` under the ``cache_dir`` of the nearest directory holding a pytest
configuration file, else the git worktree's root: see :func:`find_store`) and works while a
pytest process writes it: each write is one SQLite transaction. Errors are raised as
:class:`~pytest_unchanged.exchange.SharingError` or
:class:`~pytest_unchanged.records.StoreError` and turned into exit status 2 by
:func:`pytest_unchanged.__main__.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2

from . import shared
from .columns import from_rows
from .exchange import SharingError, check_source, dump_lines, parse_lines, row_of
from .records import MAX_COUNT, utc_text
from .sharing import Transport, fetch_records, push_records
from .store import Store
from .store_location import find_store, make_cache_dir

__all__ = ["add_records_commands"]

RECORDS_HELP = """\
Inspect and share the records of passes (see "Sharing records" in the README).

  show [PATTERN]            a line per record (--json: a JSON list)
  stats                     counts per source and environment, store size, oldest and newest
  forget PATTERN...         drop the records of matching nodeids (exact or fnmatch glob)
  export FILE / import FILE JSON lines; import validates everything first, then one transaction
  push [REMOTE] --as SOURCE push this machine's own records to refs/pytest-unchanged/records/SOURCE
  fetch [REMOTE] --from SOURCE...
                            fetch those sources' records; pytest uses them only for the sources
                            named in unchanged_trusted_sources or --unchanged-trust

Any error exits with status 2 and a one-paragraph message; the store is then untouched.
"""


def add_records_commands(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``records`` subcommands to the command groups ``groups``."""
    records = groups.add_parser(
        "records", help="Inspect and share the records of passes", description=RECORDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    actions = records.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="A line per record")
    show.add_argument("patterns", nargs="*", metavar="PATTERN", help="Nodeids or globs")
    show.add_argument("--json", action="store_true", help="Print a JSON list")
    show.set_defaults(handler=show_command)
    stats = actions.add_parser("stats", help="Counts per source and environment")
    stats.set_defaults(handler=stats_command)
    forget = actions.add_parser("forget", help="Drop the records of matching nodeids")
    forget.add_argument("patterns", nargs="+", metavar="PATTERN", help="Nodeids or globs")
    forget.set_defaults(handler=forget_command)
    export = actions.add_parser("export", help="Write every record to FILE (JSON lines)")
    export.add_argument("file", type=Path, metavar="FILE")
    export.set_defaults(handler=export_command)
    load = actions.add_parser("import", help="Add the records of FILE (all or nothing)")
    load.add_argument("file", type=Path, metavar="FILE")
    load.add_argument(
        "--source", default="import",
        help="Source given to every record of the file (default: import)",
    )  # fmt: skip
    load.set_defaults(handler=import_command)
    push = actions.add_parser("push", help="Push this machine's records as SOURCE")
    push.add_argument("--as", dest="source", required=True, metavar="SOURCE")
    push.set_defaults(handler=push_command)
    fetch = actions.add_parser("fetch", help="Fetch the records of SOURCE...")
    fetch.add_argument("--from", dest="sources", nargs="+", required=True, metavar="SOURCE")
    fetch.set_defaults(handler=fetch_command)
    for action in (push, fetch):
        action.add_argument("remote", nargs="?", default="origin", metavar="REMOTE",
                            help="A remote's name, URL or path (default: origin)")  # fmt: skip
        action.add_argument("--token-env", metavar="NAME",
                            help="Environment variable holding an https token")  # fmt: skip
        action.add_argument("--username", default="x-access-token",
                            help="User name sent with the token")  # fmt: skip
        action.add_argument("--repository", type=Path, default=Path("."), metavar="DIR",
                            help="The git repository (default: here)")  # fmt: skip
    for action in (load, push, fetch):
        action.add_argument("--max-keys", type=int, default=8, metavar="N",
                            help="Records kept per test and source (default: 8)")  # fmt: skip
        action.add_argument("--max-age-days", type=float, default=60, metavar="DAYS",
                            help="Records older than this are pruned (default: 60)")  # fmt: skip
    for action in (show, stats, forget, export, load, push, fetch):
        action.add_argument("--store", type=Path, metavar="PATH",
                            help="The store (default: CACHE_DIR/d/unchanged/store.sqlite3 "
                            "of the project; CACHE_DIR: its ini's cache_dir)")  # fmt: skip


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    path = args.store or find_store(Path.cwd())
    try:
        if args.store is None:
            make_cache_dir(path.parents[2])  # CACHE_DIR/d/unchanged/store.sqlite3
    except OSError as error:
        raise SharingError(f"cannot make the cache directory ({error})") from None
    store = Store(path)
    try:
        yield store
    finally:
        store.close()


def show_command(args: argparse.Namespace) -> int:
    """``records show [PATTERN...] [--json]``: a line per record; 0."""
    with _store(args) as store:
        found = shared.all_records(store, args.patterns)
    if args.json:
        rows = [
            {"nodeid": r.nodeid, "key": r.key, "passed_at": r.passed_at, "head": r.head,
             "duration": r.duration, "source": r.source or "local", "env_id": r.env_id,
             "inputs_id": r.inputs_id}
            for r in found
        ]  # fmt: skip
        print(json.dumps(rows, indent=1))
        return 0
    for r in found:
        head = r.head[:10] if r.head else "-"
        print(
            f"{r.nodeid}  {utc_text(r.passed_at)}  HEAD {head}  {r.duration:.2f}s  "
            f"{r.source or 'local'}  env {r.env_id[:8]}"
        )
    return 0


def stats_command(args: argparse.Namespace) -> int:
    """``records stats``: counts per source and environment, size, oldest and newest; 0."""
    with _store(args) as store:
        found = shared.source_stats(store)
        environments = shared.count_environments(store)
        path = store.path
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    print(f"store: {path} ({size:,} bytes), {environments} environment(s)")
    for s in found:
        print(
            f"{s.source or 'local'}: {s.records:,} records of {s.nodeids:,} tests in "
            f"{s.environments} environment(s), oldest {utc_text(s.oldest)}, "
            f"newest {utc_text(s.newest)}"
        )
    if not found:
        print("no records")
    return 0


def forget_command(args: argparse.Namespace) -> int:
    """``records forget PATTERN...``: drop matching records; 0.

    Records fetched or imported from a source are dropped here only: the next fetch of that
    source brings back what its ref still holds (the message says so). A ref is changed by its
    own pushers only; a flaky test's records leave it by pruning, or by forgetting them on the
    machines that push it."""
    with _store(args) as store:
        dropped = shared.forget_matching(store, args.patterns)
    sources = sorted({r.source for r in dropped if r.source})
    print(f"forgot {len(dropped)} record(s)")
    if sources:
        fetched = sum(1 for r in dropped if r.source)
        print(
            f"{fetched} of them came from {', '.join(sources)}: the next fetch of "
            f"{'that source' if len(sources) == 1 else 'those sources'} brings back what "
            "its ref still holds (forget them on the machines that push it, or stop "
            "trusting the source)"
        )
    return 0


def export_command(args: argparse.Namespace) -> int:
    """``records export FILE``: write every record (written atomically); 0."""
    with _store(args) as store:
        found = shared.all_records(store)
        bodies = shared.bodies_of(store, found)
    rows = [row_of(r) for r in found]
    partial = Path(f"{args.file}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as file:
            file.writelines(dump_lines(rows, bodies, inputs=True))
        os.replace(partial, args.file)
    except OSError as error:  # a missing directory, a directory named as FILE, no permission
        with contextlib.suppress(OSError):
            partial.unlink()
        raise SharingError(f"cannot write {args.file} ({error})") from None
    print(f"exported {len(rows)} record(s) to {args.file}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    """``records import FILE [--source NAME]``: validate every line, then add every record
    under the source ``NAME`` in one transaction; 0. A bad file raises an error naming the line
    and changes nothing."""
    source = check_source(args.source)
    try:
        with open(args.file, encoding="utf-8", newline="\n") as file:
            rows, bodies = parse_lines(
                (line.removesuffix("\n") for line in file), name=str(args.file)
            )
    except (OSError, UnicodeDecodeError) as error:
        raise SharingError(f"cannot read {args.file} ({error})") from None
    # The importer names the source: a file can claim any source for its lines, and a record
    # is read only from the sources a reader trusts.
    labelled = [(source, *row[1:]) for row in rows]
    max_keys, max_age = _limits(args)
    with _store(args) as store:
        batches = from_rows(labelled)
        added = shared.add_shared(
            store, batches, bodies, max_keys=max_keys, max_age=max_age, now=time.time()
        )
    print(f"imported {len(labelled)} record(s) from {args.file}, {added} new")
    return 0


def push_command(args: argparse.Namespace) -> int:
    """``records push [REMOTE] --as SOURCE``: push this machine's records; 0.

    The store remembers what its last push left on the remote (the commit, a fingerprint of
    the local records, the oldest pass in the ref): when the ref is still that commit, no
    local record changed and no record of the ref is due for pruning, nothing is read, merged
    or pushed (one ``ls-remote``)."""
    source = check_source(args.source)
    max_keys, max_age = _limits(args)
    transport = _transport(args)
    mark = f"pushed {source} {transport.open().url}"
    with _store(args) as store:
        fingerprint = f"{shared.local_fingerprint(store)} {max_keys} {max_age}"
        last = _mark(shared.get_mark(store, mark))
        if last.get("fingerprint") == fingerprint:
            tip = transport.tips([source]).get(source)
            oldest = last.get("oldest")
            due = not isinstance(oldest, int | float) or oldest < time.time() - max_age
            if last.get("commit") == str(tip) and not due:
                print(f"up to date, nothing pushed: no new record since {str(tip)[:10]}")
                return 0
        local = shared.local_rows(store)
        # Environment bodies only: a ref does not carry input manifests.
        bodies = shared.bodies_by_id(store, {row[4] for row in local})
    result = push_records(transport, source, local, bodies, max_keys=max_keys, max_age=max_age)
    value = {"commit": result.commit, "fingerprint": fingerprint, "oldest": result.oldest}
    with _store(args) as store:
        shared.set_mark(store, mark, json.dumps(value))
    verb = "pushed" if result.pushed else "up to date, nothing pushed:"
    print(
        f"{verb} {result.records} record(s) in {result.size:,} bytes to {args.remote} "
        f"(refs/pytest-unchanged/records/{source} at {result.commit[:10]}, "
        f"attempt {result.attempts})"
    )
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    """``records fetch [REMOTE] --from SOURCE...``: fetch and merge into the store; 0.

    The store remembers, per source and remote, the commit and the shard OIDs it merged last:
    a ref still at that commit is not fetched, and of a newer one only the shards whose OIDs
    changed are read and merged (``forget`` drops these marks: the next fetch reads all)."""
    transport = _transport(args)
    url = transport.open().url
    known: dict[str, tuple[str, dict[str, str]]] = {}
    with _store(args) as store:
        for source in args.sources:
            last = _mark(shared.get_mark(store, f"fetched {source} {url}"))
            shards = last.get("shards")
            known[source] = (
                str(last.get("commit", "")),
                shards if isinstance(shards, dict) else {},
            )
    found = fetch_records(transport, args.sources, known)
    merged = [records for _, records in found.values() if records is not None]
    batches = [records.columns for records in merged]
    bodies = {body_id: text for records in merged for body_id, text in records.bodies.items()}
    max_keys, max_age = _limits(args)
    with _store(args) as store:
        added = shared.add_shared(
            store, batches, bodies, max_keys=max_keys, max_age=max_age, now=time.time()
        )
        for source, (tip, records) in found.items():
            if records is not None:
                value = {"commit": tip, "shards": records.shards}
                shared.set_mark(store, f"fetched {source} {url}", json.dumps(value))
    for source, (tip, records) in found.items():
        if tip is None:
            count = "no such ref"
        elif records is None:
            count = f"unchanged since the last fetch ({tip[:10]})"
        else:
            read = sum(records.shards.get(s) != known[source][1].get(s) for s in records.shards)
            count = f"{len(records.columns)} record(s) read"
            if records.version == 2:
                count += f" from {read} of {len(records.shards)} shard(s)"
        print(f"{source}: {count}")
    print(f"fetched from {args.remote}: {added} new record(s)")
    return 0


def _mark(value: str | None) -> dict[str, object]:
    """A push or fetch mark as stored (JSON); ``{}`` when absent or of an older version."""
    try:
        found = json.loads(value) if value else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _limits(args: argparse.Namespace) -> tuple[int, float]:
    """``(max_keys, max_age in seconds)`` from the command line."""
    if not 1 <= args.max_keys <= MAX_COUNT or not 0 < args.max_age_days <= MAX_COUNT:
        raise SharingError(
            f"--max-keys must be from 1 to {MAX_COUNT} and --max-age-days above 0 and at most "
            f"{MAX_COUNT}"
        )
    return int(args.max_keys), float(args.max_age_days) * 86400


def _transport(args: argparse.Namespace) -> Transport:
    found = pygit2.discover_repository(str(args.repository))
    if found is None:
        raise SharingError(f"{args.repository.resolve()} is not inside a git repository")
    return Transport(pygit2.Repository(found), args.remote, args.token_env, args.username)
