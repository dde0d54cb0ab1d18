"""The value types: AuthToken, Grants and Grant."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ziggeo_async import (
    APIConnectionError,
    AuthToken,
    BatchResult,
    Grant,
    Grants,
    InternalServerError,
    NotFoundError,
    ValidationError,
    ZiggeoError,
)

BODY = {
    "token": "t",
    "session_limit": 2,
    "grants": {"read": {"resources": ["v1"]}},
    "created": 17,
}


def test_auth_tokens_are_hashable_values() -> None:
    first, second = AuthToken.from_json(BODY), AuthToken.from_json(dict(BODY))
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert AuthToken.from_json({**BODY, "created": 18}) != first


def test_auth_tokens_are_frozen_and_repr_leaves_out_the_raw_copy() -> None:
    token = AuthToken.from_json(BODY)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        token.token = "other"  # type: ignore[misc]
    assert "created" not in repr(token)
    assert repr(token).startswith("AuthToken(token='…t'")


def test_an_auth_tokens_repr_shows_its_id_cut_to_the_last_4() -> None:
    """A server auth token id is a bearer credential: a token logged or printed whole
    (``logger.info("made %r", token)``) shows its end only, as the SDK's lines do."""
    token = AuthToken.from_json({"token": "8e2f0c1d9a7b4e3f", "session_limit": 1})
    assert (
        repr(token) == "AuthToken(token='…4e3f', nonce=None, volatile=None, hidden=None, "
        "expiration_date=None, usage_expiration_time=None, session_limit=1, grants=None)"
    )
    assert token.token == "8e2f0c1d9a7b4e3f"  # the value itself is whole


def test_to_json_is_a_copy_of_the_body() -> None:
    token = AuthToken.from_json(BODY)
    copy = token.to_json()
    copy["token"] = "changed"
    assert token.raw["token"] == "t"
    assert token.to_json() == BODY


def test_grants_leave_out_what_is_not_set() -> None:
    grants = Grants(read=Grant(resources=["a"]), destroy=Grant(session_owned=False, all=True))
    assert grants.to_json() == {
        "read": {"resources": ["a"]},
        "destroy": {"session_owned": False, "all": True},
    }
    assert Grants().to_json() == {}
    assert Grant().to_json() == {}
    assert Grants.from_json(grants.to_json()) == grants
    assert hash(grants) == hash(Grants.from_json(grants.to_json()))


# -- pickle and deep copy ---------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
GRANT_JSON = st.fixed_dictionaries(
    {},
    optional={
        "resources": st.lists(st.text(min_size=1, max_size=8), max_size=3),
        "session_owned": st.booleans(),
        "all": st.booleans(),
    },
)
TOKEN_JSON = st.fixed_dictionaries(
    {"token": st.text(min_size=1, max_size=12)},
    optional={
        "nonce": st.text(max_size=8),
        "volatile": st.booleans(),
        "hidden": st.booleans(),
        "expiration_date": st.integers(min_value=0, max_value=2**40),
        "session_limit": st.integers(min_value=0, max_value=10**6),
        "grants": st.fixed_dictionaries(
            {}, optional=dict.fromkeys(("read", "create", "update", "destroy"), GRANT_JSON)
        ),
        "created": st.integers(),
        "custom": JSON_VALUES,
    },
)
AUTH_TOKENS = TOKEN_JSON.map(AuthToken.from_json)
ERRORS: st.SearchStrategy[ZiggeoError] = st.one_of(
    st.builds(ValidationError, st.just("items[3]"), st.text(max_size=10)),
    st.builds(ZiggeoError, st.text(max_size=10)),
    st.builds(
        APIConnectionError, st.text(max_size=10), method=st.just("POST"), path=st.just("/v1")
    ),
    st.builds(
        NotFoundError,
        st.just("GET /v1/authtokens/…abcd: 404"),
        method=st.just("GET"),
        path=st.just("/v1/authtokens/…abcd"),
        status_code=st.just(404),
        body=st.text(max_size=10),
        response=st.none(),
    ),
    st.builds(
        InternalServerError,
        st.just("POST /v1/authtokens/: 503"),
        method=st.just("POST"),
        path=st.just("/v1/authtokens/"),
        status_code=st.sampled_from([500, 503]),
        body=st.text(max_size=10),
        response=st.none(),
    ),
)
BATCH_RESULTS = st.builds(
    BatchResult,
    st.integers(min_value=0, max_value=10**6),
    value=st.none() | AUTH_TOKENS,
    error=st.none() | ERRORS,
)
VALUES = st.one_of(
    AUTH_TOKENS,
    AUTH_TOKENS.map(lambda token: token.grants or Grants()),
    BATCH_RESULTS,
)

COPIES: dict[str, Callable[[Any], Any]] = {
    "pickle": lambda value: pickle.loads(pickle.dumps(value)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
}


@pytest.mark.parametrize("how", COPIES)
@settings(max_examples=150, deadline=None)
@given(value=VALUES)
def test_values_pickle_and_copy_to_equal_values(how: str, value: Any) -> None:
    copied = COPIES[how](value)
    assert type(copied) is type(value)
    assert copied == value
    assert hash(copied) == hash(value)
    if isinstance(value, AuthToken):
        assert copied.raw == value.raw
        assert copied.extra == value.extra
        assert copied.to_json() == value.to_json()


def test_a_pickled_auth_token_stays_frozen() -> None:
    token = pickle.loads(pickle.dumps(AuthToken.from_json(BODY)))
    with pytest.raises(TypeError):
        token.raw["token"] = "changed"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        token.token = "changed"  # type: ignore[misc]


def test_batch_results_with_different_errors_differ() -> None:
    missing = BatchResult(0, error=ValidationError("items[0]", "missing"))
    assert missing != BatchResult(0, error=ValidationError("items[0]", "other"))
    assert missing != BatchResult(0, error=ZiggeoError("items[0]: missing"))
    assert missing == BatchResult(0, error=ValidationError("items[0]", "missing"))
