"""The transports under the pipeline, against real (misbehaving) servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest

from ziggeo_async import APIConnectionError, APITimeoutError, AsyncZiggeo, ConfigurationError
from ziggeo_async._connection import OwnedTransport, ShardedTransport, open_connection
from ziggeo_async._http11 import AsyncioHTTP11Connection
from ziggeo_async._pipeline import classify_transport_error
from ziggeo_async._retry import Failure

aiohttp = pytest.importorskip("aiohttp")
from ziggeo_async._transports import (  # noqa: E402 - needs aiohttp
    AiohttpTransport,
    _FailedAfterSending,
    _mapped,
)

TOKEN_BODY = b'{"token":"t0123456789abcdef","session_limit":1}'


class MisbehavingServer:
    """Counts every request it reads, then answers, drops the connection, or hangs.

    A thread with blocking sockets, independent of the event loop under test; it
    stops when the test's ``with`` block ends.
    """

    def __init__(self, behaviour: str, *, gzip_body: bool = False) -> None:
        self.behaviour = behaviour
        self.gzip_body = gzip_body
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        held: list[socket.socket] = []
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(2)
            threading.Thread(target=self._handle, args=(connection, held), daemon=True).start()
        for connection in held:
            connection.close()

    def _handle(self, connection: socket.socket, held: list[socket.socket]) -> None:
        buffer = b""
        while not self._stop.is_set():
            while b"\r\n\r\n" not in buffer:
                try:
                    chunk = connection.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    connection.close()
                    return
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                rest += connection.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest[:length])
            buffer = rest[length:]
            if self.behaviour == "drop":
                connection.close()
                return
            if self.behaviour == "hang":
                held.append(connection)
                return
            body = gzip.compress(TOKEN_BODY) if self.gzip_body else TOKEN_BODY
            encoding = b"Content-Encoding: gzip\r\n" if self.gzip_body else b""
            connection.sendall(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                b"%sContent-Length: %d\r\n\r\n%s" % (encoding, len(body), body)
            )


def refused_url() -> str:
    """A 127.0.0.1 port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
def answering() -> Iterator[MisbehavingServer]:
    with MisbehavingServer("answer", gzip_body=True) as server:
        yield server


def aiohttp_client(base_url: str, *, max_retries: int = 2, timeout: float = 5.0) -> AsyncZiggeo:
    client = AsyncZiggeo(
        "app",
        "secret",
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        http_backend="aiohttp",
    )
    assert isinstance(client._connection(), OwnedTransport)
    assert isinstance(client._connection().transport, AiohttpTransport)
    return client


@pytest.mark.anyio
async def test_the_aiohttp_backend_makes_a_round_trip(
    answering: MisbehavingServer,
) -> None:
    async with aiohttp_client(answering.url) as client:
        token = await client.authtokens.create(session_limit=1)
    assert token.token == "t0123456789abcdef"  # gzip decoded by httpx
    (request,) = answering.requests
    assert request.startswith(b"POST /v1/authtokens/ HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Basic " in request
    assert request.endswith(b"\r\n\r\nsession_limit=1")


@pytest.mark.anyio
async def test_transport_hands_back_status_headers_and_body(answering: MisbehavingServer) -> None:
    transport = AiohttpTransport()
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(answering.url + "/anything")
    finally:
        await transport.aclose()
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.headers["retry-after"] == "0"
    assert response.json()["token"] == "t0123456789abcdef"


@pytest.mark.anyio
@pytest.mark.parametrize("operation", ["create", "get", "delete"])
async def test_a_dropped_request_is_sent_exactly_once(operation: str) -> None:
    """A drop after the request left may mean Ziggeo acted: create is never re-sent, and
    with max_retries=0 nothing below the policy re-sends a get or delete either."""
    retries = 2 if operation == "create" else 0
    with MisbehavingServer("drop") as server:
        async with aiohttp_client(server.url, max_retries=retries) as client:
            call = {
                "create": lambda: client.authtokens.create(session_limit=1),
                "get": lambda: client.authtokens.get("tok"),
                "delete": lambda: client.authtokens.delete("tok"),
            }[operation]
            with pytest.raises(APIConnectionError) as caught:
                await call()
    assert len(server.requests) == 1
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.RemoteProtocolError)
    assert classify_transport_error(cause) is Failure.MAYBE_SENT


@pytest.mark.anyio
async def test_get_after_a_drop_is_retried_by_the_policy_alone() -> None:
    with MisbehavingServer("drop") as server:
        async with aiohttp_client(server.url, max_retries=2) as client:
            with pytest.raises(APIConnectionError):
                await client.authtokens.get("tok")
    assert len(server.requests) == 3  # 1 + 2 retries, none added by aiohttp


