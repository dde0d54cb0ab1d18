"""Properties over generated input: token ids stay one path segment, forms round-trip."""

from __future__ import annotations

import calendar
import json
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support import make_client
from ziggeo_async import ValidationError
from ziggeo_async._core.arguments import encode_form, normalize_arguments

EXAMPLES = settings(
    max_examples=300,
    deadline=None,  # the machine is shared; time is not the property
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Every code point, surrogates included, weighted toward the characters that matter
# in a URL path.
token_ids = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.text(st.sampled_from("./%?#;&=+ \\\x00\x7f\x85\ud800~:@!$'()*,"), max_size=6),
    st.sampled_from(["", ".", "..", "...", "%2e%2e", "./..", "%2F", "a/../b"]),
)


def should_refuse(text: str) -> bool:
    return text in ("", ".", "..") or any(
        unicodedata.category(char) == "Cs" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F
        for char in text
    )


@EXAMPLES
@given(text=token_ids)
@pytest.mark.anyio
async def test_a_token_id_is_refused_or_becomes_exactly_one_path_segment(text: str) -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=False) as router:
        anything = router.route().respond(200, json={"token": "t"})
        if should_refuse(text):
            with pytest.raises(ValidationError) as caught:
                await client.authtokens.get(text)
            assert caught.value.argument == "token"
            assert anything.call_count == 0
            return
        await client.authtokens.get(text)
    assert anything.call_count == 1
    url = anything.calls.last.request.url
    assert (url.scheme, url.host, url.port) == ("https", "srv-api.ziggeo.com", None)
    assert url.query == b""
    assert url.fragment == ""
    prefix = b"/v1/authtokens/"
    assert url.raw_path.startswith(prefix)
    segment = url.raw_path[len(prefix) :].decode("ascii")
    assert segment
    assert "/" not in segment
    assert "?" not in segment
    assert "#" not in segment
    assert unquote(segment, errors="strict") == text


grant_values = st.fixed_dictionaries(
    {},
    optional={
        "resources": st.lists(st.text(min_size=1), max_size=3),
        "session_owned": st.booleans(),
        "all": st.booleans(),
    },
)
# Hypothesis takes naive bounds and adds the zone itself.
aware_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.builds(
        lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-1439, 1439)
    ),
)
arguments = st.fixed_dictionaries(
    {},
    optional={
        "volatile": st.booleans(),
        "hidden": st.booleans(),
        # Up to the largest values allowed (_arguments.MAX_SECONDS, MAX_SESSION_LIMIT).
        "expiration_date": st.one_of(st.integers(0, 2**40), aware_datetimes),
        "usage_expiration_time": st.one_of(
            st.integers(0, 2**40),
            st.timedeltas(min_value=timedelta(0), max_value=timedelta(seconds=2**40)),
        ),
        "session_limit": st.integers(0, 2**31 - 1),
        "grants": st.dictionaries(
            st.sampled_from(["read", "create", "update", "destroy"]), grant_values
        ),
    },
)


def expected_text(name: str, value: Any) -> str:
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


@settings(max_examples=300, deadline=None)
@given(given_arguments=arguments)
def test_form_encoding_round_trips(given_arguments: dict[str, Any]) -> None:
    body = encode_form(normalize_arguments(given_arguments)).decode("ascii")
    fields = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body))
    assert [name for name, _ in fields] == list(given_arguments)
    for name, text in fields:
        if name == "grants":
            assert json.loads(text) == given_arguments["grants"]
            assert text == expected_text(name, given_arguments[name])
        else:
            assert text == expected_text(name, given_arguments[name])
