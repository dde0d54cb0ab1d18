"""Batch runs: one operation over many items, a bounded number in flight.

A run pulls items lazily (an item leaves the input only when a worker is free), keeps
at most ``concurrency`` requests in flight and at most ``concurrency`` finished results
waiting for the reader, and starts
workers only as items come, so memory follows the work in flight, not the number of
items or ``concurrency``. Any failure of one item, whatever its type, becomes that
item's result, as a ``ZiggeoError``; the run goes on. Only a failure of the input
itself, or a ``KeyboardInterrupt`` or ``SystemExit``, ends the run: the reader gets it
after the results before it. The workers run in a task of their own, so no
cancel scope spans the reader's ``await``s and a dropped run leaves the reader alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import operator
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from contextlib import suppress
from types import TracebackType
from typing import Generic, TypeVar

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._core.arguments import plain_number
from .._core.errors import ValidationError, ZiggeoError
from .._core.loops import running_async_library
from .pacer import CURRENT_PACER, Pacer

__all__ = ["BatchResult", "BatchRun", "check_batch_options"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")


def _error_key(error: ZiggeoError | None) -> tuple[object, ...] | None:
    if error is None:
        return None
    return (
        type(error),
        str(error),
        getattr(error, "status_code", None),
        getattr(error, "body", None),
    )


@attrs.frozen
class BatchResult(Generic[T]):
    """The outcome of one item of a batch: its input position and its value or error."""

    #: 0-based position of the item in the input.
    index: int
    #: The operation's result when it succeeded (``None`` for deletes).
    value: T | None = None
    #: The typed error when it failed (``ValidationError`` for a malformed item). Errors
    #: compare by class, message, status and body: an exception's own equality is
    #: identity, which a pickled or copied result could never meet.
    error: ZiggeoError | None = attrs.field(default=None, eq=_error_key)

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


def check_batch_options(concurrency: object, max_per_second: object) -> None:
    """Refuse bad batch options when the batch is made, not when it is first iterated."""
    # The type named, not the value: repr() of an int of more than 4,300 digits raises.
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise ValidationError(
            "concurrency", f"expected an int >= 1, got {type(concurrency).__name__}"
        )
    if plain_number(concurrency) < 1:
        raise ValidationError("concurrency", "expected an int >= 1")
    if max_per_second is None:
        return
    if isinstance(max_per_second, bool) or not isinstance(max_per_second, (int, float)):
        raise ValidationError(
            "max_per_second",
            f"expected a positive number or None, got {type(max_per_second).__name__}",
        )
    # Compared, not converted: float() of an int too large for one raises OverflowError.
    # The comparison is also False for NaN and infinity.
    if not 0 < plain_number(max_per_second) <= sys.float_info.max:
        raise ValidationError("max_per_second", "expected a positive finite number or None")


class BatchRun(AsyncIterator[BatchResult[T]], Generic[T, ItemT]):
    """An async iterator of ``BatchResult`` in completion order; also an async context manager.

    The requests run in a task of their own, never in the caller's, and no cancel scope
    of the caller's task is involved: an iterator dropped half way (``break``,
    ``return`` or an exception out of a bare ``async for``) cancels them when it is
    collected and leaves the caller's task as it was. ``async with ... as results`` (or
    ``contextlib.aclosing``) cancels them when the block is left and waits until they
    are: prefer it when the loop may end early. Then ``abandoned`` holds what the run
    had taken from the input and not given the reader.
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
        # One pace for the whole batch: max_per_second is its ceiling, and a 429 slows
        # every worker (see pacer.py).
        pacer = Pacer(max_per_second)
        self._run = _Run(items, operation, concurrency, pacer)
        self._done = False

    def __aiter__(self) -> BatchRun[T, ItemT]:
        return self

    async def __anext__(self) -> BatchResult[T]:
        if self._done:
            raise StopAsyncIteration
        self._run.start()
        try:
            result = await self._run.next_result()
        except anyio.get_cancelled_exc_class():
            raise  # a cancelled reader may go on
        except BaseException:  # the input failed, or the program is stopping: the run is over
            self._done = True
            raise
        if result is None:
            self._done = True
            raise StopAsyncIteration
        return result

    async def aclose(self) -> None:
        """Stop the run: cancel what is in flight, pull no more items, and wait. Idempotent."""
        self._done = True
        self._run.cancel()
        # Shielded: closing is what a cancelled reader's `async with` does on the way out,
        # and the run, cancelled already, ends without waiting on the network.
        with anyio.CancelScope(shield=True):
            await self._run.stopped()

    @property
    def abandoned(self) -> tuple[BatchResult[T], ...]:
        """The items taken from the input whose results the reader did not get, by index.

        Complete once ``aclose()`` (or the ``async with`` block) has returned after the
        run was stopped early: the results that had come and were not read (a created
        token among them), and a result for each item cancelled on its way, whose error
        says it may have been sent (a create may have made a token). Empty when every
        result was read.
        """
        return tuple(sorted(self._run.abandoned, key=operator.attrgetter("index")))

    async def __aenter__(self) -> BatchRun[T, ItemT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Dropped unfinished: have the run's own loop cancel it, as that loop does for a
        # dropped async generator. Scheduling only; collection may happen in any thread.
        run = getattr(self, "_run", None)  # None when the constructor raised
        if run is not None and not self._done:
            run.cancel_soon()


class _Run(Generic[T, ItemT]):
    """One batch's workers, in a task of their own, and what the reader takes from them.

    Workers are started as work appears, never more than ``concurrency`` and never
    more than one beyond the items in flight, so a huge ``concurrency`` costs nothing
    until there are items for it. Each worker sends one item at a time, so requests in
    flight stay within ``concurrency``. A finished result takes one of ``concurrency``
    places in the reader's queue, given back when the reader takes it; a worker whose
    result finds the queue full waits, so a slow reader stops the pulling.

    Why the queue has places of its own, rather than an item holding one slot from its
    pull until it is read: then every answer had to wait for the reader's turn on the
    event loop before its worker could send the next request, and on average a quarter
    of a 64-wide batch's connections stood idle, which httpcore2's pool pays for on every
    request (benchmarks/README.md).
    """

    def __init__(
        self,
        items: Iterable[ItemT] | AsyncIterable[ItemT],
        operation: Callable[[int, ItemT], Awaitable[T]],
        concurrency: int,
        pacer: Pacer,
    ) -> None:
        self._operation = operation
        self._concurrency = concurrency
        self._pacer = pacer
        self._unread_places = anyio.Semaphore(concurrency)
        # Made by start(): streams warn when collected unclosed, and a run may never start.
        self._send: MemoryObjectSendStream[BatchResult[T]]
        self._receive: MemoryObjectReceiveStream[BatchResult[T]]
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._started = False
        self._call_soon: Callable[[Callable[[], None]], None] | None = None
        self._workers = 0
        self._waiting = 0
        #: Results taken from the input and never given to the reader (see ``abandoned``).
        self.abandoned: list[BatchResult[T]] = []
        #: What ended the run early: the input's failure, or a request to stop the program.
        self._failure: BaseException | None = None
        # Pulling from a plain iterable never suspends, so workers cannot interleave
        # there; the lock (and its trip through the event loop) is for async sources.
        self._pull_lock = anyio.Lock() if isinstance(items, AsyncIterable) else None
        self._source = _numbered(items)

    def start(self) -> None:
        if not self._started:
            self._started = True
            # Unbounded in type only: every result in it holds a slot.
            self._send, self._receive = anyio.create_memory_object_stream[BatchResult[T]](math.inf)
            self._call_soon = spawn_detached(self._drive)

    def cancel(self) -> None:
        """Cancel the workers (from any task on the run's event loop); does not wait."""
        self._scope.cancel()
        if self._started:
            # The results that came and were not read: kept, not dropped with the stream.
            with suppress(anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                while True:
                    self.abandoned.append(self._receive.receive_nowait())
            self._receive.close()

    def cancel_soon(self) -> None:
        """``cancel()`` from any thread: scheduled on the run's event loop, if still running."""
        if self._call_soon is not None:
            self._call_soon(self.cancel)

    async def stopped(self) -> None:
        """Wait until the workers are done and the input is closed (at once if never started)."""
        if self._started:
            await self._finished.wait()

    async def next_result(self) -> BatchResult[T] | None:
        """The next finished result, or None once every item is done."""
        # Take what is ready without a trip through the event loop; wait only when nothing is.
        try:
            result = self._receive.receive_nowait()
        except anyio.WouldBlock:
            try:
                result = await self._receive.receive()
            except anyio.EndOfStream:
                return self._end()
        except anyio.EndOfStream:
            return self._end()
        self._unread_places.release()
        return result

    def _end(self) -> BatchResult[T] | None:
        self._receive.close()
        if self._failure is not None:
            # The input itself failed (not one of its items): the reader's to see.
            raise self._failure
        return None

    def _fail(self, error: BaseException) -> None:
        """End the run for ``error``, which the reader gets after the results before it."""
        self._failure = self._failure or error
        self._scope.cancel()

    async def _drive(self) -> None:
        # This task's context, and so its workers': every attempt of theirs takes a turn.
        CURRENT_PACER.set(self._pacer)
        try:
            with self._scope:
                async with anyio.create_task_group() as workers:
                    self._workers = 1
                    workers.start_soon(self._work, workers)
        finally:
            try:
                # The input may be the caller's async generator: close it now, not at GC.
                with anyio.CancelScope(shield=True):
                    await self._source.aclose()
            except BaseException as error:  # noqa: BLE001 - this task must not raise
                self._failure = self._failure or error
            finally:
                self._send.close()
                self._finished.set()

    async def _work(self, workers: anyio.abc.TaskGroup) -> None:
        while True:
            self._waiting += 1
            try:
                numbered = await self._pull()
            finally:
                self._waiting -= 1
            if numbered is None:
                return
            if not self._waiting and self._workers < self._concurrency:
                # Every other worker is busy: one more may pull the next item meanwhile.
                self._workers += 1
                workers.start_soon(self._work, workers)
            index, item = numbered
            result: BatchResult[T]
            try:
                result = BatchResult(index, value=await self._operation(index, item))
            except anyio.get_cancelled_exc_class():
                self.abandoned.append(BatchResult(index, error=_cut_short(index)))
                raise
            except (KeyboardInterrupt, SystemExit) as error:
                self._fail(error)  # the program is stopping, not this item failing
                return
            except BaseException as error:  # noqa: BLE001 - every other failure is the item's result
                result = BatchResult(index, error=item_error(index, error))
            try:
                # Without a trip through the event loop while the reader keeps up.
                self._unread_places.acquire_nowait()
            except anyio.WouldBlock:
                try:
                    await self._unread_places.acquire()
                except anyio.get_cancelled_exc_class():
                    self.abandoned.append(result)
                    raise
            try:
                self._send.send_nowait(result)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.abandoned.append(result)
                return  # the reader has gone: the run is ending

    async def _pull(self) -> tuple[int, ItemT] | None:
        source = self._source
        try:
            if self._pull_lock is None:
                return await anext(source, None)
            async with self._pull_lock:
                return await anext(source, None)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as error:  # noqa: BLE001 - handed to the reader after the results
            self._fail(error)
            return None


def _cut_short(index: int) -> ZiggeoError:
    return ZiggeoError(
        f"items[{index}] was cancelled when the batch stopped; it may have been sent, "
        "so its outcome is unknown"
    )


def item_error(index: int, error: BaseException) -> ZiggeoError:
    """A batch item's failure as a ``ZiggeoError``, whatever was raised.

    An error of another type (an ``OverflowError`` or ``RecursionError`` from a
    strange item, an unexpected error from below) is named by its type only and not
    chained: its message and context could hold anything, the request's credentials
    included, and a batch result is made to be logged.
    """
    if isinstance(error, ZiggeoError):
        return error
    kind = type(error).__name__
    if isinstance(error, (TypeError, ValueError, ArithmeticError, RecursionError)):
        return ValidationError(f"items[{index}]", f"this item could not be sent ({kind})")
    return ZiggeoError(f"items[{index}] failed with an unexpected {kind}")


def spawn_detached(
    function: Callable[[], Awaitable[None]],
) -> Callable[[Callable[[], None]], None]:
    """Run ``function()`` in a task of its own on the running event loop (asyncio or trio).

    Outside every task group, so no cancel scope of the caller's task is involved: the
    task ends by itself or when cancelled through a scope it enters itself. It must not
    raise (on trio a failing system task ends the whole run). Returns a thread-safe
    ``call_soon(callback)`` for that loop, which does nothing once the loop has ended.
    """
    if running_async_library() == "trio":
        import trio  # noqa: PLC0415 - only a program running trio gets here

        trio.lowlevel.spawn_system_task(function, context=contextvars.copy_context())
        token = trio.lowlevel.current_trio_token()

        def call_soon_in_trio(callback: Callable[[], None]) -> None:
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(callback)

        return call_soon_in_trio
    loop = asyncio.get_running_loop()
    task: asyncio.Task[None] = loop.create_task(_run_awaitable(function))
    _DETACHED.add(task)
    task.add_done_callback(_DETACHED.discard)

    def call_soon_in_asyncio(callback: Callable[[], None]) -> None:
        with suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(callback)

    return call_soon_in_asyncio


async def _run_awaitable(function: Callable[[], Awaitable[None]]) -> None:
    await function()


#: Detached asyncio tasks still running: the loop keeps only weak references to tasks.
_DETACHED: set[asyncio.Task[None]] = set()


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
