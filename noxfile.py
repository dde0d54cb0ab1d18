"""Developer tasks: `nox -s tests`, `lint`, `typecheck`, `codegen`; `faults`, `fuzz`, `docs`,
`bench`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
# Every CPython the machine has between 3.10 and 3.13 runs; a missing one is skipped,
# even under CI=true (where nox would otherwise fail the run for it).
nox.options.error_on_missing_interpreters = False

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _expose_pyenv_interpreters() -> None:
    """Put every pyenv-installed CPython we test on PATH.

    pyenv's shims answer only for the selected version, so `python3.10` is not found
    otherwise; uv must not download an interpreter either (no network for that).
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for wanted in PYTHONS:
        candidates = sorted(versions.glob(f"{wanted}.*/bin"), key=lambda p: p.parent.name)
        found += [str(path) for path in candidates[-1:]]
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


_expose_pyenv_interpreters()
# uv installs without compiling bytecode (pip compiles). Then the xdist workers that start
# together each compiled every dependency they imported, about 3.5 s of CPU apiece, before
# any had written its .pyc; uv compiles them once, on every CPU, in about 2 s.
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
PYPROJECT = nox.project.load_toml("pyproject.toml")
COVERAGE_FLOOR = 95
# Coverage is measured on one interpreter: the package has no code that differs by
# version, and measuring costs about half as much again as the suite itself. 3.11 when
# the machine has it, else the oldest it has.
COVERAGE_PYTHON = next(
    (version for version in ("3.11", *PYTHONS) if shutil.which(f"python{version}")), "3.11"
)
# pytest-xdist: two workers per CPU. The suite waits on subprocesses, sockets and the
# fault scenarios' short timeouts for much of its run, so one worker per CPU left the
# CPUs idle for a good part of it (figures in CHANGELOG.md).
# worksteal: a worker that runs out takes tests queued on a busy one, so a run does not
# wait on one worker's backlog of slow tests.
PARALLEL = ("-n", str(2 * (os.cpu_count() or 1)), "--dist", "worksteal")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on every CPython; on one of them (COVERAGE_PYTHON) with branch
    coverage of ziggeo_async, failing under 95 %."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    # Bytecode is cached even where the environment turns caching off (an empty value
    # means "write"): the suite starts some ninety Python processes per interpreter (xdist
    # workers, CLI children), and each one compiled every module it imported again,
    # which doubled the cost of an import and of collecting the tests.
    session.env["PYTHONDONTWRITEBYTECODE"] = ""
    if session.python != COVERAGE_PYTHON:
        session.run("pytest", *PARALLEL, *session.posargs)
        return
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *PARALLEL, *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", "--strict", "ziggeo_async")


@nox.session(python="3.11")
def codegen(session: nox.Session) -> None:
    """Regenerate ziggeo_async/_faces/sync.py from the async classes (`nox -s codegen -- --check`
    only checks that the checked-in file is current)."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("python", "scripts/generate_sync.py", *session.posargs)


@nox.session(python="3.11")
def faults(session: nox.Session) -> None:
    """The fault suite and the hostile-input properties alone (`tests` runs them too).

    `ZIGGEO_HYPOTHESIS_PROFILE=fuzz nox -s faults` runs 10,000 examples per property.
    """
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "tests"))
    session.run(
        "pytest", "tests/faults", "tests/hostile", "--hypothesis-show-statistics", *session.posargs
    )


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """atheris over the response, Retry-After and token-id parsers (optional).

    Extra arguments go to libFuzzer, e.g. `nox -s fuzz -- -runs=1000000`.
    """
    session.install("-e", ".")
    try:
        session.install("atheris")
    except nox.command.CommandFailed:
        session.skip(
            "atheris did not install: it ships wheels for few Pythons and otherwise needs "
            "clang with libFuzzer to build. The hypothesis fuzz profile covers the same "
            "parsers: ZIGGEO_HYPOTHESIS_PROFILE=fuzz nox -s faults"
        )
    session.run("python", "scripts/fuzz_parsers.py", *(session.posargs or ["-runs=200000"]))


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Optional: docs/ as a site with mkdocs, strict (the test suite already runs its code)."""
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks against the official SDK (`ziggeo` 2.30): one markdown table.

    BENCH_QUICK=1 for a run under a minute; `nox -s bench -- --write-readme` records
    the table in benchmarks/README.md.
    """
    session.install("-e", ".[fast]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)
