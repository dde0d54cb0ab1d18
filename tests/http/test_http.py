"""The HTTP layer (``ziggeo_async._http``): the owned httpx2 client, the aiohttp transport,
lent clients of both httpx families, one failure table, and the response size cap; against
real (misbehaving) servers on 127.0.0.1."""

from __future__ import annotations

import gzip
import ssl
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest

from tests._certificates import self_signed_for_loopback
from tests._servers import ScriptedServer, send_then_wait, serving, status
from ziggeo_async import (
    APIConnectionError,
    APIResponseTooLargeError,
    AsyncZiggeo,
    ConfigurationError,
)
from ziggeo_async._core.defaults import MAX_RESPONSE_BYTES
from ziggeo_async._core.errors import Failure
from ziggeo_async._http import HTTPConnection, classify_failure, trust_context

aiohttp = pytest.importorskip("aiohttp")
from ziggeo_async._http._aiohttp import (  # noqa: E402 - needs aiohttp
    AiohttpTransport,
    _FailedAfterSending,
    _mapped,
)


def failure_of(error: BaseException) -> Failure:
    classified = classify_failure(error)
    assert classified is not None
    return classified[0]


TOKEN_BODY = b'{"token":"t0123456789abcdef","session_limit":1}'


#: A created token, gzip-encoded (so the round trip proves the body was decoded).
CREATED = status(
    201,
    gzip.compress(TOKEN_BODY),
    headers=[("Content-Encoding", "gzip"), ("Retry-After", "0")],
)


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
def answering() -> Iterator[ScriptedServer]:
    with serving(default=CREATED) as server:
        yield server


def aiohttp_client(base_url: str, *, max_retries: int = 2, timeout: float = 5.0) -> AsyncZiggeo:
    return AsyncZiggeo(
        "app",
        "secret",
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        http_backend="aiohttp",
    )


