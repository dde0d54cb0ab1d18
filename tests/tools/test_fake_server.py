"""The loopback HTTP/1.1 server that runs FakeZiggeo's ASGI app (asyncio only)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from ziggeo_async import APIConnectionError, AsyncZiggeo, NotFoundError
from ziggeo_async.testing import FakeZiggeo, LoopbackServer, serve_http

pytestmark = pytest.mark.anyio

AUTH = "Basic " + base64.b64encode(b"fake-app-token:fake-private-key").decode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def exchange(url: str, raw: bytes, *, read_all: bool = True) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(raw)
    await writer.drain()
    if read_all:
        data = await asyncio.wait_for(reader.read(), 5)
    else:
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return data


def get_request(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", f"Authorization: {AUTH}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_sdk_round_over_real_http() -> None:
    fake = FakeZiggeo()
    async with serve_http(fake.asgi_app) as url, httpx.AsyncClient() as http_client:
        assert url.startswith("http://127.0.0.1:")
        ziggeo = AsyncZiggeo(
            fake.app_token, fake.private_key, base_url=url, http_client=http_client
        )
        token = await ziggeo.authtokens.create(session_limit=2, grants={"read": {"all": True}})
        assert (await ziggeo.authtokens.get(token.token)).session_limit == 2
        assert (await ziggeo.authtokens.update(token.token, hidden=True)).hidden is True
        await ziggeo.authtokens.delete(token.token)
        with pytest.raises(NotFoundError) as caught:
            await ziggeo.authtokens.get(token.token)
        assert caught.value.body == "Authorization token not found"
    assert fake.tokens == {}


async def test_drops_close_the_socket_without_a_response() -> None:
    fake = FakeZiggeo()
    async with serve_http(fake.asgi_app) as url, httpx.AsyncClient() as http_client:
        ziggeo = AsyncZiggeo(
            fake.app_token, fake.private_key, base_url=url, http_client=http_client
        )
        fake.drop_next(when="after")
        with pytest.raises(APIConnectionError):
            await ziggeo.authtokens.create(session_limit=1)
        assert len(fake.tokens) == 1
        assert len(fake.requests) == 1
        token = next(iter(fake.tokens))
        # Over HTTP even a drop "before" looks like a broken exchange; get retries it.
        fake.drop_next(when="before")
        assert (await ziggeo.authtokens.get(token)).token == token
        assert [r.status for r in fake.requests[1:]] == [None, 200]


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    fake = FakeZiggeo()
    async with serve_http(fake.asgi_app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(3):
            writer.write(get_request("/v1/authtokens/none"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b"Authorization token not found"
        writer.close()
        await writer.wait_closed()
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", b"400"),
    ],
)
async def test_malformed_requests_get_a_status_and_a_close(raw: bytes, status: bytes) -> None:
    async with serve_http(FakeZiggeo().asgi_app) as url:
        answer = await exchange(url, raw)
    assert answer.split(b" ")[1] == status
    assert b"connection: close" in answer


@pytest.mark.parametrize(
    "raw",
    [
        get_request("/v1/authtokens/x", "Connection: close"),
        get_request("/v1/authtokens/x").replace(b"HTTP/1.1", b"HTTP/1.0"),
    ],
)
async def test_connection_close_and_http_1_0_end_after_one_response(raw: bytes) -> None:
    async with serve_http(FakeZiggeo().asgi_app) as url:
        answer = await exchange(url, raw)  # reads to EOF: the server must close
    assert answer.startswith(b"HTTP/1.1 404")
    assert answer.count(b"HTTP/1.1") == 1


async def test_http_1_0_keep_alive_is_honoured() -> None:
    raw = get_request("/v1/authtokens/x", "Connection: keep-alive").replace(
        b"HTTP/1.1", b"HTTP/1.0"
    )
    async with serve_http(FakeZiggeo().asgi_app) as url:
        head = await exchange(url, raw, read_all=False)
    assert b"connection: close" not in head.lower()


async def test_a_half_sent_head_is_dropped_quietly() -> None:
    async with serve_http(FakeZiggeo().asgi_app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /v1/authtokens/x HTT")
        writer.write_eof()
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 400")
        writer.close()


async def test_close_ends_idle_and_busy_connections() -> None:
    fake = FakeZiggeo()
    fake.latency = 30
    server = LoopbackServer(fake.asgi_app)
    url = await server.start()
    host, port = url.removeprefix("http://").split(":")
    _, idle = await asyncio.open_connection(host, int(port))
    busy_reader, busy = await asyncio.open_connection(host, int(port))
    busy.write(get_request("/v1/authtokens/x"))
    await busy.drain()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.aclose(), 5)
    try:
        leftover = await asyncio.wait_for(busy_reader.read(), 5)
    except ConnectionResetError:
        leftover = b""
    assert leftover == b""  # closed without a response
    await server.aclose()  # idempotent
    idle.close()
    busy.close()
