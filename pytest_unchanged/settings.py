"""Settings facets: the options, ``-o`` ini values and plugins a session runs with, and every
exception to the rule of what counts.

The rule (``DESIGN.md``, "Soundness rules") is turned around from a list of what matters to a
list of what does not: every option pytest's parser knows, core and plugins, whose value differs
from its default is a facet, except the options in :data:`NOT_FACETS`, which only change
reporting or selection. Defaults come from the parser itself (an empty command line parsed
again), so option names and defaults that differ between pytest versions need no table here.
Each ``-o name=value`` is a facet of its own, except this plugin's selection and reporting ini
options (:data:`OWN_INI`, by exact name). ``-p`` is read from what is loaded: the plugins
registered when the session is configured, against pytest's default plugins; that also covers
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``, ``PYTEST_PLUGINS`` and ``pytest_plugins`` in a conftest.
Environment variables named ``PYTHON*`` or ``PYTEST_*`` are facets when set, except
:data:`NOT_ENVIRONMENT_FACETS` (read by :func:`pytest_unchanged.environment.interpreter_facets`).
"""

from __future__ import annotations

import argparse
import json
import os
import types
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from .keys import canonical_name

__all__ = [
    "ENVIRONMENT_PREFIXES",
    "NOT_ENVIRONMENT_FACETS",
    "NOT_FACETS",
    "OWN_INI",
    "READ_ELSEWHERE",
    "command_line_facets",
    "option_facets",
    "override_ini_facets",
    "plugin_facets",
    "remember_options",
    "working_directory",
]

NOT_FACETS: Mapping[str, str] = {
    # Reporting: what is printed or written about the tests, never what they do.
    "verbose": "-v, -q, --verbosity",
    "reportchars": "-r",
    "tbstyle": "--tb",
    "showlocals": "-l, --no-showlocals",
    "fulltrace": "--full-trace",
    "showcapture": "--show-capture (capture itself, --capture and -s, is a facet)",
    "xfail_tb": "--xfail-tb",
    "color": "--color",
    "code_highlight": "--code-highlight",
    "no_header": "--no-header",
    "no_summary": "--no-summary",
    "fold_skipped": "--no-fold-skipped",
    "force_short_summary": "--force-short-summary",
    "disable_warnings": "--disable-warnings (hides the summary; -W and filterwarnings are facets)",
    "max_warnings": "--max-warnings (the exit status of the run, not an outcome)",
    "durations": "--durations",
    "durations_min": "--durations-min",
    "xmlpath": "--junitxml",
    "junitprefix": "--junitprefix",
    "pastebin": "--pastebin",
    "setupshow": "--setup-show",
    "traceconfig": "--trace-config",
    "debug": "--debug (writes a log file)",
    # Selection: which of the collected tests run, and in what order, never how one ends.
    "file_or_dir": "path arguments",
    "keyword": "-k",
    "markexpr": "-m",
    "deselect": "--deselect",
    "lf": "--lf",
    "failedfirst": "--ff",
    "newfirst": "--nf",
    "last_failed_no_failures": "--lfnf",
    "stepwise": "--sw",
    "stepwise_skip": "--sw-skip",
    "stepwise_reset": "--sw-reset",
    "exitfirst": "-x (pytest < 8.1)",
    "maxfail": "-x, --maxfail",
    "continue_on_collection_errors": "--continue-on-collection-errors",
    "cacheclear": "--cache-clear",
    # Runs that call no test, so record nothing: allowed so that --unchanged still reports.
    "collectonly": "--collect-only",
    "setuponly": "--setup-only",
    "setupplan": "--setup-plan",
    "showfixtures": "--fixtures",
    "show_fixtures_per_test": "--fixtures-per-test",
    "markers": "--markers",
    "cacheshow": "--cache-show",
    "help": "--help",
    "version": "--version",
    # Where tests run: the temporary directory root (pytest-xdist sets it on every worker),
    # pytest-xdist's distribution (keys are computed on the worker that runs the test).
    "basetemp": "--basetemp",
    "numprocesses": "-n",
    "maxprocesses": "--maxprocesses",
    "maxworkerrestart": "--max-worker-restart",
    "dist": "--dist",
    "distload": "-d",
    "loadscopereorder": "--loadscope-reorder",
    "maxschedchunk": "--maxschedchunk",
    "tx": "--tx",
    "px": "--px",
    "rsyncdir": "--rsyncdir",
    "rsyncignore": "--rsyncignore",
    "testrunuid": "--testrunuid",
    "looponfail": "-f",
    # This plugin's own selection and reporting (--unchanged-salt is a facet: it is the salt).
    "unchanged": "--unchanged, --no-unchanged",
    "unchanged_mode": "--unchanged-mode",
    "unchanged_explain": "--unchanged-explain",
    "unchanged_verify": "--unchanged-verify",
    "unchanged_audit": "--unchanged-audit",
    "unchanged_trusted_sources": "--unchanged-trust (which shared records to use)",
}
"""Option ``dest`` → the flags it stands for (and why, where it is not plain): the options
whose value is never a facet. Everything else pytest's parser knows is, when not at its
default. When in doubt an option is a facet: ``--capture``/``-s`` (a test may read stdin or
``sys.stdout``), ``--ignore`` (fewer conftests are loaded), ``--log-level`` (``caplog``),
``--runxfail``, ``--pdb`` all are."""

