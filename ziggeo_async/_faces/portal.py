"""The hand-written part of the sync facade: one portal thread per client, for its whole life.

``sync.py`` is generated from the async classes. What it cannot say lives here:
starting the event loop thread (an anyio ``BlockingPortal``) on first use, building
the async client *on* that loop, sending each call through it as one round trip,
refusing calls that would block an event loop, and stopping the thread on
``close()``. A portal per call would cost a thread and a loop per call, and httpx
connections pooled on one loop break on another; so there is exactly one.

Two moments outlive ``close()``: the interpreter's exit, which closes (or, when calls
are still running, leaves behind) every client the program never closed, and
``os.fork()``, after which the child forgets its parent's loop and connections and
starts a portal of its own on its first call.
"""

from __future__ import annotations

import asyncio
import atexit
import operator
import os
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent import futures
from concurrent.futures import Future
from contextlib import suppress
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, Protocol, TypeVar

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._core.errors import BlockingCallError, ClientClosedError
from .._core.loops import running_async_library
from .client import credentials_from_env

if TYPE_CHECKING:
    import httpx2
    from typing_extensions import Self  # typing has it from 3.11; not a dependency

    from .._request.retry import RetryPolicy

__all__ = [
    "PORTAL_THREAD_NAME",
    "ClientPortal",
    "PortalIterator",
    "SyncClientBase",
]

PORTAL_THREAD_NAME: Final = "ziggeo-async-portal"
#: How long the interpreter's exit may spend closing the clients a program left open.
EXIT_GRACE_SECONDS: Final = 0.5

P = ParamSpec("P")
T = TypeVar("T")
ConfigT = TypeVar("ConfigT")


class AsyncClient(Protocol):
    """What the facade needs of an async client: a construction hook and ``aclose``."""

    @classmethod
    def _from_config(cls, config: Any) -> Any: ...

    async def aclose(self) -> None: ...


ClientT = TypeVar("ClientT", bound=AsyncClient)


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
    iterator: AsyncIterator[T]
    #: The loop the pump runs on: a forked child has another, and no pump task.
    loop: asyncio.AbstractEventLoop = attrs.field(factory=asyncio.get_running_loop)
    scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    finished: anyio.Event = attrs.field(factory=anyio.Event)
    #: The item being handed over, until the sync side has it.
    handing: _Item[T] | None = None
    #: An item taken from the iterator that the sync side never got (the pump was stopped).
    unsent: list[T] = attrs.field(factory=list)


@attrs.frozen
class _Item(Generic[T]):
    value: T


@attrs.frozen
class _Failure:
    error: BaseException


#: Pump tasks still running: the loop keeps only weak references to tasks.
_PUMPS: set[asyncio.Task[None]] = set()


async def _start_pump(
    function: Callable[P, AsyncIterator[T]], /, *args: P.args, **kwargs: P.kwargs
) -> _Pump[T]:
    # Called on the loop: the iterator may make loop-bound objects when created.
    iterator = function(*args, **kwargs)
    send, receive = anyio.create_memory_object_stream[_Item[T] | _Failure](0)
    pump = _Pump(receive, iterator)
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
                    item = pump.handing = _Item(value)
                    try:
                        await send.send(item)
                    except anyio.get_cancelled_exc_class():
                        if pump.handing is item:  # stopped before the sync side took it
                            pump.unsent.append(value)
                        raise
                    pump.handing = None
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as error:  # noqa: BLE001 - handed to the sync caller, who raises it
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


def _runs_here(pump: _Pump[Any]) -> bool:
    """Whether ``pump`` runs on the running loop: not so in a forked child, where the
    pump's loop and task are a copy of the parent's that nothing runs."""
    return pump.loop is asyncio.get_running_loop()


async def _next(pump: _Pump[T]) -> T:
    if not _runs_here(pump):
        raise ClientClosedError(
            "this batch was started in the parent process, before os.fork(); "
            "start it again in this process"
        )
    try:
        message = await pump.receive.receive()
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        raise StopAsyncIteration from None
    if pump.handing is message:
        pump.handing = None  # taken: a stop from now on does not count it as unsent
    if isinstance(message, _Failure):
        raise message.error
    return message.value


async def _stop(pump: _Pump[Any]) -> None:
    """Cancel the pump, wait until its iterator is closed (work in flight cancelled)."""
    if not _runs_here(pump):
        return  # started before os.fork(): its task stayed in the parent
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
    except BaseException as error:  # noqa: BLE001 - the caller's, whatever it is
        # Not raised here too: a KeyboardInterrupt or SystemExit out of a task would stop
        # the loop, and with it the portal thread every later call needs.
        if future.set_running_or_notify_cancel():
            future.set_exception(error)
    else:
        if future.set_running_or_notify_cancel():
            future.set_result(result)


