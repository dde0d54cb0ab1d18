from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ziggeo_async.testing import FakeZiggeo, LoopbackServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every `@pytest.mark.anyio` test runs once on asyncio and once on trio."""
    return str(request.param)


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeZiggeo, str]]:
    """A FakeZiggeo (inspect on) over real HTTP on 127.0.0.1, from a thread of its own."""
    fake = FakeZiggeo(inspect=True)
    server = LoopbackServer(fake.asgi_app)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield fake, server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for `python -m ziggeo_async` children: no ZIGGEO_* credentials, and
    this checkout first on the path, whatever directory pytest was started from."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZIGGEO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env
