"""The hand-written part of the sync facade: one portal thread per client, for its whole life.

``_sync.py`` is generated from the async classes. What it cannot say lives here:
starting the event loop thread (an anyio ``BlockingPortal``) on first use, building
the async client *on* that loop, sending each call through it as one round trip,
refusing calls that would block an event loop, and stopping the thread on
``close()``. A portal per call would cost a thread and a loop per call, and httpx
connections pooled on one loop break on another; so there is exactly one.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent import futures
from concurrent.futures import Future
from contextlib import ExitStack, suppress
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, Protocol, TypeVar

import anyio
import attrs
from anyio.from_thread import start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from typing_extensions import Self

from ._errors import BlockingCallError, ClientClosedError

if TYPE_CHECKING:
    import httpx2

    from ._retry import RetryPolicy

__all__ = [
    "PORTAL_THREAD_NAME",
    "ClientPortal",
    "PortalIterator",
    "SyncClientBase",
    "running_async_library",
]

PORTAL_THREAD_NAME: Final = "ziggeo-async-portal"

P = ParamSpec("P")
T = TypeVar("T")
ConfigT = TypeVar("ConfigT")
SyncClientT = TypeVar("SyncClientT", bound="SyncClientBase[Any, Any]")


class AsyncClient(Protocol):
    """What the facade needs of an async client: a construction hook and ``aclose``."""

    @classmethod
    def _from_config(cls, config: Any) -> Any: ...

    async def aclose(self) -> None: ...


ClientT = TypeVar("ClientT", bound=AsyncClient)


def running_async_library() -> str | None:
    """The event loop library running in the calling thread (``"asyncio"``, ``"trio"``), if any."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    # Only a program that imported trio can be running it; never import it here.
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    return None


def _closed_error() -> ClientClosedError:
    return ClientClosedError("this sync client is closed; make a new client")


@attrs.define
class _Pump(Generic[T]):
    """An async iterator driven by one task on the portal loop, from its start to its close.

    Each ``next()`` from the sync side runs in a task of its own, but an async iterator
    may hold a task group or cancel scope (a batch does), which must be entered and left
    in one task. So one pump task iterates and hands items over an unbuffered stream.
    """

    receive: MemoryObjectReceiveStream[_Item[T] | _Failure]
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    finished: anyio.Event = attrs.field(factory=anyio.Event)


@attrs.frozen
class _Item(Generic[T]):
    value: T


@attrs.frozen
class _Failure:
    error: Exception


#: Pump tasks still running: the loop keeps only weak references to tasks.
_PUMPS: set[asyncio.Task[None]] = set()


async def _start_pump(iterator: AsyncIterator[T]) -> _Pump[T]:
    send, receive = anyio.create_memory_object_stream[_Item[T] | _Failure](0)
    pump = _Pump(receive)
    # A task of its own, outside any caller's task: it lives until the iterator ends or
    # the sync iterator is closed. Held in _PUMPS so the loop cannot drop it meanwhile.
    task = asyncio.get_running_loop().create_task(_run_pump(pump, send, iterator))
    _PUMPS.add(task)
    task.add_done_callback(_PUMPS.discard)
    return pump


async def _run_pump(
    pump: _Pump[T], send: MemoryObjectSendStream[_Item[T] | _Failure], iterator: AsyncIterator[T]
) -> None:
    try:
        with pump.scope, send:
            try:
                async for value in iterator:
                    await send.send(_Item(value))
            except Exception as error:  # noqa: BLE001 - handed to the sync caller, who raises it
                await send.send(_Failure(error))
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
    finally:
        # Unbuffered: every item sent was taken, so nothing is lost by closing this end
        # too, even when the loop's shutdown ended the pump (no receiver left to close it).
        pump.receive.close()
        pump.finished.set()


async def _next(pump: _Pump[T]) -> T:
    try:
        message = await pump.receive.receive()
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        raise StopAsyncIteration from None
    if isinstance(message, _Failure):
        raise message.error
    return message.value


async def _stop(pump: _Pump[Any]) -> None:
    """Cancel the pump, wait until its iterator is closed (work in flight cancelled)."""
    pump.scope.cancel()
    await pump.finished.wait()


