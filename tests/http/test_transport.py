"""Real sockets on 127.0.0.1: httpx's own failures are classified as the retry table says.

The other modules raise httpx exceptions through respx; these make httpx raise them
itself, so a change in how httpx reports a refused, dropped or silent connection
shows up here.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import pytest

from tests._support import make_client
from ziggeo_async import APIConnectionError, APITimeoutError, AsyncZiggeo


@asynccontextmanager
async def local_server(behaviour: str) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request's head, then drops the connection or goes silent."""
    heads: list[bytes] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            heads.append(head)
            if behaviour == "silent":
                await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    # The task group exits first, so the listener is closed only once it stopped serving.
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}", heads
        tasks.cancel_scope.cancel()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@asynccontextmanager
async def client_for(base_url: str) -> AsyncIterator[AsyncZiggeo]:
    async with httpx.AsyncClient() as http_client:
        yield make_client(base_url=base_url, http_client=http_client, max_retries=2)


@pytest.mark.parametrize(("operation", "attempts"), [("create", 1), ("get", 3), ("delete", 3)])
@pytest.mark.anyio
async def test_a_dropped_connection_is_retried_except_for_create(
    operation: str, attempts: int
) -> None:
    async with local_server("drop") as (base_url, heads), client_for(base_url) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "create": lambda: client.authtokens.create(session_limit=1),
            "get": lambda: client.authtokens.get("tok"),
            "delete": lambda: client.authtokens.delete("tok"),
        }
        call = calls[operation]
        with pytest.raises(APIConnectionError) as caught:
            await call()
    assert type(caught.value) is APIConnectionError
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert len(heads) == attempts


@pytest.mark.parametrize(("operation", "attempts"), [("create", 1), ("get", 3)])
@pytest.mark.anyio
async def test_a_silent_server_times_out_with_the_per_call_timeout(
    operation: str, attempts: int
) -> None:
    async with local_server("silent") as (base_url, heads), client_for(base_url) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "create": lambda: client.authtokens.create(session_limit=1, timeout=0.1),
            "get": lambda: client.authtokens.get("tok", timeout=0.1),
        }
        call = calls[operation]
        with pytest.raises(APITimeoutError) as caught:
            await call()
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(heads) == attempts


@pytest.mark.anyio
async def test_a_refused_connection_is_retried_even_for_create(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ziggeo_async")
    async with client_for(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.authtokens.create(session_limit=1)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    attempts = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    outcomes = [message.split(" -> ")[1].split(" ")[0] for message in attempts]
    assert outcomes == ["ConnectError"] * 3
