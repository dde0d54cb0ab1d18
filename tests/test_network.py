"""The SDK's own pools: httpcore on the asyncio network backend, httpx types out.

Servers here are threads with blocking sockets on 127.0.0.1, independent of the event
loop under test, so the same tests run on asyncio (the SDK's backend) and on trio
(httpcore's). Each stops when its ``with`` block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpcore
import httpx
import pytest

from benchmarks.tls import make_certificate  # the benchmarks' self-signed certificate
from ziggeo_async._connection import _HTTPX_ERRORS, PoolTransport, _httpx_error
from ziggeo_async._network import AsyncioStream, NetworkBackend

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=2, max_keepalive_connections=2)
TIMEOUT = httpx.Timeout(2.0)
BIG = 3 * 1024 * 1024  # beyond the backend's read buffer limit, so reading pauses and resumes


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cert, key, _trust = make_certificate(tmp_path_factory.mktemp("tls"))
    return cert, key


def _read_request(connection: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def _read_chunked(connection: socket.socket | ssl.SSLSocket, data: bytes) -> bytes:
    while not data.endswith(b"0\r\n\r\n"):
        data += connection.recv(65536)
    body, rest = b"", data
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, rest = body + rest[:size], rest[size + 2 :]


class Server:
    """Answers each request on a connection with ``body``; ``close_after`` requests, closes.

    After the last request it closes ``close_delay`` seconds later, so the client has
    already put the connection back in its pool as idle.
    ``tls`` wraps every accepted connection; ``handshake=False`` accepts TCP and never
    speaks TLS. ``connections`` counts accepted connections, ``requests`` requests.
    """

    def __init__(
        self,
        *,
        body: bytes = b'{"token":"t1"}',
        tls: ssl.SSLContext | None = None,
        handshake: bool = True,
        close_after: int | None = None,
        close_delay: float = 0.0,
        chunked: bool = False,
    ) -> None:
        self.body = body
        self.tls = tls
        self.handshake = handshake
        self.close_after = close_after
        self.close_delay = close_delay
        self.chunked = chunked
        self.connections = 0
        self.requests = 0
        self.bodies: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepted: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1/authtokens/"

    def __enter__(self) -> Server:
        self._threads.append(threading.Thread(target=self._accept, daemon=True))
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # The client's close may still be queued on its event loop, which this join
        # blocks: end the server's side of every connection rather than wait for it.
        for connection in self._accepted:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._accepted.append(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(0.05)
        connection: socket.socket | ssl.SSLSocket = raw
        try:
            if self.tls is not None:
                if not self.handshake:
                    self._stop.wait()
                    return
                raw.settimeout(2)
                connection = self.tls.wrap_socket(raw, server_side=True)
                self._accepted.append(connection)  # the raw socket's descriptor moved here
            connection.settimeout(2)
            served = 0
            while not self._stop.is_set():
                head = _read_request(connection)
                if not head:
                    return
                self.requests += 1
                if b"transfer-encoding: chunked" in head.lower():
                    self.bodies.append(_read_chunked(connection, head.partition(b"\r\n\r\n")[2]))
                served += 1
                framing = (
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                    if self.chunked
                    else b"Content-Length: %d\r\n\r\n%s"
                )
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + framing % (len(self.body), self.body)
                )
                if self.close_after is not None and served >= self.close_after:
                    self._stop.wait(self.close_delay)
                    return
        except OSError:
            return  # the client went away, or refused the certificate
        finally:
            connection.close()


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def _trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


async def _get(transport: httpx.AsyncBaseTransport, url: str) -> httpx.Response:
    request = httpx.Request("GET", url, extensions={"timeout": TIMEOUT.as_dict()})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


@pytest.mark.parametrize(
    ("core", "expected"),
    [
        (httpcore.ConnectError, httpx.ConnectError),
        (httpcore.ConnectTimeout, httpx.ConnectTimeout),
        (httpcore.ReadError, httpx.ReadError),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.WriteError, httpx.WriteError),
        (httpcore.WriteTimeout, httpx.WriteTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
        (httpcore.LocalProtocolError, httpx.LocalProtocolError),
        (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
        (httpcore.NetworkError, httpx.NetworkError),
        (httpcore.TimeoutException, httpx.TimeoutException),
        (httpcore.ProtocolError, httpx.ProtocolError),
    ],
)
def test_every_httpcore_error_becomes_its_httpx_twin(
    core: type[Exception], expected: type[httpx.TransportError]
) -> None:
    mapped = _httpx_error(core("what went wrong"))
    assert type(mapped) is expected
    assert str(mapped) == "what went wrong"


def test_an_unlisted_httpcore_error_becomes_its_nearest_listed_base() -> None:
    class PeerVanished(httpcore.ReadError):
        pass

    assert type(_httpx_error(PeerVanished("gone"))) is httpx.ReadError
    assert httpcore.ProxyError not in _HTTPX_ERRORS  # no proxies on this path
    assert type(_httpx_error(httpcore.ProxyError("proxy"))) is httpx.TransportError


async def test_a_round_trip_over_tls_reuses_the_connection(
    anyio_backend: str, certificate: tuple[Path, Path]
) -> None:
    transport = PoolTransport(LIMITS, _trusting(certificate))
    with Server(tls=_server_context(certificate)) as server:
        for _ in range(3):
            response = await _get(transport, server.url)
            assert response.status_code == 200
            assert response.json() == {"token": "t1"}
        await transport.aclose()
    assert server.requests == 3
    assert server.connections == 1


async def test_an_untrusted_certificate_is_a_connect_error(
    anyio_backend: str, certificate: tuple[Path, Path]
) -> None:
    transport = PoolTransport(LIMITS, ssl.create_default_context())  # the test CA is not in it
    with Server(tls=_server_context(certificate)) as server:
        with pytest.raises(httpx.ConnectError) as caught:
            await _get(transport, server.url)
        await transport.aclose()
    if anyio_backend == "asyncio":  # httpcore's trio backend passes no message on
        assert "certificate verify failed" in str(caught.value)
    assert server.requests == 0


async def test_a_server_that_never_handshakes_is_a_connect_timeout(
    anyio_backend: str, certificate: tuple[Path, Path]
) -> None:
    transport = PoolTransport(LIMITS, _trusting(certificate))
    with Server(tls=_server_context(certificate), handshake=False) as server:
        request = httpx.Request(
            "GET", server.url, extensions={"timeout": httpx.Timeout(2.0, connect=0.2).as_dict()}
        )
        with pytest.raises(httpx.ConnectTimeout):
            await transport.handle_async_request(request)
        await transport.aclose()
    assert server.requests == 0


async def test_a_refused_connection_is_a_connect_error(anyio_backend: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    transport = PoolTransport(LIMITS, ssl.create_default_context())
    with pytest.raises(httpx.ConnectError):
        await _get(transport, f"http://127.0.0.1:{port}/")
    await transport.aclose()


async def test_a_body_larger_than_the_read_buffer_arrives_whole(
    anyio_backend: str, certificate: tuple[Path, Path]
) -> None:
    body = bytes(range(256)) * (BIG // 256)
    transport = PoolTransport(LIMITS, _trusting(certificate))
    with Server(body=body, tls=_server_context(certificate)) as server:
        response = await _get(transport, server.url)
        await transport.aclose()
    assert response.content == body


async def test_a_connection_the_server_closed_while_idle_is_not_reused(anyio_backend: str) -> None:
    transport = PoolTransport(LIMITS, ssl.create_default_context())
    with Server(close_after=1, close_delay=0.2) as server:
        assert (await _get(transport, server.url)).status_code == 200
        (idle,) = transport.pool.connections
        assert idle.is_idle()
        assert not idle.has_expired()
        with anyio.fail_after(2):
            while not idle.has_expired():  # readable while idle: the server has closed it
                await anyio.sleep(0.01)
        assert (await _get(transport, server.url)).status_code == 200
        await transport.aclose()
    assert server.connections == 2


async def test_the_response_keeps_the_servers_headers_as_sent(anyio_backend: str) -> None:
    transport = PoolTransport(LIMITS, ssl.create_default_context())
    with Server(chunked=True) as server:
        response = await _get(transport, server.url)
        await transport.aclose()
    # A chunked response gains no Content-Length on its way into httpx.
    assert response.headers.raw == [
        (b"Content-Type", b"application/json"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    assert response.json() == {"token": "t1"}


# The asyncio stream itself: failures at the edges httpcore reaches only by chance.


class SilentPeer:
    """A listener whose accepted connections are handed to the test, never read from."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(2)
        self.port: int = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []

    def accept(self) -> socket.socket:
        connection, _ = self._listener.accept()
        self._accepted.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._accepted:
            connection.close()
        self._listener.close()


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