READ_ELSEWHERE: Mapping[str, str] = {
    "override_ini": "-o: each ini option it sets is a facet, ini:<name>",
    "plugins": "-p: the plugins loaded are facets, plugin:<name>",
    "unchanged_salt": "--unchanged-salt: the salt is a facet, salt",
}
"""Option ``dest`` → the facets that already hold its value, so it is not an ``option:``
facet too. These are key inputs, not part of the allowlist."""

OWN_INI = frozenset(
    {
        "unchanged",
        "unchanged_mode",
        "unchanged_explain",
        "unchanged_fast_path",
        "unchanged_max_keys",
        "unchanged_max_age_days",
    }
)
"""This plugin's ini options that only select, report or prune: ``-o`` of these, by exact
name, is not a facet. ``unchanged_inputs``, ``unchanged_default``, ``unchanged_env`` and
``unchanged_salt`` change keys, and given with ``-o`` they are facets too."""


NOT_ENVIRONMENT_FACETS = frozenset(
    {
        # Read by the interactive interpreter only.
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PYTHON_HISTORY",
        "PYTHON_BASIC_REPL",
        # Parsed into options, which are facets by their own rule.
        "PYTEST_ADDOPTS",
        # Set by pytest and pytest-xdist themselves, in every run or on every worker.
        "PYTEST_CURRENT_TEST",
        "PYTEST_VERSION",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
        "PYTEST_XDIST_AUTO_NUM_WORKERS",
        # Where temporary directories go (like --basetemp), and terminal colours.
        "PYTEST_DEBUG_TEMPROOT",
        "PYTEST_THEME",
        "PYTEST_THEME_MODE",
    }
)
"""Environment variables named ``PYTHON*`` or ``PYTEST_*`` that are not facets; every other one
is a facet when set (``env:<NAME>``)."""
ENVIRONMENT_PREFIXES = ("PYTHON", "PYTEST_")


GIVEN_KEY = pytest.StashKey[dict[str, "str | None"]]()


def remember_options(config: pytest.Config) -> None:
    """Keep the :func:`command_line_facets` of ``config`` as the options were given (command
    line, ``addopts``, ``PYTEST_ADDOPTS``), before any plugin's ``pytest_configure`` changes
    them: pytest-randomly draws a new ``--randomly-seed`` there on every run, which would make
    every key new. Called from ``pytest_cmdline_main`` (also on pytest-xdist workers)."""
    config.stash[GIVEN_KEY] = _command_line_facets(config)


def command_line_facets(config: pytest.Config) -> dict[str, str | None]:
    """Return the option facets (``option:<flag>``), ``-o`` facets (``ini:<name>``) and the
    working directory (``cwd``) of the session as :func:`remember_options` kept them, else as
    they are now; see :func:`option_facets`, :func:`override_ini_facets` and
    :func:`working_directory`."""
    given = config.stash.get(GIVEN_KEY, None)
    return dict(given) if given is not None else _command_line_facets(config)


def _command_line_facets(config: pytest.Config) -> dict[str, str | None]:
    return {
        "cwd": working_directory(config),
        **option_facets(config),
        **override_ini_facets(config.getoption("override_ini", None) or ()),
    }


def working_directory(config: pytest.Config) -> str:
    """Return the directory pytest was started in, relative to the rootdir (POSIX, ``.`` for
    the rootdir itself; absolute when outside it): a test opening a relative path reads it."""
    invoked = config.invocation_params.dir
    try:
        return invoked.relative_to(config.rootpath).as_posix() or "."
    except ValueError:
        return invoked.as_posix()


