"""pytest hooks and options of pytest-unchanged.

Module-level hooks only wire things up: the options and ini options, the hookspecs, the
markers, and in ``pytest_configure`` the session plugin
(:class:`~pytest_unchanged.selection.UnchangedPlugin`, when the rootdir is inside a git worktree,
or a usage error under ``--unchanged`` when it is not) and the trust plugins
(:mod:`pytest_unchanged.trust`). This module is the ``pytest11`` entry point ``unchanged``, so
``-p no:unchanged`` disables it all.
"""

from __future__ import annotations

import pygit2
import pytest

from . import collection_watch, hookspecs, path_watch, settings
from .inputs import ALWAYS_RUN, DEPENDS_ON, IMPORTS
from .keys import canonical_name
from .records import MAX_COUNT
from .reporting import issue_warning
from .selection import MODES, PLUGIN_KEY, UnchangedPlugin, setting
from .warning_types import ConflictingPluginWarning, UnkeyableInputWarning

CONFLICTING_DISTRIBUTION = "pytest-depends-on"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    hookspecs.register(pluginmanager)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unchanged", "skip tests whose git inputs are unchanged")
    group.addoption(
        "--unchanged",
        action="store_true",
        dest="unchanged",
        default=None,
        help="Skip tests whose inputs have the same git OIDs as when they last passed "
        "(ini: unchanged)",
    )
    group.addoption(
        "--no-unchanged",
        action="store_false",
        dest="unchanged",
        help="Run every test even when the ini option unchanged is true",
    )
    group.addoption(
        "--unchanged-mode",
        dest="unchanged_mode",
        choices=MODES,
        default=None,
        help="What to do with unchanged tests: skip them (reported as skipped) or deselect "
        "them (ini: unchanged_mode; default: skip)",
    )
    group.addoption(
        "--unchanged-salt",
        dest="unchanged_salt",
        metavar="TEXT",
        default=None,
        help="Text mixed into every key; change it to invalidate every record "
        "(ini: unchanged_salt)",
    )
    group.addoption(
        "--unchanged-explain",
        action="store_true",
        dest="unchanged_explain",
        default=None,
        help="Say why each test ran (no record, which input or facet changed...), grouped in "
        "the terminal report (ini: unchanged_explain)",
    )
    group.addoption(
        "--unchanged-verify",
        action="store_true",
        dest="unchanged_verify",
        default=False,
        help="Run every test, even unchanged ones, and fail the run if one that would have been "
        "skipped does not pass (a false skip)",
    )
    group.addoption(
        "--unchanged-audit",
        action="store_true",
        dest="unchanged_audit",
        default=False,
        help="Watch the files each test opens and imports, and report the repository files its "
        "inputs do not cover, with the depends_on(...) line that would",
    )
    group.addoption(
        "--unchanged-trust",
        action="append",
        dest="unchanged_trusted_sources",
        metavar="SOURCE",
        default=None,
        help="Also skip tests on records fetched from SOURCE (repeatable; replaces the ini "
        "option unchanged_trusted_sources)",
    )
    parser.addini(
        "unchanged", "Skip unchanged tests as if --unchanged were given", type="bool", default=False
    )
    parser.addini(
        "unchanged_explain",
        "Say why each test ran as if --unchanged-explain were given",
        type="bool",
        default=False,
    )
    parser.addini(
        "unchanged_mode", "skip or deselect unchanged tests (default: skip)", default="skip"
    )
    parser.addini("unchanged_salt", "Text mixed into every key", default="")
    parser.addini(
        "unchanged_inputs",
        "Paths or globs (relative to the rootdir) that are inputs of every test",
        type="linelist",
        default=[],
    )
    parser.addini(
        "unchanged_default",
        "Inputs of a test with no depends_on mark (default: . the whole worktree; imports: "
        "its module and the repository modules it imports, found statically)",
        type="linelist",
        default=["."],
    )
    parser.addini(
        "unchanged_env",
        "Names of environment variables whose values are part of every key",
        type="args",
        default=[],
    )
    parser.addini(
        "unchanged_fast_path",
        "Leave test modules whose items are all unchanged unimported (default: true)",
        type="bool",
        default=True,
    )
    parser.addini(
        "unchanged_trusted_sources",
        "Sources (records pytest-unchanged records fetch --from) whose records may skip a test",
        type="args",
        default=[],
    )
    parser.addini(
        "unchanged_ignore_distributions",
        "Installed distributions left out of every key (installers and tools such as pip uv)",
        type="args",
        default=[],
    )
    parser.addini("unchanged_max_keys", "Records kept per test (default: 8)", default="8")
    parser.addini(
        "unchanged_max_age_days", "Records older than this are pruned (default: 60)", default="60"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before the first conftest is imported: watch what code loads (:mod:`.import_watch`),
    when ``imports`` is in ``unchanged_default`` or ``unchanged_inputs``."""
    names = [*early_config.getini("unchanged_default"), *early_config.getini("unchanged_inputs")]
    if IMPORTS in names:
        from . import import_watch

        import_watch.watch_early(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Keep the options as given, before plugins configure (:func:`settings.remember_options`)."""
    settings.remember_options(config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{DEPENDS_ON}(*paths): the test's inputs, files, directories or glob patterns relative "
        "to the rootdir; pytest --unchanged skips it while their git OIDs are unchanged",
    )
    config.addinivalue_line("markers", f"{ALWAYS_RUN}: pytest --unchanged never skips this test")
    requested = setting(config, "unchanged")
    mode = str(setting(config, "unchanged_mode"))
    if mode not in MODES:
        raise pytest.UsageError(f"unchanged_mode must be one of {', '.join(MODES)}, not {mode!r}")
    for name in ("unchanged_max_keys", "unchanged_max_age_days"):
        value = str(config.getini(name))  # at most MAX_COUNT: SQLite integers are 64-bit
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_COUNT):
            raise pytest.UsageError(
                f"{name} must be a whole number from 1 to {MAX_COUNT}, not {value!r}"
            )
    found = pygit2.discover_repository(str(config.rootpath))
    if found is None:
        if requested:
            raise pytest.UsageError(
                f"--unchanged needs a git repository, and the rootdir {config.rootpath} is not "
                "inside one. Run pytest from a git worktree (or `git init` this project), or "
                "drop --unchanged."
            )
        return
    try:
        pygit2.Repository(found)
    except pygit2.GitError as error:  # a checkout another user owns (git's safe.directory)
        message = (
            f"pytest-unchanged stays off: git cannot open the repository {found} ({error}). "
            "For a checkout another user owns (a CI container, a shared directory), mark it "
            "safe with `git config --global --add safe.directory PATH`, as git itself asks."
        )
        if requested:
            raise pytest.UsageError(message) from None
        issue_warning(config, UnkeyableInputWarning(message))
        return
    if not hasattr(config, "cache"):
        if requested:
            raise pytest.UsageError(
                "--unchanged keeps its records in pytest's cache directory; "
                "re-enable the cacheprovider plugin (drop -p no:cacheprovider)"
            )
        return
    conflict = _conflicting_plugin(config)
    if conflict:
        message = (
            f"{CONFLICTING_DISTRIBUTION} is installed and also defines a 'depends_on' marker "
            "(for test ordering); pytest-unchanged cannot tell its marks from ours, so it "
            f"stays off. Uninstall {CONFLICTING_DISTRIBUTION} or disable it with -p no:{conflict}"
        )
        if requested:
            raise pytest.UsageError(message)
        issue_warning(config, ConflictingPluginWarning(message))  # never raised: a full run
        return
    plugin = UnchangedPlugin(config, skip=bool(requested), mode=mode)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "unchanged-session")
    _register_extensions(config)


def _register_extensions(config: pytest.Config) -> None:
    """Register the plugins this session turns on, in this order (each ``register`` checks
    again); the others are never imported, so a session without them does not pay for it."""
    if config.getoption("unchanged_verify"):
        from .trust import verify

        verify.register(config)
    if setting(config, "unchanged_explain"):
        from .trust import explain

        explain.register(config)
    if config.getoption("unchanged_audit"):
        from .trust import audit

        audit.register(config)
    if IMPORTS in [*config.getini("unchanged_default"), *config.getini("unchanged_inputs")]:
        from . import import_watch

        import_watch.register(config)
    collection_watch.register(config)
    path_watch.register(config)


def _conflicting_plugin(config: pytest.Config) -> str | None:
    for plugin, dist in config.pluginmanager.list_plugin_distinfo():
        if canonical_name(dist.project_name) == CONFLICTING_DISTRIBUTION:
            name = config.pluginmanager.get_name(plugin)
            return name or CONFLICTING_DISTRIBUTION
    return None
