"""The one scripted HTTP/1.1 server every socket test uses, on 127.0.0.1.

Every request is answered by the next ``Action`` of the server's script (respond, drop,
hang, reset, garbage, drip, redirect, ...); when the script runs out, ``default``
answers (the server's ``TokenStore``, unless told otherwise). The store records the
requests that took effect and the server counts the connections it holds open, so a
test can prove nothing was created twice and nothing was left connected.

The servers run on an event loop of their own, on a thread (an anyio blocking
portal), so one helper serves sync tests and asyncio and trio tests alike. The
server, not the client, closes every connection it accepted, and everything stops
when the ``with`` block (``serving`` or a ``ServerGroup``) ends, whatever the test did.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import attrs
from anyio.streams.tls import TLSStream

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

COLLECTION = "/v1/authtokens/"
_REASONS = {200: "OK", 201: "Created", 302: "Found", 404: "Not Found", 429: "Too Many Requests"}
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
#: Long enough for a loaded machine; waiting ends as soon as the condition holds.
SETTLE_TIMEOUT = 10.0


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    head: bytes = b""  # the request line and headers as they came on the wire


class TokenStore:
    """An auth-token store that speaks the wire contract; ``created`` lists every creation."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self._ids = itertools.count(1)

    def seed(self, token: str, **fields: Any) -> None:
        self.tokens[token] = {"token": token, **fields}

    def apply(self, request: Request) -> tuple[int, bytes]:
        """Carry the request out; return the status and body Ziggeo would send."""
        if not request.path.startswith(COLLECTION):
            return 404, b"Not found"
        token = request.path[len(COLLECTION) :]
        if request.method == "POST" and not token:
            token = f"tok{next(self._ids):06d}created"
            self.tokens[token] = {"token": token, **_parse_form(request.body)}
            self.created.append(token)
            return 201, json.dumps(self.tokens[token]).encode()
        if token not in self.tokens:
            return 404, b"Not found"
        if request.method == "DELETE":
            del self.tokens[token]
            self.deleted.append(token)
            return 200, b"{}"
        if request.method == "POST":
            self.tokens[token].update(_parse_form(request.body))
        return 200, json.dumps(self.tokens[token]).encode()


def _parse_form(body: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode("ascii"), strict_parsing=bool(body)):
        fields[name] = value == "true" if value in ("true", "false") else json.loads(value)
    return fields


def response_bytes(
    status: int, body: bytes, *, content_type: str = "application/json", extra: str = ""
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


class Connection:
    """What an action may do with the connection a request came on."""

    def __init__(self, stream: anyio.abc.ByteStream, store: TokenStore) -> None:
        self.stream = stream
        self.store = store

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def wait_for_client_to_close(self) -> None:
        """Hold the connection, answering nothing, until the client gives up on it."""
        with suppress(*_GONE):
            while True:
                await self.stream.receive()

    async def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0) instead of an orderly close."""
        raw = self.stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()


#: Answers one request; returns whether the connection stays open for the next one.
Action = Callable[[Connection, Request], Awaitable[bool]]


async def respond(conn: Connection, request: Request) -> bool:
    """The well-behaved answer: apply the request to the store and reply."""
    status, body = conn.store.apply(request)
    await conn.send(response_bytes(status, body))
    return True


def status(
    code: int,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    headers: Sequence[tuple[str, str]] = (),
) -> Action:
    """Reply ``code`` without touching the store (Ziggeo did not act)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)

    async def action(conn: Connection, request: Request) -> bool:
        await conn.send(response_bytes(code, body, content_type=content_type, extra=extra))
        return True

    return action


def hang(*, effect: bool) -> Action:
    """Never answer; with ``effect`` the request was carried out first."""

    async def action(conn: Connection, request: Request) -> bool:
        if effect:
            conn.store.apply(request)
        await conn.wait_for_client_to_close()
        return False

    return action


