"""normalize_arguments answers common plain values early; the answers must not change."""

from __future__ import annotations

import json
from collections import UserDict
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ziggeo_async import Grant, Grants, ValidationError
from ziggeo_async._arguments import encode_form, normalize_arguments


class Token(str):
    __slots__ = ()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"session_limit": 0}, {"session_limit": 0}),
        ({"usage_expiration_time": timedelta(seconds=90.7)}, {"usage_expiration_time": 90}),
        (
            {"grants": {"read": {"resources": ("a", Token("b"))}}},
            {"grants": {"read": {"resources": ["a", "b"]}}},
        ),
        (
            {"grants": UserDict({"read": UserDict({"all": True})})},
            {"grants": {"read": {"all": True}}},
        ),
        (
            {"grants": Grants(read=Grant(resources=["v"], session_owned=False))},
            {"grants": {"read": {"resources": ["v"], "session_owned": False}}},
        ),
        (
            {"grants": {"read": {"session_owned": None, "all": False}}},
            {"grants": {"read": {"all": False}}},
        ),
    ],
)
def test_values_of_other_types_take_the_full_path_to_the_same_answer(
    given: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert normalize_arguments(given) == expected


def test_resources_list_is_copied_not_shared() -> None:
    resources = ["v1"]
    normalized = normalize_arguments({"grants": {"read": {"resources": resources}}})
    resources.append("v2")
    assert normalized["grants"]["read"]["resources"] == ["v1"]


@pytest.mark.parametrize(
    ("given", "argument"),
    [
        ({"session_limit": True}, "session_limit"),
        ({"session_limit": -1}, "session_limit"),
        ({"expiration_date": 1.5}, "expiration_date"),
        ({"grants": {"read": {"resources": ["ok", ""]}}}, "grants.read.resources[1]"),
        ({"grants": {"read": {"resources": ["ok", 3]}}}, "grants.read.resources[1]"),
        ({"grants": {"read": {"resources": "abc"}}}, "grants.read.resources"),
        ({"grants": {"read": {"all": 1}}}, "grants.read.all"),
        ({"grants": {"read": {"every": True}}}, "grants.read.every"),
        ({"grants": '{"read": {}}'}, "grants"),
    ],
)
def test_bad_values_are_still_refused_by_name(given: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_arguments(given)
    assert caught.value.argument == argument


@given(
    resources=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4),
    session_limit=st.integers(min_value=0, max_value=10**12),
    volatile=st.booleans(),
)
def test_encode_form_writes_what_urlencode_writes(
    resources: list[str], session_limit: int, volatile: bool
) -> None:
    normalized = normalize_arguments(
        {
            "volatile": volatile,
            "session_limit": session_limit,
            "grants": {"read": {"resources": resources}, "destroy": {"all": True}},
        }
    )
    expected = urlencode(
        [
            (name, json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value)
            for name, value in (
                ("volatile", "true" if volatile else "false"),
                ("session_limit", str(session_limit)),
                ("grants", normalized["grants"]),
            )
        ]
    )
    assert encode_form(normalized) == expected