class _LoopThread:
    """One daemon thread running an asyncio event loop (anyio's runner) until ``stop()``.

    Not anyio's ``start_blocking_portal``: its teardown is a generator's ``finally`` that
    waits for the loop thread without a bound. A client never closed has that generator
    finalized while the interpreter shuts down, when daemon threads no longer run, and
    the main thread waits there forever. Nothing here waits for the thread but
    ``stop()``, which the exit hook calls with a bound.
    """

    def __init__(self) -> None:
        started: Future[tuple[asyncio.AbstractEventLoop, anyio.Event]] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=PORTAL_THREAD_NAME, daemon=True
        )
        self._thread.start()
        self.loop, self._stopping = started.result()
        self.thread_id = self._thread.ident

    def _run(self, started: Future[tuple[asyncio.AbstractEventLoop, anyio.Event]]) -> None:
        async def serve() -> None:
            stopping = anyio.Event()
            started.set_result((asyncio.get_running_loop(), stopping))
            await stopping.wait()

        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop (its runner cancels the tasks left) and join, for ``timeout`` at most."""
        with suppress(RuntimeError):  # the loop has closed already
            self.loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)


#: Portals with a running loop thread: closed at exit, forgotten in a forked child.
_RUNNING: weakref.WeakSet[ClientPortal[Any]] = weakref.WeakSet()
_RUNNING_LOCK = threading.Lock()


class ClientPortal(Generic[ClientT]):
    """Runs one async client on its own event loop thread, started on first use.

    Calls do not use anyio's ``BlockingPortal.call``: it waits for the loop twice (to
    spawn a task, then for its result) and wraps each call in an anyio task group task
    and cancel scope. Each call is one ``call_soon_threadsafe`` that starts a plain
    asyncio task instead: one round trip, and cancelling its future cancels the task on
    the loop.
    """

    def __init__(
        self, build_client: Callable[[], ClientT], *, async_name: str, sync_name: str
    ) -> None:
        self._build_client = build_client
        self._async_name = async_name
        self._sync_name = sync_name
        self._lock = threading.Lock()
        self._client: ClientT | None = None
        self._loop_thread: _LoopThread | None = None
        self._in_flight: set[Future[Any]] = set()
        self._closed = False

    @property
    def started(self) -> bool:
        """Whether the portal thread is running."""
        return self._loop_thread is not None

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._closed

    def _on_portal_thread(self) -> bool:
        loop_thread = self._loop_thread
        return loop_thread is not None and threading.get_ident() == loop_thread.thread_id

    def refuse_blocking_caller(self) -> None:
        """Raise ``BlockingCallError`` if the calling thread runs an event loop."""
        if self._on_portal_thread():
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
                loop_thread = _LoopThread()
                try:
                    # Built on the loop: the client may make loop-bound objects.
                    client = self._wait(_submit(loop_thread.loop, _build(self._build_client)))
                except BaseException:
                    loop_thread.stop()
                    raise
                self._loop_thread, self._client = loop_thread, client
                with _RUNNING_LOCK:
                    _RUNNING.add(self)
            return self._client

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        loop_thread = self._loop_thread
        if loop_thread is None:  # close() ran between client() and here
            coroutine.close()
            raise _closed_error()
        future = _submit(loop_thread.loop, coroutine)
        self._in_flight.add(future)
        return future

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
        return PortalIterator(self, self.call(_start_pump, function, *args, **kwargs))

    def next_item(self, pump: _Pump[T]) -> T:
        """The next item of an async iterator pumped on the portal loop."""
        self.client()  # refuses blocking callers; in a forked child, starts its own portal
        return self._wait(self._submit(_next(pump)))

    def close(self) -> None:
        """Let calls in flight finish, close the async client, stop the loop, join the thread.

        Idempotent; calls made after it raise ``ClientClosedError``.
        """
        if self._on_portal_thread():
            raise BlockingCallError(
                "close() on the client's own portal thread would wait for itself forever"
            )
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._shut_down(deadline=None)

    def _shut_down(self, deadline: float | None) -> None:
        """Close the client and stop the thread, by ``deadline`` (``time.monotonic()``) if given.

        Called holding the lock, with ``_closed`` set.
        """
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        client, self._client = self._client, None
        loop_thread, self._loop_thread = self._loop_thread, None
        if loop_thread is not None and client is not None:
            try:
                futures.wait(list(self._in_flight), timeout=_left(deadline))
                closing = _submit(loop_thread.loop, _aclose_by(client, deadline))
                futures.wait([closing], timeout=_left(deadline))
                if closing.done():
                    closing.result()  # a failure to close is the caller's to see
            finally:
                loop_thread.stop(timeout=_left(deadline))
        # A call that raced close() may have reached a loop that stopped before running it.
        for future in list(self._in_flight):
            if not future.done() and future.set_running_or_notify_cancel():
                future.set_exception(_closed_error())

    def _close_at_exit(self, deadline: float) -> None:
        """The exit hook's part: close within ``deadline`` unless calls still run, and warn.

        Calls in flight belong to daemon threads the interpreter is about to stop; ending
        them would wake those threads to raise while the interpreter shuts down. So such a
        client is left to the operating system, which closes its sockets with the process.
        """
        closed_here = False
        if self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                if not self._closed and not self._in_flight:
                    self._closed = closed_here = True
                    # A failure to close has no one to go to at exit: the process ends.
                    with suppress(Exception):
                        self._shut_down(deadline)
            finally:
                self._lock.release()
        # Last: with warnings made errors, this raises.
        outcome = "closed at exit" if closed_here else "left running at exit: calls were in flight"
        warnings.warn(
            f"a {self._sync_name} was not closed; call close() or use `with` ({outcome})",
            ResourceWarning,
            stacklevel=1,
        )

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's loop, client and connections, untouched.

        Closing them here would act on sockets the parent still uses (a TLS close would
        even write to them); the child starts a portal of its own on its next call.
        """
        self._lock = threading.Lock()  # another thread of the parent may have held it
        self._client = None
        self._loop_thread = None
        self._in_flight = set()


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


