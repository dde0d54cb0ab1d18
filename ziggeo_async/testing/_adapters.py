"""The two thin ways into ``FakeZiggeo.serve``: an httpx-family transport and an ASGI app."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx2

from ._fake import PlannedDrop

if TYPE_CHECKING:
    from ._fake import FakeResponse, FakeZiggeo

__all__ = ["FakeASGIApp", "FakeTransport"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _drop_error(family: ModuleType, drop: PlannedDrop, request: Any) -> Exception:
    """The error ``family``'s client gives for such a drop: no answer, or a broken one."""
    kind = family.RemoteProtocolError if drop.after else family.ConnectError
    return kind(str(drop), request=request)  # type: ignore[no-any-return]


class FakeTransport(httpx2.AsyncBaseTransport):
    """Hands each request to a ``FakeZiggeo``; answers in the request's httpx family.

    An ``httpx2.AsyncClient`` and a legacy ``httpx.AsyncClient`` both call
    ``handle_async_request``; the response, and a planned drop's error, are built from
    the module the request comes from, so either client gets its own types.
    """

    def __init__(self, fake: FakeZiggeo) -> None:
        self._fake = fake

    def __repr__(self) -> str:
        return f"<FakeTransport to {self._fake!r}>"

    async def handle_async_request(self, request: Any) -> Any:
        family = sys.modules[type(request).__module__.partition(".")[0]]
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        try:
            answer = await self._fake.serve(
                request.method, target, request.headers.multi_items(), body
            )
        except PlannedDrop as drop:
            error = _drop_error(family, drop, request)
        else:
            return family.Response(answer.status, headers=list(answer.headers), content=answer.body)
        raise error


class FakeASGIApp:
    """``FakeZiggeo`` as an ASGI 3 application (HTTP and lifespan scopes).

    A planned drop raises httpx2's error out of the app: ``httpx2.ASGITransport``
    hands it to the client as a real drop would look, and the loopback server of
    ``ziggeo-async fake serve`` closes the socket without a response (other ASGI
    servers treat it as any app error, often with a 500).
    """

    def __init__(self, fake: FakeZiggeo) -> None:
        self._fake = fake

    def __repr__(self) -> str:
        return f"<FakeASGIApp for {self._fake!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"FakeZiggeo serves HTTP only, not {scope['type']!r}")
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query: bytes = scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        ]
        try:
            answer = await self._fake.serve(scope["method"], target, headers, bytes(body))
        except PlannedDrop as drop:
            error = _drop_error(httpx2, drop, None)
        else:
            await _respond(send, answer)
            return
        raise error


async def _respond(send: Send, answer: FakeResponse) -> None:
    headers = (*answer.headers, ("content-length", str(len(answer.body))))
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
