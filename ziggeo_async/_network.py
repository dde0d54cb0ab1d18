"""httpcore's network layer on asyncio's own transports, for the pools the SDK owns.

httpcore reaches the network through a backend it is given (its public
``network_backend=`` argument). Its default under asyncio goes through anyio: a
cancel scope around every read and write, and TLS run in Python over a memory BIO
by anyio's ``TLSStream``. This backend puts each connection on an
``asyncio.Protocol`` and asyncio's own SSL transport instead; the SDK's HTTP/1.1
connections (``_http11``) read and write through it. Under trio, and any other
loop, connections go to httpcore's backend for it.

Failures are the httpcore exceptions httpcore's own backends raise, from the same
places: ``ConnectError``/``ConnectTimeout`` while connecting or handshaking,
``ReadError``/``ReadTimeout`` and ``WriteError``/``WriteTimeout`` after. The
transport maps them to httpx's, so the retry policy learns truthfully whether a
request may have reached the server. Nothing here retries.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any, Final

import anyio
import httpcore
import sniffio

__all__ = ["NetworkBackend"]

# A response larger than this is read from the socket only as fast as httpcore takes it.
_READ_BUFFER_LIMIT: Final = 256 * 1024

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _ConnectionProtocol(asyncio.Protocol):
    """Buffers what one connection receives; wakes the one reader or writer waiting.

    httpcore uses a connection from one task at a time, so one waiter of each kind is enough.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.at_eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_BUFFER_LIMIT and not self.reading_paused:
            self.reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.at_eof = True
        self._wake()
        return False  # the transport closes itself: a half-closed HTTP/1.1 peer sends no more

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_eof = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection, as httpcore's network stream interface."""

    def __init__(self, transport: asyncio.Transport, protocol: _ConnectionProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def _wait(self, timeout: float | None, error: Exception) -> None:
        """Until the protocol wakes us, or ``timeout`` seconds pass (then raise ``error``)."""
        loop = asyncio.get_running_loop()
        waiter = self._protocol.waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter, error)
        try:
            await waiter
        finally:
            self._protocol.waiter = None
            if timer is not None:
                timer.cancel()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.at_eof:
            await self._wait(timeout, httpcore.ReadTimeout("timed out reading from the server"))
        buffer = protocol.buffer
        if buffer:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
            if protocol.reading_paused and len(buffer) <= _READ_BUFFER_LIMIT // 2:
                protocol.reading_paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the peer closed the connection: httpcore decides what that means

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.at_eof or self._transport.is_closing():
            error = protocol.error
            raise httpcore.WriteError(str(error) if error else "the connection is closed")
        self._transport.write(buffer)
        while protocol.writing_paused and not protocol.at_eof:
            await self._wait(timeout, httpcore.WriteTimeout("timed out writing to the server"))
        if protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error) or type(protocol.error).__name__)

    async def aclose(self) -> None:
        # No TLS close_notify, as httpcore's anyio backend: waiting for a peer to answer
        # one could hold the socket open long after the pool let the connection go.
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, EOFError) as error:  # ssl.SSLError is an OSError
            self._transport.abort()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        except BaseException:  # cancelled: the half-made connection goes too
            self._transport.abort()
            raise
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle and readable means the server closed or sent out of turn. The loop
            # has already read whatever arrived, so no system call is needed to know.
            return bool(self._protocol.buffer) or self._protocol.at_eof
        name = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return None if name is None else self._transport.get_extra_info(name)


class _ClosedIfHandshakeFails(httpcore.AsyncNetworkStream):
    """One of httpcore's own streams, closed if its TLS handshake is cancelled.

    httpcore's anyio and trio backends close the connection when a handshake fails
    with an ``Exception``, but not when it is cancelled, and nothing else holds the
    socket then: it stays open until garbage collection.
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class NetworkBackend(httpcore.AsyncNetworkBackend):
    """Connections on asyncio's own transports under asyncio; httpcore's backend elsewhere."""

    def __init__(self) -> None:
        self._anyio = httpcore.AnyIOBackend()
        self._trio: httpcore.AsyncNetworkBackend | None = None

    def _fallback(self) -> httpcore.AsyncNetworkBackend:
        if sniffio.current_async_library() != "trio":
            return self._anyio
        if self._trio is None:
            self._trio = httpcore.TrioBackend()
        return self._trio

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if sniffio.current_async_library() != "asyncio":
            return _ClosedIfHandshakeFails(
                await self._fallback().connect_tcp(
                    host, port, timeout, local_address, socket_options
                )
            )
        loop = asyncio.get_running_loop()
        protocol = _ConnectionProtocol()
        # anyio's deadline, not asyncio.wait_for: wait_for can return a connection made
        # just as the caller was cancelled, leaving it to be cancelled somewhere worse.
        try:
            with anyio.fail_after(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out connecting to the server") from None
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        raw_socket = transport.get_extra_info("socket")
        for option in socket_options or ():
            raw_socket.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _ClosedIfHandshakeFails(
            await self._fallback().connect_unix_socket(path, timeout, socket_options)
        )

    async def sleep(self, seconds: float) -> None:
        await self._fallback().sleep(seconds)
