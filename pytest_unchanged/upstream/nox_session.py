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

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from .build import install_environment, scm_version, write_build_tree
from .cli import only_ref
from .config import UpstreamError, cache_path, load_upstream_config
from .fetch import Comparison, compare, damaged_cache, fetch_refs
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
        try:
            comparisons = [compare(up, states[up.ref]) for up in fetch_refs(config, cache_dir)]
        except pygit2.GitError as exc:
            raise damaged_cache(cache_path(config, cache_dir), exc) from None
    except UpstreamError as exc:
        session.error(str(exc))
    moved = [comparison for comparison in comparisons if comparison.changed]
    if not moved:
        session.skip("; ".join(summary_line(comparison) for comparison in comparisons))
    failed: list[Comparison] = []
    for comparison in moved:
        session.log(summary_line(comparison))
        try:
            installed = _install(session, comparison, first=comparison is moved[0])
        except CommandFailed as exc:
            session.error(
                f"Installing the project or {config.name} commit {comparison.commit.id} failed "
                f"({exc.reason}): the tests did not run, so nothing is recorded. See pip's "
                "output above."
            )
        if not installed:
            session.log("Installed only (--install-only): the upstream commit was not tested.")
            return
        session.log(f"Testing against {config.name} {describe_commit(comparison.commit)}")
        if not _tests_pass(session, comparison, [*config.pytest_args, *session.posargs]):
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


# Loaded into the tested pytest with `-p`: write its exit status and the tests that passed.
_RAN_PLUGIN = """\
import json, os

_passed = []
_collect_errors = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _passed.append(report.nodeid)


def pytest_collectreport(report):
    if report.failed:
        _collect_errors.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # An xdist worker: the controller sees every report.
    with open(os.environ["PYTEST_UNCHANGED_RAN"], "w", encoding="utf-8") as stream:
        ran = {"passed": len(_passed), "collect_errors": len(_collect_errors)}
        json.dump({"exitstatus": int(exitstatus), **ran}, stream)
"""

#: What pytest's exit statuses other than 0 and 1 mean (pytest.ExitCode).
_EXIT_MEANINGS = {
    2: "pytest was interrupted (exit 2)",
    3: "pytest stopped on an internal error (exit 3)",
    4: "pytest was given a bad command line (exit 4: a usage error; check `pytest_args` and "
    "the session's arguments)",
    5: "pytest collected no tests (exit 5)",
}


def _tests_pass(session: nox.Session, comparison: Comparison, args: list[str]) -> bool:
    """Run pytest with ``args``; True when tests ran and passed, False when tests failed.

    Only pytest's "tests failed" (exit 1), or an exit 2 after errors collecting test modules
    (an import the upstream commit broke), means the tests failed against the commit. Any
    other outcome says nothing about it and fails the session without recording anything:
    exit 2 (interrupted), 3 (internal error), 4 (usage error), 5 (no tests collected), no
    ``pytest`` in the virtualenv, or exit 0 with no test run (``--co``, everything skipped).
    Raises nox's session error then.
    """
    from nox.command import CommandFailed

    with tempfile.TemporaryDirectory(prefix="pytest-unchanged-ran-") as folder:
        Path(folder, "_pytest_unchanged_ran.py").write_text(_RAN_PLUGIN, encoding="utf-8")
        ran_file = Path(folder, "ran.json")
        outer = session.env.get("PYTHONPATH") or os.environ.get("PYTHONPATH")
        env = {
            "PYTHONPATH": os.pathsep.join([folder, *([outer] if outer else [])]),
            "PYTEST_UNCHANGED_RAN": str(ran_file),
        }
        status: int | None = 0
        reason = ""
        try:
            session.run("pytest", "-p", "_pytest_unchanged_ran", *args, env=env)
        except CommandFailed as exc:
            reason = exc.reason or ""
            status = getattr(exc, "return_code", None)
            if status is None and reason.startswith("Returned code "):
                status = int(reason.removeprefix("Returned code "))
        try:
            ran = json.loads(ran_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ran = {}
    name, commit = comparison.upstream.config.name, comparison.commit.id
    if status == 1 or (status == 2 and ran.get("collect_errors")):
        return False
    if status is None:
        why = f"pytest did not run ({reason or 'no exit status'}); is it in `install`?"
    elif status in _EXIT_MEANINGS:
        why = _EXIT_MEANINGS[status]
    elif status != 0:
        why = f"pytest exited with status {status}, which is not pytest's 'tests failed' (1)"
    elif not ran.get("passed"):
        why = "pytest ran no test (--co, or every test deselected or skipped)"
    else:
        return True
    session.error(
        f"{why}. That says nothing about {name} commit {commit}: it is recorded neither as "
        "verified nor as failing."
    )
    return False  # pragma: no cover - session.error raises


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
        environment = install_environment(config.package, version, directory, tree)
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