def _start_task(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T], future: Future[T]
) -> None:
    """On the loop: run ``coroutine`` as a task that reports to ``future``.

    The future stays pending while the task runs, so the caller can cancel it; a done
    callback then cancels the task, from the caller's thread.
    """
    if future.cancelled():
        coroutine.close()
        return
    task = loop.create_task(_report(coroutine, future))
    future.add_done_callback(partial(_cancel_task, loop, task))


def _cancel_task(
    loop: asyncio.AbstractEventLoop, task: asyncio.Task[None], done: Future[Any]
) -> None:
    if done.cancelled():
        with suppress(RuntimeError):  # the loop has closed, and the task with it
            loop.call_soon_threadsafe(task.cancel)


async def _report(coroutine: Coroutine[Any, Any, T], future: Future[T]) -> None:
    # The result goes to the caller from inside the task's last step: the caller wakes
    # while the loop is about to go idle, not one loop iteration later.
    try:
        result = await coroutine
    except asyncio.CancelledError:
        if future.set_running_or_notify_cancel():  # cancelled by the loop's shutdown
            future.set_exception(_closed_error())
        raise
    except BaseException as error:
        if future.set_running_or_notify_cancel():
            future.set_exception(error)
        if not isinstance(error, Exception):
            raise
    else:
        if future.set_running_or_notify_cancel():
            future.set_result(result)


