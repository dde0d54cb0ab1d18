"""pytest fixtures for code that uses ziggeo-async (registered through ``pytest11``).

``fake_ziggeo``: a fresh ``FakeZiggeo``. ``ziggeo_client``: an ``AsyncZiggeo`` wired to it
through its in-memory transport, closed after the test. Both are plain fixtures, so they
work under pytest-asyncio, anyio's plugin or none: the client holds no loop-bound state
(no sockets) until a call runs on the test's own loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest

from .._faces.client import AsyncZiggeo
from ._fake import FakeZiggeo

__all__ = ["fake_ziggeo", "ziggeo_client"]


@pytest.fixture
def fake_ziggeo() -> FakeZiggeo:
    """A fresh in-memory Ziggeo: empty store, no faults, its own credentials."""
    return FakeZiggeo()


@pytest.fixture
def ziggeo_client(fake_ziggeo: FakeZiggeo) -> Iterator[AsyncZiggeo]:
    """An ``AsyncZiggeo`` on ``fake_ziggeo`` (its credentials, its transport), closed after."""
    http_client = httpx2.AsyncClient(transport=fake_ziggeo.transport())
    client = AsyncZiggeo(
        fake_ziggeo.app_token,
        fake_ziggeo.private_key,
        fake_ziggeo.encryption_key,
        http_client=http_client,
    )
    yield client

    async def close() -> None:
        # Nothing here is bound to the test's loop (the transport is in memory), so a
        # loop of the teardown's own closes it whichever plugin ran the test.
        await client.aclose()
        await http_client.aclose()

    anyio.run(close)
