"""Fault scenarios on the emulator, ``FakeZiggeo``, and its own fault injection.

The fake's records say which requests took effect, so "nothing lost, nothing made
twice" is read from the emulator's store, not inferred from what the client saw.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import httpx
import pytest

from tests.faults._scenario import Expected
from tests.faults._support import (
    APP_TOKEN,
    BASIC_CREDENTIALS,
    ENCRYPTION_KEY,
    LEDGER,
    PRIVATE_KEY,
    Canary,
    Outcome,
    backoff,
    make_client,
    outcome_of,
)
from ziggeo_async import (
    APIConnectionError,
    AsyncZiggeo,
    AuthenticationError,
    AuthToken,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)
from ziggeo_async.testing import FakeZiggeo

pytestmark = pytest.mark.anyio

COLLECTION = "/v1/authtokens/"
B1, B2 = backoff(1), backoff(2)


class ClosingCheckTransport(httpx.AsyncBaseTransport):
    """The fake's transport, keeping every response it gives so the test can see it closed."""

    def __init__(self, fake: FakeZiggeo) -> None:
        self._inner = fake.transport()
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.responses.append(response)
        return response


def _fake_with_seeded_token() -> tuple[FakeZiggeo, str]:
    fake = FakeZiggeo(APP_TOKEN, PRIVATE_KEY, ENCRYPTION_KEY)
    answer = fake.handle(
        "POST",
        COLLECTION,
        [
            ("authorization", f"Basic {BASIC_CREDENTIALS}"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"session_limit=1",
    )
    return fake, json.loads(answer.body)["token"]


Call = Callable[[AsyncZiggeo, str], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "create": lambda client, seeded: client.authtokens.create(session_limit=3),
    "get": lambda client, seeded: client.authtokens.get(seeded),
    "update": lambda client, seeded: client.authtokens.update(seeded, session_limit=9),
    "delete": lambda client, seeded: client.authtokens.delete(seeded),
    "delete missing": lambda client, seeded: client.authtokens.delete("no-such-token"),
}


@attrs.frozen
class FakeScenario:
    name: str
    operation: str
    plan: Callable[[FakeZiggeo], None]
    expected: Expected


SCENARIOS = [
    FakeScenario(
        "drop before effect: create retried, one token",
        "create",
        lambda fake: fake.drop_next(when="before"),
        Expected(None, attempts=2, delays=(B1,), created=1),
    ),
    FakeScenario(
        "drop after effect: create not retried, one token",
        "create",
        lambda fake: fake.drop_next(when="after"),
        Expected(APIConnectionError, attempts=1, created=1),
    ),
    FakeScenario(
        "drop after effect: delete retried, 404 means done",
        "delete",
        lambda fake: fake.drop_next(when="after"),
        Expected(None, attempts=2, delays=(B1,)),
    ),
    FakeScenario(
        "drop before effect: delete of a missing token retried, 404 is not found",
        "delete missing",
        lambda fake: fake.drop_next(when="before"),
        Expected(NotFoundError, attempts=2, delays=(B1,)),
    ),
    FakeScenario(
        "503 then 404: delete of a missing token is not found",
        "delete missing",
        lambda fake: fake.fail_next(status=503),
        Expected(NotFoundError, attempts=2, delays=(B1,)),
    ),
    FakeScenario(
        "drop after effect: update retried, applied",
        "update",
        lambda fake: fake.drop_next(when="after"),
        Expected(None, attempts=2, delays=(B1,)),
    ),
    FakeScenario(
        "drops before effect throughout: get gives up",
        "get",
        lambda fake: fake.drop_next(3, when="before"),
        Expected(APIConnectionError, attempts=3, delays=(B1, B2)),
    ),
    FakeScenario(
        "503 twice then success: create retried, one token",
        "create",
        lambda fake: fake.fail_next(2, status=503),
        Expected(None, attempts=3, delays=(B1, B2), created=1),
    ),
    FakeScenario(
        "500 on create: not retried, nothing made",
        "create",
        lambda fake: fake.fail_next(status=500),
        Expected(InternalServerError, attempts=1, created=0),
    ),
    FakeScenario(
        "502 burst longer than the retries: update fails, unchanged",
        "update",
        lambda fake: fake.fail_next(3, status=502),
        Expected(InternalServerError, attempts=3, delays=(B1, B2)),
    ),
    FakeScenario(
        "429 with Retry-After 0.02: create waits exactly that",
        "create",
        lambda fake: fake.fail_next(status=429, retry_after=0.02),
        Expected(None, attempts=2, delays=(0.02,), created=1),
    ),
    FakeScenario(
        "429 with a huge Retry-After: give up rather than stall",
        "get",
        lambda fake: fake.fail_next(status=429, retry_after=10**9),
        Expected(RateLimitError, attempts=1, delays=()),
    ),
    FakeScenario(
        "429 with a malformed Retry-After, then an HTTP-date one: backoff, then at once",
        "delete",
        lambda fake: (
            fake.fail_next(status=429, retry_after="in a moment"),
            fake.fail_next(status=429, retry_after="Sun, 06 Nov 1994 08:49:37 GMT"),
        ),
        Expected(None, attempts=3, delays=(B1, 0.0)),
    ),
    FakeScenario(
        "HTML 503 page on get, then success",
        "get",
        lambda fake: fake.fail_next(status=503, body="<html><h1>Service Unavailable</h1></html>"),
        Expected(None, attempts=2, delays=(B1,)),
    ),
]


def _check_against_the_fake(
    operation: str, outcome: Outcome, expected: Expected, fake: FakeZiggeo, seeded: str
) -> None:
    effects = Counter(
        (record.method, record.path == COLLECTION) for record in fake.requests if record.took_effect
    )
    created = effects[("POST", True)]
    tokens = fake.tokens
    if operation == "create":
        LEDGER.duplicated += max(0, created - 1)
        returned_but_missing = outcome.error is None and outcome.result.token not in tokens
        LEDGER.lost += int(returned_but_missing)
        assert not returned_but_missing
        assert created == expected.created
        assert len(tokens) == 1 + created
        return
    assert created == 0
    if operation == "delete missing":
        assert seeded in tokens
        assert not effects
        return
    if operation == "delete":
        LEDGER.duplicated += max(0, effects[("DELETE", False)] - 1)
        assert effects[("DELETE", False)] <= 1
        assert (seeded not in tokens) == (outcome.error is None)
        return
    LEDGER.lost += int(seeded not in tokens)
    assert seeded in tokens
    if outcome.error is None:
        assert isinstance(outcome.result, AuthToken)
        assert outcome.result.token == seeded
    assert tokens[seeded]["session_limit"] == (
        9 if operation == "update" and outcome.error is None else 1
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
async def test_emulator_fault(scenario: FakeScenario, canary: Canary, anyio_backend: str) -> None:
    fake, seeded = _fake_with_seeded_token()
    scenario.plan(fake)
    transport = ClosingCheckTransport(fake)
    lent = httpx.AsyncClient(transport=transport)
    client, policy = make_client(canary, "https://fake.ziggeo.test", http_client=lent)
    canary.objects.append(fake)
    async with lent:
        outcome = await outcome_of(canary, CALLS[scenario.operation](client, seeded))
    if scenario.expected.error is None:
        assert outcome.error is None, repr(outcome.error)
    else:
        assert type(outcome.error) is scenario.expected.error, repr(outcome.error)
    assert policy.attempts == scenario.expected.attempts == len(fake.requests)
    assert sum(policy.delays) <= policy.sleep_bound()
    assert policy.delays == list(scenario.expected.delays or ())
    _check_against_the_fake(scenario.operation, outcome, scenario.expected, fake, seeded)
    unclosed = sum(not response.is_closed for response in transport.responses)
    LEDGER.leaked += unclosed
    assert unclosed == 0
    LEDGER.runs[anyio_backend] += 1
    LEDGER.scenarios.add(f"emulator: {scenario.name}")


async def test_emulator_wrong_private_key_is_refused_once(
    canary: Canary, anyio_backend: str
) -> None:
    fake = FakeZiggeo(APP_TOKEN, "another-private-key-entirely", ENCRYPTION_KEY)
    lent = httpx.AsyncClient(transport=fake.transport())
    client, policy = make_client(canary, "https://fake.ziggeo.test", http_client=lent)
    async with lent:
        outcome = await outcome_of(canary, client.authtokens.create(session_limit=1))
    assert isinstance(outcome.error, AuthenticationError)
    assert policy.attempts == 1
    assert fake.tokens == {}
    LEDGER.runs[anyio_backend] += 1
    LEDGER.scenarios.add("emulator: wrong private key, 401 not retried")


class FirstRequestsOneByOne(httpx.AsyncBaseTransport):
    """Holds the first ``count`` requests until all have come, serves them one at a time,
    and holds every later request (a retry) until those are served.

    So the first ``count`` requests take the first ``count`` planned faults, one each,
    whatever order the event loop runs the workers in (trio varies it on purpose).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, count: int) -> None:
        self._inner = inner
        self._count = count
        self._arrived = self._served = 0
        self._all_arrived = anyio.Event()
        self._all_served = anyio.Event()
        self._one_at_a_time = anyio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._arrived += 1
        if self._arrived > self._count:
            await self._all_served.wait()
            return await self._inner.handle_async_request(request)
        if self._arrived == self._count:
            self._all_arrived.set()
        await self._all_arrived.wait()
        async with self._one_at_a_time:
            try:
                return await self._inner.handle_async_request(request)
            finally:
                self._served += 1
                if self._served == self._count:
                    self._all_served.set()


async def test_emulator_create_many_under_faults_accounts_for_every_item(
    canary: Canary, anyio_backend: str
) -> None:
    """Drops before and after effect, 503s and 500s land on random items of one batch:
    every item is a token made exactly once, or an error; only the drops after effect
    and no other error leave a token the caller was not given."""
    fake = FakeZiggeo(APP_TOKEN, PRIVATE_KEY, ENCRYPTION_KEY)
    lent = httpx.AsyncClient(transport=FirstRequestsOneByOne(fake.transport(), count=8))
    client, _policy = make_client(canary, "https://fake.ziggeo.test", http_client=lent)
    items = [{"session_limit": index} for index in range(200)]
    fake.drop_next(3, when="before")
    fake.fail_next(2, status=503)
    fake.drop_next(2, when="after")
    fake.fail_next(1, status=500)
    async with lent, client.authtokens.create_many(items, concurrency=8) as results:
        outcomes = [result async for result in results]
    for result in outcomes:
        if result.error is not None:
            canary.watch(result.error)
    assert sorted(result.index for result in outcomes) == list(range(200))
    made = Counter(token["session_limit"] for token in fake.tokens.values())
    duplicated = sum(count - 1 for count in made.values())
    LEDGER.duplicated += duplicated
    assert duplicated == 0
    given = {result.value.token for result in outcomes if result.value is not None}
    LEDGER.lost += len(given - set(fake.tokens))
    assert given <= set(fake.tokens)
    failed = [result for result in outcomes if not result.ok]
    # The first eight requests take the eight faults (FirstRequestsOneByOne); retries come
    # later and find none.
    # Two drops after effect: two tokens made but not handed back; one 500: one failure.
    assert len(failed) == 3
    assert {type(result.error) for result in failed} == {APIConnectionError, InternalServerError}
    assert len(fake.tokens) == len(given) + 2
    LEDGER.runs[anyio_backend] += 1
    LEDGER.scenarios.add("emulator: create_many of 200 under drops, 503s and a 500")


async def test_tampered_and_foreign_client_tokens_are_refused_without_the_key(
    canary: Canary, anyio_backend: str
) -> None:
    """The encryption key is the secret here: refusals must not show it, or the AES key."""
    fake = FakeZiggeo(APP_TOKEN, PRIVATE_KEY, ENCRYPTION_KEY)
    client, _policy = make_client(canary, "https://fake.ziggeo.test")
    token = client.auth.generate(session_limit=1, grants={"read": {"all": True}})
    assert fake.verify_client_token(token)["session_limit"] == 1
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")  # breaks the padding
    for hostile in (flipped, token[:-32], "0" * 48, "not a token", token + "00"):
        outcome = await outcome_of(canary, _decode(client, hostile))
        assert outcome.error is not None
        assert type(outcome.error).__name__ == "ValidationError"
    await client.aclose()


async def _decode(client: AsyncZiggeo, token: str) -> dict[str, Any]:
    return client.auth.decode(token)
