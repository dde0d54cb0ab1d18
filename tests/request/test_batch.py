from __future__ import annotations

import itertools
import json
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.lowlevel
import httpx
import httpx2
import pytest

from tests._support import Unreadable, Unusual
from ziggeo_async import (
    AsyncZiggeo,
    AuthToken,
    BatchResult,
    InternalServerError,
    NotFoundError,
    ValidationError,
    ZiggeoError,
)
from ziggeo_async._request.batch import BatchRun
from ziggeo_async.testing import FakeZiggeo


class StandIn:
    """A minimal auth-token server on an httpx transport that counts what is in flight."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        fail_session_limits: frozenset[int] = frozenset(),
        fast_session_limits: frozenset[int] = frozenset(),
    ):
        self.latency = latency
        self.fast_session_limits = fast_session_limits
        self.fail_session_limits = fail_session_limits
        self.tokens: dict[str, dict[str, Any]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.started_at: list[float] | None = None
        self.cancelled = 0
        self._ids = itertools.count()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.started_at is not None:
            self.started_at.append(anyio.current_time())
        try:
            fields = dict(parse_qsl(request.content.decode()))
            if (
                self.latency
                and int(fields.get("session_limit", -1)) not in self.fast_session_limits
            ):
                await anyio.sleep(self.latency)
            return self._respond(request)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    def _respond(self, request: httpx.Request) -> httpx.Response:
        token_id = request.url.path.removeprefix("/v1/authtokens/")
        if request.method == "POST" and not token_id:
            fields: dict[str, Any] = dict(parse_qsl(request.content.decode()))
            if int(fields.get("session_limit", -1)) in self.fail_session_limits:
                return httpx.Response(500, text="boom")
            token_id = f"t{next(self._ids)}"
            self.tokens[token_id] = {"token": token_id, **fields}
            return httpx.Response(201, json=self.tokens[token_id])
        if token_id not in self.tokens:
            return httpx.Response(404, text="not found")
        if request.method == "DELETE":
            del self.tokens[token_id]
            return httpx.Response(200, json={})
        return httpx.Response(200, json=self.tokens[token_id])

    def client(self) -> AsyncZiggeo:
        transport = httpx.MockTransport(self.handle)
        return AsyncZiggeo("app", "key", http_client=httpx.AsyncClient(transport=transport))


def session_limits(results: list[BatchResult[AuthToken]]) -> list[int]:
    return sorted(r.value.session_limit for r in results if r.value and r.value.session_limit)


@pytest.mark.volume
@pytest.mark.anyio
async def test_ten_thousand_creates_each_accounted_for_exactly_once() -> None:
    fake = FakeZiggeo()
    http_client = httpx2.AsyncClient(transport=fake.transport())
    items = ({"session_limit": number} for number in range(1, 10_001))
    async with AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client:
        results = [r async for r in client.authtokens.create_many(items, concurrency=64)]
    await http_client.aclose()
    assert sorted(r.index for r in results) == list(range(10_000))
    assert all(r.ok for r in results)
    # Each result carries the token made from its own item, and the emulator holds
    # exactly one token per item: nothing lost, nothing made twice.
    assert all(r.value is not None and r.value.session_limit == r.index + 1 for r in results)
    stored = sorted(int(token["session_limit"]) for token in fake.tokens.values())
    assert stored == list(range(1, 10_001))
    assert len(fake.requests) == 10_000


@pytest.mark.anyio
async def test_concurrency_bounds_requests_in_flight() -> None:
    server = StandIn(latency=0.005)
    async with server.client() as client:
        results = [r async for r in client.authtokens.create_many([{}] * 60, concurrency=7)]
    assert len(results) == 60
    assert server.max_in_flight == 7


@pytest.mark.anyio
async def test_bad_items_and_failed_requests_do_not_stop_the_batch() -> None:
    server = StandIn(fail_session_limits=frozenset({3}))
    items: list[Any] = [
        {"session_limit": 1},
        {"session_limit": -1},
        "not a mapping",
        {"session_limit": 3},
        {"colour": "red"},
        {"session_limit": 5},
    ]
    async with server.client() as client:
        results = {r.index: r async for r in client.authtokens.create_many(items)}
    assert sorted(results) == list(range(6))
    assert [i for i, r in sorted(results.items()) if r.ok] == [0, 5]
    errors = {i: r.error for i, r in results.items()}
    assert isinstance(errors[1], ValidationError)
    assert errors[1].argument == "session_limit"
    assert isinstance(errors[2], ValidationError)
    assert errors[2].argument == "items[2]"
    assert isinstance(errors[3], InternalServerError)
    assert isinstance(errors[4], ValidationError)
    assert errors[4].argument == "colour"
    assert len(server.tokens) == 2


@pytest.mark.anyio
async def test_input_is_pulled_lazily_and_breaking_early_stops_pulling() -> None:
    pulled = 0

    def endless() -> Iterator[dict[str, int]]:
        nonlocal pulled
        for number in itertools.count(1):
            pulled += 1
            yield {"session_limit": number}

    server = StandIn(latency=0.001)
    concurrency = 8
    async with server.client() as client:
        seen = 0
        async with client.authtokens.create_many(endless(), concurrency=concurrency) as results:
            async for _ in results:
                seen += 1
                if seen == 100:
                    break
        pulled_at_break = pulled
        await anyio.sleep(0.02)
    # In flight plus finished-but-unread results: never more than two windows ahead.
    assert pulled_at_break <= 100 + 2 * concurrency
    assert pulled == pulled_at_break


@pytest.mark.anyio
async def test_an_unread_result_does_not_keep_the_next_request_waiting() -> None:
    # A worker whose answer came back sends its next item at once, before the reader
    # has taken that answer: otherwise every answer waits for the reader's turn and the
    # batch runs below its concurrency (idle connections, which the pool pays for).
    gates = [anyio.Event() for _ in range(8)]
    started: list[int] = []

    async def operation(index: int, item: int) -> int:
        started.append(index)
        await gates[index].wait()
        return item

    async with BatchRun(range(8), operation, concurrency=2, max_per_second=None) as batch:
        first: list[BatchResult[int]] = []

        async def read_one() -> None:
            first.append(await anext(batch))

        async with anyio.create_task_group() as reader:
            reader.start_soon(read_one)
            await anyio.wait_all_tasks_blocked()
            assert started == [0, 1]
            gates[1].set()
        assert first[0].value == 1
        await anyio.wait_all_tasks_blocked()
        assert started == [0, 1, 2]
        # Nobody reads now: item 0's answer waits in the reader's queue.
        gates[0].set()
        await anyio.wait_all_tasks_blocked()
        assert started == [0, 1, 2, 3], "item 3 waited for the reader to take item 0's result"
        gates[2].set()
        gates[3].set()
        await anyio.wait_all_tasks_blocked()
        # The queue is full with two answers (0 and 2): 3's worker waits holding its
        # answer, 4 is in flight, and nothing more is pulled until the reader reads.
        assert started == [0, 1, 2, 3, 4]
        for gate in gates:
            gate.set()
        assert sorted([result.value async for result in batch]) == [0, *range(2, 8)]


@pytest.mark.anyio
async def test_async_iterable_input() -> None:
    async def items() -> AsyncIterator[dict[str, int]]:
        for number in range(1, 51):
            await anyio.lowlevel.checkpoint()
            yield {"session_limit": number}

    server = StandIn()
    async with server.client() as client:
        results = [r async for r in client.authtokens.create_many(items(), concurrency=4)]
    assert session_limits(results) == list(range(1, 51))


@pytest.mark.anyio
async def test_leaving_the_block_cancels_requests_in_flight() -> None:
    server = StandIn(latency=10, fast_session_limits=frozenset({1}))
    items = [{"session_limit": number} for number in range(1, 21)]
    async with server.client() as client:
        with anyio.fail_after(5):
            async with client.authtokens.create_many(items, concurrency=5) as results:
                first = await anext(results)
                assert first.index == 0
                while server.in_flight < 5:
                    await anyio.sleep(0.001)
        assert server.in_flight == 0
        assert server.cancelled == 5


@pytest.mark.anyio
async def test_cancelling_the_consumer_cancels_requests_in_flight() -> None:
    server = StandIn(latency=10)
    async with server.client() as client:
        with anyio.move_on_after(0.05) as scope:
            async with client.authtokens.create_many([{}] * 20, concurrency=5) as results:
                async for _ in results:
                    pass
        assert scope.cancelled_caught
        assert server.in_flight == 0
        assert server.cancelled == 5


@pytest.mark.anyio
async def test_max_per_second_spaces_request_starts() -> None:
    server = StandIn()
    server.started_at = []
    rate = 100.0
    async with server.client() as client:
        began = anyio.current_time()
        results = [
            r
            async for r in client.authtokens.create_many(
                [{}] * 6, concurrency=6, max_per_second=rate
            )
        ]
    assert len(results) == 6
    starts = sorted(server.started_at)
    assert len(starts) == 6
    # The k-th request reaches the server no sooner than k intervals after the batch
    # began: no burst above the rate. Measured from the start, not from the first
    # arrival, so a delayed first request cannot make the spacing look too tight.
    assert all(start - began >= k * 0.99 / rate for k, start in enumerate(starts)), starts


@pytest.mark.anyio
async def test_get_many_and_delete_many_report_missing_tokens() -> None:
    server = StandIn()
    async with server.client() as client:
        created = [r.value async for r in client.authtokens.create_many([{}] * 3)]
        tokens = [token.token for token in created if token] + ["missing"]
        got = {r.index: r async for r in client.authtokens.get_many(tokens)}
        deleted = {r.index: r async for r in client.authtokens.delete_many(iter(tokens))}
    assert [got[i].ok for i in range(4)] == [True, True, True, False]
    assert isinstance(got[3].error, NotFoundError)
    assert {got[i].value.token for i in range(3) if got[i].value} == set(tokens[:3])
    assert [deleted[i].ok for i in range(4)] == [True, True, True, False]
    assert deleted[0].value is None
    assert server.tokens == {}


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": 2.0}, "concurrency"),
        ({"max_per_second": 0}, "max_per_second"),
        ({"max_per_second": -1.0}, "max_per_second"),
        ({"max_per_second": float("inf")}, "max_per_second"),
        ({"max_per_second": "5"}, "max_per_second"),
        # Each raised from below: repr() of an int of more than 4,300 digits, ValueError;
        # isfinite() of one too large for a float, OverflowError.
        ({"concurrency": -(10**5000)}, "concurrency"),
        ({"max_per_second": 10**400}, "max_per_second"),
        ({"max_per_second": -(10**5000)}, "max_per_second"),
        # Checked once here, as deadline= is, not again as every item's error.
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "5"}, "timeout"),
    ],
)
@pytest.mark.parametrize("method", ["create_many", "get_many", "delete_many"])
@pytest.mark.anyio
async def test_bad_batch_options_are_refused_when_the_batch_is_made(
    method: str, options: dict[str, Any], argument: str
) -> None:
    client = AsyncZiggeo("app", "key")
    with pytest.raises(ValidationError) as caught:
        getattr(client.authtokens, method)([], **options)
    assert caught.value.argument == argument


@pytest.mark.parametrize(
    ("method", "items", "argument"),
    [
        # Not iterable: a TypeError from the first pull.
        ("create_many", None, "items"),
        ("create_many", 5, "items"),
        ("get_many", None, "tokens"),
        ("delete_many", 5, "tokens_or_keys"),
        # Iterable, but not a collection of items: a bare string was read as one token
        # per character (delete_many("abc") deleted "a", "b" and "c"), bytes as ints,
        # a mapping as its keys.
        ("get_many", "abc", "tokens"),
        ("delete_many", "abc", "tokens_or_keys"),
        ("delete_many", b"abc", "tokens_or_keys"),
        ("create_many", {"session_limit": 1}, "items"),
        ("create_many", "abc", "items"),
    ],
)
@pytest.mark.anyio
async def test_a_batch_input_that_is_no_collection_of_items_is_refused_when_made(
    method: str, items: object, argument: str
) -> None:
    client = AsyncZiggeo("app", "key")
    with pytest.raises(ValidationError) as caught:
        getattr(client.authtokens, method)(items)
    assert caught.value.argument == argument


@pytest.mark.volume
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_peak_memory_does_not_grow_with_the_item_count() -> None:
    async def peak_for(count: int) -> int:
        server = StandIn()
        items = ({"session_limit": 1} for _ in range(count))
        tracemalloc.start()
        try:
            async with server.client() as client:
                done = 0
                async for result in client.authtokens.create_many(items, concurrency=16):
                    server.tokens.clear()  # the stand-in's own store is not under test
                    done += result.ok
            assert done == count
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = await peak_for(500), await peak_for(5_000)
    assert large < small * 1.5, (small, large)


def test_results_render_as_json_friendly_values() -> None:
    result: BatchResult[None] = BatchResult(3, error=ValidationError("token", "empty"))
    assert not result.ok
    assert json.dumps({"index": result.index, "error": str(result.error)})


async def leave_early(
    results: AsyncIterator[BatchResult[AuthToken]], how: str, server: StandIn
) -> None:
    """Leave a bare ``async for`` after one result, by ``break``, ``return`` or a raise,
    once the batch has its five requests in flight."""

    async def fill() -> None:
        while server.in_flight < 5:
            await anyio.sleep(0.001)

    async def by_return() -> None:
        async for _ in results:
            await fill()
            return

    if how == "break":
        async for _ in results:
            await fill()
            break
    elif how == "return":
        await by_return()
    else:
        with pytest.raises(LookupError):  # noqa: PT012 - the raise is inside the loop
            async for _ in results:
                await fill()
                raise LookupError(how)


@pytest.mark.parametrize("how", ["break", "return", "raise"])
@pytest.mark.anyio
async def test_leaving_a_bare_async_for_early_leaves_the_caller_untouched(how: str) -> None:
    server = StandIn(latency=10, fast_session_limits=frozenset({1}))
    items = [{"session_limit": number} for number in range(1, 21)]
    async with server.client() as client:
        with anyio.fail_after(10):
            await leave_early(client.authtokens.create_many(items, concurrency=5), how, server)
            # The caller's own task goes on: awaits neither raise nor get cancelled...
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            # ...while the dropped batch's requests in flight are cancelled.
            while server.in_flight:
                await anyio.sleep(0.001)
        assert server.cancelled == 5
        server.latency = 0
        assert (await client.authtokens.create(session_limit=2)).session_limit == 2
        assert len(server.tokens) == 2


@pytest.mark.parametrize("how", ["break", "raise"])
@pytest.mark.anyio
async def test_a_batch_left_early_gives_its_connections_back(
    served_fake: tuple[FakeZiggeo, str], how: str
) -> None:
    fake, url = served_fake
    fake.latency = 60
    # Two connections only, and a pool that gives up quickly: a connection still held by
    # the abandoned batch's requests would make the creates below fail with PoolTimeout.
    limits = httpx.Limits(max_connections=2)
    async with (
        httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30, pool=5)) as http_client,
        AsyncZiggeo(
            fake.app_token, fake.private_key, base_url=url, http_client=http_client
        ) as client,
    ):
        # Item 0 fails before anything is sent, so it is the first result while items
        # 1 and 2 are on their way over both connections.
        items: list[Any] = ["not a mapping", *[{}] * 20]
        with anyio.fail_after(20):
            if how == "break":
                async for result in client.authtokens.create_many(items, concurrency=3):
                    assert result.index == 0
                    break
            else:
                with pytest.raises(LookupError):  # noqa: PT012 - the raise is inside the loop
                    async for result in client.authtokens.create_many(items, concurrency=3):
                        raise LookupError(result.index)
            fake.latency = 0
            async with anyio.create_task_group() as group:
                for _ in range(2):
                    group.start_soon(client.authtokens.create)
    assert len(fake.tokens) == 2


class ExplodingError(Exception):
    """An error from below the SDK whose message holds what must not be shown."""


def exploding_operation(index: int, item: str) -> Awaitable[str]:
    async def run() -> str:
        await anyio.lowlevel.checkpoint()
        if item == "overflow":
            raise OverflowError("int too large to convert")
        if item == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        if item == "type":
            raise TypeError("unhashable type: 'dict'")
        if item == "below":
            raise ExplodingError("Authorization: Basic PRIVATE-SECRET")
        return item

    return run()


@pytest.mark.anyio
async def test_any_failure_of_one_item_is_that_items_result() -> None:
    items = ["ok-0", "overflow", "ok-2", "recursion", "type", "below", "ok-6"]
    batch = BatchRun(items, exploding_operation, concurrency=3, max_per_second=None)
    results = {result.index: result async for result in batch}
    assert sorted(results) == list(range(7))
    assert [results[i].value for i in (0, 2, 6)] == ["ok-0", "ok-2", "ok-6"]
    for index, kind in [(1, "OverflowError"), (3, "RecursionError"), (4, "TypeError")]:
        error = results[index].error
        assert isinstance(error, ValidationError)
        assert error.argument == f"items[{index}]"
        assert kind in str(error)
    below = results[5].error
    assert type(below) is ZiggeoError
    assert "ExplodingError" in str(below)
    # Neither the message nor the chain carries what the original error said.
    rendered = "".join(traceback.format_exception(below))
    assert "SECRET" not in rendered
    assert "SECRET" not in repr(results[5])
    assert below.__cause__ is None
    assert below.__context__ is None


@pytest.mark.anyio
async def test_weird_items_do_not_end_a_client_batch() -> None:
    server = StandIn()
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"read": deep}
    items: list[Any] = [{"session_limit": 10**5000}, {"grants": deep}, {}, {1: 2}, {}]
    async with server.client() as client:
        results = {r.index: r async for r in client.authtokens.create_many(items)}
    assert sorted(results) == list(range(5))
    assert [i for i, r in sorted(results.items()) if r.ok] == [2, 4]
    assert all(isinstance(r.error, ZiggeoError) for r in results.values() if not r.ok)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_memory_follows_the_work_in_flight_not_the_concurrency() -> None:
    async def peak_for(concurrency: int) -> int:
        server = StandIn()
        tracemalloc.start()
        try:
            async with server.client() as client:
                batch = client.authtokens.create_many([{}] * 10, concurrency=concurrency)
                assert all([r.ok async for r in batch])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    modest, huge = await peak_for(10), await peak_for(10**6)
    # A million-slot buffer or a million worker tasks would take hundreds of megabytes.
    assert huge < modest + 256 * 1024, (modest, huge)


async def read_into(seen: list[BatchResult[AuthToken]], batch: BatchRun[AuthToken, Any]) -> None:
    """Read ``batch`` in an ``async with`` block into ``seen``, which keeps what was read
    when the loop raises."""
    async with batch as results:
        async for result in results:
            seen.append(result)  # noqa: PERF401 - a comprehension would lose them on a raise


@pytest.mark.anyio
async def test_an_item_that_raises_a_base_exception_is_that_items_result() -> None:
    fake = FakeZiggeo()
    items: list[Any] = [{}, Unreadable(Unusual("PRIVATE-SECRET")), {}, Unreadable(GeneratorExit())]
    async with AsyncZiggeo(
        fake.app_token,
        fake.private_key,
        http_client=httpx2.AsyncClient(transport=fake.transport()),
    ) as client:
        with anyio.fail_after(10):
            results = {r.index: r async for r in client.authtokens.create_many(items)}
        assert sorted(results) == [0, 1, 2, 3]
        assert [i for i, r in sorted(results.items()) if r.ok] == [0, 2]
        for index, kind in [(1, "Unusual"), (3, "GeneratorExit")]:
            assert type(results[index].error) is ZiggeoError
            assert kind in str(results[index].error)
            assert "SECRET" not in str(results[index].error)
        assert len(fake.tokens) == 2
        assert (await client.authtokens.create()).token in fake.tokens


@pytest.mark.parametrize("raised", [Unusual, KeyboardInterrupt, SystemExit])
@pytest.mark.anyio
async def test_an_input_that_raises_a_base_exception_raises_it_to_the_reader(
    raised: type[BaseException],
) -> None:
    def items() -> Iterator[dict[str, int]]:
        yield {"session_limit": 1}
        yield {"session_limit": 2}
        raise raised("from the input")

    server = StandIn()
    async with server.client() as client:
        seen: list[BatchResult[AuthToken]] = []
        results = client.authtokens.create_many(items(), concurrency=1)
        with anyio.fail_after(10), pytest.raises(raised, match="from the input"):
            await read_into(seen, results)
        assert session_limits(seen) == [1, 2]
        # The batch is over; the client and this task go on.
        assert [r async for r in results] == []
        assert (await client.authtokens.create(session_limit=3)).session_limit == 3


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
@pytest.mark.anyio
async def test_an_item_that_asks_to_stop_the_program_ends_the_batch(
    raised: type[BaseException],
) -> None:
    server = StandIn()
    items: list[Any] = [{"session_limit": 1}, Unreadable(raised("stop")), {"session_limit": 3}]
    async with server.client() as client:
        seen: list[BatchResult[AuthToken]] = []
        results = client.authtokens.create_many(items, concurrency=1)
        with anyio.fail_after(10), pytest.raises(raised, match="stop"):
            await read_into(seen, results)
        assert session_limits(seen) == [1]
        assert (await client.authtokens.create(session_limit=4)).session_limit == 4


@pytest.mark.parametrize("how", ["break", "cancel"])
@pytest.mark.anyio
async def test_a_batch_stopped_early_reports_every_item_it_took(how: str) -> None:
    # Items 0 to 3 finish at once; 4 and 5 hang on the server. The reader takes one
    # result and leaves: three tokens it never read exist, and two creates may exist.
    server = StandIn(latency=60, fast_session_limits=frozenset(range(4)))
    items = [{"session_limit": number} for number in range(6)]
    async with server.client() as client:
        read: list[BatchResult[AuthToken]] = []
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async with client.authtokens.create_many(items, concurrency=6) as results:
                async for result in results:
                    read.append(result)
                    while server.in_flight < 2:
                        await anyio.sleep(0.001)
                    await anyio.wait_all_tasks_blocked()  # items 1 to 3 have finished
                    if how == "break":
                        break
                    scope.cancel()
                    await anyio.sleep(60)
        assert scope.cancelled_caught == (how == "cancel")
        abandoned = results.abandoned
        # Every item taken from the input is read or in ``abandoned``, once.
        assert sorted(r.index for r in read + list(abandoned)) == list(range(6))
        assert [r.index for r in abandoned] == sorted(r.index for r in abandoned)
        made = {r.value.token for r in read + list(abandoned) if r.value}
        assert made == set(server.tokens)
        cut_short = [r for r in abandoned if not r.ok]
        assert [r.index for r in cut_short] == [4, 5]
        assert all("may have been sent" in str(r.error) for r in cut_short)
