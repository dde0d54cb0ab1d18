"""Form encoding round-trips for any valid arguments; anything else is refused before I/O."""

from __future__ import annotations

import calendar
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile._profiles import HOSTILE
from ziggeo_async import AsyncZiggeo, ValidationError
from ziggeo_async._core.arguments import (
    MAX_SECONDS,
    MAX_SESSION_LIMIT,
    encode_form,
    normalize_arguments,
)

pytestmark = pytest.mark.anyio

SECONDS = st.integers(min_value=0, max_value=MAX_SECONDS)
SESSION_LIMITS = st.integers(min_value=0, max_value=MAX_SESSION_LIMIT)
RESOURCES = st.lists(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12), max_size=4)
GRANT = st.fixed_dictionaries(
    {},
    optional={"resources": RESOURCES, "session_owned": st.booleans(), "all": st.booleans()},
)
GRANTS = st.dictionaries(st.sampled_from(["read", "create", "update", "destroy"]), GRANT)
ARGUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "volatile": st.booleans(),
        "hidden": st.booleans(),
        "expiration_date": st.one_of(
            SECONDS,
            # Hypothesis takes naive bounds and adds the zone itself: any whole-minute offset.
            st.datetimes(
                min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - bounds are naive by API
                max_value=datetime(9999, 1, 1),  # noqa: DTZ001
                timezones=st.builds(
                    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-1439, 1439)
                ),
            ),
        ),
        "usage_expiration_time": st.one_of(
            SECONDS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**6))
        ),
        "session_limit": SESSION_LIMITS,
        "grants": GRANTS,
    },
)


def _decode_form(body: str) -> dict[str, Any]:
    """Read a form back the way the wire contract says it was written."""
    decoded: dict[str, Any] = {}
    for name, value in parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body)):
        assert name not in decoded, f"{name} sent twice"
        if value in ("true", "false"):
            decoded[name] = value == "true"
        elif name == "grants":
            decoded[name] = json.loads(value)
        else:
            assert value.isdigit(), value
            decoded[name] = int(value)
    return decoded


def _expected_text(name: str, value: Any) -> str:
    """The form value the wire contract asks for, worked out without the SDK."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(calendar.timegm(value.utctimetuple()))
    if isinstance(value, timedelta):
        return str(value.days * 86400 + value.seconds)
    if isinstance(value, int):
        return str(value)
    assert name == "grants"
    return json.dumps(value, separators=(",", ":"))


@HOSTILE
@given(arguments=ARGUMENTS)
def test_form_encoding_round_trips(arguments: dict[str, Any]) -> None:
    """Each argument once, in the order given, as the wire contract spells it."""
    body = encode_form(normalize_arguments(arguments)).decode("ascii")
    fields = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body))
    assert [name for name, _ in fields] == list(arguments)
    for name, text in fields:
        assert text == _expected_text(name, arguments[name])
    assert _decode_form(body) == normalize_arguments(arguments)


@HOSTILE
@given(arguments=ARGUMENTS)
async def test_create_sends_exactly_the_encoded_form(arguments: dict[str, Any]) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        return httpx.Response(201, content=b'{"token": "t"}')

    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncZiggeo("app", "key", base_url="https://x.test", http_client=lent)
    await client.authtokens.create(**arguments)
    assert len(bodies) == 1
    assert _decode_form(bodies[0].decode("ascii")) == normalize_arguments(arguments)


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**31 - 2, max_value=2**41),  # around the bounds
    st.integers(min_value=10**4300, max_value=10**5000),  # beyond str()'s digit limit
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.datetimes(),
    st.timedeltas(),
)
NAMES = st.sampled_from(
    ["volatile", "hidden", "expiration_date", "usage_expiration_time", "session_limit", "grants"]
)


@HOSTILE
@given(arguments=st.dictionaries(st.one_of(NAMES, st.text(max_size=8)), ANYTHING, max_size=4))
async def test_any_argument_is_accepted_and_round_trips_or_is_refused_by_name(
    arguments: dict[str, Any],
) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(201, content=b'{"token": "t"}')

    lent = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncZiggeo("app", "key", base_url="https://x.test", http_client=lent)
    refused: ValidationError | None = None
    try:
        await client.authtokens.create(**arguments)
    except ValidationError as error:
        refused = error
    if refused is not None:
        assert bodies == []
        assert any(
            refused.argument == name or refused.argument.startswith((f"{name}.", f"{name}["))
            for name in arguments
        ), refused.argument
        return
    # `timeout` is the call's own keyword, not a token argument: it is never sent.
    sent = {name: value for name, value in arguments.items() if name != "timeout"}
    assert _decode_form(bodies[0].decode("ascii")) == normalize_arguments(sent)


@HOSTILE
@given(
    name=st.sampled_from(["expiration_date", "usage_expiration_time", "session_limit"]),
    excess=st.integers(min_value=1, max_value=10**5000),
)
def test_counts_beyond_what_the_api_can_mean_are_refused_by_name(name: str, excess: int) -> None:
    bound = MAX_SESSION_LIMIT if name == "session_limit" else MAX_SECONDS
    with pytest.raises(ValidationError) as caught:
        normalize_arguments({name: bound + excess})
    assert caught.value.argument == name
    assert normalize_arguments({name: bound}) == {name: bound}