def option_facets(config: pytest.Config) -> dict[str, str | None]:
    """Return ``option:<flag>`` → JSON of its value, for every option of ``config`` that is not
    in :data:`NOT_FACETS` (nor :data:`READ_ELSEWHERE`) and differs from its default.

    ``<flag>`` is the first flag of the option as ``--help`` lists it (``-W``, ``--assert``).
    Defaults are what pytest's argument parser gives for an empty command line. When the parser
    cannot be read (pytest's internals moved), every such option is a facet, default or not:
    more tests run, none is skipped wrongly.
    """
    actions = _parser_actions(config)
    defaults = _defaults(config, actions)
    flags: dict[str, str] = {}
    for action in actions:
        if action.dest not in flags and action.dest != argparse.SUPPRESS:
            flags[action.dest] = action.option_strings[0] if action.option_strings else action.dest
    if not flags:
        flags = {dest: f"--{dest}" for dest in vars(config.option)}
    facets: dict[str, str | None] = {}
    missing = object()
    for dest, flag in flags.items():
        if dest in NOT_FACETS or dest in READ_ELSEWHERE:
            continue
        value = getattr(config.option, dest, missing)
        if value is missing or (dest in defaults and value == defaults[dest]):
            continue
        facets[f"option:{flag}"] = _text(value)
    return facets


def _text(value: object) -> str:
    """JSON of an option value; ``repr`` for a value JSON cannot sort (mixed dict keys)."""
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _parser_actions(config: pytest.Config) -> list[argparse.Action]:
    """The argparse actions of ``config``'s parser (pytest 8.0 builds ``optparser`` when it
    parses, later versions at once); empty when that internal is gone."""
    parser: Any = getattr(getattr(config, "_parser", None), "optparser", None)
    actions = getattr(parser, "_actions", None)
    if not isinstance(actions, list):
        return []
    return [a for a in actions if isinstance(a, argparse.Action)]


def _defaults(config: pytest.Config, actions: list[argparse.Action]) -> dict[str, Any]:
    """Option ``dest`` → its value for an empty command line; ``{}`` when it cannot be had."""
    parser: Any = getattr(getattr(config, "_parser", None), "optparser", None)
    if not actions or parser is None:
        return {}
    try:
        namespace, _ = parser.parse_known_args([], namespace=argparse.Namespace())
    except (Exception, SystemExit):  # a plugin's type converter may fail on its own default
        return {}
    return dict(vars(namespace))


def override_ini_facets(overrides: Iterable[str]) -> dict[str, str | None]:
    """Return ``ini:<name>`` → value for each ``-o name=value`` (the last one of a name wins,
    as in pytest), except this plugin's own :data:`OWN_INI` options."""
    facets: dict[str, str | None] = {}
    for text in overrides:
        name, sep, value = str(text).partition("=")
        name = name.strip()
        if name in OWN_INI:
            continue
        facets[f"ini:{name}"] = value if sep else None
    return facets


def plugin_facets(pluginmanager: pytest.PytestPluginManager) -> dict[str, str | None]:
    """Return the facets of the plugins loaded, against pytest's default plugins.

    ``plugin:<name>`` → ``"<distribution> <version>"`` for a plugin loaded from a ``pytest11``
    entry point, ``"loaded"`` for another module (``-p module``, ``PYTEST_PLUGINS``,
    ``pytest_plugins`` in a conftest, a builtin one that is off by default), and
    ``"not loaded"`` for one of pytest's default plugins that is blocked (``-p no:warnings``).
    Only modules count (a plugin object registered by another plugin follows from options),
    and not conftest files (registered by path; they are inputs). Call it when the session is
    configured: a test module's ``pytest_plugins`` registers more while it is collected, and
    a module left unimported by the fast path would not.
    """
    import _pytest.config

    # pytest's default plugins (essential ones included), as `-p no:name` names them.
    default_plugins: Iterable[str] = getattr(_pytest.config, "default_plugins", ())
    distributions = {}
    for plugin, dist in pluginmanager.list_plugin_distinfo():
        name = pluginmanager.get_name(plugin)
        if name is not None:
            distributions[name] = f"{canonical_name(dist.project_name)} {dist.version}"
    loaded = {
        name: distributions.get(name, "loaded")
        for name, plugin in pluginmanager.list_name_plugin()
        if isinstance(plugin, types.ModuleType) and not os.path.isabs(name)
    }
    defaults = frozenset(default_plugins)
    facets: dict[str, str | None] = {
        f"plugin:{name}": text for name, text in sorted(loaded.items()) if name not in defaults
    }
    for name in sorted(defaults - loaded.keys()):
        facets[f"plugin:{name}"] = "not loaded"
    return facets
