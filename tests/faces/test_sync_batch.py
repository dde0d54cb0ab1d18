"""The batch operations through SyncZiggeo: generated twins over one pump task per batch."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import httpx
import pytest

from ziggeo_async import BatchResult, NotFoundError, SyncZiggeo, ValidationError
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
