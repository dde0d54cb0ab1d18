"""The retry table, through the real client: attempts actually sent, and what comes out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
import respx

from tests._support import COLLECTION_URL, make_client
from ziggeo_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncZiggeo,
    AuthToken,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
)
from ziggeo_async._core.errors import error_class_for_status
from ziggeo_async._request import pipeline as _pipeline
from ziggeo_async._request.retry import (
    Decision,
    Failure,
    Operation,
    Verdict,
    may_have_been_acted_on,
    parse_retry_after,
)

OPERATIONS = ("create", "get", "update", "delete")
METHODS = {"create": "POST", "get": "GET", "update": "POST", "delete": "DELETE"}
TOKEN = "tok-0001"
MAX_RETRIES = 2

Outcome = int | Exception
# (outcome, retried on create, retried on get/update/delete)
TABLE: list[tuple[str, Callable[[], Outcome], bool, bool]] = [
    ("connect-error", lambda: httpx.ConnectError("refused"), True, True),
    ("connect-timeout", lambda: httpx.ConnectTimeout("connect"), True, True),
    ("pool-timeout", lambda: httpx.PoolTimeout("pool"), True, True),
    ("read-timeout", lambda: httpx.ReadTimeout("read"), False, True),
    ("write-timeout", lambda: httpx.WriteTimeout("write"), False, True),
    ("read-error", lambda: httpx.ReadError("reset"), False, True),
    ("dropped", lambda: httpx.RemoteProtocolError("server disconnected"), False, True),
    ("unsupported-protocol", lambda: httpx.UnsupportedProtocol("no"), False, False),
    ("408", lambda: 408, False, True),
    ("429", lambda: 429, True, True),
    ("500", lambda: 500, False, True),
    ("502", lambda: 502, False, True),
    ("503", lambda: 503, True, True),
    ("504", lambda: 504, False, True),
    ("400", lambda: 400, False, False),
    ("401", lambda: 401, False, False),
    ("403", lambda: 403, False, False),
    ("404", lambda: 404, False, False),
    ("409", lambda: 409, False, False),
    ("422", lambda: 422, False, False),
    ("501", lambda: 501, False, False),
]
CASES = [
    pytest.param(make_outcome, operation, create_retried if operation == "create" else retried,
                 id=f"{name}-{operation}")
    for name, make_outcome, create_retried, retried in TABLE
    for operation in OPERATIONS
]  # fmt: skip


def token_body() -> dict[str, Any]:
    return {"token": TOKEN, "session_limit": 1}


async def call(client: AsyncZiggeo, operation: str) -> AuthToken | None:
    if operation == "create":
        return await client.authtokens.create(session_limit=1)
    if operation == "get":
        return await client.authtokens.get(TOKEN)
    if operation == "update":
        return await client.authtokens.update(TOKEN, session_limit=1)
    await client.authtokens.delete(TOKEN)
    return None


def mock_endpoint(router: respx.MockRouter, operation: str, outcomes: Iterator[Outcome]) -> Any:
    url = COLLECTION_URL if operation == "create" else COLLECTION_URL + TOKEN

    def respond(request: httpx.Request) -> httpx.Response:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, json=token_body(), headers={"Retry-After": "0"})

    return router.route(method=METHODS[operation], url=url).mock(side_effect=respond)


def expected_error(outcome: Outcome) -> type[APIError]:
    if isinstance(outcome, int):
        return error_class_for_status(outcome)
    if isinstance(outcome, httpx.TimeoutException):
        return APITimeoutError
    return APIConnectionError


def assert_success(operation: str, result: AuthToken | None) -> None:
    if operation == "delete":
        assert result is None
    else:
        assert result is not None
        assert result.token == TOKEN


@pytest.mark.parametrize(("make_outcome", "operation", "retried"), CASES)
@pytest.mark.anyio
async def test_a_lasting_failure_is_tried_as_the_table_says(
    make_outcome: Callable[[], Outcome], operation: str, retried: bool
) -> None:
    client = make_client(max_retries=MAX_RETRIES)
    outcome = make_outcome()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, operation, iter(lambda: outcome, None))
        with pytest.raises(APIError) as caught:
            await call(client, operation)
    assert route.call_count == (1 + MAX_RETRIES if retried else 1)
    assert type(caught.value) is expected_error(outcome)
    assert f"{METHODS[operation]} /v1/authtokens/" in str(caught.value)


@pytest.mark.parametrize(("make_outcome", "operation", "retried"), CASES)
@pytest.mark.anyio
async def test_a_passing_failure_is_recovered_from_only_when_retried(
    make_outcome: Callable[[], Outcome], operation: str, retried: bool
) -> None:
    client = make_client(max_retries=MAX_RETRIES)
    outcome = make_outcome()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, operation, iter([outcome, 200]))
        if retried:
            assert_success(operation, await call(client, operation))
        else:
            with pytest.raises(expected_error(outcome)):
                await call(client, operation)
    assert route.call_count == (2 if retried else 1)


@pytest.mark.parametrize("status", [200, 201])
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.anyio
async def test_a_success_is_sent_once(operation: str, status: int) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, operation, iter([status]))
        assert_success(operation, await call(client, operation))
    assert route.call_count == 1


# Outcomes after which the request may have been acted on, and ones after which it surely was not.
MAY_HAVE_ACTED: list[Outcome] = [
    500,
    502,
    504,
    408,
    httpx.ReadTimeout("read"),
    httpx.WriteTimeout("write"),
    httpx.RemoteProtocolError("dropped"),
]
SURELY_NOT_ACTED: list[Outcome] = [
    503,
    429,
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("connect"),
    httpx.PoolTimeout("pool"),
]


def _outcome_id(outcome: Outcome) -> str:
    return str(outcome) if isinstance(outcome, int) else type(outcome).__name__


@pytest.mark.parametrize("first", MAY_HAVE_ACTED, ids=_outcome_id)
@pytest.mark.anyio
async def test_delete_that_finds_404_after_an_attempt_that_may_have_deleted_is_done(
    first: Outcome,
) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, "delete", iter([first, 404]))
        await client.authtokens.delete(TOKEN)
    assert route.call_count == 2


@pytest.mark.parametrize("first", SURELY_NOT_ACTED, ids=_outcome_id)
@pytest.mark.anyio
async def test_delete_that_finds_404_after_attempts_that_did_nothing_is_not_found(
    first: Outcome,
) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, "delete", iter([first, first, 404]))
        with pytest.raises(NotFoundError):
            await client.authtokens.delete(TOKEN)
    assert route.call_count == 3


@pytest.mark.anyio
async def test_one_attempt_that_may_have_deleted_makes_a_later_404_done() -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, "delete", iter([httpx.ReadTimeout("read"), 503, 404]))
        await client.authtokens.delete(TOKEN)
    assert route.call_count == 3


# Attempt histories of one delete call: every attempt before the last, then the last one's
# status, and what the policy decides for the last. Folded through decide() exactly as the
# pipeline does: each Decision.may_have_acted goes into the next decide().
N, M, P = Failure.NOT_SENT, Failure.MAYBE_SENT, Failure.PERMANENT
HISTORIES: list[tuple[tuple[int | Failure, ...], int, Verdict]] = [
    ((), 404, Verdict.FAIL),
    ((N,), 404, Verdict.FAIL),
    ((N, N), 404, Verdict.FAIL),
    ((503,), 404, Verdict.FAIL),
    ((429,), 404, Verdict.FAIL),
    ((429, 503), 404, Verdict.FAIL),
    ((N, 503), 404, Verdict.FAIL),
    ((M,), 404, Verdict.SUCCEED),
    ((500,), 404, Verdict.SUCCEED),
    ((502,), 404, Verdict.SUCCEED),
    ((504,), 404, Verdict.SUCCEED),
    ((408,), 404, Verdict.SUCCEED),
    ((M, 503), 404, Verdict.SUCCEED),
    ((503, M), 404, Verdict.SUCCEED),
    ((N, 500), 404, Verdict.SUCCEED),
    ((429, N), 404, Verdict.FAIL),
    ((M,), 200, Verdict.SUCCEED),
    ((N,), 200, Verdict.SUCCEED),
]


def _fold(history: tuple[int | Failure, ...], last: int, operation: Operation) -> Decision:
    policy = RetryPolicy(max_retries=5, jitter=lambda: 0.0)
    earlier = False
    for attempt, outcome in enumerate(history, start=1):
        given = {"failure": outcome} if isinstance(outcome, Failure) else {"status_code": outcome}
        decision = policy.decide(
            operation, attempt=attempt, earlier_may_have_acted=earlier, **given
        )
        assert decision.verdict is Verdict.RETRY, (history, attempt)
        earlier = decision.may_have_acted
    return policy.decide(
        operation, attempt=len(history) + 1, status_code=last, earlier_may_have_acted=earlier
    )


@pytest.mark.parametrize(("history", "last", "verdict"), HISTORIES)
def test_delete_404_is_done_only_after_an_attempt_that_may_have_acted(
    history: tuple[int | Failure, ...], last: int, verdict: Verdict
) -> None:
    assert _fold(history, last, Operation.DELETE).verdict is verdict


@pytest.mark.parametrize("operation", [Operation.GET, Operation.UPDATE])
@pytest.mark.parametrize("history", [(M,), (500,), (503,), (N,)])
def test_404_is_never_done_for_get_or_update_whatever_came_before(
    operation: Operation, history: tuple[int | Failure, ...]
) -> None:
    assert _fold(history, 404, operation).verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("outcome", "acted"),
    [(N, False), (M, True), (P, False), (429, False), (503, False), (408, True), (500, True),
     (504, True), (200, True), (404, True)],
)  # fmt: skip
def test_which_outcomes_may_have_been_acted_on(outcome: int | Failure, acted: bool) -> None:
    given = {"failure": outcome} if isinstance(outcome, Failure) else {"status_code": outcome}
    assert may_have_been_acted_on(**given) is acted  # type: ignore[arg-type]
    decision = RetryPolicy().decide(Operation.GET, attempt=9, **given)  # type: ignore[arg-type]
    assert decision.may_have_acted is acted


@pytest.mark.parametrize("operation", ["get", "update"])
@pytest.mark.anyio
async def test_404_after_a_retry_is_still_not_found_for_other_operations(operation: str) -> None:
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, operation, iter([503, 404]))
        with pytest.raises(NotFoundError):
            await call(client, operation)
    assert route.call_count == 2


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.anyio
async def test_max_retries_zero_sends_once(operation: str) -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, operation, iter(lambda: 503, None))
        with pytest.raises(error_class_for_status(503)):
            await call(client, operation)
    assert route.call_count == 1


@pytest.mark.anyio
async def test_max_retries_is_the_number_of_extra_attempts() -> None:
    client = make_client(max_retries=5)
    with respx.mock(assert_all_called=True) as router:
        route = mock_endpoint(router, "get", iter(lambda: httpx.ConnectError("no"), None))
        with pytest.raises(APIConnectionError, match="after 6 attempt"):
            await client.authtokens.get(TOKEN)
    assert route.call_count == 6


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the pipeline's sleep: record each delay and only yield to the loop."""
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(_pipeline, "anyio", SimpleNamespace(sleep=sleep))
    return sleeps