async def _build(build_client: Callable[[], ClientT]) -> ClientT:
    return build_client()


async def _aclose_by(client: AsyncClient, deadline: float | None) -> None:
    with anyio.move_on_after(_left(deadline)):  # None: no limit
        await client.aclose()


def _submit(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Start ``coroutine`` as a task on ``loop`` (from another thread); its future."""
    future: Future[T] = Future()
    try:
        loop.call_soon_threadsafe(_start_task, loop, coroutine, future)
    except RuntimeError:  # the loop has closed
        coroutine.close()
        raise _closed_error() from None
    return future


def _close_portals_at_exit() -> None:
    """Close what the program left open: runs before daemon threads stop (atexit)."""
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    raised: ResourceWarning | None = None
    for portal in running:
        try:
            portal._close_at_exit(deadline)  # noqa: SLF001 - this module's own class
        except ResourceWarning as warning:  # noqa: PERF203 - -W error: still close the rest
            raised = raised or warning
    if raised is not None:
        raise raised


def _forget_portals_in_child() -> None:
    global _RUNNING_LOCK  # noqa: PLW0603 - a lock the parent's threads may have held
    _RUNNING_LOCK = threading.Lock()
    running = list(_RUNNING)
    _RUNNING.clear()
    for portal in running:
        portal._forget_after_fork()  # noqa: SLF001 - this module's own class


# After threading's own exit step (non-daemon threads joined, so their calls are done),
# while the portal threads, daemons, still run.
atexit.register(_close_portals_at_exit)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_portals_in_child)


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

    @property
    def abandoned(self) -> tuple[T, ...]:
        """A batch's ``abandoned``: the results of the items it took and never gave this
        iterator, by index; complete once ``close()`` (or the ``with`` block, or the
        client's ``close()``) has returned."""
        pump = self._pump
        left = [*pump.unsent, *getattr(pump.iterator, "abandoned", ())]
        return tuple(sorted(left, key=operator.attrgetter("index")))

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


def _with_options_applied(base: Callable[[], Any], options: dict[str, Any]) -> Callable[[], Any]:
    """``base()`` with the async client's ``with_options(**options)`` applied, made again
    whenever ``base()`` is a new client: a forked child's portal has a client of its own."""
    derived: tuple[Any, Any] | None = None  # (base's client, the one made from it)

    def client() -> Any:
        nonlocal derived
        current = base()
        if derived is None or derived[0] is not current:
            derived = (current, current.with_options(**options))
        return derived[1]

    return client


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
            sync_name=type(self).__name__,
        )
        #: The async client calls go to, on the running portal (started on first use);
        #: what the generated resources call. A bound method of the portal, not of this
        #: client: resources holding it keep no cycle, so a client dropped unclosed is
        #: collected (and warns) at once.
        self._async_client: Callable[[], ClientT] = self._portal.client
        #: False on a client made by ``with_options``: the portal is another's.
        self._owns_portal = True

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
        """Close the HTTP client, stop the portal thread and join it. Idempotent.

        On a client made by ``with_options``, nothing: the portal is its parent's.
        """
        if self._owns_portal:
            self._portal.close()

    def __enter__(self) -> Self:
        self._async_client()
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
        derived._portal = self._portal  # noqa: SLF001
        derived._async_client = _with_options_applied(self._async_client, options)  # noqa: SLF001
        derived._owns_portal = False  # noqa: SLF001
        derived._attach_resources()  # noqa: SLF001
        return derived

    @classmethod
    def from_env(cls, **options: Any) -> Self:
        """A client from ``ZIGGEO_APP_TOKEN``, ``ZIGGEO_PRIVATE_KEY`` and, when set,
        ``ZIGGEO_ENCRYPTION_KEY`` and ``ZIGGEO_BASE_URL``; keyword arguments are passed on
        (and win over ``ZIGGEO_BASE_URL``). A missing variable is a ``ConfigurationError``
        that names it."""
        return cls(*credentials_from_env(options), **options)  # type: ignore[arg-type, call-arg]

    def __del__(self) -> None:
        if not getattr(self, "_owns_portal", True):
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
