"""How the request pipeline reaches the network: a lent ``httpx.AsyncClient``, or our own transport.

A client the caller lends is used as they configured it: every request goes
through ``AsyncClient.send`` (their auth, hooks, proxies, mounts). When the SDK
owns the connection it keeps only an httpx transport, because ``send`` would
spend about as much CPU per request on features the SDK does not use (cookies,
auth flows, redirects, event hooks) as the transport spends moving the bytes
(see benchmarks/README.md). Either way requests and responses are ``httpx`` objects
and failures ``httpx`` exceptions, so the pipeline treats both alike.

The owned transport is a set of small httpcore pools (``ShardedTransport`` of
``PoolTransport``); under asyncio their connections are the SDK's own
(``_http11.AsyncioHTTP11Connection`` on ``_network.NetworkBackend``), under trio
httpcore's. Being httpcore pools, they are what respx patches. With
``http_backend="aiohttp"`` (the ``fast`` extra, asyncio only) it is
``AiohttpTransport`` instead: a choice, not automatic when aiohttp happens to be
installed, because tools that mock httpx at the httpcore layer (respx) do not see
requests that go through aiohttp.
"""

from __future__ import annotations

import importlib.util
import ssl
import urllib.request
from collections.abc import Iterable
from typing import Any, Final, Protocol

import anyio
import httpcore
import httpx
import sniffio

from ._errors import ConfigurationError
from ._http11 import AsyncioHTTP11Connection
from ._network import NetworkBackend

__all__ = [
    "HTTP_BACKENDS",
    "ClientConnection",
    "HTTPConnection",
    "OwnedTransport",
    "PoolTransport",
    "ShardedTransport",
    "aiohttp_installed",
    "open_connection",
]

_TIMEOUT: Final = "timeout"


