"""FakeZiggeo's ASGI app over real HTTP, on uvicorn (the server of ``ziggeo-async fake serve``)."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._support import serve_on_uvicorn
from ziggeo_async import APIConnectionError, AsyncZiggeo, NotFoundError
from ziggeo_async.testing import FakeZiggeo

AUTH = "Basic " + base64.b64encode(b"fake-app-token:fake-private-key").decode()
#: How long a socket read may block before the test calls the server hung.
PATIENCE = 30.0


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=PATIENCE)
    connection.settimeout(PATIENCE)
    return connection


def read_to_end(connection: socket.socket) -> bytes:
    received = bytearray()
    while chunk := connection.recv(65536):
        received += chunk
    return bytes(received)


def create_head(content_length: int) -> bytes:
    lines = [
        "POST /v1/authtokens/ HTTP/1.1",
        "Host: x",
        f"Authorization: {AUTH}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {content_length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.anyio
async def test_sdk_round_over_real_http() -> None:
    fake = FakeZiggeo()
    with serve_on_uvicorn(fake.asgi_app) as url:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as http_client:
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


@pytest.mark.parametrize(
    ("http_backend", "anyio_backend"),
    [
        ("httpx2", "asyncio"),
        ("httpx2", "trio"),
        ("aiohttp", "asyncio"),  # aiohttp runs on asyncio only
        ("legacy httpx", "asyncio"),
        ("legacy httpx", "trio"),
    ],
)
@pytest.mark.anyio
async def test_drops_break_the_exchange_for_every_http_stack(http_backend: str) -> None:
    fake = FakeZiggeo()
    with serve_on_uvicorn(fake.asgi_app) as url:
        if http_backend == "legacy httpx":
            lent = httpx.AsyncClient()
            ziggeo = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url, http_client=lent)
        else:
            ziggeo = AsyncZiggeo(
                fake.app_token,
                fake.private_key,
                base_url=url,
                http_backend=http_backend,  # type: ignore[arg-type]
            )
        async with ziggeo:
            fake.drop_next(when="after")
            with pytest.raises(APIConnectionError):
                await ziggeo.authtokens.create(session_limit=1)
            assert len(fake.tokens) == 1
            token = next(iter(fake.tokens))
            # Over HTTP even a drop "before" looks like a broken exchange; get retries it.
            fake.drop_next(when="before")
            assert (await ziggeo.authtokens.get(token)).token == token
        if http_backend == "legacy httpx":
            await lent.aclose()
    assert [r.status for r in fake.requests] == [None, None, 200]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_drop_ends_the_connection_before_a_whole_response(when: str) -> None:
    """ASGI has no way to close a connection unanswered: the app starts a response that
    declares a body, then raises; the server closes the connection, the body unsent."""
    fake = FakeZiggeo()
    fake.drop_next(when=when)  # type: ignore[arg-type]
    body = b"session_limit=1"
    with serve_on_uvicorn(fake.asgi_app) as url, connect(url) as connection:
        connection.sendall(create_head(len(body)) + body)
        received = read_to_end(connection)  # returns: the server closed the connection
    head, _, rest = received.partition(b"\r\n\r\n")
    declared = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(rest) < declared
    assert len(fake.tokens) == (1 if when == "after" else 0)


@pytest.fixture
def app_returned() -> Iterator[tuple[Any, threading.Event]]:
    """FakeZiggeo's app, wrapped to say when it has returned from an HTTP request."""
    fake = FakeZiggeo()
    returned = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await fake.asgi_app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                returned.set()

    with serve_on_uvicorn(app) as url:
        yield (fake, url), returned


def test_a_client_that_leaves_mid_body_changes_nothing(
    app_returned: tuple[Any, threading.Event],
) -> None:
    (fake, url), returned = app_returned
    with connect(url) as connection:
        # A whole form, but less than the declared length: the body never completes.
        connection.sendall(create_head(100) + b"session_limit=6")
    assert returned.wait(PATIENCE)
    assert fake.tokens == {}
    assert fake.requests == ()
