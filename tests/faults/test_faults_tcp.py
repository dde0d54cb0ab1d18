"""Fault scenarios against real, misbehaving HTTP servers on 127.0.0.1.

Each scenario names its fault, the operation it hits and the outcome the SDK owes
the caller; the runner then checks the server's store (nothing lost, nothing made
twice), the sockets (none left open) and the sleeps the retry policy asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import attrs
import httpx
import httpx2
import pytest

from tests._servers import (
    Action,
    ServerGroup,
    close_after,
    close_without_response,
    drip,
    garbage,
    hang,
    redirect,
    reset_mid_body,
    respond,
    short_body,
    status,
    truncated_json,
)
from tests.faults._scenario import CALLS, SEED_FIELDS, SEEDED, Expected, check_outcome
from tests.faults._support import (
    EVERY_PATH,
    LEDGER,
    LENT_HTTPX2,
    LENT_LEGACY,
    Canary,
    backoff,
    busy_pool_connections,
    close_client,
    make_client,
    outcome_of,
    run_label,
)
from ziggeo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    InternalServerError,
    RateLimitError,
)
from ziggeo_async._http import trust_context

pytestmark = pytest.mark.anyio

#: Every phase has room to spare on a loaded machine, so no answer is late by luck; the
#: one a scenario exhausts on purpose (a hang, a full backlog) is short, see below.
TIMEOUT = httpx2.Timeout(10.0)
#: A server that hangs is waited for this long. The answers that follow a hang get the
#: same read timeout, so it stays well above how late a loaded machine may schedule one.
HANG_TIMEOUT = httpx2.Timeout(10.0, read=0.3)
#: A connect into a full backlog never completes, so any connect timeout fires.
BACKLOG_TIMEOUT = httpx2.Timeout(10.0, connect=0.1)
HTML = b"<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
B1, B2 = backoff(1), backoff(2)


def _retry_after(value: str, code: int = 429) -> Action:
    return status(code, b"slow down", content_type="text/plain", headers=[("Retry-After", value)])


def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(timezone.utc) + delta, usegmt=True)


@attrs.frozen
class TcpScenario:
    name: str
    operation: str
    #: The server's script, given the URL of a second server on another host.
    script: Callable[[str], list[Action]]
    expected: Expected
    target: str = "server"  # or "refused", "full backlog"
    lent_client_follows_redirects: bool = False
    #: The transport error the SDK's error chains, by name, in the path's httpx family
    #: (aiohttp's failures are mapped onto httpx2's).
    cause: str | None = None
    timeout: httpx2.Timeout = TIMEOUT


SCENARIOS = [
    TcpScenario(
        "refused connection: create retried, nothing made",
        "create",
        lambda other: [],
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
        target="refused",
        cause="ConnectError",
    ),
    TcpScenario(
        "connect timeout (full backlog): create retried, nothing made",
        "create",
        lambda other: [],
        Expected(APITimeoutError, attempts=3, delays=(B1, B2)),
        target="full backlog",
        cause="ConnectTimeout",
        timeout=BACKLOG_TIMEOUT,
    ),
    TcpScenario(
        "read timeout before effect: create not retried",
        "create",
        lambda other: [hang(effect=False)],
        Expected(APITimeoutError, attempts=1, created=0),
        cause="ReadTimeout",
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "read timeout after effect: create not retried, one token",
        "create",
        lambda other: [hang(effect=True)],
        Expected(APITimeoutError, attempts=1, created=1),
        cause="ReadTimeout",
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "read timeout then answer: get retried",
        "get",
        lambda other: [hang(effect=False)],
        Expected(None, attempts=2, delays=(B1,)),
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "read timeout after effect: update retried, applied once",
        "update",
        lambda other: [hang(effect=True)],
        Expected(None, attempts=2, delays=(B1,)),
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "read timeout after effect: delete retried, 404 means done",
        "delete",
        lambda other: [hang(effect=True)],
        Expected(None, attempts=2, delays=(B1,)),
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "reset mid-body after effect: create not retried, one token",
        "create",
        lambda other: [reset_mid_body(effect=True)],
        Expected(APIConnectionError, attempts=1, created=1),
    ),
    TcpScenario(
        "reset mid-body: get retried",
        "get",
        lambda other: [reset_mid_body(effect=False)],
        Expected(None, attempts=2, delays=(B1,)),
    ),
    TcpScenario(
        "closed without a response: create not retried",
        "create",
        lambda other: [close_without_response(effect=False)],
        Expected(APIConnectionError, attempts=1, created=0),
        cause="RemoteProtocolError",
    ),
    TcpScenario(
        "closed without a response: get retried, then fails",
        "get",
        lambda other: [close_without_response(effect=False)] * 3,
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
        cause="RemoteProtocolError",
    ),
    TcpScenario(
        "closed without a response after effect: delete retried, 404 means done",
        "delete",
        lambda other: [close_without_response(effect=True)],
        Expected(None, attempts=2, delays=(B1,)),
    ),
    TcpScenario(
        "closed without a response: delete retried, then fails",
        "delete",
        lambda other: [close_without_response(effect=False)] * 3,
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
        cause="RemoteProtocolError",
    ),
    TcpScenario(
        "body shorter than Content-Length: get retried",
        "get",
        lambda other: [short_body()],
        Expected(None, attempts=2, delays=(B1,)),
    ),
    TcpScenario(
        "truncated JSON after effect: create reports the unusable body",
        "create",
        lambda other: [truncated_json(effect=True)],
        Expected(APIResponseValidationError, attempts=1, created=1),
    ),
    TcpScenario(
        "HTML 200 page: get reports the unusable body",
        "get",
        lambda other: [status(200, HTML, content_type="text/html")],
        Expected(APIResponseValidationError, attempts=1),
    ),
    TcpScenario(
        "HTML 502 page: create not retried",
        "create",
        lambda other: [status(502, HTML, content_type="text/html")],
        Expected(InternalServerError, attempts=1, created=0),
    ),
    TcpScenario(
        "HTML 502 pages: get gives up after max_retries",
        "get",
        lambda other: [status(502, HTML, content_type="text/html")] * 3,
        Expected(InternalServerError, attempts=3, delays=(B1, B2)),
    ),
    TcpScenario(
        "5xx burst then success: update",
        "update",
        lambda other: [status(500), status(504)],
        Expected(None, attempts=3, delays=(B1, B2)),
    ),
    TcpScenario(
        "503 burst then success: create retried, one token",
        "create",
        lambda other: [status(503), status(503)],
        Expected(None, attempts=3, delays=(B1, B2), created=1),
    ),
    TcpScenario(
        "5xx burst longer than the retries: delete fails, token kept",
        "delete",
        lambda other: [status(500), status(502), status(503)],
        Expected(InternalServerError, attempts=3, delays=(B1, B2)),
    ),
    TcpScenario(
        "429 with Retry-After seconds: create waits exactly that",
        "create",
        lambda other: [_retry_after("0.03")],
        Expected(None, attempts=2, delays=(0.03,), created=1),
    ),
    TcpScenario(
        "429 with malformed Retry-After: backoff instead",
        "get",
        lambda other: [_retry_after("soon"), _retry_after("1e999"), _retry_after("-4")],
        Expected(RateLimitError, attempts=3, delays=(B1, B2)),
    ),
    TcpScenario(
        "429 with huge Retry-After: give up rather than stall",
        "create",
        lambda other: [_retry_after("99999999999999999999")],
        Expected(RateLimitError, attempts=1, delays=(), created=0),
    ),
    TcpScenario(
        "429 with past HTTP-date Retry-After: retry at once",
        "update",
        lambda other: [_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")],
        Expected(None, attempts=2, delays=(0.0,)),
    ),
    TcpScenario(
        "503 with future HTTP-date Retry-After beyond the bound: give up",
        "create",
        lambda other: [_retry_after(_http_date(timedelta(hours=1)), code=503)],
        Expected(InternalServerError, attempts=1, delays=(), created=0),
    ),
    TcpScenario(
        "redirect to another host: not followed, no Authorization there",
        "get",
        lambda other: [redirect(f"{other}/v1/authtokens/{SEEDED}")],
        Expected(APIStatusError, attempts=1),
    ),
    TcpScenario(
        "redirect to another host on a lent client that follows redirects",
        "create",
        lambda other: [redirect(f"{other}/v1/authtokens/")],
        Expected(APIStatusError, attempts=1, created=0),
        lent_client_follows_redirects=True,
    ),
    TcpScenario(
        "slow drip body within the read timeout: get succeeds",
        "get",
        lambda other: [drip(gap=0.005)],
        Expected(None, attempts=1),
    ),
    TcpScenario(
        "slow drip body that stalls after effect: create not retried",
        "create",
        lambda other: [drip(gap=0.005, stall_after=2)],
        Expected(APITimeoutError, attempts=1, created=1),
        timeout=HANG_TIMEOUT,
    ),
    TcpScenario(
        "not HTTP at all: get retried, then fails",
        "get",
        lambda other: [garbage()] * 3,
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
    ),
    TcpScenario(
        "server drops the kept-alive connection after answering: next call unharmed",
        "get",
        lambda other: [close_after(respond)],
        Expected(None, attempts=1),
    ),
]


#: Each scenario on every path (see ``EVERY_PATH``). A scenario that lends its own
#: client (one that follows redirects) runs on the lent paths alone.
RUNS = [
    pytest.param(scenario, backend, path, id=f"{scenario.name}-{backend}-{path}")
    for scenario in SCENARIOS
    for backend, path in EVERY_PATH
    if not (scenario.lent_client_follows_redirects and path not in (LENT_HTTPX2, LENT_LEGACY))
]


@pytest.mark.parametrize(("scenario", "anyio_backend", "path"), RUNS)
async def test_tcp_fault(
    scenario: TcpScenario, servers: ServerGroup, canary: Canary, anyio_backend: str, path: str
) -> None:
    other = servers.start(host="127.0.0.2")
    server = servers.start(scenario.script(other.url))
    server.store.seed(SEEDED, **SEED_FIELDS)
    other.store.seed(SEEDED, **SEED_FIELDS)
    base_url = {
        "server": server.url,
        "refused": f"http://127.0.0.1:{servers.refusing_port()}",
        "full backlog": f"http://127.0.0.1:{servers.full_backlog_port()}",
    }[scenario.target]
    lent = (
        (httpx2 if path == LENT_HTTPX2 else httpx).AsyncClient(
            verify=trust_context(), follow_redirects=True, timeout=scenario.timeout
        )
        if scenario.lent_client_follows_redirects
        else None
    )
    client, policy = make_client(
        canary, base_url, timeout=scenario.timeout, http_client=lent, path=path
    )
    http_client = client._connection()
    try:
        outcome = await outcome_of(canary, CALLS[scenario.operation](client))
        check_outcome(scenario.operation, outcome, scenario.expected, policy, server.store)
        if scenario.target == "server":  # each attempt sent once: nothing below re-sends
            assert len(server.requests) == policy.attempts
        if scenario.cause is not None:
            family = httpx if path == LENT_LEGACY else httpx2
            assert type(outcome.error.__cause__) is getattr(family, scenario.cause)
        if scenario.expected.error is APIStatusError:
            assert isinstance(outcome.error, APIStatusError)
            assert outcome.error.status_code == 302
        # Whatever the fault, the client still works: a follow-up call on the same client.
        if scenario.target == "server" and SEEDED in server.store.tokens:
            assert (await client.authtokens.get(SEEDED)).token == SEEDED
        assert other.requests == [], "a request reached the other host"
        busy = busy_pool_connections(http_client)
    finally:
        await close_client(client)
    left_open = await server.wait_until_no_connection_is_open()
    LEDGER.leaked += busy + left_open + other.open_connections
    assert busy == 0, "a pooled connection stayed busy after the call ended"
    assert left_open == 0, "the server still holds connections after aclose()"
    assert http_client.client.is_closed
    LEDGER.runs[run_label(anyio_backend, path)] += 1
    LEDGER.scenarios.add(scenario.name)
