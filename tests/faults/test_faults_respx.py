"""Fault scenarios scripted as respx side effects: transport errors httpx raises itself.

A real server cannot make httpx raise a pool timeout on demand or fail a write at a
chosen byte; respx can, at the transport boundary the SDK classifies. The store is
the same ``TokenStore`` the loopback servers keep, so "took effect" means the same.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import httpx
import pytest
import respx

from tests._servers import Request, TokenStore
from tests.faults._scenario import CALLS, SEED_FIELDS, SEEDED, Expected, check_outcome
from tests.faults._support import (
    LEDGER,
    LENT_LEGACY,
    Canary,
    backoff,
    close_client,
    make_client,
    outcome_of,
)
from ziggeo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
)

pytestmark = pytest.mark.anyio

BASE_URL = "https://respx.ziggeo.test"
B1, B2 = backoff(1), backoff(2)

#: One step of a script: answer the request or raise, with the store at hand.
Step = Callable[[TokenStore, httpx.Request], httpx.Response]


def _as_request(request: httpx.Request) -> Request:
    return Request(
        request.method,
        request.url.raw_path.decode("ascii"),
        {name.lower(): value for name, value in request.headers.items()},
        request.content,
    )


def answer(store: TokenStore, request: httpx.Request) -> httpx.Response:
    code, body = store.apply(_as_request(request))
    return httpx.Response(code, content=body, headers={"Content-Type": "application/json"})


def fail(error: type[httpx.TransportError], *, effect: bool = False) -> Step:
    """Raise ``error`` as httpx would; with ``effect`` the server had carried it out."""

    def step(store: TokenStore, request: httpx.Request) -> httpx.Response:
        if effect:
            store.apply(_as_request(request))
        raise error("simulated by the test", request=request)

    return step


def reply(code: int, body: bytes = b"", **headers: str) -> Step:
    def step(store: TokenStore, request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=body, headers=headers)

    return step


def echo_request_headers(store: TokenStore, request: httpx.Request) -> httpx.Response:
    """What a debugging proxy does: a 400 whose body repeats the request, headers and all."""
    lines = [f"{name}: {value}" for name, value in request.headers.items()]
    return httpx.Response(400, text="Bad request. You sent:\n" + "\n".join(lines))


@attrs.frozen
class RespxScenario:
    name: str
    operation: str
    script: tuple[Step, ...]
    expected: Expected


SCENARIOS = [
    RespxScenario(
        "connect error then success: create retried, one token",
        "create",
        (fail(httpx.ConnectError),),
        Expected(None, attempts=2, delays=(B1,), created=1),
    ),
    RespxScenario(
        "connect timeouts throughout: get gives up",
        "get",
        (fail(httpx.ConnectTimeout),) * 3,
        Expected(APITimeoutError, attempts=3, delays=(B1, B2)),
    ),
    RespxScenario(
        "pool timeout then success: create retried, one token",
        "create",
        (fail(httpx.PoolTimeout), fail(httpx.PoolTimeout)),
        Expected(None, attempts=3, delays=(B1, B2), created=1),
    ),
    RespxScenario(
        "ReadTimeout raised after effect: create not retried, one token",
        "create",
        (fail(httpx.ReadTimeout, effect=True),),
        Expected(APITimeoutError, attempts=1, created=1),
    ),
    RespxScenario(
        "write error mid-request: create not retried",
        "create",
        (fail(httpx.WriteError),),
        Expected(APIConnectionError, attempts=1, created=0),
    ),
    RespxScenario(
        "write timeout then success: update retried",
        "update",
        (fail(httpx.WriteTimeout),),
        Expected(None, attempts=2, delays=(B1,)),
    ),
    RespxScenario(
        "protocol error after effect: delete retried, 404 means done",
        "delete",
        (fail(httpx.RemoteProtocolError, effect=True),),
        Expected(None, attempts=2, delays=(B1,)),
    ),
    RespxScenario(
        "read errors throughout: update gives up",
        "update",
        (fail(httpx.ReadError),) * 3,
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
    ),
    RespxScenario(
        "unsupported protocol: permanent, not retried",
        "get",
        (fail(httpx.UnsupportedProtocol),),
        Expected(APIConnectionError, attempts=1),
    ),
    RespxScenario(
        "408 then success: get retried",
        "get",
        (reply(408),),
        Expected(None, attempts=2, delays=(B1,)),
    ),
    RespxScenario(
        "408 on create: not retried (the request may have been read)",
        "create",
        (reply(408),),
        Expected(APIStatusError, attempts=1, created=0),
    ),
    RespxScenario(
        "429 without Retry-After throughout: create backs off, then gives up",
        "create",
        (reply(429), reply(429), reply(429)),
        Expected(RateLimitError, attempts=3, delays=(B1, B2), created=0),
    ),
    RespxScenario(
        "401: not retried",
        "update",
        (reply(401, b'{"error": "unauthorized"}'),),
        Expected(AuthenticationError, attempts=1),
    ),
    RespxScenario(
        "404 on a first delete: not found, not success",
        "delete",
        (reply(404, b"Not found"),),
        Expected(NotFoundError, attempts=1),
    ),
    RespxScenario(
        "200 with plain text: update reports the unusable body",
        "update",
        (reply(200, b"OK", **{"Content-Type": "text/plain"}),),
        Expected(APIResponseValidationError, attempts=1),
    ),
    RespxScenario(
        "200 with a JSON array: get reports the unusable body",
        "get",
        (reply(200, b'[{"token": "a"}]'),),
        Expected(APIResponseValidationError, attempts=1),
    ),
    RespxScenario(
        "error page echoing the request headers: no credential in the error",
        "create",
        (echo_request_headers,),
        Expected(BadRequestError, attempts=1, created=0),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_respx_fault(scenario: RespxScenario, canary: Canary, anyio_backend: str) -> None:
    store = TokenStore()
    store.seed(SEEDED, **SEED_FIELDS)
    pending = list(scenario.script)
    responses: list[httpx.Response] = []

    def side_effect(request: httpx.Request) -> httpx.Response:
        step = pending.pop(0) if pending else answer
        response = step(store, request)
        responses.append(response)
        return response

    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.route().mock(side_effect=side_effect)
        # respx patches legacy httpx: the client lent is a legacy one.
        client, policy = make_client(canary, BASE_URL, path=LENT_LEGACY)
        try:
            outcome = await outcome_of(canary, CALLS[scenario.operation](client))
        finally:
            await close_client(client)
        check_outcome(scenario.operation, outcome, scenario.expected, policy, store)
        assert pending == [], "the script was not played to its end"
    # respx has no sockets to count: every response the SDK was given must be closed.
    unclosed = sum(not response.is_closed for response in responses)
    LEDGER.leaked += unclosed
    assert unclosed == 0
    LEDGER.runs[anyio_backend] += 1
    LEDGER.scenarios.add(scenario.name)