def respond_once_with(status: int, retry_after: str) -> Iterator[httpx.Response]:
    yield httpx.Response(status, headers={"Retry-After": retry_after}, text="wait")
    while True:
        yield httpx.Response(200, json=token_body())


@pytest.mark.parametrize(("status", "operation"), [(429, "create"), (503, "get"), (500, "delete")])
@pytest.mark.anyio
async def test_retry_after_seconds_is_the_delay(
    recorded_sleeps: list[float], status: int, operation: str
) -> None:
    client = make_client(max_retries=2)
    with respx.mock(assert_all_called=True) as router:
        url = COLLECTION_URL if operation == "create" else COLLECTION_URL + TOKEN
        route = router.route(method=METHODS[operation], url=url).mock(
            side_effect=respond_once_with(status, "7")
        )
        assert_success(operation, await call(client, operation))
    assert route.call_count == 2
    assert recorded_sleeps == [7.0]


@pytest.mark.anyio
async def test_retry_after_http_date_is_honoured(recorded_sleeps: list[float]) -> None:
    client = make_client()
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    with respx.mock(assert_all_called=True) as router:
        route = router.get(COLLECTION_URL + TOKEN).mock(side_effect=respond_once_with(429, later))
        await client.authtokens.get(TOKEN)
    assert route.call_count == 2
    assert len(recorded_sleeps) == 1
    assert 20 < recorded_sleeps[0] <= 30


