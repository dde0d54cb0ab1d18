"""Cancellation and pool exhaustion on a client held to one connection.

A cancelled call must give its pooled connection back (or close it): if it did not,
the next call would wait for a connection that never comes free and fail with a
pool timeout. So after every storm of cancellations, a plain call must succeed
within the pool timeout, the pool must be quiet, and the server must hold no
connection once the client is closed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import anyio
import httpx2
import pytest

from tests._servers import ScriptedServer, ServerGroup, delayed, hang, respond
from tests.faults._scenario import SEED_FIELDS, SEEDED
from tests.faults._support import (
    EVERY_PATH,
    LEDGER,
    LENT_LEGACY,
    OWNED_AIOHTTP,
    Canary,
    backoff,
    busy_pool_connections,
    close_client,
    make_client,
    outcome_of,
    run_label,
)
from ziggeo_async import APITimeoutError, AsyncZiggeo

pytestmark = [
    pytest.mark.anyio,
    # Legacy httpx's request body iterator is an async generator; a cancellation while
    # the body is being written leaves it unfinished, and trio warns when it is
    # collected (encode/httpx#3686). It holds no socket, and is all that is ignored
    # here: the connection checks below are what prove nothing leaked.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <async_generator object ByteStream.__aiter__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

CANCELLATIONS = 1_000
BATCH_CANCELLATIONS = 100
POOL_TIMEOUT = 0.5
ONE_CONNECTION = httpx2.Limits(max_connections=1, max_keepalive_connections=1)

#: Every path but a lent legacy httpx client: httpcore 1.0's pool can wedge after a
#: cancellation at the wrong moment (encode/httpcore#1093), and a lent client's pool is
#: its owner's, so the SDK leaves it alone (docs/security.md says so).
ON_EVERY_PATH = pytest.mark.parametrize(
    ("anyio_backend", "path"), [run for run in EVERY_PATH if run[1] != LENT_LEGACY]
)


def _one_connection_client(canary: Canary, server: ScriptedServer, path: str) -> AsyncZiggeo:
    timeout = httpx2.Timeout(2.0, pool=POOL_TIMEOUT)
    client, _policy = make_client(
        canary, server.url, timeout=timeout, path=path, limits=ONE_CONNECTION
    )
    return client


def _no_duplicate_session_limits(server: ScriptedServer) -> None:
    """Every create carried a session_limit of its own: two tokens with one is a duplicate."""
    counts = Counter(server.store.tokens[token]["session_limit"] for token in server.store.created)
    duplicated = sum(count - 1 for count in counts.values())
    LEDGER.duplicated += duplicated
    assert duplicated == 0


async def _assert_still_usable_then_close(client: AsyncZiggeo, server: ScriptedServer) -> None:
    http_client = client._connection()
    with anyio.fail_after(POOL_TIMEOUT + 2.0):
        assert (await client.authtokens.get(SEEDED)).token == SEEDED
    busy = busy_pool_connections(http_client)
    await close_client(client)
    left_open = await server.wait_until_no_connection_is_open()
    LEDGER.leaked += busy + left_open
    assert busy == 0
    assert left_open == 0


@pytest.mark.volume
@ON_EVERY_PATH
async def test_a_thousand_random_cancellations_leave_the_one_connection_usable(
    servers: ServerGroup, canary: Canary, anyio_backend: str, path: str
) -> None:
    rng = random.Random(20261127)
    server = servers.start(default=delayed(respond, lambda: rng.uniform(0, 0.001)))
    server.store.seed(SEEDED, **SEED_FIELDS)
    client = _one_connection_client(canary, server, path)
    cancelled = completed = creates = 0
    returned: list[str] = []
    while cancelled < CANCELLATIONS:
        # Mostly a deadline inside the call's few milliseconds; now and then a long one,
        # so some calls finish whatever the machine's load.
        deadline = rng.uniform(0, 0.0015) if rng.random() < 0.9 else 0.1
        with anyio.move_on_after(deadline) as scope:
            if rng.random() < 0.5:
                creates += 1
                token = await client.authtokens.create(session_limit=creates)
                returned.append(token.token)
            else:
                await client.authtokens.get(SEEDED)
            completed += 1
        cancelled += scope.cancelled_caught
        LEDGER.cancellations += scope.cancelled_caught
        assert cancelled + completed < 5 * CANCELLATIONS, "cancellations too rare to count"
    assert completed > 0  # some calls ran to the end, so cancellation fell at every stage
    lost = sum(token not in server.store.tokens for token in returned)
    LEDGER.lost += lost
    assert lost == 0
    assert len(server.store.created) <= creates
    _no_duplicate_session_limits(server)
    await _assert_still_usable_then_close(client, server)
    LEDGER.runs[run_label(anyio_backend, path)] += 1
    LEDGER.scenarios.add("1,000 random cancellations on one connection")


@ON_EVERY_PATH
async def test_cancelling_create_many_part_way_leaves_the_one_connection_usable(
    servers: ServerGroup, canary: Canary, anyio_backend: str, path: str
) -> None:
    rng = random.Random(1127)
    server = servers.start(default=delayed(respond, lambda: rng.uniform(0, 0.001)))
    server.store.seed(SEEDED, **SEED_FIELDS)
    client = _one_connection_client(canary, server, path)
    session_limits = iter(range(1, 1_000_000))
    pulled: set[int] = set()
    reported: list[str] = []

    def items(count: int) -> Iterator[dict[str, int]]:
        for _ in range(count):
            limit = next(session_limits)
            pulled.add(limit)
            yield {"session_limit": limit}

    for _ in range(BATCH_CANCELLATIONS):
        with anyio.move_on_after(rng.uniform(0, 0.01)) as scope:
            async with client.authtokens.create_many(items(20), concurrency=4) as results:
                async for result in results:
                    assert result.ok, result.error
                    assert result.value is not None
                    reported.append(result.value.token)
        LEDGER.cancellations += scope.cancelled_caught
        assert busy_pool_connections(client._connection()) == 0
    lost = sum(token not in server.store.tokens for token in reported)
    LEDGER.lost += lost
    assert lost == 0
    made = {server.store.tokens[token]["session_limit"] for token in server.store.created}
    assert made <= pulled, "a token was made for an item the batch never pulled"
    _no_duplicate_session_limits(server)
    await _assert_still_usable_then_close(client, server)
    LEDGER.runs[run_label(anyio_backend, path)] += 1
    LEDGER.scenarios.add("create_many cancelled part-way, 100 times, on one connection")


#: aiohttp has no pool timeout of its own (waiting for a connection counts against its
#: connect timeout), so the pool-timeout scenario runs on httpcore pools alone.
@pytest.mark.parametrize(
    ("anyio_backend", "path"), [run for run in EVERY_PATH if run[1] != OWNED_AIOHTTP]
)
async def test_pool_exhaustion_fails_fast_then_recovers(
    servers: ServerGroup, canary: Canary, anyio_backend: str, path: str
) -> None:
    server = servers.start([hang(effect=False)])
    server.store.seed(SEEDED, **SEED_FIELDS)
    client, policy = make_client(
        canary,
        server.url,
        path=path,
        limits=ONE_CONNECTION,
        timeout=httpx2.Timeout(2.0, pool=0.05),
    )
    async with anyio.create_task_group() as hog:
        hog.start_soon(client.authtokens.get, SEEDED)
        with anyio.fail_after(2):
            while not server.requests:  # the hog now holds the only connection
                await anyio.sleep(0.001)
        outcome = await outcome_of(canary, client.authtokens.create(session_limit=1))
        hog.cancel_scope.cancel()
    # Pool timeouts mean nothing was sent: create is retried, and still nothing is made.
    assert isinstance(outcome.error, APITimeoutError)
    assert "PoolTimeout" in str(outcome.error)
    assert policy.attempts == 3
    assert policy.delays == [backoff(1), backoff(2)]
    assert server.store.created == []
    token = await client.authtokens.create(session_limit=2)
    assert server.store.created == [token.token]
    await _assert_still_usable_then_close(client, server)
    LEDGER.runs[run_label(anyio_backend, path)] += 1
    LEDGER.scenarios.add("pool exhaustion: create fails fast, nothing made, then recovers")
