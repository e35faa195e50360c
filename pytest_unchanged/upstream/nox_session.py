"""A reusable nox session that tests a project against the tip of a watched upstream.

Needs nox (not a dependency of pytest-unchanged: install it where you run nox). A noxfile
needs only::

    import nox
    from pytest_unchanged.nox_session import upstream_tip

    @nox.session(name="upstream-tip", default=False)
    def upstream_tip_session(session: nox.Session) -> None:
        upstream_tip(session, "django")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .config import UpstreamError, load_upstream_config
from .fetch import (
    Comparison,
    compare,
    fetch_upstream,
    install_environment,
    scm_version,
    write_commit_archive,
)
from .report import describe_commit, format_report, summary_line
from .state import read_verified, write_verified

if TYPE_CHECKING:
    import nox

__all__ = ["upstream_tip"]

# Run in the session's Python: print the archive URL pip recorded for the distribution.
_DIRECT_URL = (
    "import importlib.metadata as m, json, sys\n"
    "text = m.distribution(sys.argv[1]).read_text('direct_url.json') or '{}'\n"
    "print(json.loads(text).get('url', ''))\n"
)


def upstream_tip(
    session: nox.Session,
    name: str,
    *,
    pyproject: str | os.PathLike[str] = "pyproject.toml",
    cache_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Test the project against the upstream commit its ref resolves to, if a watched path moved.

    ``name`` is the table ``[tool.pytest-unchanged.upstream.NAME]`` of ``pyproject`` (relative
    to the noxfile's directory); ``cache_dir`` overrides where fetched upstreams are kept.

    Nothing moved since the verified commit: the session is skipped (nox exits 0). Otherwise
    the project is installed with the table's ``install`` arguments, then exactly the resolved
    upstream commit (an archive of its tree, force-reinstalled), and pytest runs with
    ``pytest_args`` plus ``session.posargs``. Passing records the commit as verified; failing
    keeps the old state, prints which upstream commits touched the watched paths and fails the
    session. Configuration and fetch errors fail the session with the error's message.
    """
    from nox.command import CommandFailed

    try:
        config = load_upstream_config(Path(pyproject), name)
        verified = read_verified(config.state_file, config.name)
        comparison = compare(fetch_upstream(config, cache_dir), verified)
    except UpstreamError as exc:
        session.error(str(exc))
    if not comparison.changed:
        session.skip(summary_line(comparison))
    session.log(summary_line(comparison))
    if not _install(session, comparison):
        session.log("Installed only (--install-only): the upstream commit was not tested.")
        return
    session.log(f"Testing against {config.name} {describe_commit(comparison.commit)}")
    try:
        session.run("pytest", *config.pytest_args, *session.posargs)
    except CommandFailed:
        print(format_report(comparison), end="", flush=True)
        kept = comparison.verified.commit[:10] if comparison.verified else "nothing"
        session.warn(
            f"The tests failed against {config.name} commit {comparison.commit.id}; "
            f"{config.state_file.name} still holds the verified commit: {kept}"
        )
        raise
    try:
        write_verified(config.state_file, config.name, comparison.as_verified())
    except UpstreamError as exc:
        session.error(str(exc))
    session.log(f"Recorded {config.name} commit {comparison.commit.id} in {config.state_file}")


def _install(session: nox.Session, comparison: Comparison) -> bool:
    """Install the project, then the upstream commit; return False under --install-only.

    Fails the session when the installed distribution is not the commit's archive (installs
    skipped by ``--no-install`` in a reused environment), so a stale build is never recorded.
    """
    upstream, commit = comparison.upstream, comparison.commit
    config = upstream.config
    session.install("--upgrade", "pip")  # `install` may use recent pip options (--group).
    if config.install:
        session.install(*config.install)
    directory = Path(session.create_tmp())
    archive = write_commit_archive(upstream.repo, commit, config.package, directory)
    environment = install_environment(config.package, scm_version(upstream.repo, commit))
    try:
        session.install("--force-reinstall", "--no-deps", str(archive), env=environment)
        installed = session.run(
            "python", "-c", _DIRECT_URL, config.package, silent=True, log=False
        )  # fmt: skip
    finally:
        archive.unlink()  # As large as the upstream's tree; pip has its own copy now.
    if installed is None:
        return False
    if not str(installed).strip().endswith(archive.name):
        session.error(
            f"the installed {config.package} is not built from {archive.name} (it comes from "
            f"{str(installed).strip() or 'an index'}): were installs skipped by --no-install? "
            "Run the session without it."
        )
    return True
