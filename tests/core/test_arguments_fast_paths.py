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
from ziggeo_async._core.arguments import encode_form, json_writer, normalize_arguments


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
    session_limit=st.integers(min_value=0, max_value=2**31 - 1),  # the largest allowed
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
    assert encode_form(normalized) == expected.encode("ascii")


json_values = st.recursive(
    st.one_of(st.booleans(), st.integers(), st.text(), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
@given(value=json_values)
def test_json_writer_writes_what_json_dumps_writes(
    separators: tuple[str, str], value: object
) -> None:
    item_separator, key_separator = separators
    write = json_writer(item_separator=item_separator, key_separator=key_separator)
    assert write(value) == json.dumps(value, separators=separators)


def _accelerator_with_another_signature(*arguments: object) -> object:
    raise TypeError(f"expected 10 arguments, got {len(arguments)}")


@pytest.mark.parametrize(
    "accelerator",
    [
        pytest.param(None, id="no-C-accelerator"),
        pytest.param(_accelerator_with_another_signature, id="another-signature"),
    ],
)
def test_json_writer_falls_back_to_json_encoder(
    monkeypatch: pytest.MonkeyPatch, accelerator: object
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(json.encoder, "c_make_encoder", accelerator)
        write = json_writer(item_separator=",", key_separator=":")
    assert getattr(write, "__self__", None).__class__ is json.JSONEncoder
    value = {"grants": {"read": {"resources": ["ü", "a b"]}}, "session_limit": 3}
    assert write(value) == json.dumps(value, separators=(",", ":"))
