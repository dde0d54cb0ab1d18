"""A small HTTP/1.1 server on asyncio streams that runs one ASGI app, for loopback tests.

Enough for ``FakeZiggeo`` and no more: keep-alive, ``Content-Length`` bodies (chunked
request bodies are refused with 501), one request at a time per connection. When the
app raises, the connection is closed without a response: that is how a planned drop
looks from the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any, Final
from urllib.parse import unquote

__all__ = ["LoopbackServer", "serve_http", "serve_until_signalled"]

_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 1024 * 1024
_REASONS: Final = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class _Malformed(Exception):  # noqa: N818 - answered with a status, never seen by users
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "target")

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _Malformed(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _Malformed(400, "request head too large") from None
    try:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, version = request_line.split(" ")
        headers = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append(
                (name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))
            )
    except ValueError:
        raise _Malformed(400, "malformed request head") from None
    fields = dict(headers)
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        raise _Malformed(501, "chunked request bodies are not supported")
    length_text = fields.get(b"content-length", b"0")
    if not length_text.isdigit():
        raise _Malformed(400, "bad Content-Length")
    length = int(length_text)
    if length > _MAX_BODY:
        raise _Malformed(413, "request body too large")
    body = await reader.readexactly(length)
    connection = fields.get(b"connection", b"").lower()
    keep_alive = connection != b"close" if version == "HTTP/1.1" else connection == b"keep-alive"
    return _Request(method, target, headers, body, keep_alive=keep_alive)


def _response_head(status: int, headers: list[tuple[bytes, bytes]], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers if name.lower() != b"content-length"]
    lines.append(b"content-length: " + str(length).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


class LoopbackServer:
    """Runs ``app`` (ASGI 3, HTTP scope) on ``host:port``; ``url`` once started."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(
            self._connection, self._host, self._port, limit=_MAX_HEAD
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        return self.url

    async def aclose(self) -> None:
        """Stop listening, end every connection, and wait until all are gone."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._exchange_all(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange_all(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        while True:
            try:
                request = await _read_request(reader)
            except _Malformed as error:
                message = str(error).encode("utf-8")
                writer.write(
                    _response_head(error.status, [(b"connection", b"close")], len(message))
                )
                writer.write(message)
                await writer.drain()
                return
            if request is None:
                return
            try:
                status, headers, body = await self._run_app(request, peer)
            except Exception:  # noqa: BLE001 - any app failure ends the exchange without a response
                writer.transport.abort()
                return
            if not request.keep_alive:
                headers.append((b"connection", b"close"))
            writer.write(_response_head(status, headers, len(body)) + body)
            await writer.drain()
            if not request.keep_alive:
                return

    async def _run_app(
        self, request: _Request, peer: Any
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path, _, query = request.target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": request.headers,
            "client": peer,
            "server": (self._host, self._port),
        }
        delivered = False
        disconnected = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            # Only an app that asks twice gets here (the fake reads its body once).
            await disconnected.wait()  # pragma: no cover
            return {"type": "http.disconnect"}  # pragma: no cover

        status = 500
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(bytes(name), bytes(value)) for name, value in message["headers"]]
            else:
                body.extend(message.get("body", b""))

        await self._app(scope, receive, send)
        return status, headers, bytes(body)


@contextlib.asynccontextmanager
async def serve_http(
    app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` for the body of the ``async with`` (asyncio only); yields the base URL."""
    server = LoopbackServer(app, host, port)
    await server.start()
    try:
        yield server.url
    finally:
        await server.aclose()


async def serve_until_signalled(
    app: Callable[..., Any], host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then stop cleanly; ``on_ready(url)`` when up."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve_http(app, host, port) as url:
            on_ready(url)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