class ClientPortal(Generic[ClientT]):
    """Runs one async client on its own event loop thread, started on first use.

    The thread and its asyncio loop are an anyio ``BlockingPortal``'s, which also runs
    the lifecycle (building the client, closing it). Calls do not use
    ``BlockingPortal.call``: it waits for the loop twice (to spawn a task, then for its
    result) and wraps each call in an anyio task group task and cancel scope. Each call
    is one ``call_soon_threadsafe`` that starts a plain asyncio task instead: one round
    trip, and cancelling its future cancels the task on the loop.
    """

    def __init__(self, build_client: Callable[[], ClientT], *, async_name: str) -> None:
        self._build_client = build_client
        self._async_name = async_name
        self._lock = threading.Lock()
        self._client: ClientT | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._shutdown: ExitStack | None = None
        self._in_flight: set[Future[Any]] = set()
        self._closed = False

    @property
    def started(self) -> bool:
        """Whether the portal thread is running."""
        return self._loop is not None

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._closed

    def refuse_blocking_caller(self) -> None:
        """Raise ``BlockingCallError`` if the calling thread runs an event loop."""
        if threading.get_ident() == self._thread_id:
            raise BlockingCallError(
                "a sync client call was made on the client's own portal thread, where it "
                f"would deadlock; code running on an event loop should use {self._async_name}"
            )
        library = running_async_library()
        if library is not None:
            raise BlockingCallError(
                f"a sync client call blocks, and this thread runs a {library} event loop; "
                f"use {self._async_name} and await its methods instead"
            )

    def client(self) -> ClientT:
        """The async client on the running portal (started on first use) for one call.

        Refuses callers inside an event loop, and raises ``ClientClosedError`` after ``close()``.
        """
        self.refuse_blocking_caller()
        client = self._client
        return self._start() if client is None else client

    def _start(self) -> ClientT:
        with self._lock:
            if self._closed:
                raise _closed_error()
            if self._client is None:
                # Everything started so far is undone, in reverse, if a later step fails;
                # close() runs the same stack.
                with ExitStack() as stack:
                    portal = stack.enter_context(
                        start_blocking_portal("asyncio", name=PORTAL_THREAD_NAME)
                    )
                    loop, thread_id = portal.call(_loop_and_thread)
                    client = portal.call(self._build_client)
                    stack.callback(portal.call, client.aclose)
                    self._shutdown = stack.pop_all()
                self._loop, self._thread_id = loop, thread_id
                self._client = client
            return self._client

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        future: Future[T] = Future()
        loop = self._loop
        if loop is not None:  # else close() ran between client() and here
            try:
                loop.call_soon_threadsafe(_start_task, loop, coroutine, future)
            except RuntimeError:  # the loop has closed
                pass
            else:
                self._in_flight.add(future)
                return future
        coroutine.close()
        raise _closed_error()

    def schedule(self, coroutine: Coroutine[Any, Any, object]) -> None:
        """Run ``coroutine`` on the portal loop without waiting for it (for finalizers)."""
        self._submit(coroutine).add_done_callback(self._in_flight.discard)

    def _wait(self, future: Future[T]) -> T:
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt (or any other interruption) while waiting: the call is still
            # running on the loop. Cancelling the future cancels its task there.
            future.cancel()
            raise
        finally:
            self._in_flight.discard(future)

    def call(
        self, function: Callable[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``function(*args, **kwargs)`` on the portal loop: one round trip.

        The coroutine object is made here and runs there. An interruption while
        waiting (Ctrl-C) cancels the call on the loop, then propagates.
        """
        return self._wait(self._submit(function(*args, **kwargs)))

    def iterate(
        self, function: Callable[P, AsyncIterator[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> PortalIterator[T]:
        """Call ``function`` on the portal loop and iterate the async iterator it returns."""

        # Called on the loop: the iterator may make loop-bound objects when created.
        async def start() -> _Pump[T]:
            return await _start_pump(function(*args, **kwargs))

        return PortalIterator(self, self._wait(self._submit(start())))

    def next_item(self, pump: _Pump[T]) -> T:
        """The next item of an async iterator pumped on the portal loop."""
        self.refuse_blocking_caller()
        return self._wait(self._submit(_next(pump)))

    def close(self) -> None:
        """Let calls in flight finish, close the async client, stop the loop, join the thread.

        Idempotent; calls made after it raise ``ClientClosedError``.
        """
        if threading.get_ident() == self._thread_id:
            raise BlockingCallError(
                "close() on the client's own portal thread would wait for itself forever"
            )
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._client = None
            self._loop = None
            shutdown, self._shutdown = self._shutdown, None
            if shutdown is not None:
                futures.wait(list(self._in_flight))
                shutdown.close()
            # A call that raced close() may have reached a loop that stopped before running it.
            for future in list(self._in_flight):
                if not future.done() and future.set_running_or_notify_cancel():
                    future.set_exception(_closed_error())


def _loop_and_thread() -> tuple[asyncio.AbstractEventLoop, int]:
    return asyncio.get_running_loop(), threading.get_ident()


class PortalIterator(Iterator[T]):
    """A sync iterator over an async iterator that lives on a client's portal loop.

    Each ``next()`` is one round trip through the portal. ``close()``, leaving its
    ``with`` block, or dropping it before the end closes the async iterator on the
    loop (``aclose()``), which cancels the work it has in flight.
    """

    def __init__(self, portal: ClientPortal[Any], pump: _Pump[T]) -> None:
        self._portal = portal
        self._pump = pump
        self._done = False

    def __repr__(self) -> str:
        return f"<PortalIterator ({'done' if self._done else 'open'})>"

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            return self._portal.next_item(self._pump)
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None

    def close(self) -> None:
        """Close the async iterator on the loop, cancelling its in-flight work. Idempotent."""
        if self._done:
            return
        self._done = True
        self._portal.refuse_blocking_caller()
        # A closed client has already stopped the loop, and the iterator with it.
        with suppress(ClientClosedError):
            self._portal.call(_stop, self._pump)

    def __enter__(self) -> PortalIterator[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_done", True):
            return
        # Schedule, never wait: a finalizer must not block. On the portal thread itself
        # (or after close) scheduling is refused, and the loop's shutdown cleans up.
        with suppress(ClientClosedError):
            self._portal.schedule(_stop(self._pump))


class _DerivedPortal(ClientPortal[Any]):
    """The portal of a client made by ``with_options``: its parent's, with the async
    client's own ``with_options`` applied, and nothing of its own to close."""

    def __init__(self, parent: ClientPortal[Any], options: dict[str, Any]) -> None:
        # No super().__init__: every call goes to the parent's loop and thread.
        self._parent = parent
        self._options = options
        self._derived: Any = None

    @property
    def started(self) -> bool:
        return self._parent.started

    @property
    def closed(self) -> bool:
        return self._parent.closed

    def refuse_blocking_caller(self) -> None:
        self._parent.refuse_blocking_caller()

    def client(self) -> Any:
        parent = self._parent.client()
        if self._derived is None:  # with_options does no I/O: fine on any thread
            self._derived = parent.with_options(**self._options)
        return self._derived

    def schedule(self, coroutine: Coroutine[Any, Any, object]) -> None:
        self._parent.schedule(coroutine)

    def call(
        self, function: Callable[P, Coroutine[Any, Any, T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return self._parent.call(function, *args, **kwargs)

    def iterate(
        self, function: Callable[P, AsyncIterator[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> PortalIterator[T]:
        return self._parent.iterate(function, *args, **kwargs)

    def next_item(self, pump: _Pump[T]) -> T:
        return self._parent.next_item(pump)

    def close(self) -> None:
        """Nothing: the parent's portal, connections and thread are the parent's to close."""


class SyncClientBase(Generic[ClientT, ConfigT]):
    """The hand-written base of a generated sync client: its portal's lifecycle.

    ``with`` (or the first call) starts the portal; ``close()`` (or leaving ``with``)
    closes the async client on the loop and joins the thread. An unclosed client
    warns (``ResourceWarning``) when collected; it does no I/O then.
    """

    def __init__(self, async_class: type[ClientT], config: ConfigT) -> None:
        self._config = config
        self._portal: ClientPortal[ClientT] = ClientPortal(
            # The one place the facade uses the async client's construction hook.
            partial(async_class._from_config, config),  # noqa: SLF001
            async_name=async_class.__name__,
        )

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._portal.closed

    def __repr__(self) -> str:
        state = "closed" if self._portal.closed else "running" if self._portal.started else "idle"
        return f"<{type(self).__name__} {self._config!r} ({state})>"

    def __reduce__(self) -> str:
        raise TypeError(f"{type(self).__name__} holds credentials and a thread; it does not pickle")

    def close(self) -> None:
        """Close the HTTP client, stop the portal thread and join it. Idempotent."""
        self._portal.close()

    def __enter__(self: SyncClientT) -> SyncClientT:  # noqa: PYI019 - Self needs 3.11
        self._portal.client()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _attach_resources(self) -> None:
        """Set the resources on ``self._portal``; the generated class defines it."""
        raise NotImplementedError

    def with_options(
        self,
        *,
        timeout: float | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> Self:
        """A client with other defaults on this one's portal, connections and lifecycle.

        An argument left out keeps this client's setting. Closing this client closes
        the one made here too; closing that one does nothing (it owns nothing).
        """
        options: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": max_retries,
            "retry": retry,
            "deadline": deadline,
        }
        # The same class: its private state is this code's own.
        derived = type(self).__new__(type(self))
        derived._config = self._config.with_options(**options)  # type: ignore[attr-defined]  # noqa: SLF001
        derived._portal = _DerivedPortal(self._portal, options)  # noqa: SLF001
        derived._attach_resources()  # noqa: SLF001
        return derived

    @classmethod
    def from_env(cls, **options: Any) -> Self:
        """A client from ``ZIGGEO_APP_TOKEN``, ``ZIGGEO_PRIVATE_KEY`` and, when set,
        ``ZIGGEO_ENCRYPTION_KEY`` and ``ZIGGEO_BASE_URL``; keyword arguments are passed on
        (and win over ``ZIGGEO_BASE_URL``). A missing variable is a ``ConfigurationError``
        that names it."""
        from ._client import credentials_from_env  # noqa: PLC0415 - the client imports this

        return cls(*credentials_from_env(options), **options)  # type: ignore[arg-type, call-arg]

    def __del__(self) -> None:
        if isinstance(getattr(self, "_portal", None), _DerivedPortal):
            return  # the portal is its parent's, which warns for both
        portal = getattr(self, "_portal", None)  # None when the constructor raised
        if portal is not None and portal.started and not portal.closed:
            warnings.warn(
                f"{self!r} was not closed; call close() or use `with` (its portal thread "
                "keeps running until the process exits)",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
