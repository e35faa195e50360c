"""Records through git: one ref per source, pushed and fetched with pygit2.

The records of source ``S`` live under ``refs/pytest-unchanged/records/S`` as a commit whose
tree holds the environments once and the records in 256 shards by nodeid, in the exchange
format (:mod:`.ref_tree`, :mod:`.exchange`); every record in it has source ``S``. The commit
has **no parent**: the ref is one commit, its size bounded by
the pruning (per nodeid the newest ``max_keys`` records, none older than ``max_age``), and the
old commits become unreachable for the server's ``gc`` to drop. History does not grow.

Push (:func:`push_records`) takes the local records of this machine only (never records
fetched from any source), labels them ``S``, and then: reads the remote's ref (``ls-remote``),
fetches it when it is not here yet, union-merges, prunes, and writes the commit. When the merged
tree is the remote's tree, nothing is pushed. Otherwise it pushes with a lease: the push is
aborted in libgit2's ``push_negotiation`` when the remote's ref is no longer the commit that
was merged, and the server's ``receive-pack`` refuses the update when the ref moved after that
(git sends the old value with each update). A lost race is retried: read, merge, push again,
after a bounded, jittered backoff. A remote that is a local path has no ``receive-pack``
(libgit2 writes its refs directly), so there the read-merge-push runs under a lock file in the
remote's git directory.

Credentials: an SSH agent (``KeypairFromAgent``) for ssh URLs; for https a token from the
environment variable named by ``token_env`` (``UserPass``). A refused credential or a refused
push raises :class:`~pytest_unchanged.exchange.SharingError` and changes nothing locally.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import CredentialType

from .exchange import RecordSet, Row, SharingError, check_source
from .ref_tree import RefRecords, read_ref, write_tree

__all__ = ["FETCHED_PREFIX", "REF_PREFIX", "Transport", "fetch_records", "push_records"]

REF_PREFIX = "refs/pytest-unchanged/records/"
FETCHED_PREFIX = "refs/pytest-unchanged/fetched/"
OUTGOING_PREFIX = "refs/pytest-unchanged/outgoing/"
_SIGNATURE = ("pytest-unchanged", "pytest-unchanged@localhost")
_ATTEMPTS = 12
_LOCK_STALE = 120.0  # seconds after which a local remote's lock file is taken as abandoned


class _LeaseLost(Exception):
    """The remote ref moved since it was read: merge again."""


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials for one operation, the push lease, and the server's verdict per ref."""

    def __init__(self, transport: Transport, lease: pygit2.Oid | None = None) -> None:
        super().__init__()
        self.transport = transport
        self.lease = lease
        self.asked = 0
        self.rejected: str | None = None

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.Username | pygit2.UserPass | pygit2.Keypair:
        self.asked += 1
        if self.asked > 1:
            hint = (
                f"check the token in ${self.transport.token_env}"
                if self.transport.token_env
                else "check the SSH agent's keys"
            )
            raise SharingError(
                f"{url} refused the credentials ({hint}, and that it may read and write "
                "this repository's refs); nothing was changed"
            )
        if allowed_types & CredentialType.SSH_KEY:
            return pygit2.KeypairFromAgent(username_from_url or "git")
        if allowed_types & CredentialType.USERPASS_PLAINTEXT:
            name = self.transport.token_env
            token = os.environ.get(name) if name else None
            if not token:
                raise SharingError(
                    f"{url} asks for credentials: pass --token-env NAME, the environment "
                    "variable holding a token (for GitHub Actions: --token-env GITHUB_TOKEN)"
                    + (f"; ${name} is unset or empty" if name else "")
                )
            return pygit2.UserPass(username_from_url or self.transport.username, token)
        raise SharingError(f"{url} asks for credentials of a kind pytest-unchanged cannot give")

    def push_negotiation(self, updates: list[pygit2.remotes.PushUpdate]) -> None:
        for update in updates:
            now = None if update.src.raw == bytes(20) else update.src
            if now != self.lease:
                raise _LeaseLost

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected = message