@pytest.mark.anyio
async def test_the_aiohttp_backend_makes_a_round_trip(
    answering: ScriptedServer,
) -> None:
    async with aiohttp_client(answering.url) as client:
        token = await client.authtokens.create(session_limit=1)
    assert token.token == "t0123456789abcdef"  # gzip decoded by httpx
    (request,) = answering.requests
    assert request.head.startswith(b"POST /v1/authtokens/ HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Basic " in request.head
    assert request.body == b"session_limit=1"


@pytest.mark.anyio
async def test_transport_hands_back_status_headers_and_body(answering: ScriptedServer) -> None:
    transport = AiohttpTransport()
    try:
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.get(answering.url + "/anything")
    finally:
        await transport.aclose()
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"  # as aiohttp read the status line
    assert response.headers["retry-after"] == "0"
    assert response.json()["token"] == "t0123456789abcdef"


@pytest.mark.anyio
async def test_transport_sends_each_requests_own_headers(answering: ScriptedServer) -> None:
    # The transport keeps header sets decoded; a header a hook changes, or another body
    # length, must still go out as the request has it.
    async def tag(request: httpx2.Request) -> None:
        request.headers["X-Tag"] = str(len(request.content))

    transport = AiohttpTransport()
    try:
        async with httpx2.AsyncClient(
            transport=transport, event_hooks={"request": [tag]}
        ) as client:
            for body in (b"a=1", b"a=1", b"a=12"):
                await client.post(answering.url + "/anything", content=body)
    finally:
        await transport.aclose()
    heads = [request.head for request in answering.requests]
    assert [b"\r\nX-Tag: %d\r\n" % n in head for head, n in zip(heads, (3, 3, 4), strict=True)] == [
        True
    ] * 3
    assert b"\r\nContent-Length: 4\r\n" in heads[2]
    for number in range(100):
        transport._headers_for([(b"X-N", b"%d" % number)])
    assert len(transport._headers) <= 64


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_the_default_backend_is_an_httpx2_client_with_the_sdks_defaults(
    anyio_backend: str, answering: ScriptedServer
) -> None:
    async with AsyncZiggeo("app", "secret", base_url=answering.url) as client:
        token = await client.authtokens.create(session_limit=1)
        connection = client._connection()
        assert connection.owned
        assert type(connection.client) is httpx2.AsyncClient
        assert connection.client.follow_redirects is False
        assert connection.client.trust_env is True
    assert token.token == "t0123456789abcdef"
    assert connection.client.is_closed


@pytest.mark.anyio
async def test_the_aiohttp_backend_is_a_transport_under_the_owned_httpx2_client(
    answering: ScriptedServer,
) -> None:
    async with aiohttp_client(answering.url) as client:
        await client.authtokens.create(session_limit=1)
        connection = client._connection()
        assert type(connection.client) is httpx2.AsyncClient
        assert isinstance(connection.client._transport, AiohttpTransport)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_aiohttp_backend_under_trio_is_refused_before_sending(
    anyio_backend: str, answering: ScriptedServer
) -> None:
    async with AsyncZiggeo("app", "secret", base_url=answering.url, http_backend="aiohttp") as c:
        with pytest.raises(ConfigurationError, match="asyncio only"):
            await c.authtokens.create(session_limit=1)
    assert answering.requests == []


def test_http_backend_is_checked_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="http_backend must be one of"):
        AsyncZiggeo("app", "secret", http_backend="curl")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="lent http_client"):
        AsyncZiggeo("app", "secret", http_client=httpx2.AsyncClient(), http_backend="aiohttp")
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
        (_connector_error, httpx2.ConnectError, Failure.NOT_SENT),
        (aiohttp.ConnectionTimeoutError, httpx2.ConnectTimeout, Failure.NOT_SENT),
        (aiohttp.SocketTimeoutError, httpx2.ReadTimeout, Failure.MAYBE_SENT),
        (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError, Failure.MAYBE_SENT),
        (lambda: aiohttp.ClientPayloadError("cut"), httpx2.RemoteProtocolError, Failure.MAYBE_SENT),
        (
            lambda: aiohttp.ClientResponseError(_request_info(), ()),
            httpx2.RemoteProtocolError,
            Failure.MAYBE_SENT,
        ),
        (
            lambda: _FailedAfterSending(aiohttp.ClientOSError()),
            httpx2.ReadError,
            Failure.MAYBE_SENT,
        ),
        (lambda: aiohttp.InvalidURL("nope"), httpx2.UnsupportedProtocol, Failure.PERMANENT),
    ],
)
def test_every_aiohttp_failure_maps_to_what_it_says_about_sending(
    make_error: Any, expected: type[httpx2.TransportError], failure: Failure
) -> None:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/authtokens/")
    mapped = _mapped(make_error(), request)
    assert type(mapped) is expected
    assert mapped.request is request
    assert failure_of(mapped) is failure


def test_a_mapped_aiohttp_failure_names_neither_the_token_id_nor_the_credentials() -> None:
    import yarl
    from multidict import CIMultiDict, CIMultiDictProxy

    url = yarl.URL("http://127.0.0.1:9/v1/authtokens/tok-SECRET-ID-1234")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "Basic c2VjcmV0LWtleQ=="}))
    request = httpx2.Request("GET", str(url))
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


# -- one failure table for both httpx families ------------------------------------------

FAILURE_TABLE = [
    ("ConnectError", Failure.NOT_SENT, False),
    ("ConnectTimeout", Failure.NOT_SENT, True),
    ("PoolTimeout", Failure.NOT_SENT, True),
    ("ReadTimeout", Failure.MAYBE_SENT, True),
    ("WriteTimeout", Failure.MAYBE_SENT, True),
    ("ReadError", Failure.MAYBE_SENT, False),
    ("WriteError", Failure.MAYBE_SENT, False),
    ("RemoteProtocolError", Failure.MAYBE_SENT, False),
    ("ProxyError", Failure.MAYBE_SENT, False),
    ("DecodingError", Failure.MAYBE_SENT, False),
    ("UnsupportedProtocol", Failure.PERMANENT, False),
    ("LocalProtocolError", Failure.PERMANENT, False),
    ("InvalidURL", Failure.PERMANENT, False),
]