async def _connect(peer: SilentPeer) -> httpcore.AsyncNetworkStream:
    stream = await NetworkBackend().connect_tcp("127.0.0.1", peer.port)
    assert isinstance(stream, AsyncioStream)
    return stream


async def _write_until_blocked(stream: httpcore.AsyncNetworkStream) -> None:
    for _ in range(64):  # the socket buffers fill, then writing pauses until the timeout
        await stream.write(b"x" * 1024 * 1024, timeout=0.2)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writing_to_a_closed_connection_is_a_write_error(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    silent_peer.accept().close()
    with anyio.fail_after(2):
        while not stream.get_extra_info("is_readable"):  # the loop has seen the close
            await asyncio.sleep(0.01)
    with pytest.raises(httpcore.WriteError):
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")
    assert await stream.read(100) == b""
    await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_peer_that_stops_reading_is_a_write_timeout(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    silent_peer.accept()
    with pytest.raises(httpcore.WriteTimeout):
        await _write_until_blocked(stream)
    await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_peer_that_never_answers_is_a_read_timeout(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    silent_peer.accept()
    with pytest.raises(httpcore.ReadTimeout):
        await stream.read(100, timeout=0.05)
    await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_reset_connection_is_a_read_error(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    peer = silent_peer.accept()
    await stream.write(b"unread by the peer")
    # Closing with unread data and a zero linger time resets the connection.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    with pytest.raises(httpcore.ReadError):
        await stream.read(100, timeout=2)
    await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_stream_reports_what_httpcore_asks_of_it(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    peer = silent_peer.accept()
    assert stream.get_extra_info("server_addr") == ("127.0.0.1", silent_peer.port)
    assert stream.get_extra_info("client_addr") == peer.getpeername()
    assert stream.get_extra_info("ssl_object") is None
    assert stream.get_extra_info("socket") is not None
    assert stream.get_extra_info("no such thing") is None
    assert stream.get_extra_info("is_readable") is False
    peer.sendall(b"early")
    with anyio.fail_after(2):
        while not stream.get_extra_info("is_readable"):
            await asyncio.sleep(0.01)
    assert await stream.read(100) == b"early"
    await stream.aclose()


async def test_sleep_and_unix_sockets_go_to_httpcores_backend(
    anyio_backend: str, tmp_path: Path
) -> None:
    backend = NetworkBackend()
    with anyio.fail_after(2):
        await backend.sleep(0.001)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket(str(tmp_path / "nobody-listens-here"))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_writing_waits_for_a_slow_reader_then_completes(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    peer = silent_peer.accept()
    total = 16 * 1024 * 1024
    received = bytearray()

    def read_slowly() -> None:
        threading.Event().wait(0.2)  # long enough for the socket buffers to fill first
        while len(received) < total:
            received.extend(peer.recv(1024 * 1024))

    reader = threading.Thread(target=read_slowly)
    reader.start()
    for _ in range(16):
        await stream.write(b"y" * (1024 * 1024), timeout=5)
    await anyio.to_thread.run_sync(reader.join, 5)
    assert len(received) == total
    await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_socket_options_are_applied(anyio_backend: str, silent_peer: SilentPeer) -> None:
    stream = await NetworkBackend().connect_tcp(
        "127.0.0.1", silent_peer.port, socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    )
    assert stream.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    await stream.aclose()


async def test_cancelling_a_tls_handshake_closes_the_connection(
    anyio_backend: str, certificate: tuple[Path, Path]
) -> None:
    transport = PoolTransport(LIMITS, _trusting(certificate))
    with Server(tls=_server_context(certificate), handshake=False) as server:
        with anyio.move_on_after(0.2) as scope:
            await _get(transport, server.url)
        assert scope.cancelled_caught
        assert transport.pool.connections == []
        await transport.aclose()
    assert server.connections == 1


async def test_a_streamed_request_body_is_sent_as_is(anyio_backend: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"session_limit="
        yield b"1"

    transport = PoolTransport(LIMITS, ssl.create_default_context())
    assert repr(transport) == "<PoolTransport max_connections=2>"
    with Server() as server:
        request = httpx.Request(
            "POST", server.url, content=body(), extensions={"timeout": TIMEOUT.as_dict()}
        )
        response = await transport.handle_async_request(request)
        await transport.aclose()
    assert response.status_code == 200
    assert server.bodies == [b"session_limit=1"]


def _reading_paused(stream: AsyncioStream) -> bool:
    return stream._protocol.reading_paused  # the flow control under test


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_reading_pauses_while_unread_data_piles_up_then_resumes(
    anyio_backend: str, silent_peer: SilentPeer
) -> None:
    stream = await _connect(silent_peer)
    assert isinstance(stream, AsyncioStream)
    peer = silent_peer.accept()
    sent = bytes(range(256)) * (8 * 1024)  # 2 MiB, far beyond the read buffer limit
    sender = threading.Thread(target=peer.sendall, args=(sent,))
    sender.start()
    with anyio.fail_after(5):
        while not _reading_paused(stream):  # nothing read yet: the transport must pause
            await asyncio.sleep(0.01)
    received = bytearray()
    while len(received) < len(sent):
        received += await stream.read(65536, timeout=5)
    await anyio.to_thread.run_sync(sender.join, 5)
    assert bytes(received) == sent
    assert not _reading_paused(stream)
    await stream.aclose()
