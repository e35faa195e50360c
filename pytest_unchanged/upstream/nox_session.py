"""A reusable nox session that tests a project against the tip of a watched upstream.

Needs nox (not a dependency of pytest-unchanged: install it where you run nox). A noxfile
needs only::

    import nox
    from pytest_unchanged.nox_session import upstream_tip

    @nox.session(name="upstream-tip", default=False)
    def upstream_tip_session(session: nox.Session) -> None:
        upstream_tip(session, "django")

A table following several refs may be tested one session per ref::

    @nox.session(name="upstream-tip", default=False)
    @nox.parametrize("ref", upstream_refs("django"))
    def upstream_tip_session(session: nox.Session, ref: str) -> None:
        upstream_tip(session, "django", ref=ref)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .build import install_environment, scm_version, write_build_tree
from .cli import only_ref
from .config import UpstreamError, load_upstream_config
from .fetch import Comparison, compare, fetch_refs
from .report import describe_commit, format_report, summary_line
from .state import read_state, write_state

if TYPE_CHECKING:
    import nox

__all__ = ["upstream_refs", "upstream_tip"]

# Run in the session's Python: print the URL pip recorded for the distribution ("" if none).
_DIRECT_URL = (
    "import importlib.metadata as m, json, sys\n"
    "try:\n"
    "    text = m.distribution(sys.argv[1]).read_text('direct_url.json') or '{}'\n"
    "except m.PackageNotFoundError:\n"
    '    text = \'{"url": "(not installed)"}\'\n'
    "print(json.loads(text).get('url', ''))\n"
)


def upstream_refs(name: str, pyproject: str | os.PathLike[str] = "pyproject.toml") -> list[str]:
    """Return the refs the table ``name`` of ``pyproject`` follows, for ``nox.parametrize``.

    Raises :class:`UpstreamError` when the table cannot be read.
    """
    return list(load_upstream_config(Path(pyproject), name).refs)


def upstream_tip(
    session: nox.Session,
    name: str,
    *,
    ref: str | None = None,
    pyproject: str | os.PathLike[str] = "pyproject.toml",
    cache_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Test the project against the upstream commit each ref resolves to, if a watched path moved.

    ``name`` is the table ``[tool.pytest-unchanged.upstream.NAME]`` of ``pyproject`` (relative
    to the noxfile's directory); ``ref`` limits the session to one of its refs (default: each
    ref in turn); ``cache_dir`` overrides where fetched upstreams are kept.

    Nothing moved since the verified commit, or the paths are where the tests last failed: the
    session is skipped (nox exits 0). Otherwise the project is installed with the table's
    ``install`` arguments, then exactly the resolved upstream commit (a build tree of that
    commit outside the project, force-reinstalled), and pytest runs with ``pytest_args`` plus
    ``session.posargs``. Passing records the commit as verified; failing records it as failing
    (the verified commit is kept), prints which upstream commits touched the watched paths and
    their patch, and fails the session. Configuration and fetch errors fail the session with
    the error's message.
    """
    from nox.command import CommandFailed

    try:
        config = only_ref(load_upstream_config(Path(pyproject), name), ref)
        states = {r: read_state(config.state_file, config.name, r) for r in config.refs}
        comparisons = [compare(up, states[up.ref]) for up in fetch_refs(config, cache_dir)]
    except UpstreamError as exc:
        session.error(str(exc))
    moved = [comparison for comparison in comparisons if comparison.changed]
    if not moved:
        session.skip("; ".join(summary_line(comparison) for comparison in comparisons))
    failed: list[Comparison] = []
    for comparison in moved:
        session.log(summary_line(comparison))
        if not _install(session, comparison, first=comparison is moved[0]):
            session.log("Installed only (--install-only): the upstream commit was not tested.")
            return
        session.log(f"Testing against {config.name} {describe_commit(comparison.commit)}")
        try:
            session.run("pytest", *config.pytest_args, *session.posargs)
        except CommandFailed:
            print(format_report(comparison, with_diff=True), end="", flush=True)
            kept = comparison.verified.commit[:10] if comparison.verified else "nothing"
            session.warn(
                f"The tests failed against {config.name} commit {comparison.commit.id}; "
                f"{config.state_file.name} still holds the verified commit: {kept}"
            )
            _write(session, config.state_file, comparison, failing=True)
            failed.append(comparison)
            continue
        _write(session, config.state_file, comparison, failing=False)
        session.log(f"Recorded {config.name} commit {comparison.commit.id} in {config.state_file}")
    if failed:
        where = ", ".join(f"{c.upstream.ref} at {c.commit.short_id}" for c in failed)
        raise CommandFailed(f"the tests failed against {config.name} {where} (recorded as failing)")


def _write(session: nox.Session, state_file: Path, comparison: Comparison, failing: bool) -> None:
    state = comparison.as_failing() if failing else comparison.as_verified()
    try:
        write_state(state_file, comparison.upstream.config.name, state.url, state)
    except UpstreamError as exc:
        session.error(str(exc))


def _install(session: nox.Session, comparison: Comparison, first: bool) -> bool:
    """Install the project (``first`` time only), then the upstream commit; return False under
    --install-only.

    Fails the session when the installed distribution is not built from the commit's build
    tree (installs skipped by ``--no-install``/``-R`` in a reused or emptied environment), so a
    stale build is never recorded.
    """
    upstream, commit = comparison.upstream, comparison.commit
    config = upstream.config
    if first:
        session.install("--upgrade", "pip")  # `install` may use recent pip options (--group).
        if config.install:
            session.install(*config.install)
    # Outside the project: nox's create_tmp() is inside its worktree, where a build asking git
    # for a version would find the project's own repository.
    directory = Path(tempfile.mkdtemp(prefix="pytest-unchanged-build-"))
    try:
        tree = write_build_tree(upstream.repo, commit, config.package, directory)
        version = scm_version(upstream.repo, commit)
        environment = install_environment(config.package, version, directory)
        session.install("--force-reinstall", "--no-deps", str(tree), env=environment)
        installed = session.run(
            "python", "-c", _DIRECT_URL, config.package, silent=True, log=False
        )  # fmt: skip
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # As large as the upstream's tree.
    if installed is None:
        return False
    source = str(installed).strip()
    if not source.endswith(tree.name):
        session.error(
            f"the installed {config.package} is not built from {tree.name} (it comes from "
            f"{source or 'an index'}): were installs skipped by --no-install or -R? "
            "Run the session without it."
        )
    return True
