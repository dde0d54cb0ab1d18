"""The value types: AuthToken, Grants and Grant."""

from __future__ import annotations

import attrs
import pytest

from ziggeo_async import AuthToken, Grant, Grants

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
    assert repr(token).startswith("AuthToken(token='t'")


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