@dataclass
class Transport:
    """A git remote of the repository ``repository``: a remote's name or a URL or path.

    ``token_env`` names the environment variable holding an https token, ``username`` the
    user name sent with it (GitHub accepts ``x-access-token``).
    """

    repository: pygit2.Repository
    remote: str = "origin"
    token_env: str | None = None
    username: str = "x-access-token"

    def open(self) -> pygit2.Remote:
        """Return the pygit2 remote; raise :class:`SharingError` when it is not known."""
        if self.remote in self.repository.remotes.names():
            return self.repository.remotes[self.remote]
        if "://" in self.remote or ":" in self.remote or os.path.isdir(self.remote):
            return self.repository.remotes.create_anonymous(self.remote)
        raise SharingError(
            f"{self.remote!r} is neither a remote of {self.repository.path} nor a URL or path"
        )

    def local_path(self) -> Path | None:
        """The remote's directory when it is a local path (or ``file://`` URL), else ``None``."""
        url = self.open().url or ""
        if url.startswith("file://"):
            return Path(url[len("file://") :])
        if "://" in url or (":" in url and not os.path.isabs(url)):
            return None
        return Path(url) if os.path.isabs(url) else Path(self.repository.workdir or ".") / url

    def tips(self, sources: Iterable[str]) -> dict[str, pygit2.Oid]:
        """Return the commit each source's ref points at on the remote (absent ones left out)."""
        wanted = {REF_PREFIX + s: s for s in sources}
        with self._errors("read"):
            heads = self.open().list_heads(callbacks=_Callbacks(self))
        return {wanted[h.name]: h.oid for h in heads if h.name in wanted}

    def fetch(self, tips: dict[str, pygit2.Oid]) -> dict[str, pygit2.Oid]:
        """Fetch the commits in ``tips`` (source to commit) not in the repository yet; return
        the commit of each source now here (a newer one when the ref moved since ``tips``)."""
        missing = sorted(s for s, oid in tips.items() if oid not in self.repository)
        specs = [f"+{REF_PREFIX}{source}:{FETCHED_PREFIX}{source}" for source in missing]
        if specs:
            with self._errors("fetch from"):
                self.open().fetch(specs, callbacks=_Callbacks(self))
        found = dict(tips)
        for source in missing:
            ref = self.repository.references.get(FETCHED_PREFIX + source)
            if ref is None or ref.target not in self.repository:
                raise SharingError(f"{self.remote} did not send {REF_PREFIX}{source}")
            found[source] = pygit2.Oid(hex=str(ref.target))
        return found

    def fetch_moving(self, sources: list[str], attempts: int = 5) -> dict[str, pygit2.Oid]:
        """:meth:`tips` then :meth:`fetch`, again when a ref moved in between (over smart
        HTTP the server then refuses to send the commit it no longer advertises)."""
        for attempt in range(1, attempts + 1):
            tips = self.tips(sources)
            try:
                return self.fetch(tips)
            except SharingError:
                if attempt == attempts or self.tips(sources) == tips:
                    raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
        raise AssertionError("unreachable")

    def push(self, source: str, commit: pygit2.Oid, lease: pygit2.Oid | None) -> None:
        """Push ``commit`` to the source's ref if the remote's ref is still ``lease``;
        raise :class:`_LeaseLost` when it is not."""
        outgoing = OUTGOING_PREFIX + source
        self.repository.references.create(outgoing, commit, force=True)
        callbacks = _Callbacks(self, lease)
        with self._errors("push to"):
            self.open().push([f"+{outgoing}:{REF_PREFIX}{source}"], callbacks=callbacks)
        if callbacks.rejected:
            # receive-pack refuses an update whose old value is stale ("failed to update ref",
            # "cannot lock ref"): when the ref moved meanwhile, that was a lost race.
            if self.tips([source]).get(source) != lease:
                raise _LeaseLost
            raise SharingError(
                f"{self.remote} refused the update of {REF_PREFIX}{source} "
                f"({callbacks.rejected}); nothing was changed"
            )

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except pygit2.GitError as error:
            raise SharingError(
                f"cannot {doing} {self.remote}: {error}. Check the remote's URL and that the "
                "credentials may read (fetch) and write (push) its refs: an https remote needs "
                "--token-env NAME, an ssh remote a key in the SSH agent; a fork's pull request "
                "gets a read-only token on GitHub, so its push step must tolerate this. Nothing "
                "was changed locally."
            ) from None


@dataclass(frozen=True)
class PushResult:
    """What a push did: ``pushed`` (False: the remote had every record already), how many
    records the ref holds, the commit, the size in bytes of its blobs, how many attempts it
    took, and the oldest pass in the ref (Unix seconds; ``inf`` when it holds none)."""

    pushed: bool
    records: int
    commit: str
    size: int
    attempts: int
    oldest: float = float("inf")


