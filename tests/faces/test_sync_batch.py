"""The batch operations through SyncZiggeo: generated twins over one pump task per batch."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests._support import Unreadable, Unusual
from ziggeo_async import AuthToken, BatchResult, NotFoundError, SyncZiggeo, ValidationError
from ziggeo_async._faces.portal import PortalIterator
from ziggeo_async.testing import FakeZiggeo


@pytest.fixture
def fake() -> FakeZiggeo:
    return FakeZiggeo()


@pytest.fixture
def client(fake: FakeZiggeo) -> Iterator[SyncZiggeo]:
    http_client = httpx.AsyncClient(transport=fake.transport())
    with SyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client:
        yield client


def test_create_many_yields_every_item_once(client: SyncZiggeo, fake: FakeZiggeo) -> None:
    items = ({"session_limit": number} for number in range(1, 301))
    results = list(client.authtokens.create_many(items, concurrency=16))
    assert sorted(r.index for r in results) == list(range(300))
    assert all(r.ok and r.value and r.value.session_limit == r.index + 1 for r in results)
    assert len(fake.tokens) == 300


def test_bad_items_become_results(client: SyncZiggeo) -> None:
    results = {r.index: r for r in client.authtokens.create_many([{"session_limit": -1}, {}])}
    assert isinstance(results[0].error, ValidationError)
    assert results[1].ok


def test_get_many_and_delete_many(client: SyncZiggeo, fake: FakeZiggeo) -> None:
    made = [r.value.token for r in client.authtokens.create_many([{}] * 5) if r.value]
    got: list[BatchResult[object]] = list(client.authtokens.get_many([*made, "missing"]))
    assert sum(r.ok for r in got) == 5
    assert [type(r.error) for r in got if not r.ok] == [NotFoundError]
    assert all(r.ok for r in client.authtokens.delete_many(made))
    assert fake.tokens == {}


def test_leaving_the_with_block_cancels_requests_in_flight(
    client: SyncZiggeo, fake: FakeZiggeo
) -> None:
    fake.latency = 0.2
    with client.authtokens.create_many([{}] * 100, concurrency=4) as results:
        assert next(results).ok
    made_by_close = len(fake.tokens)
    time.sleep(0.5)  # two more latency periods: time enough for stragglers to land
    assert len(fake.tokens) == made_by_close < 100
    fake.latency = 0.0
    assert client.authtokens.create().token


def test_an_abandoned_iterator_is_closed_by_its_finalizer(
    client: SyncZiggeo, fake: FakeZiggeo
) -> None:
    results = client.authtokens.create_many([{}] * 50, concurrency=2)
    next(results)
    del results
    gc.collect()
    made = len(fake.tokens)
    time.sleep(0.1)
    # Nothing more is created after the iterator was collected (at most the in-flight pair).
    assert len(fake.tokens) <= made + 2


def read_into(seen: list[BatchResult[AuthToken]], batch: PortalIterator[Any]) -> None:
    """Read ``batch`` in a ``with`` block into ``seen``, which keeps what was read when the
    loop raises."""
    with batch as results:
        for result in results:
            seen.append(result)  # noqa: PERF402 - a copy would lose them on a raise


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit, Unusual])
def test_a_base_exception_on_the_loop_reaches_the_caller_and_the_client_goes_on(
    client: SyncZiggeo, fake: FakeZiggeo, raised: type[BaseException]
) -> None:
    # A single call whose arguments raise while they are read, on the portal's loop.
    with pytest.raises(raised):
        client.authtokens.create(grants=Unreadable(raised()))  # type: ignore[typeddict-item]

    def items() -> Iterator[dict[str, int]]:
        yield {"session_limit": 1}
        raise raised("from the input")

    seen: list[BatchResult[AuthToken]] = []
    results = client.authtokens.create_many(items(), concurrency=1)
    with pytest.raises(raised, match="from the input"):
        read_into(seen, results)
    assert [result.index for result in seen] == [0]
    assert list(results) == []
    # The portal thread is still there, and the client works and closes.
    assert client.authtokens.create(session_limit=2).session_limit == 2
    assert len(fake.tokens) == 2
    client.close()
    assert client.closed


def test_a_batch_left_early_reports_every_item_it_took(fake: FakeZiggeo) -> None:
    # Items 0 to 3 are answered at once; 4 and 5 hang until the batch is stopped.
    in_flight = threading.Semaphore(0)
    answer = fake.transport()

    async def handle(request: httpx.Request) -> httpx.Response:
        if b"session_limit=4" in request.content or b"session_limit=5" in request.content:
            in_flight.release()
            await anyio.sleep(3600)
        return await answer.handle_async_request(request)

    http_client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    items = [{"session_limit": number} for number in range(6)]
    with SyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client:
        with client.authtokens.create_many(items, concurrency=6) as results:
            read = [next(results)]
            assert in_flight.acquire(timeout=20)
            assert in_flight.acquire(timeout=20)
        everything = read + list(results.abandoned)
        # Every item taken is read or abandoned, once; every token made is in a result,
        # or its item is one that was cut short (it may have been sent).
        assert sorted(r.index for r in everything) == list(range(6))
        made = {r.value.token for r in everything if r.value}
        cut_short = [r for r in everything if r.error]
        assert made <= set(fake.tokens)
        assert len(fake.tokens) <= len(made) + len(cut_short)
        assert {4, 5} <= {r.index for r in cut_short}
        assert all("may have been sent" in str(r.error) for r in cut_short)
