"""Forms round-trip, over generated arguments (token ids: tests/hostile/test_hostile_paths.py)."""

from __future__ import annotations

import calendar
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from ziggeo_async._core.arguments import encode_form, normalize_arguments

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