class HTTPConnection(Protocol):
    """What the pipeline needs: build a request, send it and read the whole response."""

    def build_request(
        self,
        method: str,
        url: httpx.URL,
        *,
        content: bytes | None,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Request: ...

    async def send(self, request: httpx.Request) -> httpx.Response: ...

    async def aclose(self) -> None: ...

    @property
    def is_closed(self) -> bool: ...

    def httpcore_pools(self) -> Iterable[object]:
        """The httpcore connection pools behind this connection (tidied after a failed send)."""
        ...


class ClientConnection:
    """An ``httpx.AsyncClient``, used through ``send``; closed by us only if ``owned``."""

    __slots__ = ("client", "owned")

    def __init__(self, client: httpx.AsyncClient, *, owned: bool) -> None:
        self.client = client
        self.owned = owned

    def build_request(
        self,
        method: str,
        url: httpx.URL,
        *,
        content: bytes | None,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        return self.client.build_request(
            method, url, content=content, headers=headers, timeout=timeout
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.client.send(request, auth=None, follow_redirects=False)
        except BaseException:
            await _reclaim_orphaned_connections(self)
            raise

    async def aclose(self) -> None:
        if self.owned:
            await self.client.aclose()

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

    def httpcore_pools(self) -> Iterable[object]:
        # A lent client's pool is httpx's to hold: reached defensively, as the workaround is.
        return (getattr(getattr(self.client, "_transport", None), "_pool", None),)


class OwnedTransport:
    """A transport the SDK made and closes; requests go to it directly."""

    __slots__ = ("_closed", "_default_timeout", "_default_timeout_dict", "transport")

    def __init__(self, transport: httpx.AsyncBaseTransport, default_timeout: httpx.Timeout) -> None:
        self.transport = transport
        self._default_timeout = default_timeout
        self._default_timeout_dict = default_timeout.as_dict()
        self._closed = False

    def build_request(
        self,
        method: str,
        url: httpx.URL,
        *,
        content: bytes | None,
        headers: httpx.Headers,
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        timeouts: dict[str, Any] = (
            self._default_timeout_dict if timeout is self._default_timeout else timeout.as_dict()
        )
        # Request(stream=...) skips httpx's header fill-in, which rescans the headers
        # several times per request; Host and Content-Length are set here instead.
        raw = [(b"Host", url.netloc), *headers.raw]
        if content is not None or method == "POST":
            raw.append((b"Content-Length", b"%d" % len(content or b"")))
        request = httpx.Request(
            method,
            url,
            headers=httpx.Headers(raw, encoding="ascii"),
            stream=httpx.ByteStream(content or b""),
            extensions={_TIMEOUT: timeouts},
        )
        request.read()
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException:
            await _reclaim_orphaned_connections(self)
            raise
        response.request = request
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            await _reclaim_orphaned_connections(self)
            raise
        return response

    async def aclose(self) -> None:
        self._closed = True
        await self.transport.aclose()

    @property
    def is_closed(self) -> bool:
        return self._closed

    def httpcore_pools(self) -> Iterable[object]:
        if isinstance(self.transport, ShardedTransport):
            return tuple(shard.pool for shard in self.transport.shards)
        return ()  # aiohttp keeps its own pool


class _ConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, making ``AsyncioHTTP11Connection`` under asyncio, its own under trio.

    ``create_connection`` is the hook httpcore's own proxy pools override; everything
    else (queueing, limits, keep-alive expiry, respx's patching) is httpcore's.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        max_connections: int | None,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        # HTTP/1.1 only, said in the handshake as httpcore says it (its connections set
        # the same on this context under trio).
        ssl_context.set_alpn_protocols(["http/1.1"])
        backend = NetworkBackend()
        super().__init__(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=backend,
        )
        self._sdk_ssl_context = ssl_context
        self._sdk_keepalive_expiry = keepalive_expiry
        self._sdk_backend = backend

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if sniffio.current_async_library() != "asyncio":
            return super().create_connection(origin)
        return AsyncioHTTP11Connection(
            origin,
            ssl_context=self._sdk_ssl_context,
            keepalive_expiry=self._sdk_keepalive_expiry,
            network_backend=self._sdk_backend,
        )


class PoolTransport(httpx.AsyncBaseTransport):
    """One httpcore connection pool of the SDK's choosing; httpx types in and out.

    What ``httpx.AsyncHTTPTransport`` does for a plain pool, with the pool's
    connections chosen here (httpx has no argument for that): the request handed to
    httpcore as is, the whole body read before returning (the pipeline reads it at
    once anyway), and httpcore's exceptions raised as httpx's, the most specific first.
    """

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        self._max_connections = limits.max_connections
        self.pool = _ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    def __repr__(self) -> str:
        return f"<PoolTransport max_connections={self._max_connections}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            # Bytes, when the body is already read (as the SDK's requests are), spare
            # httpcore's checks for which kind of stream it was given.
            content: bytes | httpx.AsyncByteStream = request.content
        except httpx.RequestNotRead:
            content = request.stream  # type: ignore[assignment]  # an async byte stream here
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=content,
            extensions=request.extensions,
        )
        try:
            response = await self.pool.handle_async_request(core_request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except _HTTPCORE_ERRORS as error:
            raise _httpx_error(error) from error
        return httpx.Response(
            response.status,
            headers=response.headers,
            # A stream, not content=: httpx would add a Content-Length the server never sent.
            stream=httpx.ByteStream(content),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


#: httpcore's exceptions and the httpx exceptions they become (as httpx's own transport).
_HTTPX_ERRORS: Final[dict[type[Exception], type[httpx.TransportError]]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


_HTTPCORE_ERRORS: Final = tuple(_HTTPX_ERRORS)


def _httpx_error(error: Exception) -> httpx.TransportError:
    """The httpx exception for an httpcore one: its own class, or the nearest base class."""
    for kind in type(error).__mro__:
        mapped = _HTTPX_ERRORS.get(kind)
        if mapped is not None:
            return mapped(str(error))
    return httpx.TransportError(str(error))


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small httpcore connection pools instead of one large one.

    httpcore 1.0's pool re-examines every connection for every request it queues or
    finishes, so its CPU per request grows with the pool's size: at 64 requests in
    flight one 100-connection pool spent about 2 ms of CPU per request here. Pools
    of ``SHARD_SIZE`` connections keep that work small; each request goes to the pool
    with the fewest requests awaiting their response headers.
    """

    SHARD_SIZE: Final = 8

    def __init__(self, limits: httpx.Limits) -> None:
        total = limits.max_connections or 100
        keepalive = limits.max_keepalive_connections or total
        count = max(1, -(-total // self.SHARD_SIZE))
        shard_limits = httpx.Limits(
            max_connections=-(-total // count),
            max_keepalive_connections=-(-keepalive // count),
            keepalive_expiry=limits.keepalive_expiry,
        )
        # One trust store for all pools: loading the CA bundle costs tens of milliseconds.
        ssl_context = httpx.create_ssl_context(verify=True, trust_env=True)
        self._shards = [PoolTransport(shard_limits, ssl_context) for _ in range(count)]
        self._in_flight = [0] * count

    def __repr__(self) -> str:
        return f"<ShardedTransport shards={len(self._shards)}>"

    @property
    def shards(self) -> tuple[PoolTransport, ...]:
        return tuple(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        in_flight = self._in_flight
        index = in_flight.index(min(in_flight))
        in_flight[index] += 1
        try:
            return await self._shards[index].handle_async_request(request)
        finally:
            in_flight[index] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


async def _reclaim_orphaned_connections(connection: HTTPConnection) -> None:
    """After a failed send: take orphaned connections out of every pool, and close them."""
    orphans = [orphan for pool in connection.httpcore_pools() for orphan in _take_orphans(pool)]
    if orphans:
        # The send failed, often by cancellation: closing must still run to the end.
        with anyio.CancelScope(shield=True):
            for orphan in orphans:
                await orphan.aclose()


def _take_orphans(pool: object) -> list[Any]:
    """Work around encode/httpcore#1093 (httpcore 1.0.9 and before).

    A request cancelled after the pool gave it a new connection, but before the
    request started on it (while connecting, or just after), leaves that connection
    in the pool for good: never idle, never closed, so never reused or dropped.
    Once ``max_connections`` of them pile up, every call fails with a pool timeout.
    httpcore's pool keeps a request in its list until its response is closed, so a
    connection that is neither idle nor closed and that no listed request holds is
    such an orphan. They are taken out of the pool here (in one step, with no await
    between looking and taking) for the caller to close. Anything unexpected in
    httpcore's internals turns this into a no-op.
    """
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return []
    held = {id(getattr(waiting, "connection", None)) for waiting in requests}
    orphans = [
        connection
        for connection in connections
        if id(connection) not in held and not connection.is_idle() and not connection.is_closed()
    ]
    if orphans:
        connections[:] = [connection for connection in connections if connection not in orphans]
    return orphans


def _running_asyncio() -> bool:
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


#: The ``http_backend=`` choices: httpx's own pools, or aiohttp under them (asyncio only).
HTTP_BACKENDS: Final = ("httpx", "aiohttp")


def aiohttp_installed() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


def open_connection(limits: httpx.Limits, timeout: httpx.Timeout, backend: str) -> HTTPConnection:
    """A connection the SDK owns, on ``backend`` (one of ``HTTP_BACKENDS``)."""
    if urllib.request.getproxies():
        # Proxy settings from the environment are applied by AsyncClient, not by transports.
        return ClientConnection(
            httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False), owned=True
        )
    if backend == "aiohttp":
        if not _running_asyncio():
            raise ConfigurationError(
                "http_backend='aiohttp' runs on asyncio only; use the default under trio"
            )
        from ._transports import AiohttpTransport  # noqa: PLC0415 - the optional extra

        return OwnedTransport(AiohttpTransport(limits=limits), timeout)
    return OwnedTransport(ShardedTransport(limits), timeout)