@pytest.mark.parametrize("family", [httpx2, httpx], ids=["httpx2", "legacy httpx"])
@pytest.mark.parametrize(("name", "failure", "timeout"), FAILURE_TABLE)
def test_both_families_exceptions_read_the_same(
    family: Any, name: str, failure: Failure, timeout: bool
) -> None:
    assert classify_failure(getattr(family, name)("x")) == (failure, timeout)


def test_what_is_not_an_http_failure_is_not_classified() -> None:
    assert classify_failure(ValueError("x")) is None
    assert classify_failure(httpx2.HTTPStatusError("x", request=None, response=None)) is None  # type: ignore[arg-type]


def test_importing_the_sdk_imports_neither_legacy_httpx_aiohttp_nor_trio() -> None:
    code = (
        "import sys, ziggeo_async, ziggeo_async.testing, ziggeo_async.legacy\n"
        "print(sorted({'httpx', 'httpcore', 'aiohttp', 'trio'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


def test_a_round_through_the_owned_client_leaves_legacy_httpx_unimported(
    served_fake: tuple[Any, str],
) -> None:
    fake, url = served_fake
    code = (
        "import asyncio, sys\n"
        "from ziggeo_async import AsyncZiggeo\n"
        "async def main():\n"
        f"    z = AsyncZiggeo({fake.app_token!r}, {fake.private_key!r}, base_url={url!r})\n"
        "    async with z:\n"
        "        t = await z.authtokens.create(session_limit=1)\n"
        "        await z.authtokens.update(t.token, session_limit=2)\n"
        "        assert (await z.authtokens.get(t.token)).session_limit == 2\n"
        "        await z.authtokens.delete(t.token)\n"
        "asyncio.run(main())\n"
        "print('httpx' in sys.modules, 'httpcore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "False False"
    assert fake.tokens == {}


# -- the response size cap, on every path -------------------------------------------------


OVER = MAX_RESPONSE_BYTES + 1
_BOMB_PIECE = bytes(1024 * 1024)


def _gzip_bomb(inflated_mib: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    return b"".join(compressor.compress(_BOMB_PIECE) for _ in range(inflated_mib)) + (
        compressor.flush()
    )


GZIP_BOMB = _gzip_bomb(64)  # about 64 KiB on the wire, 64 MiB once inflated


def _declared_too_large() -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % OVER
    yield b"{" * 1024


def _chunked_in_small_chunks() -> Iterator[bytes]:
    """No declared length: the cap must count the body as it comes, over a thousand
    1 KiB chunks (the SDK never sees a chunk's size, only the bytes read so far)."""
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    small = b"400\r\n" + b"a" * 1024 + b"\r\n"
    for _ in range(OVER // 1024 // 16 + 1):
        yield small * 16


def _compressed_past_the_cap() -> Iterator[bytes]:
    yield (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(GZIP_BOMB)
    )
    yield GZIP_BOMB


def _stacked_encodings() -> Iterator[bytes]:
    body = gzip.compress(gzip.compress(b'{"token": "t"}'))
    yield (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def _at_the_cap_compressed() -> Iterator[bytes]:
    body = gzip.compress(b'{"token": "t0123456789abcdef", "pad": "' + b" " * 900_000 + b'"}')
    yield (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )


PATHS = [
    ("asyncio", "owned httpx2"),
    ("trio", "owned httpx2"),
    ("asyncio", "owned aiohttp"),
    ("asyncio", "lent httpx2"),
    ("trio", "lent httpx2"),
    ("asyncio", "lent legacy httpx"),
    ("trio", "lent legacy httpx"),
]


def client_on(path: str, base_url: str) -> tuple[AsyncZiggeo, Any]:
    # The shared SSL context, as the SDK's own clients have: each lent client's own would
    # load the trust store again.
    lent: Any = {
        "lent httpx2": httpx2.AsyncClient,
        "lent legacy httpx": httpx.AsyncClient,
    }.get(path, lambda **_: None)(verify=trust_context())
    client = AsyncZiggeo(
        "app",
        "secret",
        base_url=base_url,
        max_retries=2,
        http_client=lent,
        http_backend="aiohttp" if path == "owned aiohttp" else "httpx2",
    )
    return client, lent


# Legacy httpx leaves its own async generators to the garbage collector when a body is
# not read to its end, and trio warns about each (encode/httpx#3686); they hold no
# socket (the server sees the connection closed), and nothing else is ignored.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object:pytest.PytestUnraisableExceptionWarning"
)
@pytest.mark.parametrize(("anyio_backend", "path"), PATHS)
@pytest.mark.parametrize(
    "answer",
    [_declared_too_large, _chunked_in_small_chunks, _compressed_past_the_cap, _stacked_encodings],
)
@pytest.mark.anyio
async def test_a_response_past_the_cap_fails_typed_and_its_connection_is_closed(
    anyio_backend: str, path: str, answer: Callable[[], Iterator[bytes]]
) -> None:
    with serving(default=send_then_wait(answer)) as server:
        client, lent = client_on(path, server.url)
        tracemalloc.start()
        try:
            with pytest.raises(APIResponseTooLargeError, match="connection was closed"):
                await client.authtokens.get("t0123456789abcdef")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await client.aclose()
            if lent is not None:
                await lent.aclose()
        # The client closed the connection (the server holds it until then).
        assert await server.wait_until_no_connection_is_open() == 0
    # Not retried, even for a get: a server that answers so once will again.
    assert (server.accepted, len(server.requests)) == (1, 1)
    # What was read stayed near the cap: the bomb's 64 MiB never existed in memory.
    assert peak < 6 * MAX_RESPONSE_BYTES, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(("anyio_backend", "path"), PATHS)
@pytest.mark.anyio
async def test_a_compressed_chunked_body_under_the_cap_is_read_whole(
    anyio_backend: str, path: str
) -> None:
    with serving(default=send_then_wait(_at_the_cap_compressed)) as server:
        client, lent = client_on(path, server.url)
        try:
            token = await client.authtokens.get("t0123456789abcdef")
        finally:
            await client.aclose()
            if lent is not None:
                await lent.aclose()
    assert token.token == "t0123456789abcdef"
    assert len(token.extra["pad"]) == 900_000


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_body_answered_from_memory_past_the_cap_fails_typed(anyio_backend: str) -> None:
    # A transport that answers from memory has read the body already (as the aiohttp
    # transport does for small ones); its size is still held to the cap.
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"{" * OVER)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as lent:
        client = AsyncZiggeo("app", "secret", http_client=lent)
        with pytest.raises(APIResponseTooLargeError):
            await client.authtokens.get("t0123456789abcdef")


def test_an_http_connection_says_whose_it_is() -> None:
    assert "lent" in repr(HTTPConnection(httpx2.AsyncClient(), owned=False))


@pytest.mark.parametrize(
    ("method", "url", "content", "headers"),
    [
        ("POST", "https://api.example/v1/authtokens/", b"a=1", {"Content-Type": "x/y"}),
        ("GET", "https://api.example/v1/authtokens/abc", None, {"User-Agent": "ours"}),
        ("DELETE", "http://127.0.0.1:8080/v1/authtokens/k%20y", None, {"Authorization": "B"}),
        ("POST", "http://[::1]:8080/v1/authtokens/", None, {}),
        ("PUT", "https://api.example/v1/authtokens/abc", b"", {"Accept": "text/plain"}),
    ],
)
def test_the_owned_client_sends_what_build_request_would_make(
    method: str, url: str, content: bytes | None, headers: dict[str, str]
) -> None:
    # The owned connection makes its requests from cached parts; what goes out must be
    # exactly what httpx2's build_request makes (the client's default headers included).
    client = httpx2.AsyncClient()
    connection = HTTPConnection(client, owned=True)
    timeouts = (1.0, 2.0, 3.0, None)
    for _ in range(2):  # the second time from the cache
        ours = connection._owned_request(method, url, content, headers, timeouts)
        expected = client.build_request(
            method, url, content=content, headers=headers, timeout=timeouts
        )
        assert (ours.method, ours.url, ours.headers.raw) == (
            expected.method,
            expected.url,
            expected.headers.raw,
        )
        assert ours.extensions == expected.extensions
        assert ours.read() == expected.read()


def test_the_owned_clients_parsed_urls_and_headers_are_bounded() -> None:
    connection = HTTPConnection(httpx2.AsyncClient(), owned=True)
    for number in range(1000):
        url = f"https://api.example/v1/authtokens/{number}"
        assert connection._owned_request("GET", url, None, {}, (1.0,) * 4).url == url
        body = b"a" * number  # a header set per body length
        sent = connection._owned_request("POST", url, body, {}, (1.0,) * 4)
        assert sent.headers["Content-Length"] == str(number)
    assert len(connection._urls) <= 64
    assert len(connection._headers) <= 64


def test_per_call_timeouts_that_vary_do_not_grow_the_caches() -> None:
    """A handler that passes what is left of its own budget as each call's ``timeout=``
    gives a new value every time: the owned client and the aiohttp transport keep their
    worked-out timeouts within the same bound as their URLs and headers."""
    connection = HTTPConnection(httpx2.AsyncClient(), owned=True)
    transport = AiohttpTransport()
    url = "https://api.example/v1/authtokens/t1"
    for number in range(1000):
        seconds = 1 + number / 1000
        request = connection._owned_request("GET", url, None, {}, (seconds,) * 4)
        assert request.extensions["timeout"]["read"] == seconds
        assert transport._timeout_for(request).sock_read == seconds
    assert len(connection._timeouts) <= 64
    assert len(transport._timeouts) <= 64


def test_the_owned_clients_cached_headers_are_each_requests_own() -> None:
    # A hook may change a request's headers; the next request must not see the change,
    # and a body of another length must declare its own.
    connection = HTTPConnection(httpx2.AsyncClient(), owned=True)
    url = "https://api.example/v1/authtokens/"
    first = connection._owned_request("POST", url, b"a=1", {"X-A": "1"}, (1.0,) * 4)
    first.headers["X-A"] = "changed"
    first.headers["X-Hook"] = "added"
    again = connection._owned_request("POST", url, b"a=2", {"X-A": "1"}, (1.0,) * 4)
    assert again.headers["X-A"] == "1"
    assert "X-Hook" not in again.headers
    longer = connection._owned_request("POST", url, b"a=12", {"X-A": "1"}, (1.0,) * 4)
    assert longer.headers["Content-Length"] == "4"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["httpx2", "aiohttp"])
async def test_the_owned_client_trusts_ssl_cert_file_as_it_is_when_the_client_is_made(
    backend: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trust store is loaded once per process for each SSL_CERT_FILE / SSL_CERT_DIR
    # value: a client made after the variable changed must see the new value.
    cert_path, key_path = self_signed_for_loopback(tmp_path)
    cert = str(cert_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    with serving(default=CREATED, tls=tls) as server:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        untrusting = AsyncZiggeo("app", "secret", base_url=server.url, http_backend=backend)
        async with untrusting:
            with pytest.raises(APIConnectionError):
                await untrusting.authtokens.create(session_limit=1)
        monkeypatch.setenv("SSL_CERT_FILE", cert)
        for _ in range(2):  # the second from the kept context
            trusting = AsyncZiggeo("app", "secret", base_url=server.url, http_backend=backend)
            async with trusting:
                token = await trusting.authtokens.create(session_limit=1)
            assert token.token == "t0123456789abcdef"