@pytest.mark.anyio
async def test_a_silent_server_is_a_read_timeout_and_create_is_not_resent() -> None:
    with MisbehavingServer("hang") as server:
        async with aiohttp_client(server.url, timeout=0.3) as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.authtokens.create(session_limit=1)
    assert len(server.requests) == 1
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.anyio
async def test_a_refused_connection_is_a_connect_error_and_create_is_retried() -> None:
    async with aiohttp_client(refused_url(), max_retries=1) as client:
        with pytest.raises(APIConnectionError, match="after 2 attempt") as caught:
            await client.authtokens.create(session_limit=1)
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert classify_transport_error(cause) is Failure.NOT_SENT


@pytest.mark.anyio
async def test_proxy_settings_keep_httpx_in_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    connection = open_connection(httpx.Limits(), httpx.Timeout(1), "aiohttp")
    try:
        assert not isinstance(connection, OwnedTransport)
    finally:
        await connection.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_sharded_pools_spread_requests_and_close(
    anyio_backend: str, answering: MisbehavingServer
) -> None:
    import anyio

    transport = ShardedTransport(httpx.Limits(max_connections=16))
    assert len(transport._shards) == 2
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(client.get, answering.url + "/x")
    assert len(answering.requests) == 8
    assert transport._in_flight == [0, 0]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_the_default_backend_is_httpcore_pools_with_the_sdks_asyncio_connections(
    anyio_backend: str, answering: MisbehavingServer
) -> None:
    async with AsyncZiggeo("app", "secret", base_url=answering.url) as client:
        token = await client.authtokens.create(session_limit=1)
        connection = client._connection()
        assert isinstance(connection, OwnedTransport)
        assert isinstance(connection.transport, ShardedTransport)
        pooled = [held for shard in connection.transport.shards for held in shard.pool.connections]
        expected = (
            AsyncioHTTP11Connection if anyio_backend == "asyncio" else httpcore.AsyncHTTPConnection
        )
        assert [type(held) for held in pooled] == [expected]
    assert token.token == "t0123456789abcdef"


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_aiohttp_backend_under_trio_is_refused_before_sending(
    anyio_backend: str, answering: MisbehavingServer
) -> None:
    async with AsyncZiggeo("app", "secret", base_url=answering.url, http_backend="aiohttp") as c:
        with pytest.raises(ConfigurationError, match="asyncio only"):
            await c.authtokens.create(session_limit=1)
    assert answering.requests == []


def test_http_backend_is_checked_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="http_backend must be one of"):
        AsyncZiggeo("app", "secret", http_backend="curl")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="lent http_client"):
        AsyncZiggeo("app", "secret", http_client=httpx.AsyncClient(), http_backend="aiohttp")
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(ConfigurationError, match=r"ziggeo-async\[fast\]"):
        AsyncZiggeo("app", "secret", http_backend="aiohttp")


def _request_info() -> Any:
    import yarl
    from multidict import CIMultiDict, CIMultiDictProxy

    url = yarl.URL("http://127.0.0.1/v1/authtokens/")
    return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)


def _connector_error() -> Exception:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    ("make_error", "expected", "failure"),
    [
        (_connector_error, httpx.ConnectError, Failure.NOT_SENT),
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout, Failure.NOT_SENT),
        (aiohttp.SocketTimeoutError, httpx.ReadTimeout, Failure.MAYBE_SENT),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError, Failure.MAYBE_SENT),
        (lambda: aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError, Failure.MAYBE_SENT),
        (
            lambda: aiohttp.ClientResponseError(_request_info(), ()),
            httpx.RemoteProtocolError,
            Failure.MAYBE_SENT,
        ),
        (lambda: _FailedAfterSending(aiohttp.ClientOSError()), httpx.ReadError, Failure.MAYBE_SENT),
        (lambda: aiohttp.InvalidURL("nope"), httpx.UnsupportedProtocol, Failure.PERMANENT),
    ],
)
def test_every_aiohttp_failure_maps_to_what_it_says_about_sending(
    make_error: Any, expected: type[httpx.TransportError], failure: Failure
) -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1/authtokens/")
    mapped = _mapped(make_error(), request)
    assert type(mapped) is expected
    assert mapped.request is request
    assert classify_transport_error(mapped) is failure


def test_a_mapped_aiohttp_failure_names_neither_the_token_id_nor_the_credentials() -> None:
    import yarl
    from multidict import CIMultiDict, CIMultiDictProxy

    url = yarl.URL("http://127.0.0.1:9/v1/authtokens/tok-SECRET-ID-1234")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "Basic c2VjcmV0LWtleQ=="}))
    request = httpx.Request("GET", str(url))
    for error in (
        aiohttp.ClientResponseError(
            aiohttp.RequestInfo(url, "GET", headers, url), (), message="Invalid constant string"
        ),
        aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}"),
    ):
        text = str(_mapped(error, request))
        assert "SECRET" not in text
        assert "c2VjcmV0" not in text
        assert text.startswith(type(error).__name__)
    assert str(_mapped(aiohttp.ConnectionTimeoutError(f"to {url}"), request)).endswith(
        "to http://127.0.0.1:9/…"
    )
