"""Misbehaving HTTP/1.1 servers on 127.0.0.1, written on raw anyio sockets.

Each server keeps a ``TokenStore`` (the record of requests that took effect) and
counts the connections it holds open, so a test can prove nothing was created
twice and nothing was left connected. Every request is answered by the next
``Action`` of the server's script; when the script runs out, the store answers.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl

import anyio
import anyio.abc
import attrs

COLLECTION = "/v1/authtokens/"
_REASONS = {200: "OK", 201: "Created", 302: "Found", 404: "Not Found", 429: "Too Many Requests"}
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


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

    def __init__(self, stream: anyio.abc.SocketStream, store: TokenStore) -> None:
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


async def _read_request(stream: anyio.abc.SocketStream, buffer: bytearray) -> Request | None:
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
    return Request(method, path, headers, rest[:size])


class ScriptedServer:
    """Answers requests with its script's actions in order, then with ``respond``."""

    def __init__(self, host: str, script: Iterable[Action] = (), default: Action = respond) -> None:
        self.host = host
        self.default = default
        self.port = 0
        self.store = TokenStore()
        self.requests: list[Request] = []
        self.accepted = 0
        self.open_connections = 0
        self._script = list(script)
        self._none_open = anyio.Event()
        self._none_open.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        self.open_connections += 1
        if self._none_open.is_set():
            self._none_open = anyio.Event()
        buffer = bytearray()
        try:
            while (request := await _read_request(stream, buffer)) is not None:
                self.requests.append(request)
                action = self._script.pop(0) if self._script else self.default
                if not await action(Connection(stream, self.store), request):
                    break
        except _GONE:
            pass
        finally:
            self.open_connections -= 1
            if not self.open_connections:
                self._none_open.set()
            with suppress(*_GONE):
                await stream.aclose()

    async def wait_until_no_connection_is_open(self, timeout: float = 2.0) -> int:
        """0 once every connection has closed; the count still open if ``timeout`` passes."""
        with anyio.move_on_after(timeout):
            await self._none_open.wait()
        return self.open_connections


async def _serve_until_cancelled(
    listener: anyio.abc.Listener[anyio.abc.SocketStream], server: ScriptedServer
) -> None:
    async with listener:
        await listener.serve(server.serve)


class ServerGroup:
    """Starts servers on loopback in one task group; everything stops when the group closes."""

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        self._sockets: list[socket.socket] = []

    async def start(
        self, script: Iterable[Action] = (), *, host: str = "127.0.0.1", default: Action = respond
    ) -> ScriptedServer:
        server = ScriptedServer(host, script, default)
        listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
        server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._task_group.start_soon(_serve_until_cancelled, listener, server)
        return server

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

    def close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
