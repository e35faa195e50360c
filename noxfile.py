"""Nox sessions for pytest-unchanged: the test suite on every supported Python and on the lowest
pytest the metadata admits, linters (with the layout rules) and benchmarks.

Interpreters are found on ``PATH``; with pyenv, select them all first, e.g.
``PYENV_VERSION=$(pyenv versions --bare | grep -E '^3\\.1[1-3]' | paste -sd: -) nox``. A missing
interpreter is an error, not a skipped session.
"""

from __future__ import annotations

from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "tests_lowest", "lint"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON_VERSIONS = nox.project.python_versions(PYPROJECT, max_version="3.13")


def lowest(distribution: str) -> str:
    """Return ``NAME==VERSION`` for the lowest version of ``distribution`` that the project's
    ``dependencies`` admit (from its ``>=`` bound; raises ``LookupError`` when there is none)."""
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.name == distribution:
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    return f"{distribution}=={spec.version}"
    raise LookupError(f"no >= bound for {distribution} in [project] dependencies")


def install_project(session: nox.Session, group: str) -> None:
    """Install the project and one dependency group (``--group`` needs pip 25.1 or newer)."""
    session.install("--upgrade", "pip")
    session.install("-e", ".", "--group", group)


@nox.session(python=PYTHON_VERSIONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on each supported Python."""
    install_project(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON_VERSIONS[0])
def tests_lowest(session: nox.Session) -> None:
    """Run the test suite on the lowest pytest the project's metadata admits."""
    install_project(session, "test")
    session.install(lowest("pytest"))
    session.run("python", "-m", "pytest", "--version")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON_VERSIONS[0])
def lint(session: nox.Session) -> None:
    """Run ruff, mypy (strict) and the layout rules (no import circle, modules <= 400 lines)."""
    install_project(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("pytest", "-p", "no:cacheprovider", "tests/test_layout.py")


@nox.session(python=PYTHON_VERSIONS[0], default=False)
def bench(session: nox.Session) -> None:
    """Benchmark the plugin on a generated 5,000-test suite (ratios side by side)."""
    install_project(session, "test")
    session.install("pytest-testmon")
    session.run("python", "benchmarks/bench_suite.py", *session.posargs)


@nox.session(python=PYTHON_VERSIONS[0], default=False)
def fuzz(session: nox.Session) -> None:
    """Run the differential test (fast path on vs off) for many steps from a random seed.

    ``nox -s fuzz`` runs 400 steps; ``nox -s fuzz -- STEPS [SEED]`` chooses. The seed is
    printed first: rerun a failure with the same seed (the suite's own run uses a fixed seed
    and a bounded number of steps: see tests/test_differential.py).
    """
    import random

    install_project(session, "test")
    steps = session.posargs[0] if session.posargs else "400"
    seed = session.posargs[1] if len(session.posargs) > 1 else str(random.randrange(2**32))
    log = Path(session.create_tmp()) / f"fuzz-{seed}.log"
    log.unlink(missing_ok=True)
    session.log(f"differential test: seed {seed}, {steps} steps; each step logged to {log}")
    session.run(
        "pytest",
        "-p",
        "no:randomly",
        "tests/test_differential.py",
        env={
            "UNCHANGED_FUZZ_SEED": seed,
            "UNCHANGED_FUZZ_STEPS": steps,
            "UNCHANGED_FUZZ_LOG": str(log),
        },
    )
    session.log(log.read_text().splitlines()[-1])


@nox.session(name="upstream-tip", default=False)
def upstream_tip_session(session: nox.Session) -> None:
    """Test against pytest's main when the pytest internals we lean on moved."""
    from pytest_unchanged.nox_session import upstream_tip

    upstream_tip(session, "pytest")
