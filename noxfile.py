"""Nox sessions for pytest-unchanged: the test suite, linters and benchmarks."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON_VERSIONS = nox.project.python_versions(PYPROJECT, max_version="3.14")


def install_project(session: nox.Session, group: str) -> None:
    """Install the project and one dependency group (``--group`` needs pip 25.1 or newer)."""
    session.install("--upgrade", "pip")
    session.install("-e", ".", "--group", group)


@nox.session(python=PYTHON_VERSIONS[0])
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    install_project(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON_VERSIONS[0])
def lint(session: nox.Session) -> None:
    """Run ruff (lint and import order) and mypy in strict mode."""
    install_project(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON_VERSIONS[0], default=False)
def bench(session: nox.Session) -> None:
    """Benchmark the plugin on a generated 5,000-test suite (ratios side by side)."""
    install_project(session, "test")
    session.install("pytest-testmon")
    session.run("python", "benchmarks/bench_suite.py", *session.posargs)


@nox.session(name="upstream-tip", default=False)
def upstream_tip_session(session: nox.Session) -> None:
    """Test against pytest's main when the pytest internals we lean on moved."""
    from pytest_unchanged.nox_session import upstream_tip

    upstream_tip(session, "pytest")
