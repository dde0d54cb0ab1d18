"""``FakeZiggeo``: the four auth-token endpoints, in memory, with fault injection.

One core, three ways in::

    handle(method, target, headers, body) -> FakeResponse   pure: the store, no faults
    FakeZiggeo.serve(...)                                     faults, latency, records
    ├── FakeZiggeo.transport()   a transport for httpx2 and legacy httpx clients (no sockets)
    ├── FakeZiggeo.asgi_app      an ASGI application (httpx2.ASGITransport, any ASGI server)
    └── ziggeo-async fake serve  the ASGI app on uvicorn on loopback (the ``serve`` extra)

``serve`` raises ``PlannedDrop`` for a dropped connection; each adapter raises it as
the error a real drop gives its client (``ConnectError`` before the request took
effect, ``RemoteProtocolError`` after, of the client's httpx family), so the SDK sees
it the same way through every adapter; over a real socket the server closes the
connection with the response unfinished instead.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import math
import re
import secrets
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from types import ModuleType
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, unquote

import anyio
import attrs
import httpx2

from .._core.arguments import ARGUMENT_NAMES, COUNT_ARGUMENTS, FLAG_ARGUMENTS
from .._core.cipher import ClientTokenCipher
from .._faces.client import check_credential

__all__ = ["FakeResponse", "FakeZiggeo", "PlannedDrop", "RecordedRequest"]

COLLECTION: Final = "/v1/authtokens/"


class PlannedDrop(Exception):  # noqa: N818 - a signal to the adapters, not an error
    """A connection drop the test asked for; ``after``: once the request took effect."""

    def __init__(self, message: str, *, after: bool) -> None:
        super().__init__(message)
        self.after = after


#: Read-only views of the store, served only when the fake is made with ``inspect=True``.
INSPECT_TOKENS: Final = "/_fake/tokens"
INSPECT_REQUESTS: Final = "/_fake/requests"

# `key` is not documented for create; the fake accepts it there as the way to give a token a key.
_CREATE_FIELDS: Final = frozenset((*ARGUMENT_NAMES, "key"))
_UPDATE_FIELDS: Final = frozenset(ARGUMENT_NAMES)
_DIGITS: Final = re.compile(r"[0-9]{1,18}")
# Grants are three levels deep ({"read": {"resources": [...]}}); far deeper ones are
# refused, for a stored one would break every deepcopy of the store (RecursionError).
_MAX_GRANTS_DEPTH: Final = 16
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
_TEXT: Final = (("content-type", "text/plain; charset=utf-8"),)
_JSON: Final = (("content-type", "application/json"),)


@attrs.frozen
class FakeResponse:
    """What the core answers: a status, headers and a body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@attrs.frozen
class RecordedRequest:
    """One request the fake received.

    ``form`` holds the form fields as sent (text). ``took_effect`` is true when the
    fake acted on the request with a 2xx outcome, even if a drop then hid the
    response from the client; a fault that answered in its place leaves it false.
    ``status`` is the status sent, or ``None`` when the connection was dropped.
    """

    method: str
    path: str
    form: Mapping[str, str]
    took_effect: bool
    status: int | None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)  # the form a plain dict, copied


@attrs.frozen
class _Fail:
    status: int
    retry_after: str | None
    body: str


@attrs.frozen
class _Drop:
    after: bool


class _BadRequest(Exception):  # noqa: N818 - a control-flow signal, not an error for users
    pass


def _text(status: int, message: str, *extra: tuple[str, str]) -> FakeResponse:
    return FakeResponse(status, (*_TEXT, *extra), message.encode("utf-8"))


def _json(status: int, document: object) -> FakeResponse:
    return FakeResponse(status, _JSON, json.dumps(document).encode("utf-8"))


_NOT_FOUND: Final = _text(404, "Authorization token not found")


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are no JSON: stored, they would make /_fake/tokens unreadable.
    raise ValueError(name)


