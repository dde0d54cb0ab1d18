from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support import serve_on_uvicorn
from ziggeo_async.testing import FakeZiggeo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Volume tests first: each takes seconds, and one that a worker starts last keeps the
    whole run waiting for it while the other workers are idle."""
    items.sort(key=lambda item: item.get_closest_marker("volume") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A volume test runs with the coverage tracer paused, when there is one.

    It runs the lines the small tests run, thousands of times over, and the tracer made
    it three to four times slower; the coverage report is the same without it (a child
    process it starts is still measured).
    """
    coverage = sys.modules.get("coverage") if item.get_closest_marker("volume") else None
    tracer = coverage.Coverage.current() if coverage is not None else None
    if tracer is None:
        return (yield)
    tracer.stop()
    try:
        return (yield)
    finally:
        tracer.start()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every `@pytest.mark.anyio` test runs once on asyncio and once on trio."""
    return str(request.param)


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeZiggeo, str]]:
    """A FakeZiggeo (inspect on) over real HTTP on 127.0.0.1, on uvicorn in a thread."""
    fake = FakeZiggeo(inspect=True)
    with serve_on_uvicorn(fake.asgi_app) as url:
        yield fake, url


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for `python -m ziggeo_async` children: no ZIGGEO_* credentials, and
    this checkout first on the path, whatever directory pytest was started from."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZIGGEO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
