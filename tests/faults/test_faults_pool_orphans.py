"""encode/httpcore#1093: a pool slot lost to a cancelled request is reclaimed by the SDK."""

from __future__ import annotations

import httpcore
import httpx
import pytest

from tests.faults._scenario import SEED_FIELDS, SEEDED
from tests.faults._servers import ServerGroup
from tests.faults._support import Canary, busy_pool_connections, make_client

pytestmark = pytest.mark.anyio


async def test_a_pool_slot_orphaned_by_httpcore_is_reclaimed(
    servers: ServerGroup, canary: Canary
) -> None:
    """A request cancelled after the pool made it a new connection, but before that
    connection connected, leaves it in the pool for good (httpcore 1.0.9). One is
    planted in the only slot, exactly as httpcore leaves it: the first attempt's pool
    timeout must clear it, so the retry gets the slot and succeeds."""
    server = await servers.start()
    server.store.seed(SEEDED, **SEED_FIELDS)
    lent = httpx.AsyncClient(limits=httpx.Limits(max_connections=1))
    client, policy = make_client(
        canary, server.url, http_client=lent, timeout=httpx.Timeout(2.0, pool=0.05)
    )
    pool = lent._transport._pool  # type: ignore[attr-defined]
    orphan = httpcore.AsyncHTTPConnection(
        origin=httpcore.Origin(b"http", b"127.0.0.1", server.port)
    )
    pool._connections.append(orphan)
    assert (await client.authtokens.get(SEEDED)).token == SEEDED
    assert policy.attempts == 2
    assert orphan not in pool.connections
    assert busy_pool_connections(lent) == 0
    await lent.aclose()
    assert await server.wait_until_no_connection_is_open() == 0