def _depth_beyond(value: object, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (no recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth >= limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _decode_value(name: str, text: str) -> Any:
    if name in FLAG_ARGUMENTS:
        if text not in ("true", "false"):
            raise _BadRequest(f"{name}: expected true or false, got {text!r:.40}")
        return text == "true"
    if name in COUNT_ARGUMENTS:
        if not _DIGITS.fullmatch(text):
            raise _BadRequest(f"{name}: expected a whole number, got {text!r:.40}")
        return int(text)
    if name == "grants":
        try:
            grants = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise _BadRequest("grants: not valid JSON") from None
        if not isinstance(grants, dict):
            raise _BadRequest("grants: expected a JSON object")
        if _depth_beyond(grants, _MAX_GRANTS_DEPTH):
            raise _BadRequest(f"grants: nested deeper than {_MAX_GRANTS_DEPTH} levels")
        return grants
    if not text:  # key
        raise _BadRequest(f"{name}: must not be empty")
    return text


def _decode_form(pairs: list[tuple[str, str]], allowed: frozenset[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, text in pairs:
        if name not in allowed:
            raise _BadRequest(
                f"{name}: unknown field; expected one of {', '.join(sorted(allowed))}"
            )
        if name in fields:
            raise _BadRequest(f"{name}: given twice")
        fields[name] = _decode_value(name, text)
    return fields


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


@attrs.define
class _Bucket:
    """A token bucket: ``take`` says how long until a request would pass, or ``None``."""

    rate: float
    burst: int
    tokens: float = attrs.field(init=False)
    updated: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> float | None:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


class FakeZiggeo:
    """An in-memory Ziggeo auth-token API for tests and demos.

    Checks HTTP Basic credentials (``app_token`` / ``private_key``), stores what
    create receives, and serves get, update and delete by token (update and delete
    also by key). ``key`` is accepted as a create field, the fake's way to give a
    token a key; the real API documents no way to do that. Thread-safe: one lock
    guards the store, the records and the fault plan.

    ``inspect=True`` also serves ``GET /_fake/tokens`` and ``GET /_fake/requests``
    (same credentials), so a test in another process can read the store.
    """

    def __init__(
        self,
        # Public stand-ins, not secrets: the fake only ever compares against them.
        app_token: str = "fake-app-token",  # noqa: S107
        private_key: str = "fake-private-key",
        encryption_key: str = "fake-encryption-key",
        *,
        inspect: bool = False,
    ) -> None:
        # The client's checks: a credential .encode() would refuse (a lone surrogate, as
        # an environment variable with a byte that is not UTF-8 gives it) is refused here,
        # by name, not by a UnicodeEncodeError that carries it whole.
        check_credential("app_token", app_token, may_hold_colon=False)
        check_credential("private_key", private_key)
        check_credential("encryption_key", encryption_key)
        self._app_token = app_token
        self._private_key = private_key
        self._encryption_key = encryption_key
        self._expected_authorization = "Basic " + base64.b64encode(
            f"{app_token}:{private_key}".encode()
        ).decode("ascii")
        self._cipher = ClientTokenCipher(app_token, encryption_key)
        self._inspect = inspect
        self._lock = threading.Lock()
        self._store: dict[str, dict[str, Any]] = {}
        self._key_index: dict[str, str] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_Fail | _Drop] = deque()
        self._latency = 0.0
        self._bucket: _Bucket | None = None

    def __repr__(self) -> str:
        return f"<FakeZiggeo {self._app_token!r}, {len(self._store)} token(s)>"

    def __reduce__(self) -> Any:
        raise TypeError("FakeZiggeo holds credentials and a lock; it does not pickle")

    # -- credentials ------------------------------------------------------------------

    @property
    def app_token(self) -> str:
        return self._app_token

    @property
    def private_key(self) -> str:
        return self._private_key

    @property
    def encryption_key(self) -> str:
        return self._encryption_key

    # -- what the fake holds and saw --------------------------------------------------

    @property
    def tokens(self) -> dict[str, dict[str, Any]]:
        """A snapshot of the store: token id -> the stored auth token object."""
        with self._lock:
            return copy.deepcopy(self._store)

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return tuple(self._requests)

    def verify_client_token(self, token: str) -> dict[str, Any]:
        """The payload of a client auth token made with this app's encryption key.

        Raises ``ValidationError`` if it does not decrypt, or names another application.
        """
        return self._cipher.decode(token)

    # -- faults -----------------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds every request waits before it is handled (an async sleep)."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("latency must be a number of seconds >= 0")
        self._latency = float(seconds)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        retry_after: float | str | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``), untouched."""
        if not 400 <= status <= 599:  # noqa: PLR2004 - the error statuses
            raise ValueError("status must be an error status (400-599)")
        text = f"{status} injected by FakeZiggeo" if body is None else body
        fault = _Fail(status, None if retry_after is None else str(retry_after), text)
        self._plan(count, fault)

    def drop_next(self, count: int = 1, *, when: Literal["before", "after"] = "before") -> None:
        """Drop the connection of the next ``count`` requests without a response.

        ``when="before"``: the request never reaches the store (the client sees a
        connect error). ``when="after"``: the store acts on it, then the response is lost.
        """
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        self._plan(count, _Drop(after=when == "after"))

    def rate_limit(self, *, per_second: float, burst: int = 1) -> None:
        """Answer 429 with ``Retry-After`` beyond ``per_second`` requests a second.

        A token bucket of ``burst`` requests, refilled at ``per_second``; a request that
        finds it empty is refused untouched, told how long until a request would pass.
        The bucket keeps the event loop's clock, so under trio's ``MockClock`` it refills
        in the test's virtual time.
        """
        valid = not isinstance(per_second, bool) and isinstance(per_second, (int, float))
        if not valid or not 0 < per_second < math.inf:
            raise ValueError("per_second must be a number > 0")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError("burst must be an int >= 1")
        with self._lock:
            self._bucket = _Bucket(float(per_second), burst)

    def clear_faults(self) -> None:
        """Forget the planned faults and the rate limit (latency stays)."""
        with self._lock:
            self._faults.clear()
            self._bucket = None

    def _plan(self, count: int, fault: _Fail | _Drop) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be an int >= 1")
        with self._lock:
            self._faults.extend([fault] * count)

    # -- the adapters -----------------------------------------------------------------

    def transport(self) -> Any:
        """A transport for an ``httpx2.AsyncClient`` or a legacy ``httpx.AsyncClient`` that
        sends every request to this fake, no sockets involved."""

        return FakeTransport(self)

    @property
    def asgi_app(self) -> Any:
        """This fake as an ASGI application."""

        return FakeASGIApp(self)

    async def serve(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> FakeResponse:
        """Latency, then the planned fault or the core, recording the request.

        Raises ``PlannedDrop`` for a planned drop.
        """
        headers = tuple(headers)
        path = target.partition("?")[0]
        if self._inspect and path in (INSPECT_TOKENS, INSPECT_REQUESTS):
            # Looking at the fake must not change what it does: no latency, fault or record.
            return self.handle(method, target, headers, body)
        if self._latency:
            await anyio.sleep(self._latency)
        # The bucket keeps the event loop's clock, which is time.monotonic() unless a test
        # runs on a mock clock (trio's MockClock): then the rate limit keeps its time too.
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            wait = (
                None if self._bucket is None or fault else self._bucket.take(anyio.current_time())
            )
        if wait is not None:
            self._record(method, path, body, took_effect=False, status=429)
            return _text(429, "rate limited by FakeZiggeo", ("retry-after", f"{wait:.3f}"))
        if isinstance(fault, _Fail):
            extra = () if fault.retry_after is None else (("retry-after", fault.retry_after),)
            self._record(method, path, body, took_effect=False, status=fault.status)
            return _text(fault.status, fault.body, *extra)
        if isinstance(fault, _Drop) and not fault.after:
            self._record(method, path, body, took_effect=False, status=None)
            message = "FakeZiggeo dropped the connection before the request took effect"
            raise PlannedDrop(message, after=False)
        response = self.handle(method, target, headers, body)
        took_effect = 200 <= response.status < 300  # noqa: PLR2004
        if isinstance(fault, _Drop):
            self._record(method, path, body, took_effect=took_effect, status=None)
            message = "FakeZiggeo dropped the connection after the request took effect"
            raise PlannedDrop(message, after=True)
        self._record(method, path, body, took_effect=took_effect, status=response.status)
        return response

    def _record(
        self, method: str, path: str, body: bytes, *, took_effect: bool, status: int | None
    ) -> None:
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        entry = RecordedRequest(method, path, form, took_effect, status)
        with self._lock:
            self._requests.append(entry)

    # -- the core ---------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> FakeResponse:
        """Answer one request from the store: no latency, no faults, no record."""
        path, _, query = target.partition("?")
        headers = tuple(headers)
        if not self._authorized(_header(headers, "authorization")):
            return _text(401, "Unauthorized", ("www-authenticate", 'Basic realm="FakeZiggeo"'))
        if self._inspect and path in (INSPECT_TOKENS, INSPECT_REQUESTS):
            return self._inspection(method.upper(), path)
        if not path.startswith(COLLECTION) or "/" in path[len(COLLECTION) :]:
            return _text(404, "Not found")
        try:
            segment = unquote(path[len(COLLECTION) :], errors="strict")
            pairs = self._form_pairs(headers, body)
            return self._route(method.upper(), segment, query, pairs)
        except _BadRequest as error:
            return _text(400, str(error))
        except UnicodeDecodeError:
            return _text(400, "the path is not valid UTF-8")

    def _route(
        self, method: str, segment: str, query: str, pairs: list[tuple[str, str]]
    ) -> FakeResponse:
        override = self._method_override(method, query, pairs)
        if override is not None:
            method, pairs = override, [pair for pair in pairs if pair[0] != "_method"]
        if not segment:
            if method != "POST":
                return _text(405, "Method not allowed", ("allow", "POST"))
            return self._create(_decode_form(pairs, _CREATE_FIELDS))
        if method == "GET":
            return self._get(segment)
        if method == "DELETE":
            return self._delete(segment)
        if method != "POST":
            return _text(405, "Method not allowed", ("allow", "GET, POST, DELETE"))
        return self._update(segment, _decode_form(pairs, _UPDATE_FIELDS))

    def _authorized(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        try:
            given = authorization.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._expected_authorization.encode("ascii"))

    @staticmethod
    def _form_pairs(headers: tuple[tuple[str, str], ...], body: bytes) -> list[tuple[str, str]]:
        if not body:
            return []
        content_type = (_header(headers, "content-type") or "").partition(";")[0].strip()
        if content_type.lower() != _FORM_TYPE:
            raise _BadRequest(f"the body must be {_FORM_TYPE}, got {content_type or 'no type'}")
        try:
            return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise _BadRequest(f"the body is not a form ({_FORM_TYPE})") from None

    @staticmethod
    def _method_override(method: str, query: str, pairs: list[tuple[str, str]]) -> str | None:
        # The official Python SDK deletes with POST ...?_method=DELETE.
        for name, value in (*parse_qsl(query, keep_blank_values=True), *pairs):
            if name == "_method":
                if method != "POST" or value.upper() != "DELETE":
                    raise _BadRequest("_method: only POST with _method=DELETE is understood")
                return "DELETE"
        return None

    def _inspection(self, method: str, path: str) -> FakeResponse:
        if method != "GET":
            return _text(405, "Method not allowed", ("allow", "GET"))
        if path == INSPECT_TOKENS:
            return _json(200, self.tokens)
        return _json(200, [entry.to_json() for entry in self.requests])

    def _create(self, fields: dict[str, Any]) -> FakeResponse:
        token = secrets.token_hex(16)
        record = {"token": token, "nonce": secrets.token_hex(8), **fields}
        with self._lock:
            key = fields.get("key")
            if key is not None:
                if key in self._key_index or key in self._store:
                    return _text(409, f"key {key!r} is already in use")
                self._key_index[key] = token
            self._store[token] = record
            return _json(200, record)

    def _resolve(self, token_or_key: str) -> str | None:
        if token_or_key in self._store:
            return token_or_key
        return self._key_index.get(token_or_key)

    def _get(self, token: str) -> FakeResponse:
        with self._lock:
            record = self._store.get(token)
            return _NOT_FOUND if record is None else _json(200, record)

    def _update(self, token_or_key: str, fields: dict[str, Any]) -> FakeResponse:
        with self._lock:
            token = self._resolve(token_or_key)
            if token is None:
                return _NOT_FOUND
            record = self._store[token]
            record.update(fields)
            return _json(200, record)

    def _delete(self, token_or_key: str) -> FakeResponse:
        with self._lock:
            token = self._resolve(token_or_key)
            if token is None:
                return _NOT_FOUND
            key = self._store.pop(token).get("key")
            if key is not None:
                del self._key_index[key]
            return FakeResponse(200)


# -- the two thin ways into FakeZiggeo.serve: an httpx-family transport and an ASGI app --

# One byte promised and never sent: what a planned drop starts over ASGI.
_PROMISED_BODY: Final = [(b"content-length", b"1")]

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

    A planned drop starts a response that declares a body, then raises httpx2's error
    out of the app: ``httpx2.ASGITransport`` (and legacy httpx's) hands that error to
    the client as a real drop would look, and a server (uvicorn, under ``ziggeo-async
    fake serve``) closes the connection with the response unfinished. A client that
    disconnects before its body is whole gets nothing acted on, recorded or answered.
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
            if message["type"] == "http.disconnect":
                # The client left before its body was whole: no request arrived, so the
                # store must not act on part of one, and nobody is left to answer.
                return
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
        # ASGI has no message that closes a connection unanswered, and an app that raises
        # before starting a response gets a 500 from the server. One that raises after
        # the start gets its connection closed: so start a response that promises a body
        # and never send it. The client reads a broken exchange, never a whole answer.
        await send({"type": "http.response.start", "status": 500, "headers": _PROMISED_BODY})
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
