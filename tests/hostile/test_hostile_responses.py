"""Whatever the server sends back, the caller gets an AuthToken or a typed error.

Retry-After values never break the policy or push a delay past its bound; every
status from 100 to 599 has the outcome the error table and the retry table promise;
any body, under any content type, parses to an AuthToken or is refused as
``APIResponseValidationError`` -- never another exception.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile._profiles import HOSTILE
from ziggeo_async import (
    APIResponseValidationError,
    APIStatusError,
    AsyncZiggeo,
    AuthenticationError,
    AuthToken,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    UnprocessableEntityError,
)
from ziggeo_async._request.retry import Operation, Verdict, parse_retry_after

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
RETRY_AFTER = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.datetimes(timezones=st.just(timezone.utc)).map(lambda when: format_datetime(when, True)),
    st.from_regex(
        r"\A[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} -?\d{1,6} \d\d:\d\d:\d\d [A-Z+\-0-9]{1,5}\Z"
    ),
)


@HOSTILE
@given(value=st.one_of(st.none(), RETRY_AFTER))
@example(value="Fri, 31 Dec 9999 23:59:59 GMT")
@example(value="Mon, 01 Jan 0001 00:00:00 GMT")
@example(value="1e309")
@example(value=" 0x10 ")
def test_retry_after_parses_to_a_finite_non_negative_delay_or_none(value: str | None) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@HOSTILE
@given(
    value=RETRY_AFTER,
    attempt=st.integers(min_value=1, max_value=6),
    status=st.sampled_from([429, 503]),
    operation=st.sampled_from(list(Operation)),
    jitter=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_retry_after_never_pushes_a_delay_past_the_policy_bound(
    value: str, attempt: int, status: int, operation: Operation, jitter: float
) -> None:
    policy = RetryPolicy(max_retries=5, jitter=lambda: jitter)
    decision = policy.decide(
        operation, attempt=attempt, status_code=status, retry_after=value, now=NOW
    )
    if attempt > policy.max_retries:
        assert decision.verdict is Verdict.FAIL
        return
    seconds = parse_retry_after(value, now=NOW)
    if seconds is not None and seconds > policy.retry_after_cap:
        assert decision.verdict is Verdict.FAIL  # give up rather than stall the caller
        return
    assert decision.verdict is Verdict.RETRY
    assert 0 <= decision.delay <= max(policy.retry_after_cap, policy.backoff_cap)
    if seconds is not None:
        assert decision.delay == seconds


# The documented tables, written out here rather than read from the SDK.
ERROR_CLASS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
RETRIED = {
    "create": {429, 503},
    "get": {408, 429, 500, 502, 503, 504},
    "update": {408, 429, 500, 502, 503, 504},
    "delete": {408, 429, 500, 502, 503, 504},
}
MAX_RETRIES = 2


def _expected_error(status: int) -> type[APIStatusError]:
    if status >= 500:
        return InternalServerError
    return ERROR_CLASS.get(status, APIStatusError)


def _client(handler: Any) -> AsyncZiggeo:
    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    # No sleeping between the retries: the delays are another test's business.
    return AsyncZiggeo(
        "app",
        "key",
        base_url="https://x.test",
        http_client=lent,
        retry=RetryPolicy(max_retries=MAX_RETRIES, jitter=lambda: 0.0),
    )


async def _call(client: AsyncZiggeo, operation: str) -> object:
    if operation == "create":
        return await client.authtokens.create(session_limit=1)
    if operation == "get":
        return await client.authtokens.get("t")
    if operation == "update":
        return await client.authtokens.update("t", session_limit=1)
    return await client.authtokens.delete("t")


@pytest.mark.parametrize("operation", ["create", "get", "update", "delete"])
async def test_every_status_from_100_to_599_has_the_documented_outcome(operation: str) -> None:
    for status in range(100, 600):
        attempts = 0

        def handler(request: httpx.Request, status: int = status) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return httpx.Response(status, content=b'{"token": "t"}')

        client = _client(handler)
        if 200 <= status < 300:
            result = await _call(client, operation)
            assert attempts == 1
            assert result is None if operation == "delete" else isinstance(result, AuthToken)
            continue
        with pytest.raises(APIStatusError) as caught:
            await _call(client, operation)
        assert type(caught.value) is _expected_error(status), status
        assert caught.value.status_code == status
        assert attempts == (1 + MAX_RETRIES if status in RETRIED[operation] else 1), status


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "token",
    "nonce",
    "volatile",
    "hidden",
    "expiration_date",
    "usage_expiration_time",
    "session_limit",
    "grants",
]
TOKEN_LIKE = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=6),
    JSON_VALUES
    | st.dictionaries(
        st.sampled_from(["read", "create", "update", "destroy"]),
        JSON_VALUES | st.just("all"),
    ),
    max_size=8,
).map(lambda fields: {"token": "t", **fields} if fields.get("token") is None else fields)
BODIES = st.one_of(
    st.binary(max_size=64),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    TOKEN_LIKE.map(lambda value: json.dumps(value).encode()),
    TOKEN_LIKE.map(lambda value: json.dumps(value).encode("utf-16")),
    st.integers(min_value=0, max_value=5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(b'{"token": "t", "session_limit": ' + b"9" * 5000 + b"}"),
    st.just(b'{"token": "t", "expiration_date": 1e400}'),
    st.just(b'{"token": "t", "volatile": NaN}'),
)
CONTENT_TYPES = st.one_of(
    st.just("application/json"),
    st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=30).map(
        lambda charset: f"application/json; charset={charset}"
    ),
    st.sampled_from(["text/html", "text/plain; charset=utf-16", "application/octet-stream"]),
)


@HOSTILE
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    status=st.sampled_from([200, 201]),
    operation=st.sampled_from(["create", "get", "update"]),
)
async def test_any_success_body_parses_to_a_token_or_a_typed_error(
    body: bytes, content_type: str, status: int, operation: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers=[(b"Content-Type", content_type.encode("latin-1"))]
        )

    unusable: APIResponseValidationError | None = None
    try:
        result = await _call(_client(handler), operation)
    except APIResponseValidationError as error:
        unusable = error
    if unusable is not None:
        assert unusable.status_code == status
        assert isinstance(unusable.body, str)
        assert "unusable body" in str(unusable)
        return
    assert isinstance(result, AuthToken)
    assert result.token
    assert result.raw == json.loads(body)


@HOSTILE
@given(body=st.binary(max_size=64), content_type=CONTENT_TYPES, status=st.integers(300, 599))
async def test_any_error_body_keeps_its_status_and_type(
    body: bytes, content_type: str, status: int
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers=[(b"Content-Type", content_type.encode("latin-1"))]
        )

    with pytest.raises(APIStatusError) as caught:
        await _call(_client(handler), "get")
    assert type(caught.value) is _expected_error(status)
    assert caught.value.status_code == status
    assert str(status) in str(caught.value)