def reset_mid_body(*, effect: bool) -> Action:
    """Send the head and part of the body, then reset the connection."""

    async def action(conn: Connection, request: Request) -> bool:
        status_code, body = conn.store.apply(request) if effect else (200, b'{"token": "x"}' * 20)
        whole = response_bytes(status_code, body)
        await conn.send(whole[: len(whole) - len(body) // 2])
        await conn.reset()
        return False

    return action


def close_without_response(*, effect: bool) -> Action:
    async def action(conn: Connection, request: Request) -> bool:
        if effect:
            conn.store.apply(request)
        await conn.stream.aclose()
        return False

    return action


def truncated_json(*, effect: bool) -> Action:
    """A complete HTTP message whose JSON body is cut off (Content-Length agrees)."""

    async def action(conn: Connection, request: Request) -> bool:
        status_code, body = conn.store.apply(request) if effect else (200, b'{"token": "abc"}')
        await conn.send(response_bytes(status_code, body[: len(body) - 3]))
        return True

    return action


def short_body() -> Action:
    """Content-Length promises more than is sent, then the server closes."""

    async def action(conn: Connection, request: Request) -> bool:
        whole = response_bytes(200, b'{"token": "never-complete"}')
        await conn.send(whole[:-5])
        await conn.stream.aclose()
        return False

    return action


def garbage() -> Action:
    """Something that is not HTTP at all."""

    async def action(conn: Connection, request: Request) -> bool:
        await conn.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await conn.stream.aclose()
        return False

    return action


def drip(*, gap: float, stall_after: int | None = None) -> Action:
    """Apply the request, then send the body a few bytes at a time, ``gap`` seconds apart.

    With ``stall_after``, stop sending after that many chunks and hold the connection.
    """

    async def action(conn: Connection, request: Request) -> bool:
        status_code, body = conn.store.apply(request)
        whole = response_bytes(status_code, body)
        head_size = len(whole) - len(body)
        await conn.send(whole[:head_size])
        for index, start in enumerate(range(head_size, len(whole), 8)):
            if stall_after is not None and index == stall_after:
                await conn.wait_for_client_to_close()
                return False
            await anyio.sleep(gap)
            await conn.send(whole[start : start + 8])
        return True

    return action


def delayed(action: Action, seconds: Callable[[], float]) -> Action:
    """``action`` after a pause of ``seconds()``: a server with latency."""

    async def wrapped(conn: Connection, request: Request) -> bool:
        await anyio.sleep(seconds())
        return await action(conn, request)

    return wrapped


def redirect(location: str) -> Action:
    return status(302, b"", headers=[("Location", location)])


def close_after(action: Action) -> Action:
    """Answer with ``action``, then close the connection without saying so first."""

    async def wrapped(conn: Connection, request: Request) -> bool:
        await action(conn, request)
        await conn.stream.aclose()
        return False

    return wrapped


def send_then_wait(pieces: Callable[[], Iterable[bytes]]) -> Action:
    """Write each of ``pieces()`` in turn, whatever the request, then hold the connection
    until the client closes it (a client that refused the answer half-way must)."""

    async def action(conn: Connection, request: Request) -> bool:
        for piece in pieces():
            await conn.send(piece)
        await conn.wait_for_client_to_close()
        return False

    return action


def trickle(first: bytes, then: bytes, *, every: float) -> Action:
    """Send ``first``, then ``then`` every ``every`` seconds, for as long as the client
    listens: an answer that never ends, though no single read ever waits long."""

    async def action(conn: Connection, request: Request) -> bool:
        await conn.send(first)
        while True:
            await anyio.sleep(every)
            await conn.send(then)

    return action


async def _read_request(stream: anyio.abc.ByteStream, buffer: bytearray) -> Request | None:
    """The next request on the connection, or ``None`` once the client has gone."""
    try:
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive()
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        while len(rest) < size:
            rest += await stream.receive()
    except _GONE:
        return None
    buffer[:] = rest[size:]
    return Request(method, path, headers, rest[:size], head + b"\r\n\r\n")


class ScriptedServer:
    """Answers requests with its script's actions in order, then with ``default``.

    Made by ``ServerGroup.start`` (or ``serving``); its state is written on the server's
    thread and read by the test: ``requests`` (every request read), ``accepted``
    (connections) and the count of connections still open.
    """

    def __init__(
        self,
        host: str,
        port: int,
        script: Iterable[Action],
        default: Action,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.host = host
        self.port = port
        self.default = default
        self.store = TokenStore()
        self.requests: list[Request] = []
        self.accepted = 0
        self._tls = tls
        self._script = list(script)
        self._open = 0
        self._changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        with self._changed:
            return self._open

    def _count_open(self, change: int) -> None:
        with self._changed:
            self._open += change
            self._changed.notify_all()

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        self._count_open(+1)
        connection: anyio.abc.ByteStream = stream
        try:
            if self._tls is not None:
                connection = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=self._tls, standard_compatible=False
                )
            buffer = bytearray()
            while (request := await _read_request(connection, buffer)) is not None:
                self.requests.append(request)
                action = self._script.pop(0) if self._script else self.default
                if not await action(Connection(connection, self.store), request):
                    break
        except (*_GONE, ssl.SSLError):  # the client went away, or refused our certificate
            pass
        finally:
            # Shielded, so a server stopping mid-answer still closes the socket itself.
            with anyio.CancelScope(shield=True), suppress(*_GONE):
                await stream.aclose()
            self._count_open(-1)

    def wait_until_closed(self, timeout: float = SETTLE_TIMEOUT) -> int:
        """0 once every connection has closed; the count still open if ``timeout`` passes.

        Blocks: from async code use ``wait_until_no_connection_is_open``, which leaves
        the test's event loop free to finish closing the client's side.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._open == 0, timeout)
            return self._open

    async def wait_until_no_connection_is_open(self, timeout: float = SETTLE_TIMEOUT) -> int:
        return await anyio.to_thread.run_sync(self.wait_until_closed, timeout)


async def _serve_until_cancelled(
    listener: anyio.abc.Listener[anyio.abc.SocketStream], server: ScriptedServer
) -> None:
    async with listener:
        await listener.serve(server.serve)


async def _host_servers(*, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup]) -> None:
    async with anyio.create_task_group() as task_group:
        task_status.started(task_group)
        await anyio.sleep_forever()


class ServerGroup:
    """Scripted servers (and ports that refuse or never accept) for one test, on a thread.

    ``with ServerGroup() as servers:`` then ``servers.start(...)`` as often as needed;
    when the block ends every server stops and every connection and socket is closed.
    """

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._portal_manager = anyio.from_thread.start_blocking_portal("asyncio")

    def __enter__(self) -> Self:
        self._portal = self._portal_manager.__enter__()
        self._hosting, self._task_group = self._portal.start_task(_host_servers)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            # The task group ends once every server has closed its listener and its
            # connections (shielded closes), so nothing outlives the block.
            self._portal.call(self._task_group.cancel_scope.cancel)
            with suppress(concurrent.futures.CancelledError):
                self._hosting.result(SETTLE_TIMEOUT)
        finally:
            for sock in self._sockets:
                sock.close()
            self._portal_manager.__exit__(None, None, None)

    def start(
        self,
        script: Iterable[Action] = (),
        *,
        host: str = "127.0.0.1",
        default: Action = respond,
        tls: ssl.SSLContext | None = None,
    ) -> ScriptedServer:
        """A server on ``host`` (a loopback address) answering ``script``, then ``default``;
        with ``tls``, over TLS (``url`` then starts with https)."""

        async def listen() -> ScriptedServer:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            server = ScriptedServer(host, port, script, default, tls)
            self._task_group.start_soon(_serve_until_cancelled, listener, server)
            return server

        return self._portal.call(listen)

    def refusing_port(self) -> int:
        """A port bound but not listening: connecting to it is refused at once."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        return int(sock.getsockname()[1])

    def full_backlog_port(self) -> int:
        """A listening port whose accept queue is full: a connect there hangs until timeout."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        self._sockets.append(listener)
        for _ in range(3):  # Linux queues backlog + 1; the rest are SYNs it drops
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            self._sockets.append(filler)
        return port


@contextmanager
def serving(
    script: Iterable[Action] = (),
    *,
    default: Action = respond,
    tls: ssl.SSLContext | None = None,
) -> Iterator[ScriptedServer]:
    """One scripted server on 127.0.0.1 for the ``with`` block (see ``ServerGroup.start``)."""
    with ServerGroup() as servers:
        yield servers.start(script, default=default, tls=tls)