@pytest.mark.parametrize("retry_after", ["61", "3600", "in-a-while-then-61"])
@pytest.mark.anyio
async def test_retry_after_beyond_a_minute_gives_up(
    recorded_sleeps: list[float], retry_after: str
) -> None:
    if retry_after.startswith("in-a-while"):
        retry_after = format_datetime(
            datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True
        )
    client = make_client()
    with respx.mock(assert_all_called=True) as router:
        route = router.get(COLLECTION_URL + TOKEN).mock(
            side_effect=respond_once_with(429, retry_after)
        )
        with pytest.raises(RateLimitError) as caught:
            await client.authtokens.get(TOKEN)
    assert route.call_count == 1
    assert recorded_sleeps == []
    assert caught.value.body == "wait"


@pytest.mark.anyio
async def test_backoff_without_retry_after_grows_and_is_jittered(
    recorded_sleeps: list[float],
) -> None:
    client = make_client(max_retries=6)
    client = client.with_options(retry=RetryPolicy(max_retries=6, jitter=lambda: 1.0))
    with respx.mock(assert_all_called=True) as router:
        router.get(COLLECTION_URL + TOKEN).mock(side_effect=httpx.ConnectError("no"))
        with pytest.raises(APIConnectionError):
            await client.authtokens.get(TOKEN)
    assert recorded_sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


