"""Batch runs: one operation over many items, a bounded number in flight.

A run pulls items lazily (an item leaves the input only when a worker is free to
send it), keeps at most ``concurrency`` requests in flight and at most
``concurrency`` finished results waiting, so memory does not grow with the
number of items. A failing item becomes a result carrying its typed error; the
run goes on.
"""

from __future__ import annotations

import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from types import TracebackType
from typing import Generic, TypeVar

import anyio
import attrs
from anyio.abc import ObjectSendStream

from ._errors import ValidationError, ZiggeoError

__all__ = ["BatchResult", "BatchRun", "check_batch_options"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")


@attrs.frozen
class BatchResult(Generic[T]):
    """The outcome of one item of a batch: its input position and its value or error."""

    #: 0-based position of the item in the input.
    index: int
    #: The operation's result when it succeeded (``None`` for deletes).
    value: T | None = None
    #: The typed error when it failed (``ValidationError`` for a malformed item).
    error: ZiggeoError | None = None

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


def check_batch_options(concurrency: object, max_per_second: object) -> None:
    """Refuse bad batch options when the batch is made, not when it is first iterated."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError("concurrency", f"expected an int >= 1, got {concurrency!r}")
    if max_per_second is not None and (
        isinstance(max_per_second, bool)
        or not isinstance(max_per_second, (int, float))
        or not math.isfinite(max_per_second)
        or max_per_second <= 0
    ):
        raise ValidationError(
            "max_per_second", f"expected a positive number or None, got {max_per_second!r}"
        )


class _Pacer:
    """Spaces request starts at least ``1 / rate`` seconds apart, across all workers."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next_start = 0.0
        self._lock = anyio.Lock()

    async def wait_turn(self) -> None:
        async with self._lock:
            now = anyio.current_time()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
            await anyio.sleep(start - now)


class BatchRun(AsyncIterator[BatchResult[T]], Generic[T, ItemT]):
    """An async iterator of ``BatchResult`` in completion order; also an async context manager.

    Prefer ``async with ... as results: async for result in results`` (or
    ``contextlib.aclosing``) when the loop may end early: leaving the block cancels
    the requests still in flight at once, instead of when the iterator is collected.
    """

    def __init__(
        self,
        items: Iterable[ItemT] | AsyncIterable[ItemT],
        operation: Callable[[int, ItemT], Awaitable[T]],
        *,
        concurrency: int,
        max_per_second: float | None,
    ) -> None:
        check_batch_options(concurrency, max_per_second)
        self._results = self._run(items, operation, concurrency, max_per_second)

    def __aiter__(self) -> BatchRun[T, ItemT]:
        return self

    async def __anext__(self) -> BatchResult[T]:
        return await self._results.__anext__()

    async def aclose(self) -> None:
        """Stop the run: cancel what is in flight and pull no more items. Idempotent."""
        await self._results.aclose()

    async def __aenter__(self) -> BatchRun[T, ItemT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @staticmethod
    async def _run(
        items: Iterable[ItemT] | AsyncIterable[ItemT],
        operation: Callable[[int, ItemT], Awaitable[T]],
        concurrency: int,
        max_per_second: float | None,
    ) -> AsyncGenerator[BatchResult[T], None]:
        source = _numbered(items)
        pull_lock = anyio.Lock()
        pacer = None if max_per_second is None else _Pacer(max_per_second)
        send, receive = anyio.create_memory_object_stream[BatchResult[T]](concurrency)

        async def worker(results: ObjectSendStream[BatchResult[T]]) -> None:
            async with results:
                while True:
                    async with pull_lock:
                        numbered = await anext(source, None)
                    if numbered is None:
                        return
                    index, item = numbered
                    if pacer is not None:
                        await pacer.wait_turn()
                    try:
                        result = BatchResult[T](index, value=await operation(index, item))
                    except ZiggeoError as error:
                        result = BatchResult[T](index, error=error)
                    await results.send(result)

        async with anyio.create_task_group() as workers, receive:
            async with send:
                for _ in range(concurrency):
                    workers.start_soon(worker, send.clone())
            try:
                async for result in receive:
                    try:
                        yield result
                    except GeneratorExit:
                        # Closed early. Returning (not re-raising) lets the task group exit
                        # cleanly once the finally below has cancelled the workers.
                        return
            finally:
                workers.cancel_scope.cancel()
                # The input may be the caller's async generator: close it now, not at GC.
                with anyio.CancelScope(shield=True):
                    await source.aclose()


async def _numbered(
    items: Iterable[ItemT] | AsyncIterable[ItemT],
) -> AsyncGenerator[tuple[int, ItemT], None]:
    index = 0
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield index, item
            index += 1
    else:
        for item in items:
            yield index, item
            index += 1