def push_records(
    transport: Transport,
    source: str,
    local: Iterable[Row],
    bodies: dict[str, str],
    *,
    max_keys: int,
    max_age: float,
    attempts: int = _ATTEMPTS,
) -> PushResult:
    """Push the local records ``local`` (rows of source ``""``) under ``source``; see the
    module.

    Raises :class:`SharingError` when a record is not local, when the remote cannot be read or
    refuses the push, and after ``attempts`` lost races.
    """
    check_source(source)
    mine = RecordSet()
    local = list(local)
    for row in local:
        if row[0]:
            raise SharingError(f"{row[1]}: a record of {row[0]!r} is not pushed")
    mine.add(((source, *row[1:]) for row in local), {})
    # The ref carries environment bodies only (records stats, --unchanged-explain on a changed
    # environment): input manifests would double its size.
    envs = {r[4] for r in mine.rows.values()}
    mine.bodies.update((i, text) for i, text in bodies.items() if i in envs)
    lock = transport.local_path()
    for attempt in range(1, attempts + 1):
        try:
            with _locked(lock, source):
                return _push_once(transport, source, mine, max_keys, max_age, attempt)
        except _LeaseLost:
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
    raise SharingError(
        f"gave up pushing {REF_PREFIX}{source} to {transport.remote} after {attempts} "
        "attempts: other pushers kept winning the race; run the push again"
    )


def _push_once(
    transport: Transport,
    source: str,
    mine: RecordSet,
    max_keys: int,
    max_age: float,
    attempt: int,
) -> PushResult:
    repository = transport.repository
    tip = transport.tips([source]).get(source)
    merged = RecordSet()
    if tip is not None:
        try:
            if transport.fetch({source: tip})[source] != tip:
                raise _LeaseLost  # the ref moved between ls-remote and fetch
        except SharingError:
            if transport.tips([source]).get(source) != tip:
                raise _LeaseLost from None
            raise
        remote = read_ref(repository, tip, source)
        merged.add(remote.rows, remote.bodies)
    merged.add(mine.rows.values(), mine.bodies)
    merged.prune(max_keys=max_keys, max_age=max_age, now=time.time())
    envs = {r[4] for r in merged.rows.values()}
    tree, size = write_tree(repository, merged, envs)
    count = len(merged.rows)
    oldest = min((r[6] for r in merged.rows.values()), default=float("inf"))
    if tip is not None and repository[tip].peel(pygit2.Commit).tree_id == tree:
        return PushResult(False, count, str(tip), size, attempt, oldest)
    signature = pygit2.Signature(*_SIGNATURE)
    message = f"pytest-unchanged records of {source}: {count} records\n"
    commit = repository.create_commit(None, signature, signature, message, tree, [])
    transport.push(source, commit, tip)
    repository.references.create(FETCHED_PREFIX + source, commit, force=True)
    return PushResult(True, count, str(commit), size, attempt, oldest)


@contextlib.contextmanager
def _locked(remote: Path | None, source: str) -> Iterator[None]:
    """Hold a lock file in a local remote's git directory (nothing for a network remote)."""
    if remote is None:
        yield
        return
    lock = remote / f"pytest-unchanged-{source}.lock"
    deadline = time.monotonic() + 4 * _LOCK_STALE
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - lock.stat().st_mtime > _LOCK_STALE:
                    os.remove(lock)  # left behind by a killed pusher
            if time.monotonic() > deadline:
                raise SharingError(f"{lock} stayed locked; remove it if no push runs") from None
            time.sleep(random.uniform(0.01, 0.05))
        except OSError as error:
            raise SharingError(f"cannot lock {lock} ({error})") from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def fetch_records(
    transport: Transport,
    sources: Iterable[str],
    known: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
) -> dict[str, tuple[str | None, RefRecords | None]]:
    """Fetch and validate the records of each source: ``{source: (commit, records)}``.

    ``known[source]`` is ``(commit, shards)``, what the store merged last: ``records`` is
    ``None`` when the ref is still that commit (neither fetched nor read again), and otherwise
    holds the rows of the shards whose OIDs are not the ones in ``shards`` (and the OIDs of all
    of them). ``commit`` and ``records`` are ``None`` when the remote has no such ref. Raises
    :class:`SharingError` when the remote cannot be read or a ref's blob is not valid.
    """
    names = [check_source(s) for s in dict.fromkeys(sources)]
    known = known or {}
    tips = transport.tips(names)
    wanted = [s for s in names if s in tips and str(tips[s]) != known.get(s, ("", {}))[0]]
    if wanted:
        tips.update(transport.fetch_moving(wanted))
    found: dict[str, tuple[str | None, RefRecords | None]] = {}
    for source in names:
        tip = tips.get(source)
        records = None
        if source in wanted:
            shards = known.get(source, ("", {}))[1]
            records = read_ref(transport.repository, tips[source], source, shards)
        found[source] = (None if tip is None else str(tip), records)
        if tip is not None and records is not None:
            transport.repository.references.create(FETCHED_PREFIX + source, tip, force=True)
    return found