# The policy on its own: the corners the client tests above do not reach.

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("0", 0.0),
        (" 2.5 ", 2.5),
        ("Thu, 01 Jan 2026 12:00:10 GMT", 10.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("Thu, 01 Jan 2026 12:00:10 -0000", 10.0),
        ("Thu, 01 Jan 2026 12:00:10 +0100", 0.0),
        (
            "Fri, 31 Dec 9999 23:59:59 -2359",
            (
                datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(minutes=1439))) - NOW
            ).total_seconds(),
        ),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_defaults_now_to_the_clock() -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    result = parse_retry_after(later)
    assert result is not None
    assert 3000 < result <= 3600


def test_policy_ignores_retry_after_for_transport_failures() -> None:
    policy = RetryPolicy(jitter=lambda: 0.5)
    decision = policy.decide(
        Operation.GET, attempt=1, failure=Failure.MAYBE_SENT, retry_after="3600"
    )
    assert decision == Decision(Verdict.RETRY, 0.25)


def test_policy_refuses_negative_max_retries() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_default_jitter_stays_within_the_ceiling() -> None:
    policy = RetryPolicy()
    delays = {policy.decide(Operation.GET, attempt=2, status_code=503).delay for _ in range(50)}
    assert all(0 <= delay <= 1.0 for delay in delays)
    assert len(delays) > 1
